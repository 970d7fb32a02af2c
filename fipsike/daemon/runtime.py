"""The Daemon: the engine, the kernel, the IKE sockets and the control socket on one asyncio loop.

Start-up order (`prepare`, then `Daemon.run`): self-tests (done by the caller: the module must be
operational), config, removal of fipsike-owned XFRM state left by a crash, sockets, then the
auto= actions (route/ondemand install trap policies, start initiates). Then READY=1.

Everything the engine returns goes through `carry`: datagrams out, the one timer re-armed,
log lines, and InstallChildSa / DeleteChildSa to the kernel through the Installer. The engine's inbound
SPIs come from the kernel too (ALLOCSPI, fipsike.daemon.kernel_spis), so the inbound SA's install
completes the larval SA that reserved its SPI. Kernel events come back: ACQUIRE initiates the
trapped connection, a soft EXPIRE rekeys, a hard one deletes.

Failure handling: an exception in one callback (a datagram, a timer, a kernel event, a control
request) is logged by type and ends that piece of work only; a Child SA the kernel refuses is
deleted again (and the peer told), so no half-installed tunnel black-holes traffic. An opportunistic
instance's refused Child SA fails the instance instead: its IKE SA is deleted and its failure shunt
goes in (fipsike.daemon.opportunistic.OeBridge.child_refused).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fipsike.daemon.config_seam import (
    Auto,
    ConfigError,
    ConfigPaths,
    ConnEntry,
    DaemonConfig,
    KeyImporter,
    load_config,
    with_reqids,
)
from fipsike.daemon.control import ControlServer, JsonObject, RequestError
from fipsike.daemon.eventlog import EventLog
from fipsike.daemon.installer import Installer, Trap
from fipsike.daemon.kernel_spis import KernelSpis
from fipsike.daemon.opportunistic import OeBridge
from fipsike.daemon.sdnotify import Notifier
from fipsike.daemon.udp import NAT_KEEPALIVE, NAT_T_PORT, IkeSocket, IkeSockets
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
)
from fipsike.ike.config import Connection
from fipsike.ike.engine import Engine
from fipsike.ike.sa import IkeState
from fipsike.kernel.api import Kernel
from fipsike.kernel.types import Acquire, EventsLost, Expire, KernelError, Mode
from providers.handles import PrivateKey

NAT_KEEPALIVE_INTERVAL = 20.0  # RFC 3948 4: "keepalive interval ... 20 seconds" is the common default
SHUTDOWN_GRACE = 2.0  # seconds to let DELETE exchanges finish on SIGTERM
ACQUIRE_HOLDDOWN = 10.0  # one negotiation per trapped connection at a time
# reqids the daemon gives Child SAs; inside fipsike.kernel's Ownership range, above the engine's own
DAEMON_REQID_BASE = 0x4649_8000
WILDCARDS = ("%any", "0.0.0.0", "::")  # noqa: S104 - peers that cannot be routed to


@dataclass(frozen=True)
class Options:
    paths: ConfigPaths
    ctl: Path
    kernel: str = "xfrm"


class ReqidBook:
    """Stable reqids per (connection, child) for the daemon's lifetime: reload keeps them."""

    def __init__(self, base: int = DAEMON_REQID_BASE) -> None:
        self._book: dict[tuple[str, str], int] = {}
        self._next = base

    def __call__(self, conn: str, child: str) -> int:
        key = (conn, child)
        if key not in self._book:
            self._book[key] = self._next
            self._next += 1
        return self._book[key]


class Daemon:
    def __init__(self, router: Any, kernel: Kernel, sockets: IkeSockets, config: DaemonConfig, options: Options,
                 log: EventLog, *, loader: Callable[[ConfigPaths, KeyImporter], DaemonConfig] = load_config,
                 reqids: ReqidBook | None = None, notifier: Notifier | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.router = router
        self.kernel = kernel
        self.sockets = sockets
        self.options = options
        self.log = log
        self.loader = loader
        self.reqids = reqids or ReqidBook()
        self.notifier = notifier or Notifier()
        self.clock = clock
        # opportunistic: the group conns and files, read by the bridge; their conns are its, not the engine's
        self.oe = OeBridge.load(self, config.parsed, options.paths.ipsecdir, router, self.reqids)
        config = self.oe.exclude(config)
        self.config = config
        # inbound SPIs come from the kernel (ALLOCSPI): reserved there from the offer to the install
        spis = KernelSpis(kernel, lambda level, event, message: self.event(level, event, None, message))
        self.engine = Engine(router, [e.connection for e in config.by_name().values()], crl_source=config.crls,
                             spis=spis)
        self.installer = Installer(kernel)
        self.control = ControlServer(options.ctl, self, config.ctl_group)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # the engine deadline self._timer is armed for
        self._stop: asyncio.Event | None = None
        self._subscribers: set[asyncio.Queue[JsonObject]] = set()
        self._up_waiters: dict[str, list[asyncio.Future[JsonObject]]] = {}
        self._acquiring: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- life cycle ------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        for s in self.sockets.sockets:
            loop.add_reader(s.fileno(), self._guarded, "datagram", self._on_datagram, s)
        loop.add_reader(self.kernel.fileno(), self._guarded, "kernel event", self._on_kernel)
        await self.control.start()
        self.event("info", "control-listening", None, f"control socket {self.options.ctl}")
        self._guarded("opportunistic", self.oe.start)  # opportunistic: the group policies
        for e in self.config.by_name().values():
            self._guarded("auto", self._apply_auto, e)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        loop.call_later(NAT_KEEPALIVE_INTERVAL, self._guarded, "keepalive", self._keepalives)
        if self.notifier.watchdog_interval:
            loop.call_later(self.notifier.watchdog_interval, self._watchdog)
        self.notifier.notify(READY="1", STATUS=self._status_line())
        self.event("info", "daemon-ready", None, f"{len(self.config.by_name())} connections loaded")
        await self._stop.wait()
        await self.shutdown()
        return 0

    async def shutdown(self) -> None:
        self.notifier.notify(STOPPING="1", STATUS="deleting SAs")
        self.oe.stop()  # opportunistic
        self.event("info", "daemon-stopping", None, "sending DELETE for every IKE SA")
        now = self.clock()
        for name in {sa["connection"] for sa in self.engine.status(now)}:
            self._guarded("shutdown", lambda n=name: self.carry(self.engine.terminate(str(n), self.clock())))
        deadline = now + SHUTDOWN_GRACE
        while self.engine.ike_sas() and self.clock() < deadline:
            await asyncio.sleep(0.05)
        for sa in self.engine.ike_sas():  # the peer did not answer: forget locally
            self._guarded("shutdown", lambda n=sa.name: self.carry(self.engine.delete_ike(n, self.clock())))
        for reqid in list(self.installer.traps):
            self._guarded("shutdown", self.installer.unroute, reqid)
        try:
            report = self.kernel.flush_owned()
            self.event("info", "kernel-cleanup", None, f"removed {report.sas_removed} SAs and "
                                                       f"{report.policies_removed} policies")
        except KernelError as exc:
            self.event("error", "kernel-cleanup-failed", None, str(exc))
        await self.control.close()
        loop = asyncio.get_running_loop()
        for s in self.sockets.sockets:
            loop.remove_reader(s.fileno())
        with contextlib.suppress(KernelError):
            loop.remove_reader(self.kernel.fileno())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sockets.close()
        self.kernel.close()
        self.event("info", "daemon-stopped", None, "")

    def _on_sighup(self) -> None:
        self.event("info", "reload-requested", None, "SIGHUP")
        try:
            self.reload()
        except ConfigError as exc:
            self.event("error", "reload-failed", None, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bad reload leaves the running config alone
            self.log.unexpected("reload", exc)

    def _watchdog(self) -> None:
        self.notifier.notify(WATCHDOG="1")
        if self._loop is not None and self.notifier.watchdog_interval:
            self._loop.call_later(self.notifier.watchdog_interval, self._watchdog)

    def _status_line(self) -> str:
        # len() of the SA table, not of ike_sas() (a list copy): this runs after every packet
        return f"{len(self.engine.sas)} IKE SAs, {len(self.installer.children)} Child SAs"

    # --- the one guard ------------------------------------------------------------------------------
    def _guarded(self, where: str, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - logged by type; this piece of work ends here
            self.log.unexpected(where, exc)

    def _guarded_bool(self, where: str, fn: Callable[[str], bool], arg: str) -> bool:
        try:
            return fn(arg)
        except Exception as exc:  # noqa: BLE001 - logged by type; False: the caller does its default
            self.log.unexpected(where, exc)
            return False

    def unexpected(self, where: str, exc: BaseException) -> None:
        self.log.unexpected(where, exc)

    # --- inputs -------------------------------------------------------------------------------------
    def _on_datagram(self, sock: IkeSocket) -> None:
        for _ in range(64):  # bounded per wake-up, so one busy socket cannot starve the others
            dgram = sock.receive()
            if dgram is None:
                return
            if not dgram.data:
                continue  # a NAT keepalive
            if self.oe.screen(dgram):  # opportunistic: an unknown peer's IKE_SA_INIT
                continue
            self.carry(self.engine.receive(dgram.data, dgram.src, dgram.dst, self.clock()))

    def _on_timer(self) -> None:
        self._timer = None
        self.carry(self.engine.timer(self.clock()))

    def _on_kernel(self) -> None:
        for ev in self.kernel.read_events(0.0):
            if isinstance(ev, Acquire):
                if not self.oe.on_acquire(ev):  # opportunistic: a group trap's ACQUIRE
                    self._on_acquire(ev)
            elif isinstance(ev, Expire):
                spi_in = self.installer.inbound_spi_of(ev.dst, ev.spi)
                if spi_in is None:
                    continue
                child = self.installer.children.get(spi_in)
                self.event("info", "child-sa-expire-hard" if ev.hard else "child-sa-expire-soft",
                           child.connection if child else None, f"SPI {ev.spi:08x} after {ev.bytes} bytes")
                self.carry(self.engine.expire(spi_in, ev.hard, self.clock()))
            elif isinstance(ev, EventsLost):
                self.event("warning", "kernel-events-lost", None, "XFRM event socket overflowed")

    def _on_acquire(self, ev: Acquire) -> None:
        trap = self.installer.trap_for(ev.reqid)
        if trap is None:
            return
        now = self.clock()
        if self._acquiring.get(trap.connection, -1e18) > now:
            return
        self._acquiring[trap.connection] = now + ACQUIRE_HOLDDOWN
        self.event("info", "acquire", trap.connection, f"packet {ev.selector} hit the trap")
        self.carry(self.engine.initiate(trap.connection, now, child=trap.child))

    def _keepalives(self) -> None:
        """RFC 3948 2.3: behind a NAT, a one-octet 0xFF to the peer's 4500 keeps the mapping open."""
        if self._loop is not None:
            self._loop.call_later(NAT_KEEPALIVE_INTERVAL, self._guarded, "keepalive", self._keepalives)
        # the SAs themselves, not engine.status(): that builds a report of every SA, every 20 s
        for sa in self.engine.sas:
            if sa.state is not IkeState.ESTABLISHED or not sa.nat_local:
                continue
            try:
                self.sockets.send(NAT_KEEPALIVE, (sa.local[0], NAT_T_PORT), sa.remote)
            except OSError as exc:
                self.event("warning", "keepalive-failed", sa.conn.name, exc.strerror or "send failed")

    # --- the engine's actions -----------------------------------------------------------------------
    def carry(self, actions: Iterable[Action]) -> None:
        """Carry out the engine's actions in order. An unexpected exception ends only the action it hit
        (logged by type); a Child SA that could not be installed is deleted again."""
        refused: list[tuple[int, str]] = []  # (inbound SPI, connection) of each Child SA not installed
        for a in actions:
            try:
                self._carry_one(a, refused)
                if not (isinstance(a, InstallChildSa) and refused and refused[-1][0] == a.inbound.spi):
                    self.oe.observe(a)  # opportunistic: instances' outcomes
            except Exception as exc:  # noqa: BLE001 - one action's failure must not drop the ones after it
                conn = getattr(a, "connection", None)
                self.log.unexpected(f"carrying {type(a).__name__}", exc, conn if isinstance(conn, str) else None)
                if isinstance(a, InstallChildSa):
                    refused.append((a.inbound.spi, a.connection))
                    self._resolve_up(a.connection, False, f"Child SA {a.child} not installed (internal error)")
        for spi, conn in refused:
            # opportunistic: an instance fails whole (failure shunt, its IKE SA deleted); the rest lose the Child SA
            if not self._guarded_bool("opportunistic", self.oe.child_refused, conn):
                self.carry(self.engine.delete_child(spi, self.clock()))
        if self.notifier.enabled:  # not under systemd: no status line to build for every packet
            self.notifier.notify(STATUS=self._status_line())

    def _carry_one(self, a: Action, refused: list[tuple[int, str]]) -> None:
        if isinstance(a, SendDatagram):
            try:
                self.sockets.send(a.data, a.src, a.dst)
            except OSError as exc:
                self.event("warning", "send-failed", None, f"to {a.dst[0]}:{a.dst[1]}: "
                                                           f"{exc.strerror or type(exc).__name__}")
        elif isinstance(a, ArmTimer):
            self._arm(a.at)
        elif isinstance(a, Log):
            self.event(a.level, a.event, self._conn_of(a.message), a.message)
        elif isinstance(a, InstallChildSa):
            self._install(a, refused)
        elif isinstance(a, DeleteChildSa):
            self._remove(a)
        elif isinstance(a, IkeSaEstablished):
            self.event("info", "ike-sa-up", a.connection, f"{a.ike_sa} {a.local_id} === {a.remote_id} {a.suite}",
                       ike_sa=a.ike_sa)
        elif isinstance(a, IkeSaRekeyed):
            self.event("info", "ike-sa-rekeyed", a.connection, f"{a.old_ike_sa} -> {a.new_ike_sa}")
        elif isinstance(a, IkeSaDeleted):
            self.event("info", "ike-sa-down", a.connection, f"{a.ike_sa}: {a.reason}")
        elif isinstance(a, IkeSaFailed):
            self.event("warning", "ike-sa-failed", a.connection, a.reason)
            self._resolve_up(a.connection, False, f"IKE SA failed: {a.reason}")
        elif isinstance(a, ChildSaFailed):
            self.event("warning", "child-sa-failed", a.connection, f"{a.child}: {a.notify}")
            self._resolve_up(a.connection, False, f"Child SA {a.child} refused: {a.notify}")
        elif isinstance(a, DeadPeer):
            self.event("warning", "dead-peer-action", a.connection, f"{a.ike_sa}: {a.action}")
            entry = self.config.by_name().get(a.connection)
            if a.action == "hold" and entry is not None:
                # dpdaction=hold: the traffic waits in a trap (no clear-text leak) and its next
                # packet renegotiates
                try:
                    self._route(entry)
                except RequestError as exc:
                    self.event("warning", "dead-peer-hold-failed", a.connection, str(exc))

    def _install(self, a: InstallChildSa, refused: list[tuple[int, str]]) -> None:
        try:
            self.installer.install(a)
        except KernelError as exc:
            self.event("error", "child-sa-install-failed", a.connection, f"{a.child}: {exc}")
            self._resolve_up(a.connection, False, f"the kernel refused Child SA {a.child}: {exc}")
            refused.append((a.inbound.spi, a.connection))
            return
        self._acquiring.pop(a.connection, None)
        self.event("info", "child-sa-up", a.connection,
                   f"{a.child} {a.mode} SPIs {a.inbound.spi:08x}_i {a.outbound.spi:08x}_o reqid {a.reqid:#x}"
                   + (f" rekeys {a.rekey_of:08x}" if a.rekey_of is not None else ""), ike_sa=a.ike_sa)
        self._resolve_up(a.connection, True, f"Child SA {a.child} established (SPIs {a.inbound.spi:08x}_i "
                                             f"{a.outbound.spi:08x}_o)")

    def _remove(self, a: DeleteChildSa) -> None:
        try:
            self.installer.remove(a)
        except KernelError as exc:
            self.event("warning", "child-sa-remove-failed", a.connection, f"{a.child}: {exc}")
        self.event("info", "child-sa-down", a.connection,
                   f"{a.child} SPIs {a.inbound_spi:08x}_i {a.outbound_spi:08x}_o: {a.reason}")

    def _arm(self, at: float) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            if at == self._timer_at:
                return  # most packets leave the earliest deadline (another SA's) where it was
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(max(0.0, at - self.clock()), self._guarded, "timer", self._on_timer)

    def _conn_of(self, message: str) -> str | None:
        first = message.split(" ", 1)[0].split("/", 1)[0].rstrip(":")
        return first if first in self.config.by_name() else None

    # --- events and the listen stream ----------------------------------------------------------------
    def event(self, level: str, event: str, conn: str | None, message: str, **extra: str) -> None:
        self.log(level, event, conn, message)
        if not self._subscribers:
            return
        item: JsonObject = {"event": event, "level": level, "connection": conn, "message": message,
                            "time": round(time.time(), 3), **extra}
        for q in list(self._subscribers):
            try:
                q.put_nowait(item)
            except asyncio.QueueFull:
                pass  # a listener that does not read loses events, never the daemon's memory

    def subscribe(self) -> asyncio.Queue[JsonObject]:
        q: asyncio.Queue[JsonObject] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, queue: asyncio.Queue[JsonObject]) -> None:
        self._subscribers.discard(queue)

    def _resolve_up(self, conn: str, ok: bool, reason: str) -> None:
        for fut in self._up_waiters.pop(conn, []):
            if not fut.done():
                fut.set_result({"established": ok, "reason": reason})

    # --- auto=, routes -------------------------------------------------------------------------------
    def _apply_auto(self, e: ConnEntry) -> None:
        if e.auto.traps:
            self._route(e)
        elif e.auto is Auto.START:
            self.event("info", "initiate", e.name, "auto=start")
            self.carry(self.engine.initiate(e.name, self.clock()))

    def _traps(self, e: ConnEntry) -> list[Trap]:
        conn = e.connection
        if not conn.local_addrs or not conn.remote_addrs or conn.remote_addrs[0] in WILDCARDS:
            raise RequestError(f"connection {e.name} has no fixed remote address to route to")
        local, remote = ipaddress.ip_address(conn.local_addrs[0]), ipaddress.ip_address(conn.remote_addrs[0])
        return [Trap(e.name, c.name, c.reqid, local, remote, Mode.TUNNEL if c.mode == "tunnel" else Mode.TRANSPORT,
                     c.local_ts, c.remote_ts) for c in conn.children]

    def _route(self, e: ConnEntry) -> None:
        for trap in self._traps(e):
            self.installer.route(trap)
        self.event("info", "route", e.name, "trap policies installed")

    def _unroute(self, e: ConnEntry) -> None:
        for c in e.connection.children:
            self.installer.unroute(c.reqid)
        self.event("info", "unroute", e.name, "trap policies removed")

    # --- reload --------------------------------------------------------------------------------------
    def reload(self) -> JsonObject:
        before = _keys_of(e.connection for e in self.config.connections)
        new = with_reqids(self.loader(self.options.paths, self.router), self.reqids)
        for warning in new.warnings:
            self.event("warning", "config-warning", None, warning)
        new = self.oe.exclude(new)  # opportunistic: the group conns are the bridge's
        oe_result = self.oe.reload(new.parsed, self.options.paths.ipsecdir, self.router, self.reqids)
        old_by, new_by = self.config.by_name(), new.by_name()
        removed = sorted(set(old_by) - set(new_by))
        added = sorted(set(new_by) - set(old_by))
        changed = sorted(n for n in set(old_by) & set(new_by) if old_by[n].source != new_by[n].source)
        for name in removed + changed:
            self.carry(self.engine.terminate(name, self.clock()))
            self._unroute(old_by[name])
            self.engine.remove_connection(name)
        if self.config.crls is not None:  # the engine keeps its source: point it at the new folder
            self.config.crls.follow(new.crls)
            new = dataclasses.replace(new, crls=self.config.crls)
        self.config = new
        self.oe.check_crls()  # opportunistic: the group conns' CAs check the new folder's CRLs too
        for name in added + changed:
            self.engine.add_connection(new_by[name].connection)
            self._guarded("auto", self._apply_auto, new_by[name])
        released = self._release_keys(before)
        self.event("info", "reloaded", None, f"added {added} removed {removed} changed {changed}"
                   + (f"; {released} unused key handles released" if released else ""))
        return {"added": added, "removed": removed, "changed": changed, **oe_result}

    def _release_keys(self, candidates: dict[int, PrivateKey]) -> int:
        """Wipe the private key handles of the replaced configuration that nothing uses any more: not the
        new configuration, not the engine's connections (an unchanged conn keeps its first Connection), not
        an IKE SA still under way. Without this every reload would leave one more handle per key."""
        in_use = _keys_of(e.connection for e in self.config.connections)
        in_use.update(_keys_of(self.engine.connections.values()))
        in_use.update(_keys_of(c for sa in self.engine.sas for c in (sa.conn, *sa.candidates)))
        n = 0
        for ident, key in candidates.items():
            if ident not in in_use and not key.wiped:
                key.wipe()
                n += 1
        return n

    # --- control requests ----------------------------------------------------------------------------
    async def request(self, cmd: str, args: JsonObject) -> object:
        if cmd == "status":
            return self.status()
        if cmd == "trafficstatus":
            return self.trafficstatus()
        if cmd == "reload":
            try:
                return self.reload()
            except ConfigError as exc:
                raise RequestError(f"reload failed, running configuration kept: {exc}") from None
        if cmd == "oe-initiate":  # opportunistic
            return await self.oe.initiate(args)
        entry = self._entry(args)
        now = self.clock()
        if cmd == "up":
            return await self._up(entry, args)
        if cmd == "down":
            n = sum(1 for sa in self.engine.status(now) if sa["connection"] == entry.name)
            self.carry(self.engine.terminate(entry.name, now))
            self.event("info", "down", entry.name, f"{n} IKE SAs deleted on request")
            return {"ike_sas": n}
        if cmd == "rekey":
            return self._rekey(entry, bool(args.get("ike", False)))
        if cmd == "route":
            self._route(entry)
            return {"routed": True}
        if cmd == "unroute":
            self._unroute(entry)
            return {"routed": False}
        raise RequestError(f"unknown command {cmd}")

    def _entry(self, args: JsonObject) -> ConnEntry:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise RequestError("\"args.name\" (the connection's name) is required")
        entry = self.config.by_name().get(name)
        if entry is None:
            raise RequestError(f"no connection named {name!r}")
        return entry

    async def _up(self, entry: ConnEntry, args: JsonObject) -> JsonObject:
        timeout = args.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise RequestError("\"args.timeout\" must be 1..600 seconds")
        up = [c for c in self.installer.children.values() if c.connection == entry.name]
        if up:
            return {"established": True, "reason": f"already up (SPIs {up[0].spi_in:08x}_i {up[0].spi_out:08x}_o)"}
        # never a second IKE SA for one connection (ipsec up / swanctl --initiate on one that is up or
        # coming up): wait for the negotiation under way, or add the Child SA to the IKE SA that is up
        sas = [sa for sa in self.engine.sas if sa.conn.name == entry.name]
        pending = [sa.name for sa in sas if sa.state in (IkeState.INIT_SENT, IkeState.AUTH_SENT)]
        established = [sa.name for sa in sas if sa.state is IkeState.ESTABLISHED]
        fut: asyncio.Future[JsonObject] = asyncio.get_running_loop().create_future()
        self._up_waiters.setdefault(entry.name, []).append(fut)
        if pending:
            self.event("info", "initiate", entry.name, f"on request: joins the negotiation of {pending[0]}")
        elif established and entry.connection.children:
            self.event("info", "initiate", entry.name, f"on request: Child SA on {established[0]}")
            self.carry(self.engine.initiate(entry.name, self.clock(), child=entry.connection.children[0].name))
        else:
            self.event("info", "initiate", entry.name, "on request")
            self.carry(self.engine.initiate(entry.name, self.clock()))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), float(timeout))
        except TimeoutError:
            return {"established": False, "reason": f"no answer within {timeout} s (negotiation continues)"}
        finally:
            waiters = self._up_waiters.get(entry.name, [])
            if fut in waiters:
                waiters.remove(fut)

    def _rekey(self, entry: ConnEntry, ike: bool) -> JsonObject:
        now = self.clock()
        n = 0
        for sa in self.engine.status(now):
            if sa["connection"] != entry.name or sa["state"] != "established":
                continue
            if ike:
                self.carry(self.engine.rekey_ike(str(sa["name"]), now))
                n += 1
            else:
                for c in sa["children"]:
                    self.carry(self.engine.rekey_child(int(c["spi_in"], 16), now))
                    n += 1
        if not n:
            raise RequestError(f"connection {entry.name} has no established {'IKE' if ike else 'Child'} SA to rekey")
        self.event("info", "rekey", entry.name, f"{n} {'IKE' if ike else 'Child'} SAs on request")
        return {"rekeyed": n, "ike": ike}

    def status(self) -> JsonObject:
        routed = {t.connection for t in self.installer.traps.values()}
        conns: list[JsonObject] = []
        for e in self.config.by_name().values():
            c = e.connection
            conns.append({"name": e.name, "auto": e.auto.value, "routed": e.name in routed,
                          "local": list(c.local_addrs), "remote": list(c.remote_addrs),
                          "local_id": c.local_id, "remote_id": c.remote_id,
                          "children": [{"name": k.name, "mode": k.mode, "reqid": k.reqid,
                                        "local_ts": [f"{t.start}-{t.end}" for t in k.local_ts],
                                        "remote_ts": [f"{t.start}-{t.end}" for t in k.remote_ts]}
                                       for k in c.children]})
        return {"connections": conns, "ike_sas": self.engine.status(self.clock()), **self.oe.status()}

    def trafficstatus(self) -> JsonObject:
        out: list[JsonObject] = []
        for c in self.installer.children.values():
            counters = self.installer.counters(c)
            out.append({"connection": c.connection, "child": c.child, "ike_sa": c.ike_sa, "reqid": c.reqid,
                        "spi_in": f"{c.spi_in:08x}", "spi_out": f"{c.spi_out:08x}", "local": str(c.local),
                        "remote": str(c.remote), "in": counters["in"], "out": counters["out"]})
        return {"child_sas": out}


def _keys_of(conns: Iterable[Connection]) -> dict[int, PrivateKey]:
    return {id(c.private_key): c.private_key for c in conns if c.private_key is not None}


def serve(daemon: Daemon) -> int:
    """Run the daemon's loop until SIGTERM / SIGINT; the exit status."""
    return asyncio.run(daemon.run())
