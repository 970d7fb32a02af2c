"""A small test driver: runs a fipsike Engine over real UDP sockets inside a network
namespace, with the in-memory kernel behind it. The translation of InstallChildSa /
DeleteChildSa into kernel calls is the product's (fipsike.daemon.installer.Installer);
only the socket loop here is the test's own (the daemon's is asyncio, fipsike.daemon.runtime).

The sockets are created by a short-lived thread that has joined the namespace
(setns(2) is per thread); a socket stays in the namespace it was made in.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fipsike.daemon.installer import Installer
from fipsike.ike.actions import (
    ArmTimer,
    DeleteChildSa,
    InstallChildSa,
    Log,
    SendDatagram,
)
from fipsike.ike.engine import Engine
from fipsike.kernel.memory import MemoryKernel

CLONE_NEWNET = 0x40000000
NON_ESP_MARKER = b"\x00\x00\x00\x00"


def sockets_in_netns(netns: str, address: str, ports: tuple[int, ...] = (500, 4500)) -> dict[int, socket.socket]:
    out: dict[int, socket.socket] = {}
    err: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((address, port))
                s.setblocking(False)
                out[port] = s
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out


class UdpDriver:
    def __init__(self, engine: Engine, socks: dict[int, socket.socket], address: str) -> None:
        self.engine = engine
        self.socks = socks
        self.address = address
        self.kernel = MemoryKernel()
        self.installer = Installer(self.kernel)
        self.events: list[Any] = []
        self.logs: list[Log] = []
        self.deadline: float | None = None
        self.t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def handle(self, actions: list[Any]) -> None:
        for a in actions:
            if isinstance(a, SendDatagram):
                port = a.src[1]
                data = NON_ESP_MARKER + a.data if port == 4500 else a.data
                self.socks[port].sendto(data, a.dst)
            elif isinstance(a, ArmTimer):
                self.deadline = a.at
            elif isinstance(a, Log):
                self.logs.append(a)
            elif isinstance(a, InstallChildSa):
                self.events.append(a)
                self.installer.install(a)
            elif isinstance(a, DeleteChildSa):
                self.events.append(a)
                self.installer.remove(a)
            else:
                self.events.append(a)

    def poll(self, timeout: float) -> None:
        r, _, _ = select.select(list(self.socks.values()), [], [], timeout)
        for s in r:
            port = s.getsockname()[1]
            try:
                data, src = s.recvfrom(65535)
            except BlockingIOError:
                continue
            if port == 4500:
                if data[:4] != NON_ESP_MARKER:
                    continue  # ESP in UDP: the in-memory kernel does not carry traffic
                data = data[4:]
            # the driver owns the clocks: monotonic `now`, and the wall clock for certificate validity
            self.handle(self.engine.receive(data, src, (self.address, port), self.now(), wall=datetime.now(UTC)))

    def run_until(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("condition not reached; engine log:\n" +
                                   "\n".join(f"{lg.level} {lg.event} {lg.message}" for lg in self.logs[-30:]))
            wait = 0.05
            if self.deadline is not None:
                wait = max(0.0, min(wait, self.deadline - self.now()))
            self.poll(wait)
            if self.deadline is not None and self.now() >= self.deadline:
                self.deadline = None
                self.handle(self.engine.timer(self.now()))

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        self.run_until(lambda: time.monotonic() >= end, seconds + 5)

    def of(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.kernel.close()
