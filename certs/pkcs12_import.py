"""Importing a PKCS#12 (RFC 7292): the private key onto the token, the
certificates into the store.

The bundle is opened inside the boundary (`router.open_pkcs12`: decrypted
there, under the module gate and the policy); this module sees its
certificates and an opaque software key handle, never the key. The key then
goes through `router.import_private_key(handle, ..., to_token=True)`: on the
token it is sensitive and non-extractable, labelled, with CKA_ID = the
certificate's key identifier (so `CertStore.private_key` finds it by RFC 7512
`id=`). The active profile's key rules apply before anything is written (fips:
RSA >= 2048 bits, ECDSA on P-256/384/521 only). The certificate is stored as
`<label>.pem`, each chain CA as `<its CN>.pem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from cryptography import x509

from certs.identity import name_string
from certs.keyid import cert_key_id, same_public_key
from certs.store import CertStore, CertStoreError, common_name, key_uri, load_certificates, safe_nickname
from providers.errors import InvalidInput, KeyNotFound, PolicyViolation, ProviderError
from providers.pkcs12 import Pkcs12Contents


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


def read_pkcs12(router: Any, data: bytes, password: bytes | None) -> Pkcs12Contents:
    """The bundle opened by the router; a bad file, a wrong password or a refused key is ImportRefused."""
    try:
        return cast(Pkcs12Contents, router.open_pkcs12(data, password))
    except PolicyViolation as e:
        raise ImportRefused(f"key refused: {e}") from None
    except InvalidInput as e:
        raise ImportRefused(str(e)) from None  # the provider's message names the causes, never the parser's
    except ProviderError as e:
        raise ImportRefused(f"the private key cannot be used: {e}") from None


def _store_path_free(store: CertStore, cert: x509.Certificate, nickname: str) -> None:
    path = store.directory / f"{safe_nickname(nickname)}.pem"
    if path.exists() and cert not in load_certificates(path):
        raise ImportRefused(f"{path} exists and holds another certificate: choose another --label")


def import_pkcs12(data: bytes, password: bytes | None, router: Any, store: CertStore,
                  label: str | None = None) -> ImportResult:
    """Imports the key (onto the router's token) and the certificates (into `store`)."""
    bundle = read_pkcs12(router, data, password)
    try:
        return _import(bundle, router, store, label)
    finally:
        bundle.wipe()  # drop the software copy whatever happened: the token has it, or nobody does


def _import(bundle: Pkcs12Contents, router: Any, store: CertStore, label: str | None) -> ImportResult:
    key = bundle.key
    if key is None:
        raise ImportRefused("the PKCS#12 holds no private key")
    if bundle.cert is None:
        raise ImportRefused("the PKCS#12 holds no certificate for its key")
    cert = bundle.cert
    spec = key.spec
    if not same_public_key(key.public_key(), cert.public_key()):
        raise ImportRefused(f"the private key does not belong to the certificate {name_string(cert.subject)}")

    nickname = label or bundle.friendly_name or common_name(cert) or "imported"
    key_id = cert_key_id(router, cert)
    cas = list(bundle.additional)
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
    bundle.wipe()  # the software copy goes as soon as the token has the key

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
