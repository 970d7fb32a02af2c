"""fipsike.daemon.opportunistic in process: two real Daemons (real engines, MemoryKernel, the IKE wire
in memory) reading the seed's `conn private-or-clear` from ipsec.conf, and the loader's errors."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks.mesh import SEED_PRIVATE_OR_CLEAR
from compliance.modes import FipsMode
from fipsike.commands.opportunistic import render_outcome, render_status
from fipsike.config.hosts import StaticHost
from fipsike.daemon.config_seam import ConfigError, ConfigPaths, ConnEntry, DaemonConfig, with_reqids
from fipsike.daemon.control import RequestError
from fipsike.daemon.eventlog import EventLog
from fipsike.daemon.ipsecconf import IpsecConfLoader
from fipsike.daemon.opportunistic import OeConfig, is_ike_sa_init_request, load_oe
from fipsike.daemon.runtime import Daemon, Options, ReqidBook
from fipsike.daemon.udp import Datagram
from fipsike.ike.config import Connection
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import Direction, KernelError, PolicyAction, SaSpec
from fipsike.oe.groups import PolicyGroup
from fipsike.oe.opportunistic import FailureShunt, NegotiationShunt
from providers import open_router
from tests.daemon.test_runtime import FakeSockets

A, B = "10.9.0.1", "10.9.0.2"


def write(d: Path, local: str, conf: str = SEED_PRIVATE_OR_CLEAR,
          groups: dict[str, str] | None = None) -> ConfigPaths:
    d.mkdir(parents=True, exist_ok=True)
    (d / "ipsec.conf").write_text(conf.replace("left=%defaultroute", f"left={local}"))
    (d / "policies").mkdir(exist_ok=True)
    for g, text in (groups or {"private-or-clear": "0.0.0.0/0\n"}).items():
        (d / "policies" / g).write_text(text)
    return ConfigPaths(d / "ipsec.conf", d / "secrets", d)


class Pair:
    def __init__(self, tmp: Path, fips: str = "default", **groups: dict[str, str]) -> None:
        self.out = {A: io.StringIO(), B: io.StringIO()}
        self.d: dict[str, Daemon] = {}
        self.kernels: dict[str, MemoryKernel] = {}
        for ip in (A, B):
            paths = write(tmp / ip, ip, groups=groups.get(ip))
            self.kernels[ip] = MemoryKernel()
            router, reqids = open_router(fips), ReqidBook()
            loader = IpsecConfLoader(FipsMode.OFF if fips == "default" else FipsMode.POLICY,
                                     host=StaticHost(frozenset({ip})))
            # as `fipsike daemon` does: the loader's config (with its parse) is the daemon's and the bridge's
            self.d[ip] = Daemon(router, self.kernels[ip], FakeSockets(), with_reqids(loader(paths, router), reqids),
                                Options(paths, tmp / ip / "ctl", "memory"), EventLog(self.out[ip]),
                                reqids=reqids, loader=loader)

    def start(self) -> None:
        for d in self.d.values():
            d.oe.start()

    def ping(self, src: str, dst: str) -> str:
        verdict = self.kernels[src].send_packet(ipaddress.ip_address(src), ipaddress.ip_address(dst))
        self.d[src]._on_kernel()
        return verdict

    def wire(self) -> int:
        """Deliver datagrams until both are quiet, as Daemon._on_datagram does; how many."""
        n = 0
        while True:
            moved = False
            for d in self.d.values():
                sent = d.sockets.sent  # type: ignore[attr-defined]
                while sent:
                    data, src, dst = sent.pop(0)
                    to = self.d[dst[0]]
                    dgram = Datagram(data, src, (dst[0], dst[1]))
                    if not to.oe.screen(dgram):
                        to.carry(to.engine.receive(data, src, dgram.dst, to.clock()))
                    moved, n = True, n + 1
            if not moved:
                return n

    def up(self, ip: str) -> list[Any]:
        return [s for s in self.d[ip].engine.ike_sas() if s.state.value == "established"]


def run(go: Any, p: Pair) -> None:
    """The Daemons are made outside the loop, as `fipsike daemon` makes its Daemon."""
    asyncio.run(go(p))


def test_first_packet_brings_up_one_null_instance_with_status_and_kernel_policies(tmp_path: Path) -> None:
    p = Pair(tmp_path)

    async def go(p: Pair) -> None:
        p.start()
        k = p.kernels[A]
        (trap,) = k.policies.values()  # the group's trap: a template, no SA yet
        assert str(trap.selector.dst) == "0.0.0.0/0" and trap.direction is Direction.OUT
        assert trap.action is PolicyAction.IPSEC and trap.templates[0].dst is None
        assert p.ping(A, B) == "acquire"
        assert p.wire() >= 4
        (sa_a,), (sa_b,) = p.up(A), p.up(B)
        assert sa_a.name == sa_b.name and sa_a.initiator and not sa_b.initiator
        assert sa_a.conn.name == f"private-or-clear#{A}-{B}" and sa_a.conn.local_auth == "null"
        assert p.ping(A, B) == "protected"
        st = p.d[A].status()
        oe = st["opportunistic"]
        assert isinstance(oe, dict)
        (row,) = oe["entries"]
        assert row["group"] == "private-or-clear" and row["state"] == "established" and row["role"] == "initiator"
        text = "\n".join(render_status(st))
        assert f"private-or-clear#{A}-{B}: group private-or-clear, established, initiator" in text
        assert "private-or-clear  out trap" in text
        # the group conn itself never reaches the engine: it would answer any peer
        assert set(p.d[B].engine.connections) == {f"private-or-clear#{B}-{A}"}
    run(go, p)


def test_simultaneous_first_packets_end_with_one_ike_sa_initiated_by_the_lower_initiator_spi(tmp_path: Path) -> None:
    p = Pair(tmp_path)

    async def go(p: Pair) -> None:
        p.start()
        assert p.ping(A, B) == p.ping(B, A) == "acquire"
        spis = {ip: p.d[ip].engine.ike_sas()[0].spi_i for ip in (A, B)}  # each side's own half-open IKE SA
        p.wire()
        (sa_a,), (sa_b,) = p.up(A), p.up(B)
        first = min(spis, key=lambda ip: spis[ip])
        assert sa_a.name == sa_b.name and sa_a.spi_i == spis[first]
        assert (sa_a.initiator, sa_b.initiator) == (first == A, first == B)
        other = B if first == A else A
        assert "oe-collision" in p.out[other].getvalue() and "oe-collision" not in p.out[first].getvalue()
        assert "its initiator SPI is the lower" in p.out[other].getvalue()
        for ip in (A, B):
            assert [e["state"] for e in p.d[ip].oe.status()["opportunistic"]["entries"]] == ["established"]  # type: ignore[index]
    run(go, p)


def test_oe_initiate_reports_established_failed_and_not_opportunistic(tmp_path: Path) -> None:
    p = Pair(tmp_path, **{A: {"private-or-clear": "0.0.0.0/0\n", "clear": "10.9.0.3/32\n"}})

    async def go(p: Pair) -> None:
        p.start()
        task = asyncio.ensure_future(p.d[A].request("oe-initiate", {"local": A, "remote": B, "timeout": 5}))
        await asyncio.sleep(0)
        p.wire()
        res = await task
        assert res["outcome"] == "established" and res["group"] == "private-or-clear"
        assert render_outcome(res).startswith(f"{A} -> {B}: established (group private-or-clear")
        again = await p.d[A].request("oe-initiate", {"local": A, "remote": B})
        assert again["outcome"] == "established"  # already up: at once
        clear = await p.d[A].request("oe-initiate", {"local": A, "remote": "10.9.0.3"})
        assert clear["outcome"] == "not-opportunistic" and clear["group"] == "clear"
        for bad, why in (({"local": A, "remote": "nope"}, "not an IP address"),
                         ({"local": "10.9.0.99", "remote": B}, "not one of the group conns' addresses"),
                         ({"local": A}, "required"), ({"local": A, "remote": B, "timeout": 0}, "1..600")):
            with pytest.raises(RequestError, match=why):
                await p.d[A].request("oe-initiate", bad)
    run(go, p)


def test_a_peer_in_clear_is_not_answered_and_the_initiator_fails_to_its_failure_shunt(tmp_path: Path) -> None:
    p = Pair(tmp_path, **{B: {"clear": "10.9.0.0/24\n"}})

    async def go(p: Pair) -> None:
        p.start()
        assert p.ping(A, B) == "acquire"
        p.wire()
        assert not p.up(A) and not p.up(B) and not p.d[B].engine.ike_sas()
        # the negotiation shunt (the seed's passthrough) lets the flow out while A waits for an answer
        assert p.ping(A, B) == "clear"
        name = f"private-or-clear#{A}-{B}"
        p.d[A].carry(p.d[A].engine.terminate(name, p.d[A].clock()))  # what the retransmit timeout does
        rows = p.d[A].oe.status()["opportunistic"]["entries"]  # type: ignore[index]
        assert [(r["kind"], r["shunt"]) for r in rows] == [("bare-shunt", "passthrough")]
        assert p.ping(A, B) == "clear"
    run(go, p)


def oe_of(paths: ConfigPaths, fips: bool) -> OeConfig:
    """The bridge's half of the daemon loader's one parse."""
    router = open_router("fips" if fips else "default")
    loader = IpsecConfLoader(FipsMode.POLICY if fips else FipsMode.OFF, host=StaticHost(frozenset({A})))
    return load_oe(loader(paths, router).parsed, paths.ipsecdir, router, ReqidBook())


def test_fips_mode_overrides_the_seed_s_shunts_and_a_misnamed_group_conn_is_an_error(tmp_path: Path) -> None:
    paths = write(tmp_path / "a", A)
    cfg = oe_of(paths, True)
    (gc,) = cfg.conns
    assert gc.group is PolicyGroup.PRIVATE_OR_CLEAR and gc.null_auth
    assert (gc.failure_shunt, gc.negotiation_shunt) == (FailureShunt.NONE, NegotiationShunt.HOLD)
    off = oe_of(paths, False).conns[0]
    assert (off.failure_shunt, off.negotiation_shunt) == (FailureShunt.PASSTHROUGH, NegotiationShunt.PASSTHROUGH)
    # libreswan's stock shunt conn for the clear group: its work is the group file's, it is no template
    shunt = write(tmp_path / "s", A, SEED_PRIVATE_OR_CLEAR + "\nconn clear\n    type=passthrough\n    authby=never\n"
                  "    left=%defaultroute\n    right=%group\n    auto=ondemand\n")
    assert [gc.group for gc in oe_of(shunt, False).conns] == [PolicyGroup.PRIVATE_OR_CLEAR]
    bad = write(tmp_path / "b", A, SEED_PRIVATE_OR_CLEAR.replace("conn private-or-clear", "conn oe"))
    with pytest.raises(ConfigError, match=r"ipsec.conf:1: conn oe: right=%opportunisticgroup needs the conn named"):
        oe_of(bad, False)
    cert = write(tmp_path / "c", A, SEED_PRIVATE_OR_CLEAR.replace("authby=null", "authby=rsasig")
                 .replace("leftauth=null", "leftcert=node1.example.com").replace("rightauth=null", "")
                 .replace("leftid=%null", "").replace("rightid=%null", ""))
    with pytest.raises(ConfigError, match="node1.example.com: no such certificate"):
        oe_of(cert, False)


def test_one_parse_per_start_and_per_reload_feeds_the_daemon_and_the_bridge(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    config_load = importlib.import_module("fipsike.config.load")  # the module (fipsike.config.load is the function)

    calls: list[Path] = []
    real = config_load.parse_config

    def counting(config: Path) -> Any:
        calls.append(Path(config))
        return real(config)

    monkeypatch.setattr(config_load, "parse_config", counting)  # every reader of ipsec.conf goes through it
    p = Pair(tmp_path)
    assert len(calls) == 2  # one per daemon (A and B), not one more for each bridge
    assert [gc.group for gc in p.d[A].oe.config.conns] == [PolicyGroup.PRIVATE_OR_CLEAR]
    p.d[A].reload()
    assert len(calls) == 3
    # a config from a loader without ipsec.conf (a test's, say) has no opportunistic half: no file is read
    assert load_oe(None, tmp_path, open_router("default"), ReqidBook()) == OeConfig()


def test_the_daemon_leaves_the_group_conns_to_the_bridge(tmp_path: Path) -> None:
    p = Pair(tmp_path)
    other = Connection("gw", (A,), ("10.9.9.9",))
    oe_conn = Connection("private-or-clear", (A,), ("%any",))
    cfg = DaemonConfig((ConnEntry(other), ConnEntry(oe_conn)))
    assert [e.name for e in p.d[A].oe.exclude(cfg).connections] == ["gw"]
    anon = Connection("gw", (A,), ("10.9.9.9",), local_auth="null", remote_auth="null", allow_null=True)
    with pytest.raises(ConfigError, match="conn gw: NULL authentication .* only on opportunistic conns"):
        p.d[A].oe.exclude(DaemonConfig((ConnEntry(anon),)))


def test_only_an_ike_sa_init_request_is_screened() -> None:
    from fipsike.ike.engine import Engine

    e = Engine(open_router("default"), [Connection("x", (A,), (B,))])
    (send,) = [a for a in e.initiate("x", 0.0) if type(a).__name__ == "SendDatagram"]
    assert is_ike_sa_init_request(send.data)  # type: ignore[attr-defined]
    data = bytearray(send.data)  # type: ignore[attr-defined]
    data[19] |= 0x20
    assert not is_ike_sa_init_request(bytes(data))  # a response
    assert not is_ike_sa_init_request(b"\x00" * 27)


def test_reload_applies_new_group_files_and_keeps_the_instances(tmp_path: Path) -> None:
    p = Pair(tmp_path)

    async def go(p: Pair) -> None:
        p.start()
        assert p.ping(A, B) == "acquire"
        p.wire()
        (tmp_path / A / "policies" / "clear").write_text("10.9.0.3/32\n")
        res = p.d[A].reload()
        assert res["group_policies_changed"] == 2  # the clear /32, out and in
        k = p.kernels[A]
        assert k.send_packet(ipaddress.ip_address(A), ipaddress.ip_address("10.9.0.3")) == "clear"
        assert k.send_packet(ipaddress.ip_address(A), ipaddress.ip_address(B)) == "protected"  # still up
        (tmp_path / A / "policies" / "clear").write_text("10.9.0.3/33\n")
        with pytest.raises(ConfigError, match=r"policies/clear:1"):
            p.d[A].reload()
        assert k.send_packet(ipaddress.ip_address(A), ipaddress.ip_address("10.9.0.3")) == "clear"  # kept
    run(go, p)


class RefusingKernel(MemoryKernel):
    """A kernel without the negotiated ESP transform (as this host's: "Requested AEAD algorithm not found")."""

    def install_sa(self, spec: SaSpec) -> None:
        raise KernelError("NEWSA", "ENOENT", "Requested AEAD algorithm not found")


def test_a_child_sa_the_kernel_refuses_fails_the_instance_to_its_failure_shunt_and_deletes_the_ike_sa(
        tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.kernels[A] = p.d[A].kernel = p.d[A].installer.kernel = RefusingKernel()  # type: ignore[misc]

    async def go(p: Pair) -> None:
        p.start()
        name = f"private-or-clear#{A}-{B}"
        task = asyncio.ensure_future(p.d[A].request("oe-initiate", {"local": A, "remote": B, "timeout": 5}))
        await asyncio.sleep(0)
        p.wire()
        res = await task
        # the IKE SA came up, but no tunnel: the outcome is the failure, not "established"
        assert res["outcome"] == "failed" and res["shunt"] == "passthrough", res
        assert "oe-child-refused" in p.out[A].getvalue()
        # the IKE SA is gone on both sides (A sent the DELETE; B, whose kernel took its half, removed it too)
        assert p.d[A].engine.ike_sas() == [] and p.d[B].engine.ike_sas() == []
        assert name not in p.d[A].engine.connections
        rows = p.d[A].oe.status()["opportunistic"]["entries"]  # type: ignore[index]
        assert [(r["kind"], r["shunt"]) for r in rows] == [("bare-shunt", "passthrough")]
        assert p.ping(A, B) == "clear"  # failureshunt=passthrough, for the shunt's lifetime
        # B's side: its answering instance ended with the IKE SA, no shunt (a responder installs none)
        assert p.d[B].oe.status()["opportunistic"]["entries"] == []  # type: ignore[index]
        assert p.kernels[B].sas == {}
        # after the shunt lifetime the trap is back and the next packet negotiates again
        later = p.d[A].clock() + 901
        p.d[A].clock = lambda: later  # type: ignore[method-assign]
        p.d[A].oe._on_timer()
        assert p.ping(A, B) == "acquire"
        assert [r["state"] for r in p.d[A].oe.status()["opportunistic"]["entries"]] == ["negotiating"]  # type: ignore[index]
    run(go, p)


def test_a_responder_whose_kernel_refuses_the_child_sa_drops_the_instance_and_deletes_the_ike_sa(
        tmp_path: Path) -> None:
    p = Pair(tmp_path)
    p.kernels[B] = p.d[B].kernel = p.d[B].installer.kernel = RefusingKernel()  # type: ignore[misc]

    async def go(p: Pair) -> None:
        p.start()
        assert p.ping(A, B) == "acquire"
        p.wire()
        assert p.d[A].engine.ike_sas() == [] and p.d[B].engine.ike_sas() == []
        assert p.d[B].oe.status()["opportunistic"]["entries"] == []  # type: ignore[index]
        assert f"private-or-clear#{B}-{A}" not in p.d[B].engine.connections
        # A's kernel took its Child SA; B's DELETE of the IKE SA took it out again
        assert p.kernels[A].sas == {}
    run(go, p)


def test_reload_tears_down_an_instance_whose_peer_the_group_files_no_longer_cover(tmp_path: Path) -> None:
    """B's /32 moves to clear: A's instance for B goes (DELETE to B), and the clear /32 is what is left in
    A's kernel, also after the engine removed the Child SA's policies of that same selector."""
    p = Pair(tmp_path)

    async def go(p: Pair) -> None:
        p.start()
        assert p.ping(A, B) == "acquire"
        p.wire()
        assert p.ping(A, B) == "protected"
        (tmp_path / A / "policies" / "clear").write_text(f"{B}/32\n")
        res = p.d[A].reload()
        assert res["instances_removed"] == 1, res
        assert p.d[A].oe.status()["opportunistic"]["entries"] == []  # type: ignore[index]
        assert f"private-or-clear#{A}-{B}" not in p.d[A].engine.connections
        p.wire()  # the DELETE and its answer
        assert p.d[A].engine.ike_sas() == [] and p.d[B].engine.ike_sas() == []
        k = p.kernels[A]
        assert k.sas == {}
        assert p.ping(A, B) == "clear"
        sel = [pol for pol in k.policies.values() if f"{B}/32" in (str(pol.selector.src), str(pol.selector.dst))]
        assert sorted(pol.direction.name for pol in sel) == ["IN", "OUT"]
        assert all(pol.action is PolicyAction.PASS for pol in sel)
        assert "oe-policy-removed" in p.out[A].getvalue()
    run(go, p)


def test_reload_without_the_group_conn_tears_down_its_instances_and_bare_shunts(tmp_path: Path) -> None:
    p = Pair(tmp_path, **{B: {"clear": "10.9.0.0/24\n"}})
    c = "10.9.0.3"

    async def go(p: Pair) -> None:
        p.start()
        # a bare shunt for B (B never answers: it has 10.9.0.0/24 in clear) ...
        assert p.ping(A, B) == "acquire"
        p.wire()
        p.d[A].carry(p.d[A].engine.terminate(f"private-or-clear#{A}-{B}", p.d[A].clock()))
        # ... and an instance for C being negotiated (C is not there to answer)
        assert p.ping(A, c) == "acquire"
        for d in p.d.values():
            d.sockets.sent.clear()  # type: ignore[attr-defined]
        kinds = [r["kind"] for r in p.d[A].oe.status()["opportunistic"]["entries"]]  # type: ignore[index]
        assert sorted(kinds) == ["bare-shunt", "instance"]
        (tmp_path / A / "ipsec.conf").write_text("# opportunistic IPsec switched off\n")
        res = p.d[A].reload()
        assert res["instances_removed"] == 2, res
        assert p.d[A].oe.status()["opportunistic"]["entries"] == []  # type: ignore[index]
        assert not p.d[A].engine.ike_sas() and not p.d[A].engine.connections
        # no group conn: the trap and both per-peer shunts are gone, everything passes as without fipsike
        assert p.kernels[A].policies == {}
        assert p.ping(A, B) == "clear" and p.ping(A, c) == "clear"
    run(go, p)


class NatPair(Pair):
    """A behind a masquerading NAT with public address N: A's datagrams reach B from N (port kept, or
    rewritten from `base`), B's reach A only through a mapping A's own traffic made (conntrack's reply
    direction); B knows A as N, so B's packets for A go to N and its ACQUIRE names N."""

    N = "10.9.0.200"  # above B's address: a lower-address rule would have both sides keep initiating

    def __init__(self, tmp: Path, rewrite_ports: bool) -> None:
        super().__init__(tmp)
        self.rewrite = rewrite_ports
        self.out_map: dict[int, int] = {}  # A's port -> N's port
        self.dropped = 0

    def wire(self) -> int:
        n = 0
        while True:
            moved = False
            for ip, d in self.d.items():
                sent = d.sockets.sent  # type: ignore[attr-defined]
                while sent:
                    data, src, dst = sent.pop(0)
                    moved, n = True, n + 1
                    if ip == A:  # out through the NAT
                        port = self.out_map.setdefault(src[1], 40000 + src[1] if self.rewrite else src[1])
                        src, to = (self.N, port), self.d[B]
                    else:  # B -> N: in only through a mapping
                        back = {v: k for k, v in self.out_map.items()}
                        if dst[0] != self.N or dst[1] not in back:
                            self.dropped += 1
                            continue
                        dst, to = (A, back[dst[1]]), self.d[A]
                    dgram = Datagram(data, src, (dst[0], dst[1]))
                    if not to.oe.screen(dgram):
                        to.carry(to.engine.receive(data, src, dgram.dst, to.clock()))
            if not moved:
                return n


UP = re.compile(r"ike-sa-up \[\S+\] (\S+) ")


@pytest.mark.parametrize("rewrite_ports", [False, True], ids=["port-kept", "port-rewritten"])
def test_simultaneous_first_packets_through_a_nat_end_with_one_ike_sa(tmp_path: Path, rewrite_ports: bool) -> None:
    """Each side's ACQUIRE names the peer as the IKE source it sees (A: B; B: N), but the addresses differ
    across the NAT (A compares A with B, B compares B with N), so no address rule holds on both sides. The
    side behind the NAT initiates: both read it from the colliding request (its port rewritten, or its
    NAT_DETECTION hashes), since B's IKE_SA_INIT to N:500 (port rewritten) or its IKE_AUTH to N:4500 (no
    mapping: A only sent from 500) would be dropped by the NAT. One IKE SA comes up.

    Its Child SA cannot: A proposes A/32 <-> B/32, B's instance is B/32 <-> N/32 (B only knows N), so B
    answers TS_UNACCEPTABLE, as for any opportunistic initiator behind a NAT (libreswan hands such a peer an
    inner address from an address pool; fipsike's instances have none). The IKE SA that carries nothing is
    then deleted and A's failure shunt (the seed's passthrough) goes in."""
    p = NatPair(tmp_path, rewrite_ports)

    async def go(p: NatPair) -> None:
        p.start()
        n = ipaddress.ip_address(p.N)
        assert p.ping(A, B) == "acquire"
        assert p.kernels[B].send_packet(ipaddress.ip_address(B), n) == "acquire"  # B's packet for A goes to N
        p.d[B]._on_kernel()
        p.wire()
        logs = {ip: p.out[ip].getvalue() for ip in (A, B)}
        up_a, up_b = UP.findall(logs[A]), UP.findall(logs[B])
        assert len(up_a) == 1 and up_a == up_b, (up_a, up_b)  # one IKE SA, the same on both sides
        assert f"ike-sa-up [private-or-clear#{B}-{p.N}~r]" in logs[B]  # B answered, A initiated
        assert "oe-collision" in logs[B] and "oe-collision" not in logs[A]
        if rewrite_ports:
            assert p.dropped >= 1  # B's IKE_SA_INIT to N:500 never got through
            assert "its port was rewritten" in logs[B]
        else:
            # no port rewritten: B tells from A's NAT_DETECTION_SOURCE_IP hash that A is behind a NAT, and A
            # from B's NAT_DETECTION_DESTINATION_IP hash that it is: A initiates, whatever the SPIs
            assert p.dropped == 0 and "it is behind a NAT" in logs[B]
            assert f"IKE_SA_INIT from {B} answered" not in logs[A]  # A got B's request and kept its own
        # what follows across a NAT: the Child SA's selectors do not meet, the instance fails whole
        assert "TS_UNACCEPTABLE" in logs[B] and "oe-child-refused" in logs[A]
        assert p.d[A].engine.ike_sas() == [] and p.d[B].engine.ike_sas() == []
        rows = p.d[A].oe.status()["opportunistic"]["entries"]  # type: ignore[index]
        assert [(r["kind"], r["shunt"]) for r in rows] == [("bare-shunt", "passthrough")]
        assert p.d[B].oe.status()["opportunistic"]["entries"] == []  # type: ignore[index]
    asyncio.run(go(p))
