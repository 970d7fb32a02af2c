"""The daemon's configuration seam: what the daemon needs from a config, and the loader slot.

The daemon sees only `DaemonConfig`: engine `Connection` objects, each with its libreswan
`auto=` action and a `source` text that tells a changed connection from an unchanged one on
reload, plus daemon-level settings (the control socket's group).

`LOADER` is the one place a configuration format plugs in. Until fipsike.config lands, the
loader reads a small JSON file with libreswan's key names (`load_json`); swapping in the
ipsec.conf parser is a matter of pointing `load_config` at it (see its docstring).
"""

from __future__ import annotations

import dataclasses
import enum
import grp
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fipsike.config.conns import retransmit_policy
from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.proposals import Protocol as ProposalProtocol
from fipsike.ike.proposals import parse_proposals
from fipsike.ike.retransmit import RetransmitPolicy
from providers.errors import ProviderError
from providers.handles import PrivateKey

DEFAULT_CONFIG = Path("/etc/ipsec.conf")
DEFAULT_SECRETS = Path("/etc/ipsec.secrets")
DEFAULT_IPSECDIR = Path("/etc/ipsec.d")
DEFAULT_CTL = Path("/run/fipsike/ctl")


class ConfigError(ValueError):
    """A configuration the daemon cannot use: the message names the file (and key), never a secret."""


class Auto(enum.Enum):
    """libreswan's auto= (ipsec.conf(5)): what the daemon does with a connection once it is loaded."""

    IGNORE = "ignore"  # not loaded at all
    ADD = "add"  # loaded; waits for the peer or `fipsike up`
    ONDEMAND = "ondemand"  # trap policies: the first packet starts the negotiation
    ROUTE = "route"  # libreswan's older name for ondemand
    START = "start"  # initiated at start-up (and after a reload that adds it)

    @property
    def traps(self) -> bool:
        return self in (Auto.ONDEMAND, Auto.ROUTE)


@dataclass(frozen=True)
class ConfigPaths:
    config: Path = DEFAULT_CONFIG
    secrets: Path = DEFAULT_SECRETS
    ipsecdir: Path = DEFAULT_IPSECDIR


@dataclass(frozen=True)
class ConnEntry:
    """One connection as the daemon runs it."""

    connection: Connection = field(repr=False)
    auto: Auto = Auto.ADD
    source: str = ""  # the connection's settings as text: differs <=> the connection changed

    @property
    def name(self) -> str:
        return self.connection.name


@dataclass(frozen=True)
class DaemonConfig:
    connections: tuple[ConnEntry, ...] = ()
    ctl_group: int | None = None  # gid allowed on the control socket besides root

    def by_name(self) -> dict[str, ConnEntry]:
        return {c.name: c for c in self.connections if c.auto is not Auto.IGNORE}


class KeyImporter(Protocol):
    """What a loader needs from the providers Router: private keys become provider handles (a PEM
    key imported, or a token key found by PKCS#11 URI or by the certificate's public key)."""

    def import_private_key(self, private_key: object, label: str = "", key_id: bytes = b"",
                           to_token: bool = False) -> PrivateKey: ...

    def load_private_key(self, uri_or_label: str) -> PrivateKey: ...

    def find_private_key(self, public_key: object) -> PrivateKey: ...


ConfigLoader = Callable[[ConfigPaths, KeyImporter], DaemonConfig]


# --- the interim JSON format -------------------------------------------------------------------------
# {"config setup": {"ctlgroup": "ipsec"},
#  "conns": [{"name": "gw", "auto": "start", "left": "192.0.2.1", "right": "192.0.2.2",
#             "leftid": "moon.test", "rightid": "sun.test", "leftcert": "certs/moon.crt",
#             "leftkey": "private/moon.key", "rightca": "cacerts/ca.crt",
#             "leftsubnet": "10.1.0.0/24", "rightsubnet": "10.2.0.0/24",
#             "ike": "aes256gcm16-prfsha384-ecp256", "esp": "aes256gcm16", "type": "tunnel",
#             "dpddelay": 0, "ikelifetime": 14400, "salifetime": 3600, "encapsulation": false}]}
# Relative file names are taken under --ipsecdir.

_KNOWN = {"name", "auto", "left", "right", "leftid", "rightid", "leftcert", "leftkey", "rightca", "leftsubnet",
          "rightsubnet", "ike", "esp", "type", "dpddelay", "dpdaction", "ikelifetime", "salifetime",
          "encapsulation", "authby", "reqid", "retransmit-interval", "retransmit-timeout"}


def _str(conn: Mapping[str, object], key: str, where: str, default: str | None = None) -> str:
    value = conn.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key}= is required (a non-empty string)")
    return value


def _num(conn: Mapping[str, object], key: str, where: str, default: float) -> float:
    value = conn.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{where}: {key}= must be a number of seconds >= 0")
    return float(value)


def _selector(cidr: str, where: str) -> TrafficSelectorSpec:
    import ipaddress

    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ConfigError(f"{where}: {cidr!r} is not an address or subnet") from None
    return TrafficSelectorSpec(str(net.network_address), str(net.broadcast_address))


def _split(text: str) -> list[str]:
    return [t for t in text.replace(" ", ",").split(",") if t]


def _connection(raw: Mapping[str, object], paths: ConfigPaths, router: KeyImporter, where: str) -> ConnEntry:
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]}=")
    name = _str(raw, "name", where)
    where = f"{where} conn {name}"
    try:
        auto = Auto(raw.get("auto", "add"))
    except ValueError:
        raise ConfigError(f"{where}: auto= must be one of {', '.join(a.value for a in Auto)}") from None
    left, right = _str(raw, "left", where), _str(raw, "right", where, "%any")
    mode = _str(raw, "type", where, "tunnel")
    if mode not in ("tunnel", "transport"):
        raise ConfigError(f"{where}: type= must be tunnel or transport")
    authby = _str(raw, "authby", where, "rsasig")
    if authby not in ("rsasig", "ecdsa", "null"):
        raise ConfigError(f"{where}: authby= must be rsasig, ecdsa or null")

    def path(key: str) -> Path:
        p = Path(_str(raw, key, where))
        return p if p.is_absolute() else paths.ipsecdir / p

    def read(key: str) -> bytes:
        p = path(key)
        try:
            return p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: {key}={p}: {exc.strerror}") from None

    key = cert = None
    intermediates: list[x509.Certificate] = []
    anchors: tuple[x509.Certificate, ...] = ()
    if authby != "null":
        try:
            # leftcert= may hold the intermediates after the leaf: they are sent too (RFC 7296 3.6)
            leaf, *intermediates = x509.load_pem_x509_certificates(read("leftcert"))
            cert = leaf
            anchors = tuple(x509.load_pem_x509_certificates(read("rightca")))
        except ValueError:
            raise ConfigError(f"{where}: leftcert= / rightca= are not PEM certificates") from None
        key = _private_key(raw, router, cert, read, path, name, where)
    try:
        ike = parse_proposals(_split(_str(raw, "ike", where, "aes256gcm16-prfsha384-ecp256")),
                              ProposalProtocol.IKE)
        esp = parse_proposals(_split(_str(raw, "esp", where, "aes256gcm16")), ProposalProtocol.ESP)
    except ValueError as exc:
        raise ConfigError(f"{where}: ike=/esp=: {exc}") from None
    salife = _num(raw, "salifetime", where, 3600.0)
    ikelife = _num(raw, "ikelifetime", where, 14400.0)
    reqid = raw.get("reqid", 0)
    if not isinstance(reqid, int) or isinstance(reqid, bool):
        raise ConfigError(f"{where}: reqid= must be an integer")
    child = ChildConfig(
        name, tuple(_selector(s, where) for s in _split(_str(raw, "leftsubnet", where, left))),
        tuple(_selector(s, where) for s in _split(_str(raw, "rightsubnet", where, right))), esp, mode=mode,
        rekey_time=salife * 0.9, life_time=salife, reqid=reqid)
    dpdaction = _str(raw, "dpdaction", where, "clear")
    if dpdaction not in ("clear", "hold", "restart"):
        raise ConfigError(f"{where}: dpdaction= must be clear, hold or restart")
    null = authby == "null"
    retransmit = RetransmitPolicy()
    if "retransmit-interval" in raw or "retransmit-timeout" in raw:  # libreswan's keys, ms and s
        retransmit = retransmit_policy(_num(raw, "retransmit-interval", where, 500.0) / 1000,
                                       _num(raw, "retransmit-timeout", where, 60.0))
    conn = Connection(
        name=name, local_addrs=(left,), remote_addrs=(right,),
        local_id=_str(raw, "leftid", where, "%fromcert"), remote_id=_str(raw, "rightid", where, "%any"),
        local_auth="null" if null else "pubkey", remote_auth="null" if null else "pubkey", allow_null=null,
        private_key=key, certificate=cert, intermediates=tuple(intermediates), trust_anchors=anchors,
        ike_proposals=ike, children=(child,),
        rekey_time=ikelife * 0.9, life_time=ikelife, dpd_delay=_num(raw, "dpddelay", where, 30.0),
        dpd_action=dpdaction, encap=bool(raw.get("encapsulation", False)), retransmit=retransmit)
    source = json.dumps(dict(raw), sort_keys=True)
    return ConnEntry(conn, auto, source)


def _private_key(raw: Mapping[str, object], router: KeyImporter, cert: x509.Certificate,
                 read: Callable[[str], bytes], path: Callable[[str], Path], name: str, where: str) -> PrivateKey:
    """leftkey= a PEM file (imported into the module), a PKCS#11 URI, or absent: the token's key
    whose public half is leftcert's (libreswan finds it the same way, by the certificate)."""
    spec = raw.get("leftkey")
    try:
        if spec is None:
            return router.find_private_key(cert.public_key())
        if isinstance(spec, str) and spec.startswith("pkcs11:"):
            return router.load_private_key(spec)
    except ProviderError as exc:
        if type(exc).__name__ == "UnsupportedOperation":
            raise ConfigError(f"{where}: leftkey= names no file and no PKCS#11 token is configured "
                              "(fipsike daemon --token LABEL)") from None
        raise ConfigError(f"{where}: no private key on the token for {'leftcert' if spec is None else 'leftkey'}= "
                          f"({type(exc).__name__})") from None
    try:
        key_obj = load_pem_private_key(read("leftkey"), None)
    except (ValueError, TypeError):
        # the parser's text may quote the file: say only which setting it was
        raise ConfigError(f"{where}: leftkey={path('leftkey')} is not an unencrypted PEM private key") from None
    return router.import_private_key(key_obj, label=f"{name}-key")


def load_json(paths: ConfigPaths, router: KeyImporter) -> DaemonConfig:
    where = str(paths.config)
    try:
        doc = json.loads(paths.config.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON (line {getattr(exc, 'lineno', '?')})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: the top level must be an object")
    setup = doc.get("config setup", {})
    conns = doc.get("conns", [])
    if not isinstance(setup, dict) or not isinstance(conns, list):
        raise ConfigError(f"{where}: 'config setup' must be an object and 'conns' a list")
    gid: int | None = None
    if "ctlgroup" in setup:
        try:
            gid = grp.getgrnam(str(setup["ctlgroup"])).gr_gid
        except KeyError:
            raise ConfigError(f"{where}: ctlgroup={setup['ctlgroup']} is not a group on this host") from None
    entries: list[ConnEntry] = []
    for i, raw in enumerate(conns):
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: conns[{i}] must be an object")
        entries.append(_connection(raw, paths, router, where))
    names = [e.name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{where}: conn {dupes[0]} is defined twice")
    return DaemonConfig(tuple(entries), gid)


# --- the slot -----------------------------------------------------------------------------------------
LOADER: ConfigLoader = load_json


def load_config(paths: ConfigPaths, router: KeyImporter) -> DaemonConfig:
    """Load the configuration through the current loader.

    To switch to fipsike.config (ipsec.conf): set `LOADER` to a function that parses `paths.config`
    (with `paths.secrets` and `paths.ipsecdir`) into `DaemonConfig(connections=tuple(ConnEntry(conn,
    Auto(auto), source) ...), ctl_group=gid)`; a `.json` file keeps the interim loader.
    """
    if paths.config.suffix == ".json":
        return load_json(paths, router)
    return LOADER(paths, router)


def with_reqids(config: DaemonConfig, assign: Callable[[str, str], int]) -> DaemonConfig:
    """Give every Child SA without a configured reqid one from the daemon, so trap policies and
    ACQUIREs can name it before the engine has negotiated anything."""
    out: list[ConnEntry] = []
    for e in config.connections:
        kids: Sequence[ChildConfig] = tuple(
            c if c.reqid else dataclasses.replace(c, reqid=assign(e.name, c.name)) for c in e.connection.children)
        out.append(dataclasses.replace(e, connection=dataclasses.replace(e.connection, children=tuple(kids))))
    return dataclasses.replace(config, connections=tuple(out))
