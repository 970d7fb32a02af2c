"""The daemon's configuration seam: what the daemon needs from a config, and the loader slot.

The daemon sees only `DaemonConfig`: engine `Connection` objects, each with its libreswan
`auto=` action and a `source` text that tells a changed connection from an unchanged one on
reload, plus daemon-level settings (the control socket's group).

The format is libreswan's ipsec.conf (fipsike.config, mapped by fipsike.daemon.ipsecconf). `LOADER`
is the slot a test may fill with another loader.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography import x509

from compliance.invariants import InvariantConfig
from fipsike.config.conns import ConnSpec
from fipsike.config.hosts import HostAddresses
from fipsike.config.load import LoadedConfig
from fipsike.ike.config import ChildConfig, Connection
from providers.handles import PrivateKey, SecretKey

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
    spec: ConnSpec | None = field(default=None, repr=False, compare=False)  # what ipsec.conf said (type, groups)

    @property
    def name(self) -> str:
        return self.connection.name


@dataclass(frozen=True)
class ParsedConfig:
    """What the loader parsed (ipsec.conf, the secrets, the policy groups, in its FIPS mode) and the host
    it resolved %defaultroute and orientation with. The opportunistic bridge builds its group conns from
    this, so the files are read once per start and once per reload."""

    loaded: LoadedConfig = field(repr=False)
    host: HostAddresses = field(repr=False)


@dataclass(frozen=True)
class DaemonConfig:
    connections: tuple[ConnEntry, ...] = ()
    ctl_group: int | None = None  # gid allowed on the control socket besides root
    crls: CrlSourceSlot | None = None  # <ipsecdir>/crls as the engine's CRL source
    warnings: tuple[str, ...] = ()  # FILE:LINE lines for the log
    invariants: InvariantConfig | None = None  # the compliance invariants' view of this config
    # the parse this config came from (the group conns and files are in it); None from a loader that
    # reads no ipsec.conf, which then has no opportunistic groups
    parsed: ParsedConfig | None = field(default=None, repr=False, compare=False)

    def by_name(self) -> dict[str, ConnEntry]:
        return {c.name: c for c in self.connections if c.auto is not Auto.IGNORE}


class CrlSourceSlot(Protocol):
    """The engine's CrlSource, which a reload can point at a new folder."""

    def current(self) -> tuple[int, Sequence[x509.CertificateRevocationList]]: ...

    def follow(self, other: CrlSourceSlot | None) -> None: ...


class KeyImporter(Protocol):
    """What a loader needs from the providers Router: private keys become provider handles (a PEM
    key imported, or a token key found by PKCS#11 URI or by the certificate's public key), and so
    do ipsec.secrets' PSKs; a keyed fingerprint tells a changed PSK on reload without showing it."""

    def import_private_key(self, private_key: object, label: str = "", key_id: bytes = b"",
                           to_token: bool = False) -> PrivateKey: ...

    def import_pkcs8(self, der: bytes, label: str = "", key_id: bytes = b"", to_token: bool = False) -> PrivateKey: ...

    def load_private_key(self, uri_or_label: str) -> PrivateKey: ...

    def find_private_key(self, public_key: object) -> PrivateKey: ...

    def import_psk(self, secret: bytes, label: str) -> SecretKey: ...

    def keyed_fingerprint(self, material: bytes) -> str: ...


ConfigLoader = Callable[[ConfigPaths, KeyImporter], DaemonConfig]


# --- the slot -----------------------------------------------------------------------------------------
# None: ipsec.conf through fipsike.daemon.ipsecconf.IpsecConfLoader (the product's format)
LOADER: ConfigLoader | None = None


def load_config(paths: ConfigPaths, router: KeyImporter) -> DaemonConfig:
    """Load the configuration: libreswan's ipsec.conf, unless a test put another loader in the slot."""
    if LOADER is not None:
        return LOADER(paths, router)
    from fipsike.daemon.ipsecconf import IpsecConfLoader

    return IpsecConfLoader()(paths, router)


def with_reqids(config: DaemonConfig, assign: Callable[[str, str], int]) -> DaemonConfig:
    """Give every Child SA without a configured reqid one from the daemon, so trap policies and
    ACQUIREs can name it before the engine has negotiated anything."""
    out: list[ConnEntry] = []
    for e in config.connections:
        kids: Sequence[ChildConfig] = tuple(
            c if c.reqid else dataclasses.replace(c, reqid=assign(e.name, c.name)) for c in e.connection.children)
        out.append(dataclasses.replace(e, connection=dataclasses.replace(e.connection, children=tuple(kids))))
    return dataclasses.replace(config, connections=tuple(out))
