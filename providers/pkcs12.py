"""Private keys that arrive as bytes: PKCS#12 bundles (RFC 7292) and PKCS#8 (RFC 5958).

Both are decrypted/parsed here, inside the boundary, and the key object never
leaves this package: callers get a PrivateKey handle (Router.open_pkcs12,
Router.import_pkcs8), with the gate and the policy applied by the Router
before any key is wrapped. Certificates from the bundle are public and go out
as x509 objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from providers.errors import InvalidInput
from providers.handles import PrivateKey


@dataclass
class Pkcs12Contents:
    """What a PKCS#12 held. `key` is a software handle (OpenSSL owner) until it is moved to a token with
    `router.import_private_key(contents.key, ..., to_token=True)`; `wipe()` drops it."""

    key: PrivateKey | None
    cert: x509.Certificate | None
    friendly_name: str = ""
    additional: list[x509.Certificate] = field(default_factory=list)

    def wipe(self) -> None:
        if self.key is not None:
            self.key.wipe()
        self.key = None


@dataclass
class ParsedPkcs12:
    """providers/ only: the bundle with its key object still in the clear."""

    key: Any
    cert: x509.Certificate | None
    friendly_name: str
    additional: list[x509.Certificate]


def parse_pkcs12(data: bytes, password: bytes | None) -> ParsedPkcs12:
    """Raises InvalidInput (never quoting the parser) on a wrong password or a file that is not PKCS#12."""
    bundle = None
    # an empty password may mean "encrypted under the empty string" or "not encrypted"
    for attempt in ([password] if password else [b"", None]):
        try:
            bundle = pkcs12.load_pkcs12(data, attempt)
            break
        except ValueError:
            continue
    if bundle is None:
        raise InvalidInput("cannot read the PKCS#12: wrong password or not a PKCS#12 file")
    cert = bundle.cert.certificate if bundle.cert is not None else None
    name = bundle.cert.friendly_name if bundle.cert is not None else None
    friendly = name.decode("utf-8", "replace") if name else ""
    others = [c.certificate for c in bundle.additional_certs if c.certificate != cert]
    return ParsedPkcs12(bundle.key, cert, friendly, others)


def parse_pkcs8(der: bytes) -> Any:
    """An unencrypted PKCS#8 / SEC 1 / PKCS#1 DER private key (known-answer test keys)."""
    try:
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        raise InvalidInput("not a DER private key") from None
