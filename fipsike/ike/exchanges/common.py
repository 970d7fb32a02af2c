"""Small pieces several exchanges share."""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fipsike.ike.actions import IkeSaRekeyed
from fipsike.ike.config import Connection
from fipsike.ike.context import IkeContext
from fipsike.ike.payloads import CertificateRequest, Payload
from fipsike.ike.proposals import Proposal, TransformType
from fipsike.ike.registry import CertEncoding
from fipsike.ike.sa import IkeSa, IkeState
from fipsike.ike.tasks import OWN_WORK, TaskKind
from providers.algorithms import HashAlg


def certreq(ctx: IkeContext, conn: Connection) -> list[Payload]:
    """CERTREQ with the SHA-1 hashes of our trust anchors' SubjectPublicKeyInfo (RFC 7296 3.7)."""
    if not conn.send_certreq or not conn.trust_anchors or conn.remote_auth != "pubkey":
        return []

    def build() -> bytes:
        return b"".join(
            ctx.router.digest(HashAlg.SHA1, ca.public_key().public_bytes(Encoding.DER,
                                                                         PublicFormat.SubjectPublicKeyInfo))
            for ca in conn.trust_anchors)

    data: bytes = ctx.memo(("certreq", ctx.ident(conn.trust_anchors)), build)
    return [CertificateRequest(int(CertEncoding.X509_CERT_SIGNATURE), data)]


def ke_first(p: Proposal, group: int) -> Proposal:
    kes = p.of_type(TransformType.KE)
    if not any(t.id == group for t in kes):
        return p
    others = [t for t in p.transforms if t.type != TransformType.KE]
    ordered = [t for t in kes if t.id == group] + [t for t in kes if t.id != group]
    return Proposal(p.number, p.protocol, p.spi, tuple(others + ordered))


def adopt(ctx: IkeContext, old: IkeSa, new: IkeSa, now: float) -> None:
    """The IKE SA `old` was rekeyed into `new` (RFC 7296 2.18): its Child SAs and queued work move to
    `new`; `old` waits for its DELETE."""
    ctx.sas.move_children(old, new)
    # queued work that is not about the old SA itself moves along
    new.tasks.extend(t for t in old.tasks if t.kind not in OWN_WORK)
    new.deferred.extend(old.deferred)
    old.deferred.clear()
    old.tasks = [t for t in old.tasks if t.kind == TaskKind.DELETE_IKE]
    old.state = IkeState.REKEYED
    old.rekeyed_to = new.name
    old.collision = None
    old.half_open_deadline = now + 30.0
    ctx.emit(IkeSaRekeyed(old.name, new.name, old.conn.name))
    ctx.log("info", "ike-sa-rekeyed", f"{old.conn.name}: {old.name} -> {new.name}")
    ctx.kick(new, now)
