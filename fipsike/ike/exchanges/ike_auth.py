"""IKE_AUTH (RFC 7296 1.2, 2.15): identities, certificates, AUTH, and the first Child SA.

Certificate authentication signs with RFC 7427 (method 14) or the RFC 4754 ECDSA
methods; the peer's chain is validated by certs.validation against the
connection's trust anchors and its ID must be bound to the end-entity
certificate (RFC 4945 3.1). Pre-shared keys (SHARED_KEY_MIC, RFC 7296 2.15) with the
connection's PSK handle: the responder picks the connection by the peer's identity first, so
the PSK checked is the one for that identity pair. NULL authentication (RFC 7619) only where the
connection allows it.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from certs.identity import Identity, IdentityError, IdType
from certs.keyid import cert_key_id
from fipsike.ike import identity as ident
from fipsike.ike.actions import ChildSaFailed, IkeSaEstablished
from fipsike.ike.auth import (
    AuthError,
    AuthPayload,
    choose_signature,
    make_signature_auth,
    null_auth,
    null_auth_verifies,
    psk_auth,
    psk_auth_verifies,
    signed_octets,
    verify_signature_auth,
)
from fipsike.ike.config import Connection
from fipsike.ike.context import IkeContext
from fipsike.ike.errors import CodecError
from fipsike.ike.exchanges import child as childmod
from fipsike.ike.exchanges.common import certreq
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Delete,
    IdentificationInitiator,
    IdentificationResponder,
    Notify,
    Payload,
    SecurityAssociation,
)
from fipsike.ike.proposals import admits
from fipsike.ike.registry import AuthMethod, CertEncoding, ExchangeType, NotifyType, ProtocolId
from fipsike.ike.sa import Exchange, IkeSa, IkeState, Task
from fipsike.ike.spis import SpiUnavailable
from fipsike.ike.tasks import Received, TaskKind
from providers.errors import ProviderError


def _local_id(ctx: IkeContext, conn: Connection) -> Identity:
    if conn.local_auth == "null" and conn.local_id in ("%fromcert", "", "%null"):
        return Identity(IdType.ID_NULL, b"")
    got: Identity = ctx.memo(("local-id", conn.local_id, ctx.ident(conn.certificate)),
                             lambda: ident.local_identity(conn.local_id, conn.certificate))
    return got


def _cert_payloads(ctx: IkeContext, conn: Connection, sa: IkeSa) -> list[Payload]:
    if conn.local_auth != "pubkey" or conn.certificate is None or conn.send_cert == "never":
        return []
    if conn.send_cert == "ifasked" and not sa.peer_certreq:
        return []
    return [Certificate(int(CertEncoding.X509_CERT_SIGNATURE), _der(ctx, c))
            for c in (conn.certificate, *conn.intermediates)]


def _der(ctx: IkeContext, cert: Any) -> bytes:
    der: bytes = ctx.memo(("der", ctx.ident(cert)), lambda: cert.public_bytes(Encoding.DER))
    return der


def _our_auth(ctx: IkeContext, sa: IkeSa, conn: Connection, octets: bytes) -> Authentication:
    assert sa.keys is not None and sa.suite is not None
    if conn.local_auth == "null":
        sk_p = sa.keys.sk_pi if sa.initiator else sa.keys.sk_pr
        return Authentication(int(AuthMethod.NULL_AUTH), null_auth(ctx.router, sa.suite.prf, sk_p, octets))
    if conn.local_auth == "psk":
        if conn.psk is None:
            raise AuthError("no PSK configured")
        return Authentication(int(AuthMethod.SHARED_KEY_MIC), psk_auth(ctx.router, sa.suite.prf, conn.psk, octets))
    if conn.private_key is None:
        raise AuthError("no private key configured")
    key, legacy = conn.private_key, conn.signature_auth == "legacy"
    # the choice depends only on the key, the peer's announced hashes and the (fixed) policy
    method, scheme = ctx.memo(("signature", key, sa.peer_hashes, legacy),
                              lambda: choose_signature(key, sa.peer_hashes, legacy, ctx.policy))
    a = make_signature_auth(ctx.router, conn.private_key, method, scheme, octets)
    return Authentication(a.method, a.data)


def _octets(ctx: IkeContext, sa: IkeSa, sent_by_initiator: bool, id_type: int, id_data: bytes) -> bytes:
    """The signed octets of the initiator (RealMessage1 | Nr | prf(SK_pi, IDi') [| IntAuth]) or the
    responder (RealMessage2 | Ni | prf(SK_pr, IDr') [| IntAuth]) (RFC 7296 2.15, RFC 9242 3.3.2: IntAuth
    binds every IKE_INTERMEDIATE message; SK_p* are the keys after the last of them)."""
    assert sa.keys is not None and sa.suite is not None
    int_auth = sa.intermediate.int_auth_octets(sa.auth_mid) if sa.intermediate is not None else b""
    if sent_by_initiator:
        return signed_octets(ctx.router, sa.suite.prf, sa.keys.sk_pi, sa.init_request, sa.nr, id_type,
                             id_data) + int_auth
    return signed_octets(ctx.router, sa.suite.prf, sa.keys.sk_pr, sa.init_response, sa.ni, id_type,
                         id_data) + int_auth


def _verify_peer(ctx: IkeContext, sa: IkeSa, conn: Connection, msg: Message, peer_id: Identity,
                 id_type: int, id_data: bytes) -> None:
    """Raises AuthError unless the peer proved its identity as `conn` demands."""
    auth = msg.get(Authentication)
    if auth is None:
        raise AuthError("no AUTH payload")
    if not ident.remote_accepts(conn.remote_id, peer_id):
        raise AuthError(f"peer identity {peer_id} is not {conn.remote_id}")
    octets = _octets(ctx, sa, not sa.initiator, id_type, id_data)
    assert sa.keys is not None and sa.suite is not None
    if auth.method == AuthMethod.NULL_AUTH:
        if conn.remote_auth != "null" or not conn.allow_null:
            raise AuthError("NULL authentication is not allowed for this connection")
        sk_p = sa.keys.sk_pr if sa.initiator else sa.keys.sk_pi
        if not null_auth_verifies(ctx.router, sa.suite.prf, sk_p, octets, auth.data):
            raise AuthError("NULL AUTH does not verify")
        return
    if auth.method == AuthMethod.SHARED_KEY_MIC:
        if conn.remote_auth != "psk" or conn.psk is None:
            raise AuthError(f"PSK authentication where {conn.remote_auth} is configured")
        if not psk_auth_verifies(ctx.router, sa.suite.prf, conn.psk, octets, auth.data):
            raise AuthError("PSK AUTH does not verify")
        ctx.log("info", "peer-authenticated", f"{sa.conn.name}: {peer_id} with a pre-shared key")
        return
    if conn.remote_auth != "pubkey":
        raise AuthError(f"AUTH method {auth.method} where {conn.remote_auth} is configured")
    certs = [c for c in msg.all(Certificate) if c.encoding == CertEncoding.X509_CERT_SIGNATURE]
    if not certs:
        raise AuthError("no certificate from the peer")
    if not conn.trust_anchors:
        raise AuthError("no trust anchors configured")
    ee = ctx.peers.validated_peer(tuple(c.data for c in certs), conn.trust_anchors, ctx.wall(),
                                  crl_strict=conn.crl_strict)
    bound = ctx.memo(("id-in-cert", peer_id, certs[0].data), lambda: _bound(ctx, peer_id, ee))
    if not bound:
        raise AuthError(f"identity {peer_id} is not bound to the peer's certificate")
    scheme = verify_signature_auth(ctx.router, ee.public_key(), AuthPayload(auth.method, auth.data), octets)
    sa.peer_cert = ee
    ctx.log("info", "peer-authenticated", f"{sa.conn.name}: {peer_id} with {scheme.name}")


def _bound(ctx: IkeContext, peer_id: Identity, ee: Any) -> bool:
    """Is the peer's ID bound to its end-entity certificate (RFC 4945 3.1)? An ID_KEY_ID (`@#hex`)
    names the certificate's subject key identifier (or its RFC 7093 key identifier when it has none),
    as certs.store resolves `@#hex` for our own side: otherwise any holder of a certificate from the
    same CA could claim it."""
    if peer_id.id_type is IdType.ID_KEY_ID:
        return bool(peer_id.data) and cert_key_id(ctx.router, ee) == peer_id.data
    return bool(peer_id.matches_cert(ee))


def established(ctx: IkeContext, sa: IkeSa, now: float, announce: bool = True) -> None:
    conn = sa.conn
    sa.state = IkeState.ESTABLISHED
    ctx.sas.mark_established(sa)
    if sa.intermediate is not None:  # its keys are the SA's now; its IntAuth has been signed
        sa.intermediate = None
        sa.switched_request = b""
    sa.established_at = now
    sa.rekey_at = now + conn.rekey_time if conn.rekey_time else 0.0
    sa.expire_at = now + conn.life_time if conn.life_time else 0.0
    sa.last_heard = now
    sa.half_open_deadline = 0.0
    # RealMessage1/2 only go into the AUTH octets (RFC 7296 2.15), both done now; a late copy of the
    # IKE_SA_INIT request still finds the SA (by_init) and is dropped, as before
    sa.init_request = sa.init_response = b""
    if not announce:
        return
    lid, rid, suite = ctx.text(sa.local_id), str(sa.remote_id), ctx.text(sa.suite)
    ctx.emit(IkeSaEstablished(sa.name, conn.name, lid, rid, sa.initiator, suite))
    ctx.log("info", "ike-sa-established", f"{conn.name} {sa.name} {sa.local[0]}[{lid}]...{sa.remote[0]}[{rid}] {suite}")


# --- initiator -----------------------------------------------------------------------------


def start(ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
    conn = sa.conn
    try:
        sa.local_id = _local_id(ctx, conn)
    except IdentityError as e:
        ctx.log("error", "config", f"{conn.name}: {e}")
        ctx.drop_ike(sa, "bad local identity", failed=True)
        return
    id_type, id_data = sa.local_id.to_payload()
    payloads: list[Payload] = [IdentificationInitiator(id_type, id_data)]
    payloads += _cert_payloads(ctx, conn, sa)
    if conn.initial_contact:
        payloads.append(Notify.initial_contact())
    payloads += certreq(ctx, conn)
    if conn.remote_id not in ("%any", "%fromcert", ""):
        try:
            t, d = Identity.parse(conn.remote_id).to_payload()
            payloads.append(IdentificationResponder(t, d))
        except IdentityError:
            pass
    sa.auth_mid = sa.next_request_id  # this request's Message ID (IKE_AUTH_MID, RFC 9242 3.3.2)
    try:
        payloads.append(_our_auth(ctx, sa, conn, _octets(ctx, sa, True, id_type, id_data)))
    except (AuthError, CodecError, ProviderError, ValueError) as e:
        ctx.log("error", "auth", f"{conn.name}: cannot sign AUTH: {e}")
        ctx.drop_ike(sa, "cannot sign", failed=True)
        return
    ex = Exchange(TaskKind.IKE_AUTH, nonce=sa.ni)
    if sa.first_child is not None:
        try:
            head, tail = childmod.request_payloads(ctx, sa, ex, sa.first_child, in_ike_auth=True)
        except SpiUnavailable as e:
            ctx.log("error", "spi-unavailable", f"{conn.name}/{sa.first_child.name}: {e}")
            ctx.drop_ike(sa, "no inbound SPI", failed=True)
            return
        payloads += head + tail
    sa.auth_exchange = ex
    sa.state = IkeState.AUTH_SENT
    ctx.send_request(sa, ExchangeType.IKE_AUTH, payloads, TaskKind.IKE_AUTH, now)


def handle_response(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    if sa.state != IkeState.AUTH_SENT:
        return
    conn = sa.conn
    idr = msg.get(IdentificationResponder)
    if idr is None or msg.get(Authentication) is None:
        err = next((n for n in msg.notifies() if n.is_error), None)
        name = _notify_name(err.notify_type) if err else "INVALID_SYNTAX"
        ctx.notify_error(sa, name, "IKE_AUTH refused by the responder")
        ctx.drop_ike(sa, name, failed=True)
        return
    try:
        peer_id = Identity.from_payload(idr.id_type, idr.data)
        _verify_peer(ctx, sa, conn, msg, peer_id, idr.id_type, idr.data)
    except (AuthError, CodecError, IdentityError, ProviderError, ValueError) as e:
        # RFC 7296 2.21.2: the initiator's answer to a bad responder AUTH is to delete the IKE SA
        ctx.notify_error(sa, "AUTHENTICATION_FAILED", str(e))
        _delete_quietly(ctx, sa, now)
        ctx.drop_ike(sa, "AUTHENTICATION_FAILED", failed=True)
        return
    sa.remote_id = peer_id
    established(ctx, sa, now)
    ex = sa.auth_exchange
    sa.auth_exchange = None
    if ex is None or ex.child_cfg is None:
        return
    if msg.get(SecurityAssociation) is None:
        err = next((n for n in msg.notifies() if n.is_error), None)
        name = _notify_name(err.notify_type) if err else "NO_PROPOSAL_CHOSEN"
        ctx.emit(ChildSaFailed(sa.name, conn.name, ex.child_cfg.name, name))
        ctx.notify_error(sa, name, f"Child SA {ex.child_cfg.name} refused")
        return
    try:
        c = childmod.complete(ctx, sa, ex, msg, sa.ni, sa.nr, None, now)
    except childmod.ChildError as e:
        ctx.emit(ChildSaFailed(sa.name, conn.name, ex.child_cfg.name, e.notify.name))
        ctx.notify_error(sa, e.notify.name, str(e))
        # the responder installed it: tell it to remove it (RFC 7296 1.4.1, our inbound SPI names it)
        ctx.queue(sa, Task(TaskKind.DELETE_SPI, spi=ex.spi_in), now)
        return
    ctx.install_child(sa, c)


def _delete_quietly(ctx: IkeContext, sa: IkeSa, now: float) -> None:
    """Send an INFORMATIONAL Delete for the IKE SA without waiting for its answer."""
    try:
        ctx.send_request(sa, ExchangeType.INFORMATIONAL, [Delete(int(ProtocolId.IKE))], TaskKind.DELETE_IKE, now)
    except Exception as e:  # noqa: BLE001 - best effort only
        ctx.log("debug", "delete-failed", f"{sa.name}: {type(e).__name__}")


def _notify_name(t: int) -> str:
    return NotifyType(t).name if t in NotifyType._value2member_map_ else f"NOTIFY_{t}"


# --- responder -----------------------------------------------------------------------------


# the Connection.remote_auth that accepts each AUTH method; every other method is a signature
_REMOTE_AUTH: dict[int, str] = {AuthMethod.NULL_AUTH: "null", AuthMethod.SHARED_KEY_MIC: "psk"}


def _pick_connection(sa: IkeSa, peer_id: Identity, method: int) -> Connection:
    """The connection (peer config) for this peer, chosen by identity and authentication method
    among those that fit the addresses (the IKE config of IKE_SA_INIT). The IKE SA's suite was
    negotiated before the identity was known, against every candidate's proposals together: the
    chosen connection's own proposals must admit it, or the SA is refused (AUTHENTICATION_FAILED,
    RFC 7296 2.21.2; strongSwan likewise finds no peer config). Raises AuthError."""
    wanted = _REMOTE_AUTH.get(method, "pubkey")
    refused: Connection | None = None
    for c in sa.candidates or (sa.conn,):
        if c.remote_auth != wanted:
            continue
        if not ident.remote_accepts(c.remote_id, peer_id):
            continue
        if sa.offered and not admits(c.ike_proposals, sa.offered[0]):
            refused = refused or c
            continue
        return c
    if refused is not None:
        raise AuthError(f"the IKE SA's suite is not allowed by connection {refused.name}")
    raise AuthError(f"no connection accepts {peer_id}")


def handle_request(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    idi = msg.get(IdentificationInitiator)
    auth = msg.get(Authentication)
    if idi is None or auth is None:
        ctx.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
        ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
        return
    if sa.intermediate is not None and not sa.intermediate.done:
        # RFC 9370 2.2.2: IKE_AUTH only after every additional key exchange
        ctx.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
        ctx.drop_ike(sa, "IKE_AUTH before the additional key exchanges", failed=True)
        return
    sa.auth_mid = msg.message_id
    try:
        peer_id = Identity.from_payload(idi.id_type, idi.data)
        conn = _pick_connection(sa, peer_id, auth.method)
        sa.conn = conn
        sa.peer_certreq = [a for c in msg.all(CertificateRequest) for a in _safe_authorities(c)]
        _verify_peer(ctx, sa, conn, msg, peer_id, idi.id_type, idi.data)
        sa.local_id = _local_id(ctx, conn)
        id_type, id_data = sa.local_id.to_payload()
        our_auth = _our_auth(ctx, sa, conn, _octets(ctx, sa, False, id_type, id_data))
    except (AuthError, CodecError, IdentityError, ProviderError, ValueError) as e:
        ctx.notify_error(sa, "AUTHENTICATION_FAILED", str(e))
        ctx.send_response(sa, msg, [Notify.error(NotifyType.AUTHENTICATION_FAILED)])
        ctx.drop_ike(sa, "AUTHENTICATION_FAILED", failed=True)
        return
    sa.remote_id = peer_id
    if msg.notify(NotifyType.INITIAL_CONTACT) is not None:
        _initial_contact(ctx, sa)
    reply: list[Payload] = [IdentificationResponder(id_type, id_data)]
    reply += _cert_payloads(ctx, conn, sa)
    reply.append(our_auth)
    new_child = None
    if msg.get(SecurityAssociation) is not None:
        try:
            n = childmod.negotiate(ctx, sa, msg, in_ike_auth=True)
            spi_in = childmod.responder_spi(ctx, sa, n.cfg, NotifyType.NO_PROPOSAL_CHOSEN)
            head, tail = childmod.response_payloads(n, spi_in)
            new_child = childmod.make_child(ctx, sa, n.cfg, n.proposal, spi_in, int.from_bytes(n.proposal.spi, "big"),
                                            n.local_ts, n.remote_ts, n.transport, sa.ni, sa.nr, None, False, now)
            reply += head + tail
        except childmod.ChildError as e:
            ctx.notify_error(sa, e.notify.name, str(e))
            reply.append(Notify.error(e.notify, e.data))
    ctx.send_response(sa, msg, reply)
    established(ctx, sa, now)
    if new_child is not None:
        ctx.install_child(sa, new_child)


def _safe_authorities(c: CertificateRequest) -> tuple[bytes, ...]:
    try:
        return c.authorities
    except Exception:  # noqa: BLE001 - a ragged CERTREQ is only a hint
        return ()


def _initial_contact(ctx: IkeContext, sa: IkeSa) -> None:
    """RFC 7296 2.4: INITIAL_CONTACT: the peer rebooted; its other IKE SAs with us are stale."""
    for other in list(ctx.sas):
        if other is sa or other.state != IkeState.ESTABLISHED:
            continue
        if other.remote_id == sa.remote_id and other.conn.name == sa.conn.name:
            ctx.log("info", "initial-contact", f"{other.name}: replaced after INITIAL_CONTACT")
            ctx.drop_ike(other, "INITIAL_CONTACT")



class IkeAuth:
    """The IKE_AUTH task: the last of the setup chain."""

    exchange = ExchangeType.IKE_AUTH
    kinds = frozenset({TaskKind.IKE_AUTH})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        start(ctx, sa, task, now)

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        handle_response(ctx, sa, rx.msg, now)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        handle_request(ctx, sa, rx.msg, now)
