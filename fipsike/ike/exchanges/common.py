"""Small pieces several exchanges share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fipsike.ike.config import Connection
from fipsike.ike.payloads import CertificateRequest, Payload
from fipsike.ike.proposals import Proposal, TransformType
from fipsike.ike.registry import CertEncoding
from providers.algorithms import HashAlg

if TYPE_CHECKING:
    from fipsike.ike.engine import Engine


def certreq(eng: Engine, conn: Connection) -> list[Payload]:
    """CERTREQ with the SHA-1 hashes of our trust anchors' SubjectPublicKeyInfo (RFC 7296 3.7)."""
    if not conn.send_certreq or not conn.trust_anchors or conn.remote_auth != "pubkey":
        return []

    def build() -> bytes:
        return b"".join(
            eng.router.digest(HashAlg.SHA1, ca.public_key().public_bytes(Encoding.DER,
                                                                         PublicFormat.SubjectPublicKeyInfo))
            for ca in conn.trust_anchors)

    data: bytes = eng.memo(("certreq", eng.ident(conn.trust_anchors)), build)
    return [CertificateRequest(int(CertEncoding.X509_CERT_SIGNATURE), data)]


def ke_first(p: Proposal, group: int) -> Proposal:
    kes = p.of_type(TransformType.KE)
    if not any(t.id == group for t in kes):
        return p
    others = [t for t in p.transforms if t.type != TransformType.KE]
    ordered = [t for t in kes if t.id == group] + [t for t in kes if t.id != group]
    return Proposal(p.number, p.protocol, p.spi, tuple(others + ordered))
