"""The opportunistic core driving two real engines (NULL authentication, fake clock, in-memory wire).

`Node` is the daemon's side of the contract in miniature: kernel ACQUIREs and IKE_SA_INIT requests from
unknown peers go to Opportunistic, its actions become engine calls, and the engine's outcomes go back.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed, InstallChildSa, SendDatagram
from fipsike.ike.engine import Engine
from fipsike.ike.message import Message
from fipsike.ike.registry import ExchangeType
from fipsike.kernel.types import IPAddress
from fipsike.oe.actions import (
    AbandonInitiation,
    AcceptPeer,
    Forget,
    IgnorePeer,
    Initiate,
    InstallPolicy,
    OeAction,
    RemovePolicy,
)
from fipsike.oe.groups import PolicyGroup
from fipsike.oe.opportunistic import Opportunistic
from providers import open_router
from tests.oe.test_opportunistic import acquire, conns

Wire = list[tuple[bytes, tuple[str, int], tuple[str, int]]]


@dataclass
class Node:
    ip: IPAddress
    oe: Opportunistic
    engine: Engine
    wire: Wire
    policies: list[Any] = field(default_factory=list)
    established: list[IkeSaEstablished] = field(default_factory=list)
    children: list[InstallChildSa] = field(default_factory=list)
    ignored: int = 0

    def carry_out(self, actions: list[OeAction], now: float) -> None:
        for act in actions:
            if isinstance(act, Initiate):
                self.engine.add_connection(act.connection)
                self.engine_actions(self.engine.initiate(act.connection.name, now), now)
            elif isinstance(act, AcceptPeer):
                self.engine.add_connection(act.connection)
            elif isinstance(act, AbandonInitiation):
                self.engine_actions(self.engine.terminate(act.name, now), now)
            elif isinstance(act, Forget):
                self.engine.remove_connection(act.name)
            elif isinstance(act, InstallPolicy | RemovePolicy):
                self.policies.append(act)
            elif isinstance(act, IgnorePeer):
                self.ignored += 1

    def engine_actions(self, actions: list[Any], now: float) -> None:
        for act in actions:
            if isinstance(act, SendDatagram):
                self.wire.append((act.data, act.src, act.dst))
            elif isinstance(act, IkeSaEstablished):
                self.established.append(act)
                self.carry_out(self.oe.on_established(act.connection, now), now)
            elif isinstance(act, IkeSaFailed):
                self.carry_out(self.oe.on_failed(act.connection, now), now)
            elif isinstance(act, InstallChildSa):
                self.children.append(act)

    def receive(self, data: bytes, src: tuple[str, int], dst: tuple[str, int], now: float) -> None:
        msg = Message.parse(data)
        if msg.exchange == ExchangeType.IKE_SA_INIT and not msg.response:
            acts = self.oe.on_peer_initiated(self.ip, ipaddress.ip_address(src[0]), now)
            self.carry_out(acts, now)
            if any(isinstance(a, IgnorePeer) for a in acts):
                return
        self.engine_actions(self.engine.receive(data, src, dst, now), now)


def mesh(a_ip: str, b_ip: str, group: PolicyGroup = PolicyGroup.PRIVATE_OR_CLEAR) -> tuple[Node, Node, Wire]:
    wire: Wire = []
    nodes = []
    for ip in (a_ip, b_ip):
        addr = ipaddress.ip_address(ip)
        oe = Opportunistic(conns(), {group: ["192.0.2.0/24"]}, [addr])
        nodes.append(Node(addr, oe, Engine(open_router("fips")), wire))
    return nodes[0], nodes[1], wire


def run(a: Node, b: Node, wire: Wire, now: float = 1.0) -> None:
    by_ip = {str(a.ip): a, str(b.ip): b}
    n = 0
    while wire:
        data, src, dst = wire.pop(0)
        by_ip[dst[0]].receive(data, src, dst, now)
        n += 1
        assert n < 50, "message storm"


def test_first_packet_brings_up_a_null_authenticated_instance_on_both_sides() -> None:
    a, b, wire = mesh("192.0.2.1", "192.0.2.2")
    a.carry_out(a.oe.on_acquire(acquire(a.ip, b.ip), 0.0), 0.0)
    run(a, b, wire)
    assert len(a.established) == len(b.established) == 1
    assert a.established[0].initiator and not b.established[0].initiator
    assert len(a.children) == len(b.children) == 1
    ts = a.children[0]
    assert [(t.start, t.end) for t in ts.local_ts] == [("192.0.2.1", "192.0.2.1")]
    assert [(t.start, t.end) for t in ts.remote_ts] == [("192.0.2.2", "192.0.2.2")]
    assert [r["state"] for r in a.oe.status(1.0)] == [r["state"] for r in b.oe.status(1.0)] == ["established"]
    assert b.oe.status(1.0)[0]["role"] == "responder"


def test_simultaneous_acquires_through_real_engines_end_with_one_ike_sa() -> None:
    for first, second in (("192.0.2.1", "192.0.2.2"), ("192.0.2.2", "192.0.2.1")):
        a, b, wire = mesh(first, second)
        a.carry_out(a.oe.on_acquire(acquire(a.ip, b.ip), 0.0), 0.0)
        b.carry_out(b.oe.on_acquire(acquire(b.ip, a.ip), 0.0), 0.0)
        assert len(wire) == 2  # both IKE_SA_INIT requests are on the wire, crossing
        run(a, b, wire)
        assert len(a.established) == len(b.established) == 1
        lower = a if int(a.ip) < int(b.ip) else b
        assert lower.established[0].initiator
        ike_a = [s for s in a.engine.ike_sas() if s.state.value == "established"]
        ike_b = [s for s in b.engine.ike_sas() if s.state.value == "established"]
        assert len(ike_a) == len(ike_b) == 1 and ike_a[0].name == ike_b[0].name
        assert all(r["kind"] == "instance" and r["state"] == "established"
                   for r in a.oe.status(1.0) + b.oe.status(1.0))


def test_a_peer_in_clear_is_never_answered() -> None:
    a, b, wire = mesh("192.0.2.1", "192.0.2.2")
    b.oe = Opportunistic(conns(), {PolicyGroup.CLEAR: ["192.0.2.0/24"]}, [b.ip])
    a.carry_out(a.oe.on_acquire(acquire(a.ip, b.ip), 0.0), 0.0)
    run(a, b, wire)
    assert b.ignored == 1 and not a.established and not b.established and not b.engine.ike_sas()
