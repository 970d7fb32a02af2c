"""The certificate store: a directory of CA and end-entity certificates.

Files ending in .pem/.crt/.cer (PEM, several certificates allowed) or .der
(one DER certificate). A certificate is found by nickname (the file stem, or
its CN, as libreswan's `leftcert=` names it), by subject, or by
SubjectKeyIdentifier. Private keys never live here: they are on the token,
found through the Router by a configured PKCS#11 URI (RFC 7512), else by
`id=` = the certificate's key identifier (what `fipsike import` writes), else
by matching the certificate's public key on the token.

Default location: /etc/fipsike/certs (override with FIPSIKE_CERT_DIR or --store).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from certs.identity import IdentityError, name_string, normalised_name, parse_dn
from certs.keyid import cert_key_id, same_public_key
from providers.errors import KeyNotFound, ProviderError
from providers.pkcs11.uri import Pkcs11Uri, format_uri, parse_uri, printable_uri
from providers.policy import key_spec_of

DEFAULT_STORE_DIR = Path("/etc/fipsike/certs")
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


def default_store_dir() -> Path:
    return Path(os.environ.get("FIPSIKE_CERT_DIR", str(DEFAULT_STORE_DIR)))


class CertStoreError(ValueError):
    """A store file that cannot be read; the message starts with the path."""


@dataclass(frozen=True)
class StoredCert:
    nickname: str
    path: Path
    cert: x509.Certificate
    key_id: bytes  # SubjectKeyIdentifier, or the RFC 7093 identifier when absent

    @property
    def is_ca(self) -> bool:
        try:
            return bool(self.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            return False

    @property
    def common_name(self) -> str:
        cns = self.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(cns[0].value) if cns else ""

    def subject_alt_names(self) -> list[str]:
        try:
            san = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        out = []
        for n in san:
            if isinstance(n, x509.DNSName):
                out.append(f"DNS:{n.value}")
            elif isinstance(n, x509.RFC822Name):
                out.append(f"email:{n.value}")
            elif isinstance(n, x509.IPAddress):
                out.append(f"IP:{n.value}")
            elif isinstance(n, x509.DirectoryName):
                out.append(f"DirName:{name_string(n.value)}")
            elif isinstance(n, x509.UniformResourceIdentifier):
                out.append(f"URI:{n.value}")
        return out

    def key_type(self) -> str:
        key = self.cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            return f"RSA-{key.key_size}"
        if isinstance(key, ec.EllipticCurvePublicKey):
            return f"ECDSA-{key.curve.name}"
        return str(key_spec_of(key))

    def summary(self, has_private_key: bool | None = None) -> dict[str, Any]:
        """Public facts only (for `fipsike cert list`)."""
        return {
            "nickname": self.nickname,
            "path": str(self.path),
            "subject": name_string(self.cert.subject),
            "issuer": name_string(self.cert.issuer),
            "serial": f"{self.cert.serial_number:x}",
            "san": self.subject_alt_names(),
            "ski": self.key_id.hex(),
            "key_type": self.key_type(),
            "not_before": _iso(self.cert.not_valid_before_utc),
            "not_after": _iso(self.cert.not_valid_after_utc),
            "ca": self.is_ca,
            "private_key_on_token": has_private_key,
        }


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM or DER file (none for a PEM file of other objects);
    CertStoreError names the file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CertStoreError(f"{path}: {e.strerror}") from e
    if b"-----BEGIN" in data and b"-----BEGIN CERTIFICATE-----" not in data:
        return []  # another PEM object (a CRL, a CSR): not the store's business
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        # the parser's own text (Rust ParseError internals) helps nobody who runs the command
        raise CertStoreError(f"{path}: not a PEM or DER certificate") from None
    return certs


def check_writable(directory: Path) -> None:
    """CertStoreError unless certificates can be written to `directory` (created if needed):
    checked before a key goes onto the token, so a bad --store leaves nothing behind."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CertStoreError(f"{directory}: the certificate store is not a directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # a real write: root passes os.access() on a read-only file system
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".probe-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise CertStoreError(f"{directory}: cannot write to the certificate store: "
                             f"{e.strerror or type(e).__name__}") from None


def safe_nickname(name: str) -> str:
    """A nickname usable as a file name (no path separators, no leading dot)."""
    cleaned = re.sub(r"[^A-Za-z0-9._@-]+", "_", name).strip("._")
    return cleaned or "cert"


class CertStore:
    def __init__(self, directory: Path, router: Any) -> None:
        """`router` computes key identifiers (digest) and finds private keys on the token."""
        self.directory = Path(directory)
        self.router = router
        self.entries: list[StoredCert] = []
        self.reload()

    def reload(self) -> None:
        entries: list[StoredCert] = []
        if self.directory.is_dir():
            for path in sorted(self.directory.rglob("*")):
                if path.suffix.lower() not in CERT_SUFFIXES or not path.is_file():
                    continue
                for n, cert in enumerate(load_certificates(path)):
                    nick = path.stem if n == 0 else (common_name(cert) or f"{path.stem}#{n}")
                    entries.append(StoredCert(nick, path, cert, cert_key_id(self.router, cert)))
        self.entries = entries

    def __iter__(self) -> Iterator[StoredCert]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    # --- look-ups ---------------------------------------------------------------
    def by_nickname(self, nickname: str) -> StoredCert | None:
        """File stem first, then CN (exact, then case-insensitive), as leftcert= names it."""
        for e in self.entries:
            if e.nickname == nickname:
                return e
        for e in self.entries:
            if e.common_name == nickname:
                return e
        low = nickname.casefold()
        for e in self.entries:
            if e.nickname.casefold() == low or e.common_name.casefold() == low:
                return e
        return None

    def by_subject(self, subject: x509.Name) -> list[StoredCert]:
        want = _norm(subject)
        return [e for e in self.entries if _norm(e.cert.subject) == want]

    def by_ski(self, ski: bytes) -> StoredCert | None:
        for e in self.entries:
            if e.key_id == ski:
                return e
        return None

    def find(self, ref: str) -> StoredCert:
        """By nickname, '@#<hex SKI>', or a DN string; KeyError when nothing matches."""
        if ref.startswith("@#"):
            try:
                hit = self.by_ski(bytes.fromhex(ref[2:]))
            except ValueError:
                hit = None
        else:
            hit = self.by_nickname(ref)
            if hit is None and "=" in ref:
                try:
                    subjects = self.by_subject(parse_dn(ref))
                except IdentityError:
                    subjects = []
                hit = subjects[0] if subjects else None
        if hit is None:
            raise KeyError(f"no certificate {ref!r} in {self.directory}")
        return hit

    def ca_certificates(self) -> list[x509.Certificate]:
        return [e.cert for e in self.entries if e.is_ca]

    # --- writing ------------------------------------------------------------------
    def check_writable(self) -> None:
        check_writable(self.directory)

    def add(self, cert: x509.Certificate, nickname: str) -> Path:
        """Writes `<nickname>.pem` (atomically); an identical file is left alone,
        a different certificate under the same nickname is an error."""
        path = self.directory / f"{safe_nickname(nickname)}.pem"
        pem = cert.public_bytes(Encoding.PEM)
        if path.exists():
            if cert in load_certificates(path):
                return path
            raise CertStoreError(f"{path}: exists and holds another certificate")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".pem")
        except OSError as e:
            raise CertStoreError(f"{self.directory}: cannot write to the certificate store: "
                                 f"{e.strerror or type(e).__name__}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise CertStoreError(f"{path}: cannot write: {e.strerror or type(e).__name__}") from None
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.reload()
        return path

    # --- private keys on the token ------------------------------------------------------
    def private_key(self, entry: StoredCert, uri: str | None = None) -> Any:
        """The token's private key for this certificate (a providers PrivateKey handle).

        `uri` (a configured RFC 7512 URI) when given; else `pkcs11:type=private;id=<key id>`
        (what `fipsike import` writes); else the token key whose public half is the
        certificate's. The key found must hold the certificate's public key. Raises KeyNotFound."""
        public = entry.cert.public_key()
        if uri and uri[:7].lower() == "pkcs11:" and parse_uri(uri).pin_value is not None:
            # RFC 7512 allows pin-value, but a PIN in a config file ends up in backups and
            # diffs: the token's PIN comes from its PIN file (or pin-source), never from here
            raise KeyNotFound(f"the PKCS#11 URI for certificate '{entry.nickname}' carries pin-value: "
                              "give the token PIN through its PIN file instead (URI: "
                              f"{printable_uri(uri)})")
        for ref in ([uri] if uri else [key_uri(entry.key_id)]):
            try:
                key = self.router.load_private_key(ref)
            except KeyNotFound:
                if uri:
                    raise
                continue
            if same_public_key(key.public_key(), public):
                return key
            if uri:
                raise KeyNotFound(f"the key at {printable_uri(uri)} does not belong to certificate "
                                  f"'{entry.nickname}'")
        return self.router.find_private_key(public)

    def has_private_key(self, entry: StoredCert) -> bool | None:
        """True/False when a token is configured; None when there is none to ask."""
        try:
            self.private_key(entry)
        except KeyNotFound:
            return False
        except (ProviderError, AttributeError, NotImplementedError):
            return None
        return True


def key_uri(key_id: bytes) -> str:
    """RFC 7512 URI of a private key by CKA_ID."""
    return format_uri(Pkcs11Uri(type="private", id=key_id))


def common_name(cert: x509.Certificate) -> str:
    """The subject CN (the nickname libreswan users give in leftcert=), or ""."""
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else ""


def _norm(name: x509.Name) -> Any:
    return normalised_name(name)
