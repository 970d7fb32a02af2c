"""The engine responder (`--peer fipsike-engine` of benchmarks.daemon): fipsike's Engine behind a
minimal asyncio UDP loop on ports 500 and 4500, with the in-memory kernel, in its own process.

A stand-in for `fipsike daemon --kernel memory` until the daemon is in main: the same engine and
kernel backend, without the daemon's config loading, control socket and logging. Its figures are
the engine's cost behind real sockets, a lower bound for the daemon's.

Signals: SIGUSR1 writes a status JSON to --status (IKE SAs up, Child SAs, owned kernel SAs and
policies); SIGUSR2 writes the tracemalloc top to a numbered file beside --tracemalloc (when
tracing); SIGTERM stops it (writing the cProfile stats and the tracemalloc top, when asked).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import ipaddress
import json
import os
import signal
import socket
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.ikebench import RESPONDER_ADDR, SUITES, engine_connection
from fipsike.ike.actions import ArmTimer, DeleteChildSa, InstallChildSa, SendDatagram
from fipsike.ike.engine import Engine
from fipsike.ike.sa import ChildState, IkeState
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import KernelError, Mode, SaSpec
from providers import open_router
from providers.algorithms import Integrity

NON_ESP_MARKER = b"\x00\x00\x00\x00"
PROFILE: cProfile.Profile | None = None


class Responder:
    def __init__(self, engine: Engine, address: str) -> None:
        self.engine = engine
        self.address = address
        self.kernel = MemoryKernel()
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.transports: dict[int, asyncio.DatagramTransport] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at: float | None = None

    def now(self) -> float:
        return self.loop.time() - self.t0

    def receive(self, data: bytes, src: Any, port: int) -> None:
        if port == 4500:
            if data[:4] != NON_ESP_MARKER:
                return  # ESP in UDP: the in-memory kernel carries no traffic
            data = data[4:]
        self.handle(self.engine.receive(data, (src[0], src[1]), (self.address, port), self.now()))

    def handle(self, actions: list[Any]) -> None:
        for a in actions:
            if isinstance(a, SendDatagram):
                port = a.src[1]
                self.transports[port].sendto(NON_ESP_MARKER + a.data if port == 4500 else a.data, a.dst)
            elif isinstance(a, ArmTimer):
                self.arm(a.at)
            elif isinstance(a, InstallChildSa):
                for d, inbound in ((a.inbound, True), (a.outbound, False)):
                    self.kernel.install_sa(SaSpec(
                        src=ipaddress.ip_address(d.src), dst=ipaddress.ip_address(d.dst), spi=d.spi,
                        reqid=a.reqid, mode=Mode.TUNNEL, encryption=d.encr, encryption_key=d.encr_key,
                        integrity=d.integ or Integrity.NONE, integrity_key=d.integ_key, inbound=inbound,
                        name=f"{a.connection}/{a.child}"))
            elif isinstance(a, DeleteChildSa):
                for spi, dst in ((a.inbound_spi, a.local), (a.outbound_spi, a.remote)):
                    try:
                        self.kernel.delete_sa(ipaddress.ip_address(dst), spi)
                    except KernelError:
                        pass

    def arm(self, at: float) -> None:
        if self.timer_at is not None and self.timer_at <= at:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer_at = at
        self.timer = self.loop.call_at(self.t0 + at, self.fire)

    def fire(self) -> None:
        self.timer, self.timer_at = None, None
        self.handle(self.engine.timer(self.now()))  # its ArmTimer re-arms (Engine.next_deadline scans all SAs)

    def status(self) -> dict[str, Any]:
        sas = self.engine.ike_sas()
        return {"pid": os.getpid(), "ike_sas": len(sas),
                "ike_sas_up": sum(1 for sa in sas if sa.state == IkeState.ESTABLISHED),
                # installed ones: a rekeyed Child SA waits for its Delete exchange in REKEYED
                "child_sas": sum(1 for sa in sas for c in sa.children.values() if c.state == ChildState.INSTALLED),
                "kernel_sas": len(self.kernel.list_sas()), "kernel_policies": len(self.kernel.list_policies())}


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, responder: Responder, port: int) -> None:
        self.responder, self.port = responder, port

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.responder.receive(data, addr, self.port)


async def serve(args: argparse.Namespace) -> None:
    router = open_router("fips")
    conn = engine_connection(router, SUITES[args.suite], initiator=False, key=args.pki / "responder.key",
                             cert=args.pki / "responder.crt", ca=args.pki / "ca.crt", dpd_delay=args.dpd,
                             dpd_timeout=args.dpd_timeout)
    # cookies only past this many half-open SAs: the counterpart of charon's dos_protection = no
    engine = Engine(router, [conn], cookie_threshold=1 << 30)
    responder = Responder(engine, args.address)
    loop = asyncio.get_running_loop()
    for port in (500, 4500):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((args.address, port))
        transport, _ = await loop.create_datagram_endpoint(functools.partial(_Udp, responder, port), sock=s)
        responder.transports[port] = transport
    stop = asyncio.Event()

    def write_status() -> None:
        tmp = args.status.with_suffix(".tmp")
        tmp.write_text(json.dumps(responder.status()))
        tmp.replace(args.status)

    loop.add_signal_handler(signal.SIGUSR1, write_status)
    if args.tracemalloc:
        dumps = iter(range(1, 1 << 30))
        loop.add_signal_handler(signal.SIGUSR2, lambda: dump_tracemalloc(
            args.tracemalloc.with_name(f"{args.tracemalloc.stem}-{next(dumps)}.json")))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    write_status()  # also: ready
    await stop.wait()
    if PROFILE is not None:
        PROFILE.disable()  # the dumps below are not the responder's work
    if args.tracemalloc:  # while the SAs are still alive
        dump_tracemalloc(args.tracemalloc)


def dump_tracemalloc(path: Path) -> None:
    """The live allocations by the innermost frame that is not generated code (a dataclass's
    __init__ shows as "<string>"), largest first."""
    snap = tracemalloc.take_snapshot()
    sites: dict[str, list[int]] = {}
    total = 0
    for stat in snap.statistics("traceback"):
        frames = [f for f in stat.traceback if f.filename != "<string>"] or list(stat.traceback)
        where = f"{frames[-1].filename}:{frames[-1].lineno}"  # tracemalloc lists the innermost frame last
        if tracemalloc.__file__ in where:
            continue
        site = sites.setdefault(where, [0, 0])
        site[0] += stat.size
        site[1] += stat.count
        total += stat.size
    top = sorted(sites.items(), key=lambda kv: -kv[1][0])[:60]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"total_kib": round(total / 1024, 1), "top": [
        {"kib": round(size / 1024, 1), "count": count, "where": where} for where, (size, count) in top]}))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pki", type=Path, required=True)
    ap.add_argument("--suite", default="ecdsa", choices=sorted(SUITES))
    ap.add_argument("--address", default=RESPONDER_ADDR)
    ap.add_argument("--status", type=Path, required=True, help="status JSON, rewritten on SIGUSR1")
    ap.add_argument("--dpd", type=float, default=0.0, help="liveness check interval (0: none)")
    ap.add_argument("--dpd-timeout", type=float, default=150.0, help="a liveness check gives up after this")
    ap.add_argument("--profile", type=Path, help="write cProfile stats here on exit")
    ap.add_argument("--tracemalloc", type=Path, help="write the top allocation sites here on exit")
    args = ap.parse_args(argv)
    global PROFILE
    if args.tracemalloc:
        tracemalloc.start(4)
    PROFILE = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall time
    if PROFILE:
        PROFILE.enable()
    try:
        asyncio.run(serve(args))
    finally:
        if PROFILE:
            PROFILE.disable()
            PROFILE.dump_stats(str(args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
