"""An in-memory kernel with the XFRM backend's behaviour, for engine and daemon tests.

It records what would be installed, answers with the same KernelError names
as the kernel (EEXIST, ENOENT, EPERM), keeps larval SAs from alloc_spi, counts
simulated traffic against each SA's lifetime (soft EXPIRE once, hard EXPIRE
removes the SA, as the kernel does), and raises ACQUIRE for a packet that hits
a trap or IPsec policy with no SA. It never releases key bytes: a recorded SA
shows its keys as lengths only.
"""

from __future__ import annotations

import itertools
import select
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from fipsike.kernel.algorithms import kernel_cipher, kernel_integrity
from fipsike.kernel.api import default_priority
from fipsike.kernel.types import (
    IPPROTO_ESP,
    Acquire,
    AlgorithmState,
    CleanupReport,
    Direction,
    Expire,
    IPAddress,
    KernelError,
    KernelEvent,
    KeyDigest,
    Lifetime,
    Mode,
    Ownership,
    PolicyAction,
    PolicyChanged,
    PolicySpec,
    PolicyState,
    SaSpec,
    SaState,
    Shunt,
    Template,
    TrafficSelector,
)

_RANK = {PolicyAction.IPSEC: 0, PolicyAction.HOLD: 1, PolicyAction.PASS: 2, PolicyAction.DROP: 3,
         PolicyAction.TRAP: 4}


@dataclass
class _Sa:
    state: SaState
    spec: SaSpec | None
    soft_fired: bool = False


@dataclass
class MemoryKernel:
    """The Kernel interface, in memory. `spi_source` makes allocated SPIs deterministic."""

    ownership: Ownership = field(default_factory=Ownership)
    spi_source: Callable[[], int] | None = None
    sas: dict[tuple[IPAddress, int, int], _Sa] = field(default_factory=dict)
    policies: dict[tuple[TrafficSelector, Direction], PolicyState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._events: list[KernelEvent] = []
        self._index = itertools.count(1)
        self._acq_seq = itertools.count(1)
        counter = itertools.count(0x1000)
        self._next_spi = self.spi_source or (lambda: next(counter))
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)

    # --- helpers -------------------------------------------------------------------------------------

    def _check_reqid(self, reqid: int, what: str) -> None:
        if not self.ownership.owns_reqid(reqid):
            raise KernelError(what, "EPERM", f"reqid {reqid:#x} outside fipsike's range")

    def _emit(self, event: KernelEvent) -> None:
        self._events.append(event)
        self._w.send(b"!")

    @property
    def _mark(self) -> tuple[int, int]:
        return (0, self.ownership.mark_mask)

    # --- SAD -----------------------------------------------------------------------------------------

    def alloc_spi(self, src: IPAddress, dst: IPAddress, reqid: int, mode: Mode = Mode.TUNNEL,
                  spi_min: int = 0x100, spi_max: int = 0xFFFF_FFFF) -> int:
        self._check_reqid(reqid, "ALLOCSPI")
        for _ in range(1000):
            spi = self._next_spi()
            if spi_min <= spi <= spi_max and (dst, spi, IPPROTO_ESP) not in self.sas:
                break
        else:
            raise KernelError("ALLOCSPI", "ENOENT", "no free SPI in range")
        self.sas[(dst, spi, IPPROTO_ESP)] = _Sa(SaState(
            src, dst, spi, IPPROTO_ESP, reqid, mode, None, (), 0, False, None, Lifetime(hard_seconds=30),
            0, 0, 0, self._mark, larval=True), None)
        return spi

    def install_sa(self, spec: SaSpec) -> None:
        self._check_reqid(spec.reqid, "install SA")
        key = (spec.dst, spec.spi, IPPROTO_ESP)
        existing = self.sas.get(key)
        if existing is not None and not existing.state.larval:
            raise KernelError("NEWSA", "EEXIST", f"spi {spec.spi:#x} {spec.src} -> {spec.dst}")
        cipher = kernel_cipher(spec.encryption)
        algs = []
        if cipher.aead:
            algs.append(AlgorithmState("aead", cipher.name, KeyDigest(len(spec.encryption_key), None),
                                       cipher.icv_bits))
        else:
            if spec.integrity_key is not None:
                name, trunc = kernel_integrity(spec.integrity)
                algs.append(AlgorithmState("auth-trunc", name, KeyDigest(len(spec.integrity_key), None), trunc))
            algs.append(AlgorithmState("enc", cipher.name, KeyDigest(len(spec.encryption_key), None)))
        self.sas[key] = _Sa(SaState(
            spec.src, spec.dst, spec.spi, IPPROTO_ESP, spec.reqid, spec.mode, spec.selector, tuple(algs),
            spec.replay_window, spec.esn, spec.encap, spec.lifetime, 0, 0, 0, self._mark), spec)

    def delete_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> None:
        if self.sas.pop((dst, spi, proto), None) is None:
            raise KernelError("DELSA", "ESRCH", f"spi {spi:#x} dst {dst}")

    def get_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> SaState:
        sa = self.sas.get((dst, spi, proto))
        if sa is None:
            raise KernelError("GETSA", "ESRCH", f"spi {spi:#x} dst {dst}")
        return sa.state

    def list_sas(self, owned_only: bool = True) -> list[SaState]:
        return [sa.state for sa in self.sas.values()]

    # --- SPD -----------------------------------------------------------------------------------------

    def install_policy(self, spec: PolicySpec, replace: bool = True) -> None:
        if spec.template is not None:
            self._check_reqid(spec.template.reqid, "install policy")
        old = self.policies.get((spec.selector, spec.direction))
        if old is not None and not replace:
            raise KernelError("NEWPOLICY", "EEXIST", f"{spec.selector} dir {spec.direction.name.lower()}")
        index = old.index if old is not None else next(self._index) * 8 + int(spec.direction)
        priority = spec.priority if spec.priority is not None else default_priority(spec.selector,
                                                                                     _RANK[spec.action])
        action = PolicyAction.DROP if spec.action is PolicyAction.HOLD else spec.action
        action = PolicyAction.IPSEC if action is PolicyAction.TRAP else action
        templates = (spec.template,) if spec.template is not None else ()
        self.policies[(spec.selector, spec.direction)] = PolicyState(
            spec.selector, spec.direction, action, priority, index, templates, self._mark)
        self._emit(PolicyChanged("update", spec.selector, spec.direction, index, True))

    def get_policy(self, selector: TrafficSelector, direction: Direction) -> PolicyState:
        pol = self.policies.get((selector, direction))
        if pol is None:
            raise KernelError("GETPOLICY", "ENOENT", f"{selector} dir {direction.name.lower()}")
        return pol

    def remove_policy(self, selector: TrafficSelector, direction: Direction) -> None:
        old = self.policies.pop((selector, direction), None)
        if old is None:
            raise KernelError("DELPOLICY", "ENOENT")
        self._emit(PolicyChanged("delete", selector, direction, old.index, True))

    def list_policies(self, owned_only: bool = True) -> list[PolicyState]:
        return list(self.policies.values())

    def install_shunt(self, selector: TrafficSelector, shunt: Shunt, template: Template | None = None,
                      directions: Sequence[Direction] = (Direction.OUT,), priority: int | None = None) -> None:
        action = PolicyAction.of_shunt(shunt)
        for direction in directions:
            self.install_policy(PolicySpec(selector if direction == Direction.OUT else selector.reversed(),
                                           direction, action, template if action is PolicyAction.TRAP else None,
                                           priority))

    # --- simulated traffic and events ----------------------------------------------------------------

    def _lookup(self, src: IPAddress, dst: IPAddress, proto: int) -> PolicyState | None:
        best: PolicyState | None = None
        for pol in self.policies.values():
            sel = pol.selector
            if pol.direction != Direction.OUT or sel.version != src.version:
                continue
            if src in sel.src and dst in sel.dst and sel.proto in (0, proto):
                if best is None or pol.priority < best.priority:
                    best = pol
        return best

    def send_packet(self, src: IPAddress, dst: IPAddress, proto: int = 1) -> str:
        """An outbound packet: 'clear', 'dropped', 'acquire' (no SA yet) or 'protected'."""
        pol = self._lookup(src, dst, proto)
        if pol is None or pol.action is PolicyAction.PASS:
            return "clear"
        if pol.action is PolicyAction.DROP:
            return "dropped"
        t = pol.templates[0]
        for sa in self.sas.values():
            if sa.state.reqid == t.reqid and not sa.state.larval and (t.dst is None or sa.state.dst == t.dst):
                return "protected"
        self._emit(Acquire(TrafficSelector.host_to_host(src, dst, pol.selector.proto), t.src or src,
                           t.dst or dst, t.reqid, Direction.OUT, pol.index, next(self._acq_seq)))
        return "acquire"

    def count_traffic(self, dst: IPAddress, spi: int, nbytes: int, packets: int = 1) -> None:
        """Charge traffic to an SA: soft EXPIRE once at a soft limit, hard EXPIRE + removal at a hard one."""
        key = (dst, spi, IPPROTO_ESP)
        sa = self.sas.get(key)
        if sa is None:
            raise KernelError("count traffic", "ESRCH", f"spi {spi:#x}")
        st = replace(sa.state, bytes=sa.state.bytes + nbytes, packets=sa.state.packets + packets)
        sa.state = st
        lt = st.lifetime

        def over(value: int, limit: int | None) -> bool:
            return limit is not None and value >= limit

        if over(st.bytes, lt.hard_bytes) or over(st.packets, lt.hard_packets):
            self.expire(dst, spi, hard=True)
        elif not sa.soft_fired and (over(st.bytes, lt.soft_bytes) or over(st.packets, lt.soft_packets)):
            self.expire(dst, spi, hard=False)

    def expire(self, dst: IPAddress, spi: int, hard: bool) -> None:
        key = (dst, spi, IPPROTO_ESP)
        sa = self.sas[key]
        st = sa.state
        self._emit(Expire(st.src, st.dst, st.spi, st.proto, st.reqid, hard, st.bytes, st.packets))
        if hard:
            del self.sas[key]
        else:
            sa.soft_fired = True

    def fileno(self) -> int:
        return self._r.fileno()

    def read_events(self, timeout: float | None = 0.0) -> list[KernelEvent]:
        if not self._events and timeout:
            select.select([self._r], [], [], timeout)
        try:
            while self._r.recv(4096):
                pass
        except BlockingIOError:
            pass
        out, self._events = self._events, []
        return out

    def flush_owned(self) -> CleanupReport:
        report = CleanupReport(len(self.sas), len(self.policies))
        self.sas.clear()
        self.policies.clear()
        return report

    def close(self) -> None:
        self._r.close()
        self._w.close()
