"""The daemon's opportunistic IPsec: fipsike.oe driven by the kernel, the IKE sockets and the engine.

The bridge owns one `Opportunistic` (the sans-I/O core) and carries out its actions, in order (a
restore that follows a Terminate must come after the engine's own policy removals):
InstallPolicy / RemovePolicy to the kernel, Initiate / AcceptPeer / AbandonInitiation / Forget /
Terminate to the engine (through the daemon's `carry`, so Child SAs reach the kernel as any other),
WakeAt to its own timer, Log to the event log.

Inputs (the runtime's hooks, each marked `# opportunistic` there):
- a kernel ACQUIRE whose reqid is a group trap's                     -> `on_acquire`
- an IKE_SA_INIT request that no configured conn takes               -> `screen` (answer or drop it)
- the engine's IkeSaEstablished/Rekeyed/Failed, ChildSaFailed,
  IkeSaDeleted, DeadPeer, and each InstallChildSa the kernel took    -> `observe`
- an InstallChildSa the kernel refused                               -> `child_refused`
- reload, status, `fipsike oe-initiate`                              -> `reload`, `status`, `initiate`

The group conns (`right=%opportunisticgroup`, named after their group) and the group files come
from the daemon loader's parse of ipsec.conf (DaemonConfig.parsed: one parse, one FIPS mode, one
host lookup per start and per reload). The loader (fipsike.daemon.ipsecconf) skips those conns and
`exclude` keeps them out of the engine: a template with right=%any in the engine would answer every
peer.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import ipaddress
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from cryptography import x509

from certs.crls import CrlFolder
from certs.store import CertStore, default_store_dir, load_certificates
from fipsike.config.conns import ConnSpec
from fipsike.daemon.config_seam import ConfigError, DaemonConfig, ParsedConfig
from fipsike.daemon.control import JsonObject, RequestError
from fipsike.daemon.ipsecconf import CrlFolderSource
from fipsike.daemon.udp import Datagram
from fipsike.ike.actions import (
    Action,
    ChildSaFailed,
    DeadPeer,
    IkeSaDeleted,
    IkeSaEstablished,
    IkeSaFailed,
    IkeSaRekeyed,
    InstallChildSa,
)
from fipsike.ike.config import Connection
from fipsike.ike.engine import Engine
from fipsike.ike.message import Message
from fipsike.ike.peer_validator import PeerValidator
from fipsike.ike.registry import NotifyType
from fipsike.kernel.api import Kernel
from fipsike.kernel.types import Acquire, IPAddress
from fipsike.oe.actions import (
    AbandonInitiation,
    AcceptPeer,
    Forget,
    IgnorePeer,
    Initiate,
    InstallPolicy,
    Log,
    OeAction,
    RemovePolicy,
    Terminate,
    WakeAt,
)
from fipsike.oe.groups import PolicyGroup, matching_group, render_table
from fipsike.oe.kernel_side import apply_policies
from fipsike.oe.opportunistic import (
    DEFAULT_SHUNT_LIFETIME,
    FailureShunt,
    GroupConn,
    NegotiationShunt,
    OeError,
    Opportunistic,
    Phase,
)
from fipsike.oe.trigger import trigger_from_addresses
from providers.handles import PrivateKey

IKE_SA_INIT = 34  # RFC 7296 3.1 exchange type
FLAG_RESPONSE = 0x20  # RFC 7296 3.1 flags: R
IKE_HEADER = 28
# conns named after a group are the bridge's, whatever the daemon's loader makes of them (libreswan's
# `conn clear` / `conn block` are shunt conns whose work the group files do here)
GROUP_CONNS = frozenset(g.value for g in PolicyGroup)
LARVAL_DROP = Path("/proc/sys/net/core/xfrm_larval_drop")


class KeySource(Protocol):
    """What the loader needs of the providers Router: private keys are parsed inside the boundary."""

    def import_pkcs8(self, der: bytes, label: str = "", key_id: bytes = b"", to_token: bool = False) -> PrivateKey: ...

    def find_private_key(self, public_key: object) -> PrivateKey: ...


class DaemonPort(Protocol):
    """What the bridge needs of the Daemon (fipsike.daemon.runtime)."""

    kernel: Kernel
    engine: Engine
    clock: Callable[[], float]
    config: DaemonConfig

    def carry(self, actions: Iterable[Action]) -> None: ...

    def event(self, level: str, event: str, conn: str | None, message: str, **extra: str) -> None: ...


@dataclass(frozen=True)
class OeConfig:
    """The opportunistic half of a configuration."""

    conns: tuple[GroupConn, ...] = ()
    groups: dict[PolicyGroup, list[str]] = field(default_factory=dict)
    local: tuple[IPAddress, ...] = ()
    names: frozenset[str] = frozenset()  # the group conns' names: the daemon leaves them to us
    shunt_lifetime: float = DEFAULT_SHUNT_LIFETIME
    crls: Path | None = None  # the CRL folder the certificate templates are checked against

    @property
    def enabled(self) -> bool:
        return bool(self.conns) or bool(self.groups)


def load_oe(parsed: ParsedConfig | None, ipsecdir: Path, router: KeySource,
            reqid: Callable[[str, str], int]) -> OeConfig:
    """The group conns and group files of the daemon loader's parse (its FIPS mode, its host); a
    ConfigError names the file and line."""
    if parsed is None:
        return OeConfig()
    loaded = parsed.loaded
    groups = {PolicyGroup(g): loaded.groups.members(g) for g in loaded.groups.groups}
    conns: list[GroupConn] = []
    for spec in loaded.conns:
        if not spec.opportunistic:
            continue
        where = f"{spec.location.file}:{spec.location.line}: conn {spec.name}"
        try:
            group = PolicyGroup(spec.name)
        except ValueError:
            raise ConfigError(f"{where}: right=%opportunisticgroup needs the conn named after its group "
                              f"({', '.join(g.value for g in PolicyGroup if g.answers_ike)})") from None
        if not group.answers_ike:
            continue  # libreswan's `conn clear` / `conn block` (type=passthrough / drop): the group file does it
        try:
            conns.append(GroupConn(group, _template(spec, ipsecdir, router, where), reqid(spec.name, spec.name),
                                   _shunt(FailureShunt, spec.failureshunt, "failureshunt", where),
                                   _shunt(NegotiationShunt, spec.negotiationshunt, "negotiationshunt", where)))
        except OeError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    local: list[IPAddress] = []
    for gc in conns:
        for a in gc.template.local_addrs:
            ip = ipaddress.ip_address(a)
            if ip not in local:
                local.append(ip)
    if not local and groups:  # block / clear alone: our default-route addresses
        for v in (4, 6):
            found = parsed.host.default_route_address(v)
            if found:
                local.append(ipaddress.ip_address(found))
    life = float(loaded.setup_value("shuntlifetime", DEFAULT_SHUNT_LIFETIME))
    crls = ipsecdir / "crls"
    return OeConfig(tuple(conns), groups, tuple(local), frozenset(gc.template.name for gc in conns), life,
                    crls if crls.is_dir() else None)


S = TypeVar("S", FailureShunt, NegotiationShunt)


def _shunt(kind: type[S], value: str, key: str, where: str) -> S:
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"{where}: {key}={value} is not one of "
                          f"{', '.join(k.value for k in kind)}") from None


def _template(spec: ConnSpec, ipsecdir: Path, router: KeySource, where: str) -> Connection:
    """The engine Connection of a group conn, with its certificate, key and CAs for certificate auth
    (the seed's cloud mesh: leftcert=NICKNAME, rightid=%fromcert, rightca=%same)."""
    conn = spec.connection
    if conn.local_auth == "null" and conn.remote_auth == "null":
        return conn
    me = spec.local_side
    if not me.cert:
        raise ConfigError(f"{where}: certificate authentication needs leftcert=")
    store = _store(router)
    cert = _certificate(me.cert, ipsecdir, where, store)
    key_file = next((p for p in (ipsecdir / "private" / f"{Path(me.cert).stem}.key",
                                 ipsecdir / "private" / f"{me.cert}.key") if p.is_file()), None)
    try:
        if key_file is not None:
            key = router.import_pkcs8(_pkcs8_der(key_file.read_text(errors="replace")), label=f"{spec.name}-key")
        else:
            key = router.find_private_key(cert.public_key())
    except (ValueError, TypeError):
        raise ConfigError(f"{where}: {key_file} is not an unencrypted PEM PRIVATE KEY (PKCS#8)") from None
    except Exception as exc:  # noqa: BLE001 - a provider error: say which lookup, not its text
        raise ConfigError(f"{where}: no private key for leftcert={me.cert} in {ipsecdir / 'private'} or on "
                          f"the token ({type(exc).__name__})") from None
    ca = spec.remote_side.ca
    cas = _ca_certificates(ipsecdir) + (store.ca_certificates() if store is not None else [])
    if ca in ("", "%same"):  # rightca=%same: the peer's certificate is from the CA that issued ours
        anchors = tuple(c for c in cas if c.subject == cert.issuer)
    else:
        anchors = tuple(c for c in cas if c.subject.rfc4514_string() == ca) or \
            tuple(_load_certs(_find(ca, ipsecdir, "cacerts", where), where))
    if not anchors:
        raise ConfigError(f"{where}: no CA certificate for rightca={ca or '%same'} in {ipsecdir / 'cacerts'}")
    return dataclasses.replace(conn, certificate=cert, private_key=key, trust_anchors=anchors)


def _pkcs8_der(pem: str) -> bytes:
    """The DER of a PEM "PRIVATE KEY" (PKCS#8, RFC 5958 / RFC 7468 10): the octets go to the provider to parse."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0].strip() != "-----BEGIN PRIVATE KEY-----" or \
            lines[-1].strip() != "-----END PRIVATE KEY-----":
        raise ValueError("not a PEM PRIVATE KEY (PKCS#8)")
    try:
        return base64.b64decode("".join(ln.strip() for ln in lines[1:-1]), validate=True)
    except binascii.Error:
        raise ValueError("bad base64") from None


def _find(ref: str, ipsecdir: Path, sub: str, where: str) -> Path:
    p = Path(ref)
    for c in (p, ipsecdir / p, ipsecdir / sub / p, ipsecdir / sub / f"{ref}.pem", ipsecdir / sub / f"{ref}.crt"):
        if c.is_file():
            return c
    raise ConfigError(f"{where}: {ref}: no such certificate under {ipsecdir / sub}")


def _load_certs(path: Path, where: str) -> list[x509.Certificate]:
    try:
        return load_certificates(path)
    except (OSError, ValueError):
        raise ConfigError(f"{where}: {path} holds no readable certificate") from None


def _store(router: KeySource) -> CertStore | None:
    """The certificate store `fipsike import` fills ($FIPSIKE_CERT_DIR), when there is one."""
    d = default_store_dir()
    return CertStore(d, router) if d.is_dir() else None


def _certificate(ref: str, ipsecdir: Path, where: str, store: CertStore | None) -> x509.Certificate:
    """leftcert=: a file (under ipsecdir/certs too), or a nickname in the certificate store
    (`fipsike import NODE.p12`, as libreswan's `ipsec import` puts it in NSS; its key is then found on
    the token by the certificate's public key)."""
    try:
        return _load_certs(_find(ref, ipsecdir, "certs", where), where)[0]
    except ConfigError:
        entry = store.by_nickname(ref) if store is not None else None
        if entry is None:
            raise
        return entry.cert


def _ca_certificates(ipsecdir: Path) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    d = ipsecdir / "cacerts"
    for p in sorted(d.iterdir()) if d.is_dir() else ():
        try:
            out.extend(load_certificates(p))
        except (OSError, ValueError):
            continue  # not a certificate file
    return out


def is_ike_sa_init_request(data: bytes) -> bool:
    """RFC 7296 3.1: exchange type IKE_SA_INIT, R flag clear, responder SPI zero."""
    return len(data) >= IKE_HEADER and data[18] == IKE_SA_INIT and not data[19] & FLAG_RESPONSE \
        and data[8:16] == bytes(8)


@dataclass
class _Waiter:
    future: asyncio.Future[JsonObject]
    key: tuple[IPAddress, IPAddress]


class OeBridge:
    """The opportunistic table of one daemon, wired to its kernel and engine."""

    def __init__(self, daemon: DaemonPort, config: OeConfig) -> None:
        self.daemon = daemon
        self.config = config
        self.oe = self._core(config)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._waiters: list[_Waiter] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def _core(config: OeConfig) -> Opportunistic | None:
        if not config.enabled:
            return None
        try:
            return Opportunistic(config.conns, config.groups, config.local, config.shunt_lifetime)
        except (OeError, ValueError) as exc:
            raise ConfigError(f"opportunistic groups: {exc}") from None

    @classmethod
    def load(cls, daemon: DaemonPort, parsed: ParsedConfig | None, ipsecdir: Path, router: KeySource,
             reqid: Callable[[str, str], int]) -> OeBridge:
        return cls(daemon, load_oe(parsed, ipsecdir, router, reqid))

    # --- the daemon's configuration ----------------------------------------------------------------
    def exclude(self, config: DaemonConfig) -> DaemonConfig:
        """The daemon's config without the group conns (their instances are made here). NULL authentication
        (RFC 7619) is for opportunistic instances only, in every FIPS mode: a daemon conn asking for it is
        refused (an anonymous peer on a configured tunnel would be a downgrade nobody chose)."""
        ours = self.config.names | GROUP_CONNS
        for e in config.connections:
            c = e.connection
            if e.name not in ours and (c.allow_null or "null" in (c.local_auth, c.remote_auth)):
                raise ConfigError(f"conn {e.name}: NULL authentication (RFC 7619) is allowed only on opportunistic "
                                  "conns (right=%opportunisticgroup, named after their group)")
        return dataclasses.replace(config, connections=tuple(e for e in config.connections if e.name not in ours))

    def check_crls(self) -> None:
        """ipsecdir/crls, verified against the group conns' CAs too, is the engine's CRL source (a revoked
        peer certificate fails IKE_AUTH, so the peer is never reached). The daemon's own source (its
        conns' CAs, fipsike.daemon.ipsecconf) is kept and pointed at a folder that knows both; the daemon
        calls this again after a reload has swapped its folder."""
        if self.config.crls is None:
            return
        anchors = [a for gc in self.config.conns for a in gc.template.trust_anchors]
        if not anchors:
            return
        engine = self.daemon.engine
        conns = [e.connection for e in self.daemon.config.connections]
        anchors += [a for c in conns for a in c.trust_anchors if a not in anchors]
        folder = CrlFolder(self.config.crls, engine.router, anchors, [i for c in conns for i in c.intermediates])
        source = engine.peers.crl_source
        if isinstance(source, CrlFolderSource):
            source.follow(CrlFolderSource(folder))
        else:
            engine.peers = PeerValidator(engine.router, CrlFolderSource(folder), engine.peers.verdict_cache_ttl)

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """The group policies into the kernel (after the daemon's flush_owned)."""
        if self.oe is None:
            return
        self._loop = asyncio.get_running_loop()
        self.check_crls()
        if any(gc.negotiation_shunt is NegotiationShunt.HOLD for gc in self.config.conns):
            self._larval_queue()
        self._do(self.oe.install())
        names = ", ".join(sorted(self.config.names)) or "-"
        self.daemon.event("info", "oe-started", None, f"{len(self.oe.table)} group policies, group conns {names}, "
                                                      f"local {', '.join(map(str, self.config.local))}")

    def _larval_queue(self) -> None:
        """negotiationshunt=hold keeps the first packet queued on the larval state (the kernel's default
        drops it): net.core.xfrm_larval_drop=0, in this network namespace."""
        try:
            LARVAL_DROP.write_text("0\n")
        except OSError as exc:
            self.daemon.event("warning", "oe-larval-drop", None, f"cannot set xfrm_larval_drop=0 "
                                                                 f"({exc.strerror}): the first packet is dropped")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for w in self._waiters:
            if not w.future.done():
                w.future.set_result({"outcome": "failed", "reason": "daemon stopping"})
        self._waiters.clear()

    def reload(self, parsed: ParsedConfig | None, ipsecdir: Path, router: KeySource,
               reqid: Callable[[str, str], int]) -> JsonObject:
        """New group files and conns: the policy changes, and the instances and bare shunts of peers that
        the new configuration no longer gives to their group are torn down (the rest stay)."""
        new = load_oe(parsed, ipsecdir, router, reqid)
        if self.oe is None:  # the first opportunistic configuration
            self.config, self.oe = new, self._core(new)
            if self.oe is not None:
                self.start()
            return {"opportunistic": "started" if self.oe is not None else "none"}
        try:
            changes = self.oe.reload(new.groups, new.conns, new.local, self.daemon.clock())
        except (OeError, ValueError) as exc:
            raise ConfigError(f"opportunistic groups: {exc}") from None
        self.config = new
        if any(gc.negotiation_shunt is NegotiationShunt.HOLD for gc in new.conns):
            self._larval_queue()
        self._do(changes)
        return {"group_policies_changed": sum(isinstance(a, InstallPolicy | RemovePolicy) for a in changes),
                "instances_removed": sum(isinstance(a, Log) and a.event == "oe-policy-removed" for a in changes)}

    # --- inputs -----------------------------------------------------------------------------------
    def on_acquire(self, ev: Acquire) -> bool:
        """An ACQUIRE from a group trap (True: taken here; the daemon's own traps get the rest)."""
        if self.oe is None or not self.oe.owns_reqid(ev.reqid):
            return False
        self._do(self.oe.on_acquire(ev, self.daemon.clock()))
        return True

    def screen(self, dgram: Datagram) -> bool:
        """Before engine.receive: an IKE_SA_INIT request that no configured conn takes goes to the groups.
        True: drop the datagram (no group answers this peer, or our own initiation wins a collision)."""
        if self.oe is None or not is_ike_sa_init_request(dgram.data):
            return False
        local, remote = dgram.dst[0], dgram.src[0]
        for name, conn in self.daemon.engine.connections.items():
            if not self.is_instance(name) and conn.ike_cfg.fits(local, remote):
                return False  # a configured conn takes it
        try:
            key = (ipaddress.ip_address(local), ipaddress.ip_address(remote))
        except ValueError:
            return True
        ours = self._our_spi(key)
        acts = self.oe.on_peer_initiated(key[0], key[1], self.daemon.clock(), ours, dgram.data[0:8], dgram.src[1],
                                         self._nat(dgram) if ours else (False, False))
        self._do(acts)
        return any(isinstance(a, IgnorePeer) for a in acts)

    def _our_spi(self, key: tuple[IPAddress, IPAddress]) -> bytes:
        """Our half-open IKE SA's initiator SPI for the instance of (local, remote), if one is under way:
        what a collision is decided on (fipsike.oe.opportunistic)."""
        assert self.oe is not None
        e = self.oe.entries.get(key)
        if e is None or not e.initiator:
            return b""
        return next((sa.spi_i for sa in self.daemon.engine.sas if sa.conn.name == e.name and sa.initiator), b"")

    def _nat(self, dgram: Datagram) -> tuple[bool, bool]:
        """(we are behind a NAT, the peer is), from the request's NAT_DETECTION notifies (RFC 7296 2.23),
        as the engine will find them; (False, False) when it carries none or does not parse."""
        try:
            msg = Message.parse(dgram.data)
        except Exception:  # noqa: BLE001 - the engine answers a malformed request; here it only says "no NAT"
            return False, False
        srcs = [n.data for n in msg.notifies() if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
        dst = msg.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
        if not srcs or dst is None:
            return False, False
        engine = self.daemon.engine
        return (engine.nat_hash(msg.spi_i, msg.spi_r, dgram.dst) != dst.data,
                engine.nat_hash(msg.spi_i, msg.spi_r, dgram.src) not in srcs)

    def is_instance(self, name: str) -> bool:
        return "#" in name and name.split("#", 1)[0] in self.config.names

    def observe(self, a: Action) -> None:
        """An engine outcome; names that are not instances are ignored by the core."""
        if self.oe is None:
            return
        now = self.daemon.clock()
        if isinstance(a, InstallChildSa):  # carried: the kernel took it (a refused one goes to child_refused)
            self.oe.on_child_installed(a.connection)
            self._settle()
            return
        if isinstance(a, IkeSaEstablished):
            acts = self.oe.on_established(a.connection, now, a.ike_sa)
        elif isinstance(a, IkeSaRekeyed):
            acts = self.oe.on_established(a.connection, now, a.new_ike_sa)
        elif isinstance(a, IkeSaFailed | ChildSaFailed):
            acts = self.oe.on_failed(a.connection, now)
        elif isinstance(a, IkeSaDeleted | DeadPeer):
            acts = self.oe.on_down(a.connection, now, a.ike_sa)
        else:
            return
        if acts:
            self._do(acts)

    def child_refused(self, name: str) -> bool:
        """The kernel refused an instance's Child SA (the daemon calls this once the engine's actions that
        came with it are carried out, so a responder's IKE_AUTH answer has gone). True: the bridge deletes
        the whole IKE SA, so the daemon need not delete the Child SA on its own."""
        if self.oe is None or not self.is_instance(name):
            return False
        acts = self.oe.on_child_refused(name, self.daemon.clock())
        if acts:
            self._do(acts)
        return bool(acts)

    # --- the core's actions --------------------------------------------------------------------------
    def _do(self, actions: Sequence[OeAction]) -> None:
        d = self.daemon
        for act in actions:
            if isinstance(act, InstallPolicy | RemovePolicy):
                _, errors = apply_policies(d.kernel, [act])
                for e in errors:
                    d.event("warning", "oe-policy-failed", None, e)
            elif isinstance(act, Initiate):
                d.engine.add_connection(act.connection)
                d.carry(d.engine.initiate(act.connection.name, d.clock()))
            elif isinstance(act, AcceptPeer):
                if act.connection.name not in d.engine.connections:
                    d.engine.add_connection(act.connection)
            elif isinstance(act, AbandonInitiation | Terminate):
                d.carry(d.engine.terminate(act.name, d.clock()))
            elif isinstance(act, Forget):
                d.engine.remove_connection(act.name)
            elif isinstance(act, WakeAt):
                self._arm(act.at)
            elif isinstance(act, Log):
                d.event(act.level, act.event, None, act.message)
            elif isinstance(act, IgnorePeer):
                d.event("debug", "oe-ignore-peer", None, act.reason)
        self._settle()

    def _arm(self, at: float) -> None:
        if self._loop is None or (self._timer is not None and self._timer_at <= at):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(max(0.0, at - self.daemon.clock()) + 0.01, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, float("inf")
        if self.oe is None:
            return
        try:
            self._do(self.oe.timer(self.daemon.clock()))
        except Exception as exc:  # noqa: BLE001 - logged by type, like every daemon callback
            self.daemon.event("error", "oe-timer-failed", None, type(exc).__name__)
        at = self.oe.next_deadline()
        if at is not None:
            self._arm(at)

    # --- oe-initiate -----------------------------------------------------------------------------------
    async def initiate(self, args: JsonObject) -> JsonObject:
        """`fipsike oe-initiate`: the negotiation an ACQUIRE for (local, remote) would start, and its outcome."""
        if self.oe is None:
            raise RequestError("no opportunistic groups are configured (no conn with right=%opportunisticgroup)")
        local, remote, timeout = args.get("local"), args.get("remote"), args.get("timeout", 30)
        if not isinstance(local, str) or not isinstance(remote, str):
            raise RequestError("\"args.local\" and \"args.remote\" (IP addresses) are required")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise RequestError("\"args.timeout\" must be 1..600 seconds")
        try:
            t = trigger_from_addresses(local, remote)
        except OeError as exc:
            raise RequestError(str(exc)) from None
        if t.local not in self.config.local:
            raise RequestError(f"--local {t.local} is not one of the group conns' addresses "
                               f"({', '.join(map(str, self.config.local))})")
        key = (t.local, t.remote)
        started = time.monotonic()
        self.daemon.event("info", "oe-initiate-request", None, f"{t.local} -> {t.remote}")
        self._do(self.oe.on_trigger(t.local, t.remote, self.daemon.clock()))
        done = self._outcome(key)
        if done is None:
            assert self._loop is not None
            fut: asyncio.Future[JsonObject] = self._loop.create_future()
            self._waiters.append(_Waiter(fut, key))
            try:
                done = await asyncio.wait_for(asyncio.shield(fut), float(timeout))
            except TimeoutError:
                done = {"outcome": "negotiating", "reason": f"no outcome within {timeout} s (negotiation continues)"}
            finally:
                self._waiters = [w for w in self._waiters if w.future is not fut]
        return {"local": str(t.local), "remote": str(t.remote), "seconds": round(time.monotonic() - started, 3),
                **done}

    def _outcome(self, key: tuple[IPAddress, IPAddress]) -> JsonObject | None:
        """The instance's outcome once it has one; None while it negotiates."""
        assert self.oe is not None
        e = self.oe.entries.get(key)
        if e is None:
            g = matching_group(self.oe.table, key[0], key[1])
            if g is not None and g.traps:
                return {"outcome": "failed", "group": g.value, "reason": "negotiation failed; no failure shunt"}
            return {"outcome": "not-opportunistic", "group": g.value if g else None,
                    "reason": f"{key[1]} is in {g.value if g else 'no group'}: no negotiation"}
        out: JsonObject = {"group": e.group.value, "name": e.name}
        if e.phase is Phase.ESTABLISHED and e.child_up:
            ike = [s for s in self.daemon.engine.ike_sas() if s.conn.name == e.name]
            return {**out, "outcome": "established", "role": "initiator" if e.initiator else "responder",
                    "ike_sa": ike[0].name if ike else None}
        if e.phase is Phase.SHUNTED:
            left = max(0.0, e.deadline - self.daemon.clock())
            return {**out, "outcome": "failed", "shunt": e.shunt,
                    "reason": f"negotiation failed; {e.shunt} shunt for {left:.0f}s"}
        return None

    def _settle(self) -> None:
        for w in list(self._waiters):
            if w.future.done():
                continue
            res = self._outcome(w.key)
            if res is not None:
                w.future.set_result(res)

    # --- status ---------------------------------------------------------------------------------------
    def status(self) -> JsonObject:
        if self.oe is None:
            return {}
        now = self.daemon.clock()
        return {"opportunistic": {"local": [str(a) for a in self.config.local],
                                  "group_conns": sorted(self.config.names),
                                  "entries": self.oe.status(now), "policies": self.oe.policy_rows(),
                                  "table": render_table(self.oe.table)}}

