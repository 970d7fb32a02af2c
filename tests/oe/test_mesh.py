"""The issue's mesh, in memory: 8 nodes, each with private-or-clear 0.0.0.0/0 and a /32 in clear for
its next neighbour, one node without fipsike. Real engines (NULL authentication), MemoryKernel for the
SPD (trap -> ACQUIRE, pass, drop, protected), a fake clock. Every node pings every other at the same
instant, so every pair's ACQUIREs collide.

Node is the daemon's glue in miniature (see fipsike/oe/__init__.py for the contract).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from fipsike.ike.actions import (
    DeadPeer,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
    InstallChildSa,
    SendDatagram,
)
from fipsike.ike.engine import Engine
from fipsike.ike.message import Message
from fipsike.ike.registry import ExchangeType
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import (
    Acquire,
    Direction,
    IPAddress,
    Mode,
    PolicyAction,
    PolicySpec,
    SaSpec,
    Template,
    TrafficSelector,
)
from fipsike.oe.actions import AbandonInitiation, AcceptPeer, Forget, IgnorePeer, Initiate, OeAction, Terminate, WakeAt
from fipsike.oe.groups import PolicyGroup
from fipsike.oe.kernel_side import apply_policies
from fipsike.oe.opportunistic import Opportunistic
from providers import Integrity, open_router
from tests.oe.test_opportunistic import conns

Wire = list[tuple[bytes, tuple[str, int], tuple[str, int]]]
N = 8


@dataclass
class Node:
    ip: IPAddress
    wire: Wire
    oe: Opportunistic | None  # None: a host without fipsike (no policies, no IKE)
    kernel: MemoryKernel = field(default_factory=MemoryKernel)
    engine: Engine = field(default_factory=lambda: Engine(open_router("fips")))
    wake: float | None = None

    def __post_init__(self) -> None:
        if self.oe is not None:
            self.do(self.oe.install(), 0.0)

    def do(self, actions: list[OeAction], now: float) -> None:
        rest, errors = apply_policies(self.kernel, actions)
        assert errors == []
        for act in rest:
            if isinstance(act, Initiate):
                self.engine.add_connection(act.connection)
                self.engine_did(self.engine.initiate(act.connection.name, now), now)
            elif isinstance(act, AcceptPeer):
                self.engine.add_connection(act.connection)
            elif isinstance(act, AbandonInitiation | Terminate):
                self.engine_did(self.engine.terminate(act.name, now), now)
            elif isinstance(act, Forget):
                self.engine.remove_connection(act.name)
            elif isinstance(act, WakeAt):
                self.wake = act.at

    def engine_did(self, actions: list[Any], now: float) -> None:
        assert self.oe is not None
        for act in actions:
            if isinstance(act, SendDatagram):
                self.wire.append((act.data, act.src, act.dst))
            elif isinstance(act, IkeSaEstablished | IkeSaRekeyed):
                self.do(self.oe.on_established(act.connection, now), now)
            elif isinstance(act, IkeSaFailed):
                self.do(self.oe.on_failed(act.connection, now), now)
            elif isinstance(act, IkeSaDeleted | DeadPeer):
                self.do(self.oe.on_down(act.connection, now), now)
            elif isinstance(act, InstallChildSa):
                self.install_tunnel(act)

    def install_tunnel(self, a: InstallChildSa) -> None:
        """What the daemon's installer does with a Child SA (outbound half is enough here)."""
        out = a.outbound
        src, dst = ipaddress.ip_address(out.src), ipaddress.ip_address(out.dst)
        self.kernel.install_sa(SaSpec(src, dst, out.spi, a.reqid, Mode.TUNNEL, out.encr, out.encr_key,
                                      out.integ or Integrity.NONE, out.integ_key))
        self.kernel.install_policy(PolicySpec(TrafficSelector.host_to_host(src, dst), Direction.OUT,
                                              PolicyAction.IPSEC, Template(src, dst, a.reqid)))

    def receive(self, data: bytes, src: tuple[str, int], dst: tuple[str, int], now: float) -> None:
        if self.oe is None:
            return  # no IKE daemon here
        msg = Message.parse(data)
        if msg.exchange == ExchangeType.IKE_SA_INIT and not msg.response:
            acts = self.oe.on_peer_initiated(self.ip, ipaddress.ip_address(src[0]), now)
            self.do(acts, now)
            if any(isinstance(x, IgnorePeer) for x in acts):
                return
        self.engine_did(self.engine.receive(data, src, dst, now), now)

    def send(self, dst: IPAddress, now: float) -> str:
        """One packet to `dst`: what the SPD does with it; ACQUIREs go to the opportunistic core."""
        verdict = self.kernel.send_packet(self.ip, dst)
        for ev in self.kernel.read_events():
            if isinstance(ev, Acquire) and self.oe is not None and self.oe.owns_reqid(ev.reqid):
                self.do(self.oe.on_acquire(ev, now), now)
        return verdict

    def tick(self, now: float) -> None:
        if self.oe is None:
            return
        self.engine_did(self.engine.timer(now), now)
        self.do(self.oe.timer(now), now)

    def ike_peers(self) -> list[str]:
        return sorted(s.remote[0] for s in self.engine.ike_sas() if s.state.value == "established")


def build() -> dict[str, Node]:
    wire: Wire = []
    nodes: dict[str, Node] = {}
    for i in range(1, N + 1):
        ip = ipaddress.ip_address(f"192.0.2.{i}")
        if i == N:
            nodes[str(ip)] = Node(ip, wire, None)
            continue
        neighbour = f"192.0.2.{i % (N - 1) + 1}/32"  # 1 -> 2, ..., 7 -> 1: a ring of clear neighbours
        groups = {PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.CLEAR: [neighbour]}
        nodes[str(ip)] = Node(ip, wire, Opportunistic(conns(), groups, [ip]))
    return nodes


def settle(nodes: dict[str, Node], now: float) -> None:
    wire = next(iter(nodes.values())).wire
    n = 0
    while wire:
        data, src, dst = wire.pop(0)
        nodes[dst[0]].receive(data, src, dst, now)
        n += 1
        assert n < 5000, "message storm"


def test_mesh_every_pair_ends_with_one_ike_sa_clear_neighbours_and_plain_hosts_in_the_clear() -> None:
    nodes = build()
    ips = list(nodes)
    first = {(x, y): nodes[x].send(ipaddress.ip_address(y), 0.0) for x in ips for y in ips if x != y}
    settle(nodes, 0.0)
    now = 0.0

    def negotiating() -> int:
        return sum(r["state"] == "negotiating" for n in nodes.values() if n.oe for r in n.oe.status(now))

    assert negotiating() > 0
    while negotiating() and now < 400.0:  # till the engines give up on peers that never answer
        now += 5.0
        for node in nodes.values():
            node.tick(now)
        settle(nodes, now)
    second = {(x, y): nodes[x].send(ipaddress.ip_address(y), now) for x, y in first}
    plain = ips[-1]

    def clear_pair(x: str, y: str) -> bool:
        i, j = (int(a.rsplit(".", 1)[1]) for a in (x, y))
        return plain in (x, y) or j == i % (N - 1) + 1 or i == j % (N - 1) + 1

    for (x, y), verdict in second.items():
        if clear_pair(x, y):
            assert verdict == "clear", (x, y, verdict)
        else:
            assert verdict == "protected", (x, y, verdict)
            assert first[(x, y)] == "acquire"
    for x in ips[:-1]:
        peers = nodes[x].ike_peers()
        assert len(peers) == len(set(peers)), (x, peers)  # never two IKE SAs with one peer
        assert set(peers) == {y for y in ips if y != x and not clear_pair(x, y)}, (x, peers)
    # ACQUIREs crossed for every pair: the lower address initiated each surviving IKE SA
    for x in ips[:-1]:
        for sa in [s for s in nodes[x].engine.ike_sas() if s.state.value == "established"]:
            lower = int(ipaddress.ip_address(x)) < int(ipaddress.ip_address(sa.remote[0]))
            assert sa.initiator == lower
    # the host without fipsike is reached in the clear after the failure shunt (passthrough)
    status = nodes[ips[0]].oe.status(now)  # type: ignore[union-attr]
    assert any(r["kind"] == "bare-shunt" and r["remote"] == plain and r["shunt"] == "passthrough" for r in status)


def test_cloud_mesh_private_with_certificates_a_foreign_ca_is_never_reached_and_nothing_leaks() -> None:
    """The seed's `conn private`: certificates, rightid=%fromcert, rightca=%same, failureshunt=drop,
    negotiationshunt=hold, 192.0.2.0/24 in private. Node 3's certificate is from another CA."""
    from datetime import UTC, datetime

    from certs.testpki import P256, TestPki
    from fipsike.ike.config import ChildConfig, Connection
    from fipsike.oe.opportunistic import FailureShunt, GroupConn, NegotiationShunt
    from tests.oe.test_opportunistic import REQ_PRIV

    pki = TestPki(open_router("fips"), datetime.now(UTC))
    ca, other = pki.root("Cloud CA", P256), pki.root("Other CA", P256)
    wire: Wire = []
    nodes: dict[str, Node] = {}
    for i, issuer in ((1, ca), (2, ca), (3, other)):
        ip = ipaddress.ip_address(f"192.0.2.{i}")
        me = pki.end_entity(f"node{i}.example.com", issuer, P256, sans=(f"DNS:node{i}.example.com",))
        template = Connection(name="private", local_addrs=("%defaultroute",), remote_addrs=("%opportunisticgroup",),
                              local_id="%fromcert", remote_id="%fromcert", private_key=me.key,
                              certificate=me.cert, trust_anchors=(issuer.cert,),  # rightca=%same
                              children=(ChildConfig("private", (), ()),))
        gc = GroupConn(PolicyGroup.PRIVATE, template, REQ_PRIV, FailureShunt.DROP, NegotiationShunt.HOLD)
        nodes[str(ip)] = Node(ip, wire, Opportunistic([gc], {PolicyGroup.PRIVATE: ["192.0.2.0/24"]}, [ip]))
    one, two, three = (ipaddress.ip_address(f"192.0.2.{i}") for i in (1, 2, 3))
    verdicts: dict[tuple[IPAddress, IPAddress], list[str]] = {}
    now = 0.0
    for step in range(40):
        for a, b in ((one, two), (one, three), (three, one)):
            verdicts.setdefault((a, b), []).append(nodes[str(a)].send(b, now))
        settle(nodes, now)
        now += 5.0
        for node in nodes.values():
            node.tick(now)
        settle(nodes, now)
        if step > 3 and not any(r["state"] == "negotiating" for n in nodes.values() if n.oe
                                for r in n.oe.status(now)):
            break
    assert verdicts[(one, two)][0] == "acquire" and verdicts[(one, two)][-1] == "protected"
    assert nodes[str(one)].ike_peers() == [str(two)]
    assert nodes[str(three)].ike_peers() == []
    for pair in ((one, three), (three, one)):
        seen = verdicts[pair]
        assert "clear" not in seen and "protected" not in seen, (pair, seen)  # never reached, never leaked
        assert seen[-1] == "dropped", (pair, seen)  # the failure shunt
    rows = nodes[str(one)].oe.status(now)  # type: ignore[union-attr]
    assert any(r["kind"] == "bare-shunt" and r["remote"] == str(three) and r["shunt"] == "drop" for r in rows)
