"""The daemon's loader for libreswan's ipsec.conf: fipsike.config's ConnSpecs become ConnEntries.

Two steps, because the self-tests sit between them: `parse` reads ipsec.conf, ipsec.secrets and the
policy groups (pure; no key is touched), so the compliance invariants can run over the loaded config
(`LoadedConfig.invariant_config()`, given to `compliance.module.startup`); `build` then needs the
operational module to find certificates and private keys. The DaemonConfig it builds keeps the parse
(`parsed`): the opportunistic bridge takes the group conns and files from it, not from a parse of its own.

Where things are, under --ipsecdir (libreswan keeps them in an NSS database, which fipsike has not):
- `certs/`: the certificate store (certs.store.CertStore): `leftcert=NICK` is a file stem or a CN
  there. CA certificates in it are trust anchors, as NSS's "CT" trust flag makes them in libreswan.
- `cacerts/`: more trust anchors (every certificate in it).
- `private/NICK.key` (PEM, mode 0600 or stricter): the private key of `leftcert=NICK`, imported into
  the module. Without one, the key is the PKCS#11 token's (`fipsike daemon --token LABEL`), found by
  the certificate's key identifier or public key; `leftcert=pkcs11:...` names the token key itself,
  and its certificate is the store's one with the same public key.
- `crls/`: CRL files (certs.crls.CrlFolder), re-read when the folder changes; `crl-strict=yes` in
  `config setup` refuses a peer whose CA has no CRL there.
`rightca=` (a nickname or DN in the stores) narrows the trust anchors of a conn to that CA.

`authby=secret` (or leftauth=/rightauth=secret): the PSK is ipsec.secrets' line for the conn's ID pair
as libreswan picks it (fipsike.config.secrets.Secrets.psk_for: both IDs, our ID, %any, the default),
imported into the module as a handle at once (Router.import_psk); the Connection holds the handle only.
A conn with no PSK line is refused with its FILE:LINE.

What the daemon does not run is refused with the conn's FILE:LINE, never run halfway: shunt conns
(type=passthrough/drop/reject). Conns that are not oriented (neither side is this host) are skipped
with a warning, as libreswan cannot bring them up.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from certs.crls import CrlFolder
from certs.keyid import same_public_key
from certs.store import CertStore, CertStoreError, StoredCert
from compliance.modes import FipsMode
from fipsike.config import ConfigError as FileConfigError
from fipsike.config import LoadedConfig, load
from fipsike.config.conns import SHUNT_TYPES, ConnSpec
from fipsike.config.errors import Location
from fipsike.config.hosts import HostAddresses, SystemHost
from fipsike.daemon.config_seam import (
    Auto,
    ConfigError,
    ConfigPaths,
    ConnEntry,
    CrlSourceSlot,
    DaemonConfig,
    KeyImporter,
    ParsedConfig,
)
from fipsike.ike.config import Connection
from providers.errors import ProviderError
from providers.handles import PrivateKey

AUTO = {"ignore": Auto.IGNORE, "add": Auto.ADD, "ondemand": Auto.ONDEMAND, "route": Auto.ROUTE,
        "start": Auto.START, "up": Auto.START}
# libreswan 5 has no dpdaction= (obsolete): a dead peer's conn does what its auto= says
DPD_ACTION = {Auto.START: "restart", Auto.ONDEMAND: "hold", Auto.ROUTE: "hold"}
KEY_SUFFIXES = (".key", ".pem")
# RFC 7468 PRIVATE KEY (PKCS#8), EC PRIVATE KEY (SEC 1), RSA PRIVATE KEY (PKCS#1)
PEM_KEY = re.compile(rb"-----BEGIN ((?:[A-Z]+ )?)PRIVATE KEY-----\r?\n(.*?)-----END \1PRIVATE KEY-----", re.S)


class CrlFolderSource:
    """certs.crls.CrlFolder as the engine's CrlSource (`current() -> (generation, CRLs)`). The daemon
    keeps one for its lifetime; a reload swaps the folder under it (`follow`)."""

    def __init__(self, folder: CrlFolder | None = None) -> None:
        self.folder = folder
        self._base = 0  # raised on every swap, so the generation never repeats

    def current(self) -> tuple[int, Sequence[x509.CertificateRevocationList]]:
        if self.folder is None:
            return self._base, ()
        crls = self.folder.current(datetime.now(UTC))
        return self._base + self.folder.generation, crls

    def follow(self, other: CrlSourceSlot | None) -> None:
        if isinstance(other, CrlFolderSource) and other is not self:
            self._base += (self.folder.generation if self.folder is not None else 0) + 1
            self.folder = other.folder


class ThreadedHost:
    """SystemHost asked from a worker thread: pyroute2's synchronous API runs an event loop of its own,
    which fails inside the daemon's running loop (a reload would find no local address at all)."""

    def __init__(self, host: HostAddresses | None = None) -> None:
        self.host = host or SystemHost()

    def local_addresses(self) -> frozenset[str]:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(self.host.local_addresses).result()

    def default_route_address(self, version: int) -> str | None:
        return self.host.default_route_address(version)


class PemKeyCache:
    """The handles of <ipsecdir>/private PEM keys by file, kept across loads: a reload reuses the handle of
    a key file that has not changed (same inode, size, mtime and ctime) instead of importing it again, so
    handles do not pile up in the provider and each key's pairwise-consistency test runs once per file.
    A load forgets the files it no longer uses (`keep_only`); the daemon wipes handles nothing uses."""

    def __init__(self) -> None:
        self._keys: dict[Path, tuple[tuple[int, ...], PrivateKey]] = {}

    @staticmethod
    def signature(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def get(self, path: Path, sig: tuple[int, ...]) -> PrivateKey | None:
        hit = self._keys.get(path)
        if hit is None or hit[0] != sig or hit[1].wiped:
            return None
        return hit[1]

    def put(self, path: Path, sig: tuple[int, ...], key: PrivateKey) -> None:
        self._keys[path] = (sig, key)

    def keep_only(self, paths: set[Path]) -> None:
        for p in set(self._keys) - paths:
            del self._keys[p]

    def __len__(self) -> int:
        return len(self._keys)


class IpsecConfLoader:
    """The LOADER for ipsec.conf: `loader(paths, router) -> DaemonConfig`, or ConfigError in one line."""

    def __init__(self, fips_mode: FipsMode = FipsMode.POLICY, host: HostAddresses | None = None) -> None:
        self.fips_mode = fips_mode
        self.host = host or ThreadedHost()
        self.pem_keys = PemKeyCache()

    def __call__(self, paths: ConfigPaths, router: KeyImporter) -> DaemonConfig:
        return self.build(self.parse(paths), paths, router)

    def parse(self, paths: ConfigPaths) -> LoadedConfig:
        try:
            return load(paths.config, secrets=paths.secrets if paths.secrets.exists() else None,
                        ipsecdir=paths.ipsecdir, fips_mode=self.fips_mode, host=self.host)
        except FileConfigError as exc:
            more = len(exc.diagnostics) - 1
            raise ConfigError(str(exc.first) + (f" (and {more} more: fipsike check-config --config "
                                                f"{paths.config})" if more else "")) from None

    def build(self, loaded: LoadedConfig, paths: ConfigPaths, router: KeyImporter) -> DaemonConfig:
        stores = _Stores(paths.ipsecdir, router, self.pem_keys)
        crl_strict = bool(loaded.setup_value("crl-strict", False))
        warnings = [str(w) for w in loaded.warnings]
        entries: list[ConnEntry] = []
        for spec in loaded.conns:
            auto = AUTO.get(spec.auto.lower())
            if auto is None:
                raise _err(spec.where("auto"), spec, "auto", f"auto={spec.auto} is not one of {', '.join(AUTO)}")
            if auto is Auto.IGNORE or spec.opportunistic:
                continue  # a group conn (right=%opportunisticgroup / %group) is a template: the OE bridge's
            if spec.type in SHUNT_TYPES:
                raise _err(spec.where("type"), spec, "type", f"type={spec.type}: shunt conns are not installed by "
                                                             "the daemon (no kernel shunt policies yet)")
            if not spec.oriented:
                warnings.append(f"{spec.location}: conn {spec.name}: skipped: neither left nor right is one of "
                                "this host's addresses")
                continue
            conn = dataclasses.replace(stores.credentials(spec), crl_strict=crl_strict,
                                       dpd_action=DPD_ACTION.get(auto, "clear"))
            psk_source: list[str] = []
            if "psk" in (conn.local_auth, conn.remote_auth):
                conn, psk_source = _with_psk(conn, spec, loaded, router)
            # the settings, and which certificates they resolved to: a renewed certificate is a changed conn
            certs = [c for c in (conn.certificate, *conn.trust_anchors) if c is not None]
            source = "\n".join([*(f"{k}={v.text}" for k, v in sorted(spec.settings.items())),
                                 f"crl-strict={crl_strict}", *(f"cert={c.serial_number:x}" for c in certs),
                                 *psk_source])
            entries.append(ConnEntry(conn, auto, source, spec))
        folder = CrlFolder(paths.ipsecdir / "crls", router, stores.anchors(), stores.intermediates())
        self.pem_keys.keep_only(stores.pem_used)
        return DaemonConfig(tuple(entries), None, crls=CrlFolderSource(folder), warnings=tuple(warnings),
                            invariants=loaded.invariant_config(), parsed=ParsedConfig(loaded, self.host))


def _with_psk(conn: Connection, spec: ConnSpec, loaded: LoadedConfig,
              router: KeyImporter) -> tuple[Connection, list[str]]:
    """The conn with its PSK handle, and what a reload compares: where the line is and a keyed
    fingerprint of the secret (a rotated PSK is a changed conn), never the secret."""
    entry = loaded.secrets.psk_for(conn.local_id, conn.remote_id)
    if entry is None:
        raise _err(spec.where("authby"), spec, "authby", f"no PSK in ipsec.secrets for {conn.local_id} / "
                                                         f"{conn.remote_id} (e.g. '{conn.local_id} {conn.remote_id} "
                                                         ": PSK \"...\"')")
    try:
        handle = router.import_psk(entry.secret.reveal(), spec.name)
    except ProviderError as exc:
        raise _err(spec.where("authby"), spec, "authby", f"the PSK at {entry.location} was refused by the module "
                                                         f"({type(exc).__name__})") from None
    fingerprint = router.keyed_fingerprint(entry.secret.reveal())
    return dataclasses.replace(conn, psk=handle), [f"psk={entry.location}:{fingerprint}"]


def _err(loc: Location, spec: ConnSpec, keyword: str, message: str) -> ConfigError:
    return ConfigError(f"{loc}: conn {spec.name}: {keyword}: {message}")


def _is_ca(c: StoredCert) -> bool:
    return c.is_ca or c.cert.subject == c.cert.issuer


class _Stores:
    """<ipsecdir>/certs, <ipsecdir>/cacerts and <ipsecdir>/private, read once per load."""

    def __init__(self, ipsecdir: Path, router: KeyImporter, pem_keys: PemKeyCache | None = None) -> None:
        self.ipsecdir = ipsecdir
        self.router = router
        self.pem_keys = pem_keys if pem_keys is not None else PemKeyCache()
        self.pem_used: set[Path] = set()
        try:
            self.certs = CertStore(ipsecdir / "certs", router)
            self.cacerts = CertStore(ipsecdir / "cacerts", router)
        except CertStoreError as exc:
            raise ConfigError(str(exc)) from None

    def anchors(self) -> tuple[x509.Certificate, ...]:
        out = [c.cert for c in self.cacerts] + [c.cert for c in self.certs if _is_ca(c)]
        return tuple(c for i, c in enumerate(out) if c not in out[:i])

    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return tuple(c for c in self.anchors() if c.subject != c.issuer)

    def find(self, ref: str) -> StoredCert:
        for store in (self.certs, self.cacerts):
            try:
                return store.find(ref)
            except KeyError:
                continue
        raise KeyError(ref)

    def credentials(self, spec: ConnSpec) -> Connection:
        """The conn's engine Connection with its certificate, private key, chain and trust anchors."""
        local, remote = spec.local_side, spec.remote_side
        conn = spec.connection
        if remote.auth not in ("null", "secret"):
            anchors = self.anchors()
            if remote.ca and remote.ca != "%same":
                try:
                    anchors = (self.find(remote.ca).cert,)
                except KeyError:
                    raise _err(spec.where(f"{'right' if spec.local == 'left' else 'left'}ca"), spec, "ca",
                               f"no CA certificate {remote.ca!r} in {self.ipsecdir}/cacerts or /certs") from None
            if not anchors:
                raise _err(spec.location, spec, f"{'right' if spec.local == 'left' else 'left'}ca",
                           f"no trust anchor: put the CA certificate in {self.ipsecdir}/cacerts")
            conn = dataclasses.replace(conn, trust_anchors=anchors)
        if local.auth in ("null", "secret"):
            return conn
        key_word = f"{spec.local}cert"
        if not local.cert:
            raise _err(spec.where(key_word), spec, key_word, f"{spec.local}auth={local.auth} needs {key_word}=")
        entry, key = self._cert_and_key(spec, key_word, local.cert)
        return dataclasses.replace(conn, certificate=entry.cert, private_key=key, intermediates=self._chain(entry.cert))

    def _cert_and_key(self, spec: ConnSpec, kw: str, ref: str) -> tuple[StoredCert, PrivateKey]:
        loc = spec.where(kw)
        if ref.lower().startswith("pkcs11:"):
            try:
                key = self.router.load_private_key(ref)
            except ProviderError as exc:
                raise _err(loc, spec, kw, _key_problem(exc, "the PKCS#11 URI names no private key on the token")) \
                    from None
            for c in list(self.certs) + list(self.cacerts):
                if same_public_key(c.cert.public_key(), key.public_key()):
                    return c, key
            raise _err(loc, spec, kw, f"no certificate in {self.ipsecdir}/certs holds the token key's public key")
        try:
            entry = self.certs.find(ref)
        except KeyError:
            raise _err(loc, spec, kw, f"no certificate {ref!r} in {self.ipsecdir}/certs") from None
        pem = next((p for p in (self.ipsecdir / "private" / f"{entry.nickname}{s}" for s in KEY_SUFFIXES)
                    if p.exists()), None)
        if pem is not None:
            return entry, self._import_pem(pem, entry, spec, kw)
        try:
            return entry, self.certs.private_key(entry)
        except ProviderError as exc:
            raise _err(loc, spec, kw, _key_problem(
                exc, f"neither {self.ipsecdir}/private/{entry.nickname}.key nor a key on the token")) from None

    def _import_pem(self, path: Path, entry: StoredCert, spec: ConnSpec, kw: str) -> PrivateKey:
        loc = spec.where(kw)
        try:
            st = path.stat()
            if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise _err(loc, spec, kw, f"{path} is readable by group or others (chmod 600 {path})")
            sig = PemKeyCache.signature(st)
            cached = self.pem_keys.get(path, sig)
            if cached is not None:  # the file as last imported: its handle again (the certificate may differ)
                if not same_public_key(cached.public_key(), entry.cert.public_key()):
                    raise _err(loc, spec, kw, f"{path} is not the private key of certificate {entry.nickname!r}")
                self.pem_used.add(path)
                return cached
            data = path.read_bytes()
        except OSError as exc:
            raise _err(loc, spec, kw, f"{path}: {exc.strerror or type(exc).__name__}") from None
        # PEM is only base64 around DER; the key itself is parsed inside providers/ (Router.import_pkcs8)
        block = PEM_KEY.search(data)
        try:
            if block is None or b"ENCRYPTED" in block.group(0):
                raise ValueError("not an unencrypted PEM private key")
            key = self.router.import_pkcs8(base64.b64decode(b"".join(block.group(2).split()), validate=True),
                                           label=f"{spec.name}-key")
        except (ValueError, ProviderError):
            # the parser's message may quote the file: say only which file it was
            raise _err(loc, spec, kw, f"{path} is not an unencrypted PEM private key") from None
        if not same_public_key(key.public_key(), entry.cert.public_key()):
            key.wipe()
            raise _err(loc, spec, kw, f"{path} is not the private key of certificate {entry.nickname!r}")
        self.pem_keys.put(path, sig, key)
        self.pem_used.add(path)
        return key

    def _chain(self, cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """The CA certificates between ours and a root, to send with it."""
        cas = {c.subject.public_bytes(): c for c in self.intermediates()}
        chain: list[x509.Certificate] = []
        nxt = cas.get(cert.issuer.public_bytes())
        while nxt is not None and nxt not in chain:
            chain.append(nxt)
            nxt = cas.get(nxt.issuer.public_bytes())
        return tuple(chain)


def _key_problem(exc: ProviderError, what: str) -> str:
    if type(exc).__name__ == "UnsupportedOperation":
        return f"{what}; no PKCS#11 token is configured (fipsike daemon --token LABEL)"
    return f"{what} ({type(exc).__name__})"

