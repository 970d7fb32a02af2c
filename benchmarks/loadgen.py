"""The load generator: fipsike's sans-I/O Engine as the initiator of many IKE SAs (each with its
first Child SA), over real UDP sockets, with the in-memory kernel taking the Child SAs.

It runs as its own process inside the initiators' namespace (benchmarks.daemon starts it with
`ip netns exec`), so its CPU is never charged to the responder it measures, and it reports its own
CPU (os.times) so one can see whether it, and not the responder, sets the pace.

Control: one JSON command per line on stdin, one JSON reply per line on stdout.
  {"cmd": "run", "n": K}     initiate K new IKE SAs (at most --concurrency in flight, at most --rate
                             started per second; 0 = unlimited) and reply when every one is up or failed
  {"cmd": "warm", "n": K}    the same, then delete the K IKE SAs again (RFC 7296 Delete) and wait
  {"cmd": "kill", "n": K}    forget K established IKE SAs silently, as a peer that crashed
  {"cmd": "status"}          counters (IKE SAs up, Child SAs, rekeys, failures, retransmissions, CPU)
  {"cmd": "quit"}
Between commands (and during them) it keeps serving its sockets and timers: retransmissions,
rekeys (--ike-rekey / --child-rekey seconds, for benchmarks.churn), the responder's liveness checks.

A retransmission is a request sent again byte for byte (RFC 7296 2.1: a retransmitted request is
identical), counted on the generator's side; its answers to the responder's repeated requests (a
liveness check to a killed peer gets the same INVALID_IKE_SPI each time) are not counted.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.ikebench import INITIATOR_ADDR, SUITES, engine_connection
from fipsike.ike.actions import (
    ArmTimer,
    ChildSaFailed,
    DeleteChildSa,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
    InstallChildSa,
    SendDatagram,
)
from fipsike.ike.engine import Engine
from fipsike.ike.sa import IkeState
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import KernelError, Mode, SaSpec
from providers import open_router
from providers.algorithms import Integrity

NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948 2.2: IKE on port 4500


class LoadGenerator:
    def __init__(self, engine: Engine, address: str, concurrency: int, rate: float) -> None:
        self.engine = engine
        self.address = address
        self.concurrency = concurrency
        self.rate = rate
        self.kernel = MemoryKernel()
        self.socks: dict[int, socket.socket] = {}
        for port in (500, 4500):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            s.bind((address, port))
            s.setblocking(False)
            self.socks[port] = s
        self.deadline: float | None = None
        self.t0 = time.monotonic()
        self.sent: set[int] = set()  # hash() of every datagram sent: a repeat is a retransmission
        self.c = {"started": 0, "established": 0, "child_sas": 0, "ike_failed": 0, "child_failed": 0,
                  "retransmits": 0, "datagrams": 0, "child_rekeys": 0, "ike_rekeys": 0, "deleted": 0}
        self.failures: dict[str, int] = {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def handle(self, actions: list[Any]) -> None:
        c = self.c
        for a in actions:
            if isinstance(a, SendDatagram):
                if not a.data[19] & 0x20:  # a request (RFC 7296 3.1 R flag clear); answers repeat by design
                    h = hash(a.data)
                    if h in self.sent:
                        c["retransmits"] += 1
                    else:
                        self.sent.add(h)
                c["datagrams"] += 1
                port = a.src[1]
                data = NON_ESP_MARKER + a.data if port == 4500 else a.data
                try:
                    self.socks[port].sendto(data, a.dst)
                except BlockingIOError:
                    pass  # a full socket buffer is a lost datagram: the engine retransmits
            elif isinstance(a, ArmTimer):
                if self.deadline is None or a.at < self.deadline:
                    self.deadline = a.at
            elif isinstance(a, InstallChildSa):
                self._install(a)
                if a.rekey_of is None:
                    c["child_sas"] += 1
                else:
                    c["child_rekeys"] += 1
            elif isinstance(a, DeleteChildSa):
                for spi, dst in ((a.inbound_spi, a.local), (a.outbound_spi, a.remote)):
                    try:
                        self.kernel.delete_sa(ipaddress.ip_address(dst), spi)
                    except KernelError:
                        pass
            elif isinstance(a, IkeSaEstablished):
                c["established"] += 1
            elif isinstance(a, IkeSaRekeyed):
                c["ike_rekeys"] += 1
            elif isinstance(a, IkeSaFailed):
                c["ike_failed"] += 1
                self.failures[a.reason] = self.failures.get(a.reason, 0) + 1
            elif isinstance(a, ChildSaFailed):
                c["child_failed"] += 1
                self.failures[a.notify] = self.failures.get(a.notify, 0) + 1
            elif isinstance(a, IkeSaDeleted):
                c["deleted"] += 1

    def _install(self, a: InstallChildSa) -> None:
        for d, inbound in ((a.inbound, True), (a.outbound, False)):
            self.kernel.install_sa(SaSpec(
                src=ipaddress.ip_address(d.src), dst=ipaddress.ip_address(d.dst), spi=d.spi, reqid=a.reqid,
                mode=Mode.TUNNEL, encryption=d.encr, encryption_key=d.encr_key,
                integrity=d.integ or Integrity.NONE, integrity_key=d.integ_key, inbound=inbound,
                name=f"{a.connection}/{a.child}"))

    def pump(self, timeout: float, stdin: bool = False) -> bool:
        """Serve sockets and timers for up to `timeout` seconds; True when stdin has a line."""
        if self.deadline is not None:
            timeout = max(0.0, min(timeout, self.deadline - self.now()))
        fds: list[Any] = list(self.socks.values())
        if stdin:
            fds.append(sys.stdin)
        r, _, _ = select.select(fds, [], [], timeout)
        for s in r:
            if s is sys.stdin:
                continue
            port = s.getsockname()[1]
            for _ in range(64):  # drain what is queued, a bounded batch per socket
                try:
                    data, src = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if port == 4500:
                    if data[:4] != NON_ESP_MARKER:
                        continue
                    data = data[4:]
                self.handle(self.engine.receive(data, src, (self.address, port), self.now()))
        if self.deadline is not None and self.now() >= self.deadline:
            self.deadline = None
            self.handle(self.engine.timer(self.now()))  # its ArmTimer sets the next deadline
        return sys.stdin in r

    def done(self) -> int:
        c = self.c
        return c["child_sas"] + c["child_failed"] + c["ike_failed"]

    def run(self, n: int, stall: float = 60.0) -> dict[str, Any]:
        """Initiate n IKE SAs and serve until each is up (with its Child SA) or failed."""
        t_start, cpu0 = time.monotonic(), _cpu()
        base, started = self.done(), 0
        last_progress, last_done = time.monotonic(), base
        while self.done() - base < n:
            in_flight = started - (self.done() - base)
            allowed = n if self.rate <= 0 else int((time.monotonic() - t_start) * self.rate) + 1
            while started < n and in_flight < self.concurrency and started < allowed:
                self.c["started"] += 1
                started += 1
                in_flight += 1
                self.handle(self.engine.initiate("bench", self.now()))
            self.pump(0.005 if (started < n and in_flight < self.concurrency) else 0.05)
            if self.done() != last_done:
                last_done, last_progress = self.done(), time.monotonic()
            elif time.monotonic() - last_progress > stall:
                break
        t_end = time.monotonic()
        return {"n": n, "completed": self.done() - base, "t_start": t_start, "t_end": t_end,
                "cpu_s": _cpu() - cpu0, **self.status()}

    def warm(self, n: int) -> dict[str, Any]:
        """n IKE SAs up, then deleted again: the responder's lazy imports and caches are filled
        before the baseline is taken."""
        before = {sa.name for sa in self.engine.ike_sas()}
        out = self.run(n)
        fresh = [sa for sa in self.engine.ike_sas() if sa.name not in before]
        deleted0 = self.c["deleted"]
        for sa in fresh:
            self.handle(self.engine.delete_ike(sa.name, self.now()))
        end = time.monotonic() + 30
        while self.c["deleted"] - deleted0 < len(fresh) and time.monotonic() < end:
            self.pump(0.05)
        return out

    def kill(self, n: int) -> dict[str, Any]:
        """Forget n established IKE SAs without a word to the responder: a peer that crashed. The
        responder finds out by its liveness checks; the peer 'restarts' with the next run."""
        victims = [sa for sa in self.engine.ike_sas() if sa.state == IkeState.ESTABLISHED][:n]
        for sa in victims:
            self.engine.drop_ike(sa, "killed")
        self.handle(self.engine._flush())
        return {"killed": len(victims), **self.status()}

    def status(self) -> dict[str, Any]:
        up = sum(1 for sa in self.engine.ike_sas() if sa.state == IkeState.ESTABLISHED)
        return {**self.c, "ike_sas_up": up, "kernel_sas": len(self.kernel.list_sas()),
                "failures": dict(self.failures), "cpu_total_s": _cpu(), "t": time.monotonic()}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pki", type=Path, required=True, help="directory made by ikebench.make_pki")
    ap.add_argument("--suite", default="ecdsa", choices=sorted(SUITES))
    ap.add_argument("--address", default=INITIATOR_ADDR)
    ap.add_argument("--concurrency", type=int, default=32, help="IKE SAs in flight at most")
    ap.add_argument("--rate", type=float, default=0.0, help="new IKE SAs per second at most (0: unlimited)")
    ap.add_argument("--ike-rekey", type=float, default=None, help="IKE SA rekey interval, seconds")
    ap.add_argument("--child-rekey", type=float, default=None, help="Child SA rekey interval, seconds")
    args = ap.parse_args(argv)
    router = open_router("fips")
    conn = engine_connection(router, SUITES[args.suite], initiator=True, key=args.pki / "initiator.key",
                             cert=args.pki / "initiator.crt", ca=args.pki / "ca.crt",
                             ike_rekey=args.ike_rekey, child_rekey=args.child_rekey)
    gen = LoadGenerator(Engine(router, [conn]), args.address, args.concurrency, args.rate)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    while True:
        if not gen.pump(0.2, stdin=True):
            continue
        line = sys.stdin.readline()
        if not line:
            return 0
        cmd = json.loads(line)
        if cmd["cmd"] == "run":
            reply = gen.run(int(cmd["n"]))
        elif cmd["cmd"] == "warm":
            reply = gen.warm(int(cmd["n"]))
        elif cmd["cmd"] == "kill":
            reply = gen.kill(int(cmd["n"]))
        elif cmd["cmd"] == "status":
            reply = gen.status()
        else:
            return 0
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
