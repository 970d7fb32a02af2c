"""Importing a PKCS#12 (RFC 7292): the private key onto the token, the
certificates into the store.

The key goes through `router.import_private_key(..., to_token=True)`: on the
token it is sensitive and non-extractable, labelled, with CKA_ID = the
certificate's key identifier (so `CertStore.private_key` finds it by RFC 7512
`id=`). The active profile's key rules apply before anything is written (fips:
RSA >= 2048 bits, ECDSA on P-256/384/521 only). The certificate is stored as
`<label>.pem`, each chain CA as `<its CN>.pem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.identity import name_string
from certs.keyid import cert_key_id, same_public_key
from certs.store import CertStore, CertStoreError, common_name, key_uri, load_certificates, safe_nickname
from providers.errors import KeyNotFound, PolicyViolation, ProviderError
from providers.policy import key_spec_of


class ImportRefused(ValueError):
    """The PKCS#12 cannot be imported; the message says why (never a secret)."""


@dataclass
class ImportResult:
    label: str
    key_type: str
    key_id: bytes
    token: str
    key_already_present: bool
    subject: str
    cert_path: Path
    ca_paths: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "key_type": self.key_type,
            "key_id": self.key_id.hex(),
            "key_uri": key_uri(self.key_id),
            "token": self.token,
            "key_already_present": self.key_already_present,
            "subject": self.subject,
            "certificate": str(self.cert_path),
            "ca_certificates": [str(p) for p in self.ca_paths],
        }

    def lines(self) -> list[str]:
        what = "already on" if self.key_already_present else "imported to"
        out = [f"private key {self.key_type} {what} token {self.token} as label={self.label!r} "
               f"id={self.key_id.hex()} (sensitive, not extractable)",
               f"certificate {self.subject} -> {self.cert_path}"]
        out += [f"CA certificate -> {p}" for p in self.ca_paths]
        return out


def read_pkcs12(data: bytes, password: bytes | None) -> pkcs12.PKCS12KeyAndCertificates:
    # an empty password may mean "encrypted under the empty string" or "not encrypted"
    for attempt in ([password] if password else [b"", None]):
        try:
            return pkcs12.load_pkcs12(data, attempt)
        except ValueError:
            continue
    # cryptography's message may quote parser internals; ours names the two causes
    raise ImportRefused("cannot read the PKCS#12: wrong password or not a PKCS#12 file")


def _store_path_free(store: CertStore, cert: x509.Certificate, nickname: str) -> None:
    path = store.directory / f"{safe_nickname(nickname)}.pem"
    if path.exists() and cert not in load_certificates(path):
        raise ImportRefused(f"{path} exists and holds another certificate: choose another --label")


def import_pkcs12(data: bytes, password: bytes | None, router: Any, store: CertStore,
                  label: str | None = None) -> ImportResult:
    """Imports the key (onto the router's token) and the certificates (into `store`)."""
    bundle = read_pkcs12(data, password)
    key = bundle.key
    if key is None:
        raise ImportRefused("the PKCS#12 holds no private key")
    if bundle.cert is None:
        raise ImportRefused("the PKCS#12 holds no certificate for its key")
    cert = bundle.cert.certificate
    spec = key_spec_of(key)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ImportRefused(f"{spec} keys are not supported: only RSA and ECDSA")
    try:
        router.policy.check_key(spec)
    except PolicyViolation as e:
        raise ImportRefused(f"key refused: {e}") from None
    if not same_public_key(key.public_key(), cert.public_key()):
        raise ImportRefused(f"the private key does not belong to the certificate {name_string(cert.subject)}")

    friendly = bundle.cert.friendly_name.decode("utf-8", "replace") if bundle.cert.friendly_name else ""
    nickname = label or friendly or common_name(cert) or "imported"
    key_id = cert_key_id(router, cert)
    cas = [c.certificate for c in bundle.additional_certs if c.certificate != cert]
    # everything that can fail on the store side fails here, before the token is touched
    store.check_writable()
    _store_path_free(store, cert, nickname)
    for ca in cas:
        _store_path_free(store, ca, common_name(ca) or f"ca-{cert_key_id(router, ca).hex()}")

    existing: Any = None
    try:
        existing = router.load_private_key(key_uri(key_id))
    except KeyNotFound:
        pass
    if existing is not None and not same_public_key(existing.public_key(), cert.public_key()):
        raise ImportRefused(f"the token already holds a different key with id {key_id.hex()}")
    imported: Any = None
    if existing is None:
        try:
            imported = router.import_private_key(key, label=nickname, key_id=key_id, to_token=True)
        except PolicyViolation as e:
            raise ImportRefused(f"key refused: {e}") from None
        except ProviderError as e:
            raise ImportRefused(f"the token did not take the key: {e}") from None
    del key, bundle  # drop our references to the software copy as soon as the token has it

    try:
        cert_path = store.add(cert, nickname)
        ca_paths = [store.add(ca, common_name(ca) or f"ca-{cert_key_id(router, ca).hex()}") for ca in cas]
    except CertStoreError as e:
        # a key without its certificate is an orphan nobody will find: take back what we put there
        removed = imported is not None and _remove_from_token(router, imported)
        where = "the key was removed from the token again" if removed else \
            ("the key stays on the token" if imported is None else "the key could NOT be removed from the token")
        raise ImportRefused(f"the certificate could not be stored ({e}); {where}") from None
    token = getattr(router.pkcs11, "label", None) or getattr(router.pkcs11, "name", "?")
    # an existing key keeps the label the token gave it, whatever --label asked for
    label = str(getattr(existing, "label", "") or nickname) if existing is not None else nickname
    return ImportResult(label, str(spec), key_id, str(token), existing is not None, name_string(cert.subject),
                        cert_path, ca_paths)


def _remove_from_token(router: Any, key: Any) -> bool:
    token = getattr(router, "pkcs11", None)
    if token is None or not hasattr(token, "destroy_key"):
        return False
    try:
        token.destroy_key(key)
    except Exception:  # noqa: BLE001 - best effort; the message then says the key stayed
        return False
    return True
