"""On-demand instances of the group conns, and the bare shunts between their attempts.

Sans-I/O, like the engine: kernel events, engine outcomes and the clock go in
(`now` is always passed), actions come out (fipsike.oe.actions). Every entry of
the table has a deadline, so nothing lingers: a negotiation that neither
succeeds nor fails is failed at its deadline, a bare shunt is removed at the end
of its lifetime (libreswan's shuntlifetime, 15 minutes by default) so the next
packet tries again, and an established instance must be refreshed by a rekey
before its IKE SA lifetime runs out.

XFRM keys a policy by selector and direction, whatever its priority: a /32-/32
shunt or tunnel policy for a peer REPLACES a group policy with that very
selector (a /32 group entry). So whenever a per-peer policy goes away, the group
policy of the same selector, if any, is put back (libreswan's bare shunt keeps
the connection to restore for the same reason).

Negotiation shunts (while the IKE SA is being set up):
- hold: no policy change. The trap stays; the kernel's larval ACQUIRE state
  blocks the flow (and queues its packets when net.core.xfrm_larval_drop=0)
  until the SA arrives or xfrm_acq_expires runs out. libreswan implements %hold
  on XFRM the same way.
- passthrough: a PASS /32-/32 policy for the peer, so traffic flows in the clear.
- drop: a DROP /32-/32 policy.
The instance's tunnel policy has the shunt's selector, so installing it
replaces the negotiation shunt: nothing is removed on success.

Failure shunts (bare, for shuntlifetime): passthrough = PASS, drop = DROP,
reject = DROP (XFRM cannot answer with ICMP; libreswan maps it the same way),
hold = DROP, none = no shunt: the trap is back and the next packet retries.

Simultaneous initiation: when an IKE_SA_INIT arrives from a peer to whom our
own initiation is still under way, one side keeps initiating and ignores the
peer's request; the other abandons its half-open IKE SA and answers. The verdict
must be the same on both sides without a round trip, so it rests on what both
hold once each has the other's request: the two initiator SPIs (RFC 7296 3.1
header). The initiation with the LOWER initiator SPI carries on. (libreswan lets
both IKE SAs come up and one replace the other; RFC 7296 2.8's lowest-nonce rule
is for rekey collisions and works the same way.)

Addresses cannot decide it once a NAT is between the two: node A behind a NAT
sees the pair (a, b), B sees (b, n), n being the NAT's public address, and a
lower-address rule compares a with b on one side and b with n on the other, so
both may keep initiating (each drops the other's request: no IKE SA) or both
abandon (no IKE SA either). Each side's entry is still found, as its ACQUIRE and
the peer's IKE source name the same peer address there (the NAT rewrites both
directions of one flow). The address rule is kept only for a caller that has no
SPIs (a half-open SA already gone).

Where one side is behind a NAT, that side must be the initiator whatever the
SPIs: a NAT lets the peer's packets in only on the mappings our own packets made,
so a public peer's IKE_AUTH to our public address on 4500 (RFC 3948 NAT-T: the
initiator moves there) is dropped when we only ever sent from 500, and a public
peer's request to our 500 is dropped when the NAT rewrote our port. Both sides
can tell which side is behind the NAT from the colliding request itself: its
NAT_DETECTION_SOURCE_IP hash (RFC 7296 2.23) does not match the address it came
from when the peer is behind one, its NAT_DETECTION_DESTINATION_IP hash does not
match our address when we are; a source port other than 500 says the same
without a hash. So the side behind the NAT keeps initiating and the public side
answers, on both sides alike; the SPIs decide only between two sides that are
both, or neither, behind a NAT. (Behind a NAT the Child SA still fails: see
tests/oe/test_bridge.py's NAT test; the instance then fails whole.)
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.config import ChildConfig, Connection
from fipsike.kernel.types import (
    Acquire,
    Direction,
    IPAddress,
    IPNetwork,
    PolicyAction,
    PolicySpec,
    TrafficSelector,
)
from fipsike.oe.actions import (
    AbandonInitiation,
    AcceptPeer,
    Forget,
    IgnorePeer,
    Initiate,
    InstallPolicy,
    Log,
    OeAction,
    RemovePolicy,
    Terminate,
    WakeAt,
)
from fipsike.oe.groups import (
    RANK_BARE_SHUNT,
    GroupPolicy,
    PolicyGroup,
    matching_group,
    oe_priority,
    policy_table,
)

# libreswan's SHUNT_PATIENCE: SHUNT_SCAN_INTERVAL (120 s) * 15 / 2 = 900 s, the `shuntlifetime` default
DEFAULT_SHUNT_LIFETIME = 900.0
# instances being negotiated as responder at once: each costs a table entry until its deadline, and
# an IKE_SA_INIT is cheap to spoof (the engine's cookies guard the IKE side, this guards the table)
DEFAULT_MAX_ANSWERING = 1000
COLLISION_SUFFIX = "~r"  # the name of an instance that answers after abandoning its own initiation


class OeError(ValueError):
    """A trigger or group conn the opportunistic core cannot use (the message says why)."""


class NegotiationShunt(enum.Enum):
    HOLD = "hold"
    PASSTHROUGH = "passthrough"
    DROP = "drop"


class FailureShunt(enum.Enum):
    NONE = "none"
    PASSTHROUGH = "passthrough"
    DROP = "drop"
    REJECT = "reject"
    HOLD = "hold"


_FAILURE_ACTION = {FailureShunt.PASSTHROUGH: PolicyAction.PASS, FailureShunt.DROP: PolicyAction.DROP,
                   FailureShunt.REJECT: PolicyAction.DROP, FailureShunt.HOLD: PolicyAction.DROP}
_NEGOTIATION_ACTION = {NegotiationShunt.PASSTHROUGH: PolicyAction.PASS, NegotiationShunt.DROP: PolicyAction.DROP}


@dataclass(frozen=True)
class GroupConn:
    """A conn named after its group with right=%opportunisticgroup: the template of its instances.

    `template` is the engine Connection the config built (its addresses are replaced per peer);
    `reqid` is the trap template's reqid (fipsike's ownership range)."""

    group: PolicyGroup
    template: Connection
    reqid: int
    failure_shunt: FailureShunt = FailureShunt.NONE
    negotiation_shunt: NegotiationShunt = NegotiationShunt.HOLD

    def __post_init__(self) -> None:
        if not self.group.answers_ike:
            raise OeError(f"group {self.group.value} never negotiates: it takes no conn")

    @property
    def null_auth(self) -> bool:
        """RFC 7619 NULL authentication (authby=null / leftauth=null / rightauth=null)."""
        return "null" in (self.template.local_auth, self.template.remote_auth)


class Phase(enum.Enum):
    NEGOTIATING = "negotiating"
    ESTABLISHED = "established"
    SHUNTED = "shunted"  # a bare failure shunt, no instance


@dataclass
class Entry:
    """One peer of the table: an instance (negotiating or up) or a bare failure shunt."""

    local: IPAddress
    remote: IPAddress
    group: PolicyGroup
    name: str  # the instance's connection name
    phase: Phase
    deadline: float
    initiator: bool = True
    shunt: str = ""  # the shunt in force: negotiation shunt while negotiating, failure shunt when SHUNTED
    policies: tuple[PolicySpec, ...] = ()  # per-peer shunt policies we installed
    connection: Connection | None = None
    resume: tuple[str, float] | None = None  # answering during a bare shunt: its kind and deadline
    child_up: bool = False  # the kernel took the instance's Child SA (an IKE SA alone carries no traffic)
    # the instance's established IKE SA (the engine's name, SPIs): a DELETE that ends an earlier IKE SA of a
    # failed instance with the same name must not end this one
    ike_sa: str = ""

    def row(self, now: float) -> dict[str, object]:
        """`fipsike status --json`: an instance with its group, a bare shunt with its kind and time left."""
        kind = "bare-shunt" if self.phase is Phase.SHUNTED else "instance"
        out: dict[str, object] = {"kind": kind, "name": self.name, "group": self.group.value,
                                  "local": str(self.local), "remote": str(self.remote),
                                  "state": self.phase.value, "expires_in": max(0.0, round(self.deadline - now, 1))}
        if self.phase is not Phase.SHUNTED:
            out["role"] = "initiator" if self.initiator else "responder"
        if self.shunt:
            out["shunt"] = self.shunt
        return out


def host_selector(local: IPAddress, remote: IPAddress) -> TrafficSelector:
    return TrafficSelector(ipaddress.ip_network(local), ipaddress.ip_network(remote))


def _host_ts(addr: IPAddress) -> TrafficSelectorSpec:
    return TrafficSelectorSpec(str(addr), str(addr))


def instantiate(gc: GroupConn, local: IPAddress, remote: IPAddress, suffix: str = "") -> Connection:
    """The /32-/32 (or /128-/128) instance of a group conn for one peer.

    NULL authentication is set here, and only here: an instance of a NULL-auth group conn
    gets local_auth = remote_auth = "null" and allow_null; every other conn keeps allow_null
    as configured (False unless the config opted in)."""
    t = gc.template
    name = f"{t.name}#{local}-{remote}{suffix}"
    child_name = t.children[0].name if t.children else t.name
    base = t.children[0] if t.children else ChildConfig(child_name, (), ())
    child = dataclasses.replace(base, name=child_name, local_ts=(_host_ts(local),), remote_ts=(_host_ts(remote),),
                                start_action="none", reqid=0)
    conn = dataclasses.replace(t, name=name, local_addrs=(str(local),), remote_addrs=(str(remote),),
                               children=(child,))
    if gc.null_auth:
        conn = dataclasses.replace(conn, local_auth="null", remote_auth="null", allow_null=True,
                                   local_id=t.local_id if t.local_id not in ("", "%fromcert") else "%null",
                                   remote_id=t.remote_id if t.remote_id not in ("", "%fromcert") else "%null")
    return conn


def policy_changes(old: Sequence[GroupPolicy], new: Sequence[GroupPolicy]) -> list[OeAction]:
    """What turns the `old` table into the `new` one in the kernel."""
    before = {(r.spec.selector, r.spec.direction): r.spec for r in old}
    after = {(r.spec.selector, r.spec.direction): r.spec for r in new}
    out: list[OeAction] = [InstallPolicy(spec) for key, spec in after.items() if before.get(key) != spec]
    out.extend(RemovePolicy(sel, d) for (sel, d) in before if (sel, d) not in after)
    return out


IKE_PORT = 500  # RFC 7296 2: IKE_SA_INIT goes from and to UDP 500 unless a NAT rewrote the port


def keeps_initiator_role(local: IPAddress, remote: IPAddress, ours: bytes = b"", theirs: bytes = b"",
                         peer_port: int = IKE_PORT, nat_here: bool = False, nat_there: bool = False) -> bool:
    """The collision rule (see the module docstring): the side behind a NAT initiates (the peer's port
    rewritten, or the request's NAT_DETECTION hashes, RFC 7296 2.23, saying which side is behind one);
    else the lower initiator SPI keeps its initiation; with no SPIs, the lower address."""
    if peer_port != IKE_PORT or (nat_there and not nat_here):
        return False
    if nat_here and not nat_there:
        return True
    if ours and theirs and ours != theirs:
        return ours < theirs
    return int(local) < int(remote)


class Opportunistic:
    """The opportunistic table of one daemon. See docs in the module and in the report for the daemon's calls."""

    def __init__(self, conns: Iterable[GroupConn], groups: Mapping[PolicyGroup, Iterable[IPNetwork | str]],
                 local: Sequence[IPAddress], shunt_lifetime: float = DEFAULT_SHUNT_LIFETIME,
                 max_answering: int = DEFAULT_MAX_ANSWERING) -> None:
        self.conns: dict[PolicyGroup, GroupConn] = {}
        for gc in conns:
            if gc.group in self.conns:
                raise OeError(f"two conns for group {gc.group.value}")
            self.conns[gc.group] = gc
        if shunt_lifetime <= 0:
            raise OeError("shunt lifetime must be positive")
        self.local = tuple(local)
        self.shunt_lifetime = shunt_lifetime
        self.max_answering = max_answering
        self.table: list[GroupPolicy] = policy_table(groups, self.local,
                                                     {g: c.reqid for g, c in self.conns.items() if g.traps})
        self.entries: dict[tuple[IPAddress, IPAddress], Entry] = {}
        self._by_name: dict[str, tuple[IPAddress, IPAddress]] = {}
        # instances torn down while their IKE SA was still being deleted: the group policies to put back
        # once it is gone (on_down)
        self._restore: dict[str, list[PolicySpec]] = {}

    # --- the group policies ------------------------------------------------------------------------

    def install(self) -> list[OeAction]:
        """The group policies, for start-up (after kernel.flush_owned)."""
        return [InstallPolicy(row.spec) for row in self.table]

    def policy_rows(self) -> list[dict[str, object]]:
        return [row.as_dict() for row in self.table]

    def owns_reqid(self, reqid: int) -> bool:
        """Is an ACQUIRE with this reqid from a group trap (for on_acquire) rather than another conn's?"""
        return any(gc.reqid == reqid for g, gc in self.conns.items() if g.traps)

    def reload(self, groups: Mapping[PolicyGroup, Iterable[IPNetwork | str]],
               conns: Iterable[GroupConn] | None = None, local: Sequence[IPAddress] | None = None,
               now: float = 0.0) -> list[OeAction]:
        """New group files (and, when given, the new group conns and our addresses): the policy changes,
        new and changed first so no gap opens, then removals. An entry whose peer the new configuration
        no longer gives to its group (its group conn is gone, or the group files no longer cover the
        peer, or a more specific CIDR of another group now does) is torn down, as libreswan deletes a
        removed policy's instances: its IKE SA deleted (the peer is told), its per-peer policies and bare
        shunt removed, the new table's policy of the same selector put back. The other entries stay (new
        instances use the new template)."""
        if conns is not None:
            fresh: dict[PolicyGroup, GroupConn] = {}
            for gc in conns:
                if gc.group in fresh:
                    raise OeError(f"two conns for group {gc.group.value}")
                fresh[gc.group] = gc
            self.conns = fresh
        if local is not None:
            self.local = tuple(local)
        old = self.table
        self.table = policy_table(groups, self.local, {g: c.reqid for g, c in self.conns.items() if g.traps})
        out = policy_changes(old, self.table)
        for entry in list(self.entries.values()):
            now_in = matching_group(self.table, entry.local, entry.remote)
            if entry.group in self.conns and now_in is entry.group:
                continue
            where = now_in.value if now_in is not None else "no group"
            if entry.phase is not Phase.SHUNTED:
                out.append(Terminate(entry.name))
            out.extend(self._drop_entry(entry, ike_sa_going=entry.phase is not Phase.SHUNTED))
            out.append(Log("info", "oe-policy-removed", f"{entry.name}: {entry.remote} is in {where} now "
                                                        f"(was {entry.group.value}): torn down"))
        return self._with_wake(out) if out else out

    # --- events in ---------------------------------------------------------------------------------

    def on_acquire(self, acquire: Acquire, now: float) -> list[OeAction]:
        """A kernel ACQUIRE: a packet hit a group trap. The packet's addresses are the selector's."""
        return self.on_trigger(acquire.selector.src.network_address, acquire.selector.dst.network_address, now)

    def on_trigger(self, local: IPAddress, remote: IPAddress, now: float) -> list[OeAction]:
        """An ACQUIRE or `fipsike oe-initiate`: start an instance for (local, remote) unless one exists."""
        key = (local, remote)
        entry = self.entries.get(key)
        if entry is not None:
            return [Log("debug", "oe-acquire-ignored", f"{local} -> {remote}: {entry.phase.value} already")]
        group = matching_group(self.table, local, remote)
        if group is None or not group.traps:
            where = group.value if group is not None else "no group"
            return [Log("debug", "oe-acquire-ignored", f"{local} -> {remote}: {where} does not negotiate")]
        gc = self.conns[group]
        conn = instantiate(gc, local, remote)
        policies: tuple[PolicySpec, ...] = ()
        neg_action = _NEGOTIATION_ACTION.get(gc.negotiation_shunt)
        if neg_action is not None:
            policies = (self._shunt_spec(local, remote, neg_action),)
        deadline = now + 2 * conn.retransmit.total()  # IKE_SA_INIT and IKE_AUTH, each may run its full course
        self._add(Entry(local, remote, group, conn.name, Phase.NEGOTIATING, deadline, True,
                        gc.negotiation_shunt.value, policies, conn))
        out: list[OeAction] = [InstallPolicy(p) for p in policies]
        out.append(Log("info", "oe-initiate", f"{conn.name} ({group.value}, negotiation shunt "
                                              f"{gc.negotiation_shunt.value})"))
        out.append(Initiate(conn))
        return self._with_wake(out)

    def on_peer_initiated(self, local: IPAddress, remote: IPAddress, now: float, ours: bytes = b"",
                          theirs: bytes = b"", peer_port: int = IKE_PORT,
                          nat: tuple[bool, bool] = (False, False)) -> list[OeAction]:
        """An IKE_SA_INIT from `remote` to our `local` that no configured conn takes: answer it if a group
        lets this peer in (private, private-or-clear, clear-or-private). The list holds exactly one
        AcceptPeer or IgnorePeer, after any AbandonInitiation. For a collision: `ours` is our half-open
        IKE SA's initiator SPI, `theirs` the request's, `peer_port` its source port, `nat` what its
        NAT_DETECTION hashes say: (we are behind a NAT, the peer is)."""
        key = (local, remote)
        entry = self.entries.get(key)
        if entry is not None and entry.phase is Phase.NEGOTIATING and entry.initiator:
            if keeps_initiator_role(local, remote, ours, theirs, peer_port, *nat):
                return [IgnorePeer(f"collision with our initiation to {remote}: ours carries on")]
            # the answering instance gets its own name, so the engine's IkeSaFailed for the abandoned
            # initiation (same peer) cannot be mistaken for a failure of the one that carries on
            abandoned = entry.name
            conn = instantiate(self.conns[entry.group], local, remote, COLLISION_SUFFIX)
            del self._by_name[abandoned]
            entry.name, entry.connection, entry.initiator = conn.name, conn, False
            self._by_name[conn.name] = key
            why = (f"its port was rewritten ({peer_port}): it is behind a NAT" if peer_port != IKE_PORT
                   else "it is behind a NAT" if nat[1] and not nat[0]
                   else "its initiator SPI is the lower" if ours and theirs else "its address is the lower")
            return [Log("info", "oe-collision", f"{abandoned}: {remote} initiates too; {why}, so we answer "
                                                f"as {conn.name}"),
                    AbandonInitiation(abandoned), Forget(abandoned), AcceptPeer(conn)]
        if entry is not None and entry.phase is not Phase.SHUNTED:
            assert entry.connection is not None
            return [AcceptPeer(entry.connection)]  # a retransmission, or a rebooted peer starting afresh
        group = matching_group(self.table, local, remote)
        if group is None or not group.answers_ike or group not in self.conns:
            where = group.value if group is not None else "no group"
            return [IgnorePeer(f"{remote} is in {where}: no opportunistic conn answers it")]
        answering = sum(1 for e in self.entries.values() if e.phase is Phase.NEGOTIATING and not e.initiator)
        if answering >= self.max_answering:
            return [IgnorePeer(f"{answering} opportunistic answers already under way")]
        conn = instantiate(self.conns[group], local, remote)
        deadline = now + 2 * conn.retransmit.total()
        out: list[OeAction] = [Log("info", "oe-respond", f"{conn.name} ({group.value})"), AcceptPeer(conn)]
        if entry is not None:
            # a bare shunt: the peer now wants crypto, so answer it, but the shunt stays in the kernel
            # until the tunnel replaces it; a failed (or spoofed) answer leaves it as it was
            entry.resume = (entry.shunt, entry.deadline)
            entry.phase, entry.deadline, entry.initiator, entry.connection = Phase.NEGOTIATING, deadline, False, conn
            del self._by_name[entry.name]
            entry.name = conn.name
            self._by_name[conn.name] = key
            return self._with_wake(out)
        self._add(Entry(local, remote, group, conn.name, Phase.NEGOTIATING, deadline, False, "", (), conn))
        return self._with_wake(out)

    def on_established(self, name: str, now: float, ike_sa: str = "") -> list[OeAction]:
        """IkeSaEstablished or IkeSaRekeyed for an instance: up until its IKE SA lifetime (refreshed by
        every rekey). Its tunnel policies replaced any negotiation shunt (same selector). `ike_sa`: the
        engine's name of the (new) IKE SA."""
        entry = self._named(name)
        if entry is None or entry.connection is None or entry.phase is Phase.SHUNTED:
            return []
        entry.ike_sa = ike_sa or entry.ike_sa
        entry.phase = Phase.ESTABLISHED
        entry.deadline = now + entry.connection.life_time
        entry.shunt = ""
        # entry.policies (a negotiation shunt) stay listed: the tunnel's policies replaced them, but a Child SA
        # the kernel refused leaves the shunt in place, and _drop_entry must take it out then (a RemovePolicy
        # that finds the tunnel's policy already gone is fine)
        return self._with_wake([Log("info", "oe-established", f"{name} ({entry.group.value})")])

    def on_failed(self, name: str, now: float) -> list[OeAction]:
        """IkeSaFailed / ChildSaFailed for an instance being negotiated: the failure shunt. A ChildSaFailed
        after the IKE SA came up (the peer refused the IKE_AUTH's Child SA) leaves an IKE SA that carries
        nothing: the same as a Child SA the kernel refused."""
        entry = self._named(name)
        if entry is not None and entry.phase is Phase.ESTABLISHED and not entry.child_up:
            return self.on_child_refused(name, now)
        if entry is None or entry.phase is not Phase.NEGOTIATING:
            return []
        return self._with_wake(self._fail(entry, now))

    def on_child_installed(self, name: str) -> None:
        """The kernel took the instance's Child SA: now it carries traffic (and a bare shunt it was
        answering during is replaced for good: its policy has the tunnel's selector)."""
        entry = self._named(name)
        if entry is not None and entry.phase is not Phase.SHUNTED:
            entry.child_up = True
            entry.resume = None

    def on_child_refused(self, name: str, now: float) -> list[OeAction]:
        """The instance's Child SA was refused (by the kernel at install, or by the peer) before any of
        its Child SAs was up: an IKE SA with no tunnel would keep the peer's traffic on the negotiation
        shunt (or the trap) for the IKE SA's lifetime. The instance fails as a negotiation does (failure
        shunt for an initiator, none for a responder) and its IKE SA is deleted, so the next packet after
        the shunt's lifetime negotiates afresh."""
        entry = self._named(name)
        if entry is None or entry.phase is Phase.SHUNTED or entry.child_up:
            return []
        entry.phase = Phase.NEGOTIATING
        out: list[OeAction] = [Log("warning", "oe-child-refused", f"{name}: its Child SA was refused; the "
                                                                  f"instance fails and its IKE SA is deleted"),
                               Terminate(name)]
        out.extend(self._fail(entry, now))
        return self._with_wake(out)

    def on_down(self, name: str, now: float, ike_sa: str = "") -> list[OeAction]:
        """IkeSaDeleted / DeadPeer (after the engine removed the instance's SAs and policies). `ike_sa`:
        which IKE SA; one that is not the entry's (an earlier instance's of the same name, whose DELETE
        was still under way when a new one started) leaves the entry alone."""
        late = self._restore.pop(name, ())
        entry = self._named(name)
        if entry is None or entry.phase is Phase.SHUNTED or (ike_sa and entry.ike_sa != ike_sa):
            # an instance torn down before its IKE SA was gone: the engine took the Child SA's policies
            # out just now, and with them any group policy of the same selector put back in the meantime
            return [InstallPolicy(spec) for spec in late if any(r.spec == spec for r in self.table)]
        if entry.resume is not None:
            return self._with_wake(self._resume_shunt(entry))
        out = self._drop_entry(entry)
        out.append(Log("info", "oe-down", f"{name}: the trap is back for the next packet"))
        return self._with_wake(out)

    def timer(self, now: float) -> list[OeAction]:
        out: list[OeAction] = []
        for entry in [e for e in self.entries.values() if e.deadline <= now]:
            if entry.phase is Phase.NEGOTIATING:
                out.append(AbandonInitiation(entry.name))
                out.extend(self._fail(entry, now))
            elif entry.phase is Phase.SHUNTED:
                out.extend(self._drop_entry(entry))
                out.append(Log("info", "oe-shunt-expired", f"{entry.local} -> {entry.remote}: {entry.shunt} "
                                                           f"shunt expired; the next packet tries again"))
            else:
                out.append(Terminate(entry.name))
                out.extend(self._drop_entry(entry, ike_sa_going=True))
                out.append(Log("warning", "oe-expired", f"{entry.name}: IKE SA lifetime over without a rekey"))
        return self._with_wake(out)

    # --- status ------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min((e.deadline for e in self.entries.values()), default=None)

    def status(self, now: float) -> list[dict[str, object]]:
        return [e.row(now) for e in sorted(self.entries.values(), key=lambda e: (e.deadline, e.name))]

    def render_status(self, now: float) -> list[str]:
        lines = []
        for e in sorted(self.entries.values(), key=lambda e: (e.deadline, e.name)):
            left = max(0.0, e.deadline - now)
            if e.phase is Phase.SHUNTED:
                lines.append(f"bare shunt {e.local} -> {e.remote} {e.shunt} ({e.group.value}), {left:.0f}s left")
            else:
                shunt = f", shunt {e.shunt}" if e.shunt else ""
                lines.append(f"{e.name} from group {e.group.value}: {e.phase.value}"
                             f"{shunt}, {left:.0f}s left")
        return lines

    # --- internals ---------------------------------------------------------------------------------

    def _add(self, entry: Entry) -> None:
        self.entries[(entry.local, entry.remote)] = entry
        self._by_name[entry.name] = (entry.local, entry.remote)

    def _named(self, name: str) -> Entry | None:
        key = self._by_name.get(name)
        return self.entries.get(key) if key is not None else None

    def _shunt_spec(self, local: IPAddress, remote: IPAddress, action: PolicyAction) -> PolicySpec:
        sel = host_selector(local, remote)
        return PolicySpec(sel, Direction.OUT, action, None, oe_priority(sel, RANK_BARE_SHUNT))

    def _fail(self, entry: Entry, now: float) -> list[OeAction]:
        gc = self.conns[entry.group]
        out: list[OeAction] = []
        action = _FAILURE_ACTION.get(gc.failure_shunt)
        if entry.resume is not None:
            return self._resume_shunt(entry)
        if not entry.initiator:
            # a failed answer installs no shunt: IKE_SA_INIT is unauthenticated, and a spoofed one must
            # not get a peer dropped (or let out in the clear) for the shunt lifetime. Our own next
            # packet to it negotiates as initiator.
            out.extend(self._drop_entry(entry))
            out.append(Log("info", "oe-failed", f"{entry.name}: answering {entry.remote} failed"))
            return out
        if action is None:  # failureshunt=none: no bare shunt, the trap retries on the next packet
            out.extend(self._drop_entry(entry))
            out.append(Log("info", "oe-failed", f"{entry.name}: failed, no failure shunt"))
            return out
        spec = self._shunt_spec(entry.local, entry.remote, action)
        out.append(InstallPolicy(spec))  # replaces a negotiation shunt of the same selector
        if entry.name in self._by_name:
            out.append(Forget(entry.name))
        entry.phase, entry.deadline = Phase.SHUNTED, now + self.shunt_lifetime
        entry.shunt, entry.policies, entry.connection = gc.failure_shunt.value, (spec,), None
        out.append(Log("info", "oe-failure-shunt", f"{entry.local} -> {entry.remote}: {gc.failure_shunt.value} "
                                                   f"for {self.shunt_lifetime:.0f}s"))
        return out

    def _resume_shunt(self, entry: Entry) -> list[OeAction]:
        """An answer given during a bare shunt came to nothing: the shunt (still in the kernel) holds on."""
        assert entry.resume is not None
        entry.shunt, entry.deadline = entry.resume
        entry.phase, entry.initiator, entry.connection, entry.resume = Phase.SHUNTED, True, None, None
        return [Forget(entry.name), Log("info", "oe-failed", f"{entry.name}: answering {entry.remote} failed; "
                                                             f"the {entry.shunt} shunt stays")]

    def _drop_entry(self, entry: Entry, ike_sa_going: bool = False) -> list[OeAction]:
        """Remove the entry and its per-peer policies, putting back a group policy they had replaced.
        `ike_sa_going`: a Terminate for its IKE SA came first; the engine removes the Child SA's policies
        only when the DELETE is answered, so the put-back is repeated then (on_down)."""
        del self.entries[(entry.local, entry.remote)]
        out: list[OeAction] = []
        if self._by_name.pop(entry.name, None) is not None and entry.phase is not Phase.SHUNTED:
            out.append(Forget(entry.name))
        sel = host_selector(entry.local, entry.remote)
        keys = {(sel, Direction.OUT), (sel.reversed(), Direction.IN), (sel.reversed(), Direction.FWD)}
        replaced = [r.spec for r in self.table if (r.spec.selector, r.spec.direction) in keys]
        for spec in entry.policies:
            if not any(r.selector == spec.selector and r.direction is spec.direction for r in replaced):
                out.append(RemovePolicy(spec.selector, spec.direction))
        # an established instance's own policies (the engine's installer put them in and took them out)
        # had replaced these too
        out.extend(InstallPolicy(r) for r in replaced)
        if ike_sa_going and replaced:
            self._restore[entry.name] = replaced
        return out

    def _with_wake(self, actions: list[OeAction]) -> list[OeAction]:
        at = self.next_deadline()
        if at is not None:
            actions.append(WakeAt(at))
        return actions
