"""fipsike's side of a cell, behind one small interface.

`FipsikeSide` is what the runner needs of fipsike: start, up, status, rekeys, down, kill -9 and a
restart. The matrix runs the real daemon (daemon_side.DaemonSide). `EngineSide` here is the sans-I/O
Engine, fipsike's XfrmKernel (real SAs and policies in the namespace) and UDP sockets on 500 and 4500
(the latter with UDP_ENCAP_ESPINUDP so the kernel takes ESP in UDP off it), driven by a thread: the
daemon's job in miniature, kept to tell a daemon bug from an engine bug (`--fipsike-side engine`).
Being in-process, it has no kill -9 and restart: they raise NeedsDaemon, and the cell says so.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from fipsike.ike.actions import (
    Action,
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
    TrafficSelectorSpec,
)
from fipsike.ike.config import Connection
from fipsike.ike.engine import Engine
from fipsike.kernel.types import (
    Direction,
    KernelError,
    Mode,
    PolicyAction,
    PolicySpec,
    SaSpec,
    Template,
    TrafficSelector,
    UdpEncap,
)
from fipsike.kernel.xfrm import XfrmKernel
from providers.algorithms import Integrity

CLONE_NEWNET = 0x40000000
NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948 2.2: IKE on port 4500
UDP_ENCAP = 100  # linux/udp.h
UDP_ENCAP_ESPINUDP = 2  # RFC 3948 framing


class NeedsDaemon(Exception):
    """This check needs the fipsike daemon (a process to kill -9 and restart)."""


class FipsikeSide(Protocol):
    name: str
    start_seconds: list[float]  # how long each start (and restart) took to be ready

    def start(self) -> float:
        """Ready to negotiate (sockets bound, kernel opened); seconds it took."""
        ...

    def stop(self) -> None:
        """Orderly stop: everything fipsike installed is removed from the kernel."""
        ...

    def up(self, timeout: float = 20.0) -> tuple[bool, str]:
        """Initiate connection "gw" with its child; (ok, why not)."""
        ...

    def wait_up(self, timeout: float = 20.0) -> bool:
        """Wait until a Child SA is installed (the peer initiated)."""
        ...

    def status(self) -> list[dict[str, Any]]:
        """The IKE SAs with their Child SAs, as `fipsike status --json` shows them."""
        ...

    def child_spis(self) -> set[tuple[int, int]]:
        """(spi_in, spi_out) of the installed Child SAs."""
        ...

    def rekey_child(self) -> None: ...

    def rekey_ike(self) -> None: ...

    def down(self) -> None:
        """Delete the IKE SA (with its Child SAs) from fipsike's side."""
        ...

    def kill9(self) -> None:
        """kill -9 of the fipsike process: no Delete sent, the kernel state stays."""
        ...

    def restart(self) -> float:
        """Start again after kill9 and bring the tunnel back; seconds until a Child SA carries traffic."""
        ...

    def ike_names(self) -> list[str]:
        """Names of the IKE SAs (a rekeyed IKE SA gets a new one)."""
        ...

    def owned_state(self) -> tuple[int, int]:
        """(SAs, policies) fipsike owns in its namespace's kernel (the daemon: `fipsike xfrm --json --netns`)."""
        ...

    def events(self) -> list[str]:
        """What happened, as short tags: "established", "rekeyed", "deleted:<why>", "failed:<why>",
        "child-failed:<notify>", "dead-peer:<action>", "kernel-error:<errno>", "child-installed",
        and the event tags of warning/error log lines (e.g. "authentication-failed")."""
        ...

    def wait_event(self, pred: Callable[[str], bool], timeout: float, since: int = 0) -> bool:
        """Until an event from index `since` on satisfies `pred`."""
        ...

    def log_lines(self) -> list[str]:
        """fipsike's log, one "level event message" line each (never key material)."""
        ...


def _sockets_in_netns(netns: str, address: str, ports: tuple[int, ...] = (500, 4500)) -> dict[int, socket.socket]:
    """UDP sockets made by a thread that joined the namespace (setns(2) is per thread)."""
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
                if port == 4500:
                    s.setsockopt(socket.IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
                s.setblocking(False)
                out[port] = s
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        for s in out.values():
            s.close()
        raise err[0]
    return out


def _networks(ts: tuple[TrafficSelectorSpec, ...]) -> list[tuple[Any, int]]:
    out: list[tuple[Any, int]] = []
    for t in ts:
        for net in ipaddress.summarize_address_range(ipaddress.ip_address(t.start), ipaddress.ip_address(t.end)):
            out.append((net, t.protocol))
    return out


class EngineSide:
    """fipsike = Engine + XfrmKernel + two UDP sockets + a thread, in network namespace `netns`."""

    name = "engine"

    def __init__(self, router: Any, netns: str, address: str, connection: Connection) -> None:
        self.router = router
        self.netns = netns
        self.address = address
        self.conn = connection
        self.engine: Engine | None = None
        self.kernel: XfrmKernel | None = None
        self.socks: dict[int, socket.socket] = {}
        self.lock = threading.RLock()
        self._events: list[str] = []
        self.logs: list[Log] = []
        self.errors: list[str] = []  # kernel calls that failed
        self._policies: dict[int, list[PolicySpec]] = {}
        self._deadline: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0 = time.monotonic()
        self.start_seconds: list[float] = []

    def now(self) -> float:
        return time.monotonic() - self.t0

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> float:
        t = time.monotonic()
        self.kernel = XfrmKernel(self.router, netns=self.netns, events=False)
        self.kernel.flush_owned()  # what a crashed run left behind
        self.socks = _sockets_in_netns(self.netns, self.address)
        self.engine = Engine(self.router, [self.conn])
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fipsike-engine", daemon=True)
        self._thread.start()
        self.start_seconds.append(time.monotonic() - t)
        return self.start_seconds[-1]

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for s in self.socks.values():
            s.close()
        self.socks = {}

    def stop(self) -> None:
        self._halt()
        if self.kernel is not None:
            report = self.kernel.flush_owned()
            self.errors += [str(e) for e in report.errors]
            self.kernel.close()
            self.kernel = None
        self.engine = None

    def kill9(self) -> None:
        raise NeedsDaemon("kill -9 and restart need the fipsike daemon (a process); the engine driver is in-process")

    def restart(self) -> float:
        raise NeedsDaemon("kill -9 and restart need the fipsike daemon")

    # --- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = 0.05
            if self._deadline is not None:
                wait = max(0.0, min(wait, self._deadline - self.now()))
            try:
                r, _, _ = select.select(list(self.socks.values()), [], [], wait)
            except (OSError, ValueError):
                return
            with self.lock:
                if self.engine is None:
                    return
                for s in r:
                    port = s.getsockname()[1]
                    try:
                        data, src = s.recvfrom(65535)
                    except (BlockingIOError, OSError):
                        continue
                    if port == 4500:
                        if data[:4] != NON_ESP_MARKER:
                            continue  # ESP in UDP is the kernel's (UDP_ENCAP); a keepalive is 1 octet
                        data = data[4:]
                    self._handle(self.engine.receive(data, src, (self.address, port), self.now()))
                if self._deadline is not None and self.now() >= self._deadline:
                    self._deadline = None
                    self._handle(self.engine.timer(self.now()))

    def _call(self, fn: Callable[[Engine, float], list[Action]]) -> None:
        with self.lock:
            if self.engine is None:
                raise RuntimeError("fipsike side not started")
            self._handle(fn(self.engine, self.now()))

    def _handle(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, SendDatagram):
                port = a.src[1]
                data = NON_ESP_MARKER + a.data if port == 4500 else a.data
                try:
                    self.socks[port].sendto(data, a.dst)
                except OSError as e:
                    self.errors.append(f"send to {a.dst}: {e.strerror}")
            elif isinstance(a, ArmTimer):
                self._deadline = a.at if self._deadline is None else min(self._deadline, a.at)
            elif isinstance(a, Log):
                self.logs.append(a)
                if a.level in ("warning", "error"):
                    self._events.append(a.event)
            elif isinstance(a, InstallChildSa):
                if self._install(a):
                    self._events.append("child-installed")
            elif isinstance(a, DeleteChildSa):
                self._delete(a)
                self._events.append("child-deleted")
            elif isinstance(a, IkeSaEstablished):
                self._events.append("established")
            elif isinstance(a, IkeSaRekeyed):
                self._events.append("rekeyed")
            elif isinstance(a, IkeSaDeleted):
                self._events.append(f"deleted:{a.reason}")
            elif isinstance(a, IkeSaFailed):
                self._events.append(f"failed:{a.reason}")
            elif isinstance(a, ChildSaFailed):
                self._events.append(f"child-failed:{a.notify}")
            elif isinstance(a, DeadPeer):
                self._events.append(f"dead-peer:{a.action}")

    # --- kernel ---------------------------------------------------------------------------------
    def _install(self, a: InstallChildSa) -> bool:
        """Both SAs and the policies; False (with a "kernel-error:<errno>" event) when the kernel refused."""
        assert self.kernel is not None
        mode = Mode.TUNNEL if a.mode == "tunnel" else Mode.TRANSPORT
        encap = UdpEncap(a.encap[0], a.encap[1]) if a.encap else None
        try:
            for d, inbound in ((a.inbound, True), (a.outbound, False)):
                self.kernel.install_sa(SaSpec(
                    src=ipaddress.ip_address(d.src), dst=ipaddress.ip_address(d.dst), spi=d.spi, reqid=a.reqid,
                    mode=mode, encryption=d.encr, encryption_key=d.encr_key, integrity=d.integ or Integrity.NONE,
                    integrity_key=d.integ_key, inbound=inbound, esn=a.esn,
                    encap=UdpEncap(encap.dst_port, encap.src_port) if (encap and inbound) else encap,
                    name=f"{a.connection}/{a.child}"))
            local, remote = ipaddress.ip_address(a.outbound.src), ipaddress.ip_address(a.outbound.dst)
            specs: list[PolicySpec] = []
            for lnet, proto in _networks(a.local_ts):
                for rnet, _ in _networks(a.remote_ts):
                    sel = TrafficSelector(lnet, rnet, proto)
                    specs.append(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC, Template(local, remote, a.reqid)))
                    specs.append(PolicySpec(sel.reversed(), Direction.IN, PolicyAction.IPSEC,
                                            Template(remote, local, a.reqid)))
            for p in specs:
                self.kernel.install_policy(p)
            self._policies[a.reqid] = specs
        except KernelError as e:
            self.errors.append(str(e))
            self._events.append(f"kernel-error:{e.errno_name}")
            return False
        return True

    def _delete(self, a: DeleteChildSa) -> None:
        assert self.kernel is not None
        for spi, dst in ((a.inbound_spi, a.local), (a.outbound_spi, a.remote)):
            try:
                self.kernel.delete_sa(ipaddress.ip_address(dst), spi)
            except KernelError:
                pass  # gone already (a hard expiry)
        if not a.keep_policies:
            for p in self._policies.pop(a.reqid, []):
                try:
                    self.kernel.remove_policy(p.selector, p.direction)
                except KernelError:
                    pass

    # --- commands -------------------------------------------------------------------------------
    def up(self, timeout: float = 20.0) -> tuple[bool, str]:
        mark = len(self._events)
        self._call(lambda e, t: e.initiate(self.conn.name, t))
        ok = self.wait_event(lambda ev: ev == "child-installed" or ev.startswith(("failed:", "child-failed:",
                                                                                  "kernel-error:")),
                             timeout, since=mark)
        new = self._events[mark:]
        if ok and "child-installed" in new:
            return True, ""
        return False, ", ".join(new[-4:]) or f"nothing within {timeout} s"

    def wait_up(self, timeout: float = 20.0) -> bool:
        return self.wait_for(lambda: bool(self.child_spis()), timeout)

    def wait_for(self, cond: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if cond():
                    return True
            time.sleep(0.05)
        return False

    def wait_event(self, pred: Callable[[str], bool], timeout: float, since: int = 0) -> bool:
        return self.wait_for(lambda: any(pred(e) for e in self._events[since:]), timeout)

    def status(self) -> list[dict[str, Any]]:
        with self.lock:
            return self.engine.status(self.now()) if self.engine is not None else []

    def child_spis(self) -> set[tuple[int, int]]:
        with self.lock:
            if self.engine is None:
                return set()
            return {(c.spi_in, c.spi_out) for sa in self.engine.ike_sas() for c in sa.children.values()
                    if c.state.value in ("installed", "rekeying")}

    def ike_names(self) -> list[str]:
        with self.lock:
            return [sa.name for sa in self.engine.ike_sas()] if self.engine is not None else []

    def rekey_child(self) -> None:
        spis = sorted(self.child_spis())
        if not spis:
            raise RuntimeError("no Child SA to rekey")
        self._call(lambda e, t: e.rekey_child(spis[0][0], t))

    def rekey_ike(self) -> None:
        names = self.ike_names()
        if not names:
            raise RuntimeError("no IKE SA to rekey")
        self._call(lambda e, t: e.rekey_ike(names[0], t))

    def down(self) -> None:
        self._call(lambda e, t: e.terminate(self.conn.name, t))

    def events(self) -> list[str]:
        with self.lock:
            return list(self._events)

    def log_lines(self) -> list[str]:
        with self.lock:
            return [f"{lg.level} {lg.event} {lg.message}" for lg in self.logs]

    def owned_state(self) -> tuple[int, int]:
        """(SAs, policies) fipsike owns in its namespace's kernel right now."""
        with self.lock:
            if self.kernel is None:
                return 0, 0
            return len(self.kernel.list_sas()), len(self.kernel.list_policies())


class FipsikePeer:
    """fipsike as the *peer* of a cell (fipsike against itself), with the peers' interface."""

    name = "fipsike"

    def __init__(self, side: FipsikeSide) -> None:
        self.side = side

    def start(self) -> float:
        return self.side.start()

    def stop(self) -> None:
        self.side.stop()

    def kill9(self) -> None:
        if isinstance(self.side, EngineSide):
            self.side._halt()  # silent from now on; its kernel state stays, as after a crash
        else:
            self.side.kill9()

    def initiate(self, timeout: int = 20) -> tuple[bool, str]:
        return self.side.up(timeout)

    def rekey_child(self) -> None:
        self.side.rekey_child()

    def rekey_ike(self) -> None:
        self.side.rekey_ike()

    def terminate(self) -> None:
        self.side.down()

    def ike_sas(self) -> list[dict[str, Any]]:
        return self.side.status()

    def child_spis(self) -> set[tuple[int, int]]:
        return self.side.child_spis()

    def log_text(self) -> str:
        return "\n".join(self.side.log_lines())
