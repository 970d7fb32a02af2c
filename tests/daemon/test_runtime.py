"""The Daemon's own logic without sockets or subprocesses: kernel events back to the engine
(ACQUIRE initiates the trapped connection once, an EXPIRE of either SA of a Child SA reaches the
engine by its inbound SPI), and an unexpected exception ending only the action it hit."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from fipsike.daemon.config_seam import Auto, ConfigPaths, ConnEntry, DaemonConfig, with_reqids
from fipsike.daemon.eventlog import EventLog
from fipsike.daemon.runtime import Daemon, Options, ReqidBook
from fipsike.daemon.udp import IkeSockets
from fipsike.ike.actions import DeadPeer, SendDatagram, TrafficSelectorSpec
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.engine import Engine
from fipsike.ike.sa import IkeState
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import Expire
from providers import open_router
from tests.daemon.test_installer import _install


class FakeSockets(IkeSockets):
    def __init__(self) -> None:  # no bind: records what would be sent
        self.sockets = []
        self.skipped = []
        self.sent: list[tuple[bytes, tuple[str, int], tuple[str, int]]] = []

    def send(self, data: bytes, src: tuple[str, int], dst: tuple[str, int]) -> None:
        self.sent.append((data, src, dst))


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.sas: list[Any] = []  # the SA table, as the daemon walks it (IkeSa-like objects)

    def initiate(self, name: str, now: float, child: str | None = None) -> list[Any]:
        self.calls.append(("initiate", name, child))
        return []

    def expire(self, spi_in: int, hard: bool, now: float) -> list[Any]:
        self.calls.append(("expire", spi_in, hard))
        return []

    def delete_child(self, spi_in: int, now: float) -> list[Any]:
        self.calls.append(("delete_child", spi_in))
        return []

    def ike_sas(self) -> list[Any]:
        return []

    def status(self, now: float | None = None) -> list[dict[str, Any]]:
        return self.sas


def _daemon(tmp: Path, auto: Auto = Auto.ROUTE) -> tuple[Daemon, MemoryKernel, io.StringIO, FakeEngine]:
    conn = Connection("gw", ("192.0.2.1",), ("192.0.2.2",), children=(
        ChildConfig("net", (TrafficSelectorSpec("10.1.0.0", "10.1.0.255"),),
                    (TrafficSelectorSpec("10.2.0.0", "10.2.0.255"),)),))
    cfg = with_reqids(DaemonConfig((ConnEntry(conn, auto, "v1"),)), ReqidBook())
    kernel = MemoryKernel()
    out = io.StringIO()
    d = Daemon(open_router("default"), kernel, FakeSockets(), cfg, Options(ConfigPaths(), tmp / "ctl", "memory"),
               EventLog(out))
    fake = FakeEngine()
    d.engine = cast(Engine, fake)
    return d, kernel, out, fake


def test_acquire_initiates_the_trapped_child_once(tmp_path: Path) -> None:
    d, kernel, out, fake = _daemon(tmp_path)
    d._apply_auto(d.config.connections[0])
    src, dst = ipaddress.ip_address("10.1.0.7"), ipaddress.ip_address("10.2.0.9")
    assert kernel.send_packet(src, dst) == "acquire"
    assert kernel.send_packet(src, dst) == "acquire"
    d._on_kernel()
    assert fake.calls == [("initiate", "gw", "net")]  # the second ACQUIRE waits for the first negotiation
    assert "acquire [gw] packet 10.1.0.7/32 -> 10.2.0.9/32" in out.getvalue()


def test_expire_of_either_direction_reaches_the_engine_by_inbound_spi(tmp_path: Path) -> None:
    d, kernel, out, fake = _daemon(tmp_path, Auto.ADD)
    a = _install()
    d.installer.install(a)
    for dst, spi, hard in (("192.0.2.2", 0x2222, False), ("192.0.2.1", 0x1111, True), ("192.0.2.1", 0x9999, True)):
        kernel._emit(Expire(ipaddress.ip_address("192.0.2.9"), ipaddress.ip_address(dst), spi, 50, a.reqid, hard,
                            100, 1))
    d._on_kernel()
    assert fake.calls == [("expire", 0x1111, False), ("expire", 0x1111, True)]  # an unknown SPI is not ours
    assert "child-sa-expire-soft [gw] SPI 00002222" in out.getvalue()


def test_an_unexpected_exception_ends_only_its_action(tmp_path: Path) -> None:
    d, kernel, out, fake = _daemon(tmp_path, Auto.ADD)

    def boom(a: object) -> None:
        raise RuntimeError("secret-looking text that must not be logged")

    d.installer.install = boom  # type: ignore[method-assign]
    a = _install()
    d.carry([a, SendDatagram(b"after", ("192.0.2.1", 500), ("192.0.2.2", 500))])
    assert cast(FakeSockets, d.sockets).sent == [(b"after", ("192.0.2.1", 500), ("192.0.2.2", 500))]
    assert fake.calls == [("delete_child", 0x1111)]
    log = out.getvalue()
    assert "error internal-error [gw] carrying InstallChildSa: RuntimeError" in log
    assert "secret-looking" not in log


def test_dead_peer_hold_traps_the_traffic(tmp_path: Path) -> None:
    d, kernel, out, fake = _daemon(tmp_path, Auto.ADD)
    assert kernel.list_policies() == []
    d.carry([DeadPeer("a/b", "gw", "hold")])
    assert [p.templates[0].reqid for p in kernel.list_policies()] == [d.config.connections[0].connection.children[0]
                                                                      .reqid]
    assert kernel.send_packet(ipaddress.ip_address("10.1.0.1"), ipaddress.ip_address("10.2.0.1")) == "acquire"
    d.carry([DeadPeer("a/b", "gw", "clear")])
    assert len(kernel.list_policies()) == 1


def test_nat_keepalives_only_for_sas_behind_a_nat(tmp_path: Path) -> None:
    d, kernel, out, fake = _daemon(tmp_path, Auto.ADD)

    def sa(state: IkeState, local: tuple[str, int], remote: tuple[str, int], nat_local: bool) -> SimpleNamespace:
        return SimpleNamespace(state=state, local=local, remote=remote, nat_local=nat_local,
                               nat_remote=not nat_local, conn=SimpleNamespace(name="gw"))

    fake.sas = [sa(IkeState.ESTABLISHED, ("192.0.2.1", 4500), ("198.51.100.7", 4501), True),
                sa(IkeState.ESTABLISHED, ("192.0.2.1", 500), ("198.51.100.8", 500), False),
                sa(IkeState.INIT_SENT, ("2001:db8::1", 4500), ("2001:db8::9", 4500), True)]
    d._keepalives()
    assert cast(FakeSockets, d.sockets).sent == [(b"\xff", ("192.0.2.1", 4500), ("198.51.100.7", 4501))]


def test_a_second_up_never_starts_a_second_ike_sa(tmp_path: Path) -> None:
    """`up` on a connection that is coming up joins that negotiation; on one whose IKE SA is up (its Child
    SA gone) it asks for the Child SA only (CREATE_CHILD_SA on the IKE SA that is there)."""
    import asyncio

    d, _, out, fake = _daemon(tmp_path, Auto.ADD)
    entry = d.config.connections[0]

    async def up() -> Any:
        return await d._up(entry, {"timeout": 1})

    assert asyncio.run(up())["established"] is False
    assert fake.calls == [("initiate", "gw", None)]
    fake.sas = [SimpleNamespace(name="aa/bb", conn=SimpleNamespace(name="gw"), state=IkeState.INIT_SENT)]
    assert "no answer within 1 s" in asyncio.run(up())["reason"]
    assert fake.calls == [("initiate", "gw", None)]  # joined the negotiation under way
    assert "joins the negotiation of aa/bb" in out.getvalue()
    fake.sas = [SimpleNamespace(name="aa/bb", conn=SimpleNamespace(name="gw"), state=IkeState.ESTABLISHED)]
    asyncio.run(up())
    assert fake.calls[1:] == [("initiate", "gw", "net")]
