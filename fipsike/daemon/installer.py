"""Engine actions -> kernel calls: the Child SA's two ESP SAs, its policies, trap policies, counters.

Synchronous on purpose (the engine's tests and the daemon share it). Key bytes never pass
through here: the SaSpec carries the engine's SecretKey handles and the kernel backend takes the
bytes out with router.release_esp_key at the moment it builds the netlink message.

Policies (RFC 4301 4.4.1) per local x remote selector pair: `out` (local -> remote) with a
template naming the SA's endpoints and reqid, `in` and, for tunnel mode, `fwd` (remote -> local).
A trap policy (libreswan's auto=route / ondemand) is the same `out` policy before any SA exists:
the kernel raises ACQUIRE for the first packet. When a Child SA goes, a routed connection keeps
(or gets back) its trap; any other connection loses its policies.

A Child SA rekey keeps the policies; XFRM sends on the newest outbound SA of the reqid. So the
responder of a rekey (InstallChildSa.defer_outbound) holds its new outbound SA back until the old
Child SA is deleted: installed at once, it would send before the initiator can receive on it.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from fipsike.ike.actions import DeleteChildSa, InstallChildSa, SaDirection, TrafficSelectorSpec
from fipsike.kernel.api import Kernel
from fipsike.kernel.types import (
    Direction,
    IPAddress,
    KernelError,
    Lifetime,
    Mode,
    PolicyAction,
    PolicySpec,
    SaSpec,
    Template,
    TrafficSelector,
    UdpEncap,
)
from providers.algorithms import Integrity

# Peer addresses and negotiated ranges repeat from one Child SA to the next: parse each text once
# (ipaddress parsing was ~7% of the daemon's CPU per SA). Bounded, and the values are immutable.
_address = functools.lru_cache(maxsize=4096)(ipaddress.ip_address)


def selectors(local: Iterable[TrafficSelectorSpec], remote: Iterable[TrafficSelectorSpec]) -> list[TrafficSelector]:
    """The kernel selectors (outbound orientation) for each pair of negotiated ranges of one family.

    XFRM selectors are prefixes: a range that is not one CIDR block becomes the blocks covering it."""
    return list(_selectors(tuple(local), tuple(remote)))


@functools.lru_cache(maxsize=1024)
def _selectors(local: tuple[TrafficSelectorSpec, ...],
               remote: tuple[TrafficSelectorSpec, ...]) -> tuple[TrafficSelector, ...]:
    out: list[TrafficSelector] = []
    for lt in local:
        for rt in remote:
            for ln in _blocks(lt):
                for rn in _blocks(rt):
                    if ln.version != rn.version:
                        continue
                    proto = lt.protocol or rt.protocol
                    sport = lt.start_port if lt.start_port == lt.end_port else 0
                    dport = rt.start_port if rt.start_port == rt.end_port else 0
                    out.append(TrafficSelector(ln, rn, proto, sport, dport))
    return tuple(out)


def _blocks(ts: TrafficSelectorSpec) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    first, last = _address(ts.start), _address(ts.end)
    return list(ipaddress.summarize_address_range(first, last))


@dataclass(frozen=True)
class Trap:
    """A routed connection's trap: where its SAs go, for which traffic."""

    connection: str
    child: str
    reqid: int
    local: IPAddress
    remote: IPAddress
    mode: Mode
    local_ts: tuple[TrafficSelectorSpec, ...]
    remote_ts: tuple[TrafficSelectorSpec, ...]


@dataclass
class InstalledChild:
    connection: str
    child: str
    ike_sa: str
    reqid: int
    spi_in: int
    spi_out: int
    local: IPAddress
    remote: IPAddress
    policies: list[PolicySpec] = field(default_factory=list)


class Installer:
    """Carries out InstallChildSa / DeleteChildSa on a Kernel and remembers what it put there."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.children: dict[int, InstalledChild] = {}  # by inbound SPI
        self.traps: dict[int, Trap] = {}  # by reqid
        self._trap_policies: dict[int, list[PolicySpec]] = {}
        # Counts and indices so that no Child SA install or delete scans every Child SA:
        self._reqid_users: dict[int, int] = {}  # reqid -> Child SAs installed with it
        self._by_sa: dict[tuple[IPAddress, int], int] = {}  # (dst, SPI) of either SA -> inbound SPI
        # (selector, direction) -> the IPsec policy we installed there and how many Child SAs use it.
        # Child SAs with the same selectors and template (one connection's, a rekey's) share one
        # kernel policy, as charon's policy refcounts do: an identical policy is not written again.
        self._policy_users: dict[tuple[TrafficSelector, Direction], tuple[PolicySpec, int]] = {}
        # a rekey's new outbound SA held back (defer_outbound) until the SA it replaces is deleted:
        # the replaced Child SA's inbound SPI -> (the new Child SA's inbound SPI, its outbound SA)
        self._held: dict[int, tuple[int, SaSpec]] = {}

    # --- Child SAs -------------------------------------------------------------------------------
    def install(self, a: InstallChildSa) -> None:
        """Both SAs, then the policies (the SAs first, so no packet meets a policy without its SA).
        On a failure, whatever this call added is removed again and the KernelError propagates."""
        mode = Mode.TUNNEL if a.mode == "tunnel" else Mode.TRANSPORT
        local, remote = _address(a.inbound.dst), _address(a.inbound.src)
        sels = selectors(a.local_ts, a.remote_ts)
        lifetime = Lifetime(soft_seconds=max(1, int(a.lifetime_soft)), hard_seconds=max(1, int(a.lifetime_hard)))
        added: list[tuple[IPAddress, int]] = []
        try:
            for d, inbound in ((a.inbound, True), (a.outbound, False)):
                spec = self._sa_spec(a, d, inbound, mode, sels, lifetime)
                if not inbound and a.defer_outbound and a.rekey_of in self.children:
                    # XFRM sends on the newest outbound SA of a reqid: installed now, it would take over
                    self._held[a.rekey_of] = (a.inbound.spi, spec)
                    continue
                self.kernel.install_sa(spec)
                added.append((_address(d.dst), d.spi))
            child = InstalledChild(a.connection, a.child, a.ike_sa, a.reqid, a.inbound.spi, a.outbound.spi, local,
                                   remote)
            child.policies = self._policies(sels, local, remote, a.reqid, mode)
            for p in child.policies:
                used = self._policy_users.get((p.selector, p.direction))
                if used is None or used[0] != p:
                    self.kernel.install_policy(p, replace=True)
        except KernelError:
            for dst, spi in added:
                self._quietly_delete_sa(dst, spi)
            self._forget_held(a.inbound.spi)
            raise
        old = self.children.get(a.inbound.spi)
        if old is not None:
            self._forget(old)
        for p in child.policies:
            key = (p.selector, p.direction)
            used = self._policy_users.get(key)
            self._policy_users[key] = (p, used[1] + 1 if used is not None and used[0] == p else 1)
        self.children[a.inbound.spi] = child
        self._reqid_users[a.reqid] = self._reqid_users.get(a.reqid, 0) + 1
        self._by_sa[(local, child.spi_in)] = self._by_sa[(remote, child.spi_out)] = child.spi_in

    @staticmethod
    def _sa_spec(a: InstallChildSa, d: SaDirection, inbound: bool, mode: Mode, sels: list[TrafficSelector],
                 lifetime: Lifetime) -> SaSpec:
        encap = None
        if a.encap is not None:
            # (local port, remote port); the SA names its own source and destination ports
            src_port, dst_port = (a.encap[1], a.encap[0]) if inbound else a.encap
            encap = UdpEncap(src_port, dst_port)
        selector = None
        if mode is Mode.TRANSPORT and sels:
            selector = sels[0].reversed() if inbound else sels[0]
        return SaSpec(src=_address(d.src), dst=_address(d.dst), spi=d.spi, reqid=a.reqid,
                      mode=mode, encryption=d.encr, encryption_key=d.encr_key, integrity=d.integ or Integrity.NONE,
                      integrity_key=d.integ_key, selector=selector, inbound=inbound, esn=a.esn, encap=encap,
                      lifetime=lifetime, name=f"{a.connection}/{a.child}")

    @staticmethod
    def _policies(sels: list[TrafficSelector], local: IPAddress, remote: IPAddress, reqid: int,
                  mode: Mode) -> list[PolicySpec]:
        out: list[PolicySpec] = []
        for sel in sels:
            out.append(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC, Template(local, remote, reqid, mode)))
            back = Template(remote, local, reqid, mode)
            out.append(PolicySpec(sel.reversed(), Direction.IN, PolicyAction.IPSEC, back))
            if mode is Mode.TUNNEL:
                out.append(PolicySpec(sel.reversed(), Direction.FWD, PolicyAction.IPSEC, back))
        return out

    def remove(self, a: DeleteChildSa) -> None:
        """Delete both SAs; unless a rekey keeps them, drop (or re-trap) the policies. Errors of a
        missing SA are expected (a hard expiry already removed it); others propagate at the end."""
        child = self.children.pop(a.inbound_spi, None)
        if child is not None:
            self._forget(child)
        errors: list[KernelError] = []
        held = self._held.pop(a.inbound_spi, None)
        if held is not None and held[0] in self.children:
            try:  # the successor takes over the sending before the old SAs go: no gap
                self.kernel.install_sa(held[1])
            except KernelError as exc:
                errors.append(exc)
        self._forget_held(a.inbound_spi)  # a successor deleted before it took over
        for dst, spi in ((a.local, a.inbound_spi), (a.remote, a.outbound_spi)):
            try:
                self.kernel.delete_sa(_address(dst), spi)
            except KernelError as exc:
                if exc.errno_name not in ("ESRCH", "ENOENT"):
                    errors.append(exc)
        if child is not None and not a.keep_policies and not self._reqid_in_use(child.reqid):
            trap = self.traps.get(child.reqid)
            for p in child.policies:
                if trap is not None and p.direction is Direction.OUT:
                    continue  # re-armed below
                self._quietly_remove_policy(p)
            if trap is not None:
                self._install_trap(trap)
        if errors:
            raise errors[0]

    def _forget(self, child: InstalledChild) -> None:
        """`child` leaves the counts and indices (its policies stay in the kernel: remove decides)."""
        left = self._reqid_users.get(child.reqid, 0) - 1
        if left > 0:
            self._reqid_users[child.reqid] = left
        else:
            self._reqid_users.pop(child.reqid, None)
        for key in ((child.local, child.spi_in), (child.remote, child.spi_out)):
            if self._by_sa.get(key) == child.spi_in:
                del self._by_sa[key]
        for p in child.policies:
            key2 = (p.selector, p.direction)
            used = self._policy_users.get(key2)
            if used is not None and used[0] == p:
                if used[1] > 1:
                    self._policy_users[key2] = (p, used[1] - 1)
                else:
                    del self._policy_users[key2]

    def _forget_held(self, new_spi_in: int) -> None:
        for old, (spi_in, _) in list(self._held.items()):
            if spi_in == new_spi_in:
                del self._held[old]

    def _reqid_in_use(self, reqid: int) -> bool:
        return self._reqid_users.get(reqid, 0) > 0

    # --- traps -------------------------------------------------------------------------------------
    def route(self, trap: Trap) -> None:
        self.traps[trap.reqid] = trap
        if not self._reqid_in_use(trap.reqid):
            self._install_trap(trap)

    def _install_trap(self, trap: Trap) -> None:
        pols = [PolicySpec(sel, Direction.OUT, PolicyAction.TRAP, Template(trap.local, trap.remote, trap.reqid,
                                                                           trap.mode))
                for sel in selectors(trap.local_ts, trap.remote_ts)]
        for p in pols:
            self.kernel.install_policy(p, replace=True)
            self._policy_users.pop((p.selector, p.direction), None)  # the trap replaced it
        self._trap_policies[trap.reqid] = pols

    def unroute(self, reqid: int) -> None:
        self.traps.pop(reqid, None)
        pols = self._trap_policies.pop(reqid, [])
        if not self._reqid_in_use(reqid):
            for p in pols:
                self._quietly_remove_policy(p)

    def trap_for(self, reqid: int) -> Trap | None:
        return self.traps.get(reqid)

    def policy_replaced(self, selector: TrafficSelector, direction: Direction) -> None:
        """Something else (a shunt) wrote the SPD entry at (selector, direction): the next Child SA
        that needs an IPsec policy there writes it again rather than trusting our record."""
        self._policy_users.pop((selector, direction), None)

    # --- lookups ------------------------------------------------------------------------------------
    def inbound_spi_of(self, dst: IPAddress, spi: int) -> int | None:
        """The Child SA (by inbound SPI) that an SA (dst, spi) belongs to, either direction."""
        return self._by_sa.get((dst, spi))

    def counters(self, child: InstalledChild) -> dict[str, dict[str, int]]:
        """Bytes and packets in / out, from the kernel's SA counters (zeros for an SA it lost)."""
        out: dict[str, dict[str, int]] = {}
        for key, dst, spi in (("in", child.local, child.spi_in), ("out", child.remote, child.spi_out)):
            try:
                st = self.kernel.get_sa(dst, spi)
                out[key] = {"bytes": st.bytes, "packets": st.packets}
            except KernelError:
                out[key] = {"bytes": 0, "packets": 0}
        return out

    # --- helpers ------------------------------------------------------------------------------------
    def _quietly_delete_sa(self, dst: IPAddress, spi: int) -> None:
        try:
            self.kernel.delete_sa(dst, spi)
        except KernelError:
            pass  # best effort while undoing a failed install; flush_owned removes leftovers

    def _quietly_remove_policy(self, p: PolicySpec) -> None:
        try:
            self.kernel.remove_policy(p.selector, p.direction)
        except KernelError:
            pass  # already gone (flushed, or replaced by a later install)
