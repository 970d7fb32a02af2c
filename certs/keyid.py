"""Key identifiers: the SubjectKeyIdentifier we put on certificates, and the
CKA_ID a private key gets on the token (the same bytes, so the certificate
finds its key: RFC 7512 `id=`).

Computed per RFC 7093 section 2 method 1 (SHA-256 of the subjectPublicKey BIT
STRING value, leftmost 160 bits) through the Router: RFC 5280's SHA-1 method
would need SHA-1, which the fips profile keeps for non-signature digests only.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certs.der import spki_public_key_bits
from providers.algorithms import HashAlg


def key_identifier(router: Any, public_key: Any) -> bytes:
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    digest: bytes = router.digest(HashAlg.SHA256, spki_public_key_bits(spki))
    return digest[:20]


def cert_key_id(router: Any, cert: x509.Certificate) -> bytes:
    """The certificate's SubjectKeyIdentifier, or the RFC 7093 identifier of its key when it has none."""
    try:
        return bytes(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except x509.ExtensionNotFound:
        return key_identifier(router, cert.public_key())


def same_public_key(a: Any, b: Any) -> bool:
    """Public keys compared by their SubjectPublicKeyInfo encoding (public values only)."""
    fmt = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return bool(a.public_bytes(*fmt) == b.public_bytes(*fmt))
