"""Two engines back to back in memory, with a fake clock and an injectable network.

Each datagram an engine emits goes into `net.wire` (a list); the test decides
what happens to it: deliver in order, drop, duplicate, reorder. Installed Child
SAs are recorded per side (a minimal in-memory kernel keyed by inbound SPI).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fipsike.ike.actions import (
    ArmTimer,
    ChildSaFailed,
    DeadPeer,
    DeleteChildSa,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
    InstallChildSa,
    Log,
    SendDatagram,
)
from fipsike.ike.engine import Engine
from fipsike.ike.message import Message


@dataclass
class Side:
    name: str
    engine: Engine
    ip: str
    kernel: dict[int, InstallChildSa] = field(default_factory=dict)  # inbound SPI -> install
    events: list[Any] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    timers: list[float] = field(default_factory=list)

    def established(self) -> list[IkeSaEstablished]:
        return [e for e in self.events if isinstance(e, IkeSaEstablished)]

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def ike_sas(self) -> list[Any]:
        return self.engine.ike_sas()

    def the_ike_sa(self) -> Any:
        sas = [s for s in self.engine.ike_sas() if s.state.value == "established"]
        assert len(sas) == 1, [(s.name, s.state) for s in self.engine.ike_sas()]
        return sas[0]


@dataclass
class Packet:
    data: bytes
    src: tuple[str, int]
    dst: tuple[str, int]

    @property
    def msg(self) -> Message:
        return Message.parse(self.data)

    def __repr__(self) -> str:
        m = self.msg
        return (f"<{self.src[0]}->{self.dst[0]} {getattr(m.exchange, 'name', m.exchange)} "
                f"{'resp' if m.response else 'req'} id={m.message_id} {len(self.data)}B>")


class Net:
    def __init__(self, a: Side, b: Side) -> None:
        self.sides = {a.ip: a, b.ip: b}
        self.a, self.b = a, b
        self.wire: list[Packet] = []
        self.now = 0.0
        self.delivered: list[Packet] = []
        # when set, receive() gets wall = wall_base + now (the driver's wall clock, RFC 5280 validity)
        self.wall_base: datetime | None = None

    def side(self, ip: str) -> Side:
        return self.sides[ip]

    def take(self, side: Side, actions: list[Any], after_timer: bool = False) -> None:
        # the timer the engine asks for is never later than its earliest real deadline (a full scan),
        # and after a timer call nothing is left overdue
        arms = [a.at for a in actions if isinstance(a, ArmTimer)]
        true = side.engine.next_deadline()
        if true is not None:  # (with nothing due, a stale heap entry may still ask for a spurious call)
            assert arms and arms[-1] <= true, (arms, true)
            if after_timer:
                assert true > self.now, (true, self.now)
        for act in actions:
            if isinstance(act, SendDatagram):
                self.wire.append(Packet(act.data, act.src, act.dst))
            elif isinstance(act, InstallChildSa):
                assert act.inbound.spi not in side.kernel
                side.kernel[act.inbound.spi] = act
                side.events.append(act)
            elif isinstance(act, DeleteChildSa):
                side.kernel.pop(act.inbound_spi, None)
                side.events.append(act)
            elif isinstance(act, ArmTimer):
                side.timers.append(act.at)
            elif isinstance(act, Log):
                side.logs.append(act)
            else:
                side.events.append(act)

    # --- driving --------------------------------------------------------------
    def initiate(self, side: Side, conn: str, child: str | None = None) -> None:
        self.take(side, side.engine.initiate(conn, self.now, child))

    def deliver(self, pkt: Packet) -> None:
        side = self.side(pkt.dst[0])
        self.delivered.append(pkt)
        wall = self.wall_base + timedelta(seconds=self.now) if self.wall_base is not None else None
        self.take(side, side.engine.receive(pkt.data, pkt.src, pkt.dst, self.now, wall=wall))

    def step(self, index: int = 0) -> Packet:
        pkt = self.wire.pop(index)
        self.deliver(pkt)
        return pkt

    def step_message(self) -> list[Packet]:
        """Deliver the first message on the wire with all its RFC 7383 fragments."""
        first = self.wire[0]
        m = first.msg
        same = [p for p in self.wire if p.src == first.src and p.msg.message_id == m.message_id
                and p.msg.response == m.response and p.msg.exchange == m.exchange]
        for p in same:
            self.wire.remove(p)
            self.deliver(p)
        return same

    def drop(self, index: int = 0) -> Packet:
        return self.wire.pop(index)

    def run(self, limit: int = 200, filt: Callable[[Packet], bool] | None = None) -> int:
        """Deliver everything in order until the wire is quiet (filt False = drop)."""
        n = 0
        while self.wire:
            pkt = self.wire.pop(0)
            if filt is None or filt(pkt):
                self.deliver(pkt)
            n += 1
            assert n < limit, "message storm"
        return n

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for side in (self.a, self.b):
            self.take(side, side.engine.timer(self.now), after_timer=True)

    def settle(self, seconds: float, step: float = 1.0) -> None:
        """Let time pass in steps, delivering everything in between."""
        t = 0.0
        while t < seconds:
            self.advance(step)
            self.run()
            t += step


__all__ = ["ChildSaFailed", "DeadPeer", "IkeSaDeleted", "IkeSaFailed", "IkeSaRekeyed", "Net", "Packet", "Side"]
