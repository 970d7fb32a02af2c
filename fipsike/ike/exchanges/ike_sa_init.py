"""IKE_SA_INIT (RFC 7296 1.2): proposals, key exchange, nonces, COOKIE (2.6),
INVALID_KE_PAYLOAD (1.2), NAT detection (2.23), fragmentation (RFC 7383) and
signature hash (RFC 7427) announcements."""

from __future__ import annotations

from fipsike.ike import wire
from fipsike.ike.actions import Address, SendDatagram
from fipsike.ike.auth import HASH_BY_ID
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.context import IkeContext
from fipsike.ike.exchanges.common import certreq, ke_first
from fipsike.ike.intermediate import IntermediateKeyExchanges
from fipsike.ike.keymat import derive_ike_keys
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    CertificateRequest,
    KeyExchangePayload,
    Nonce,
    Notify,
    Payload,
    SecurityAssociation,
)
from fipsike.ike.proposals import (
    IkeSuite,
    NoProposalChosen,
    Proposal,
    Protocol,
    additional_key_exchanges,
    admits,
    ike_suite,
    offer_order,
    verify_choice,
)
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import IkeSa, IkeState, Task
from fipsike.ike.tasks import Received, TaskKind
from providers.algorithms import KeyExchange
from providers.errors import InvalidKeyShare, ProviderError

MAX_INIT_RETRIES = 3


def _sha_notify(ctx: IkeContext) -> Notify:
    return ctx.memo("sha-notify", lambda: Notify.signature_hash_algorithms(list(ctx.announced_hashes)))


def _nat_notifies(ctx: IkeContext, spi_i: bytes, spi_r: bytes, local: Address, remote: Address) -> list[Payload]:
    return [Notify.nat_detection(NotifyType.NAT_DETECTION_SOURCE_IP, ctx.nat_hash(spi_i, spi_r, local)),
            Notify.nat_detection(NotifyType.NAT_DETECTION_DESTINATION_IP, ctx.nat_hash(spi_i, spi_r, remote))]


def _check_nat(ctx: IkeContext, sa: IkeSa, msg: Message, local: Address, remote: Address) -> None:
    """RFC 7296 2.23: a mismatching source hash means the peer is behind a NAT, a mismatching
    destination hash that we are."""
    srcs = [n.data for n in msg.notifies() if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dst = msg.notify(NotifyType.NAT_DETECTION_DESTINATION_IP)
    if not srcs or dst is None:
        return
    sa.nat_remote = ctx.nat_hash(msg.spi_i, msg.spi_r, remote) not in srcs
    sa.nat_local = ctx.nat_hash(msg.spi_i, msg.spi_r, local) != dst.data


def _capabilities(ctx: IkeContext, sa: IkeSa, msg: Message) -> None:
    sa.peer_intermediate = msg.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None
    sa.peer_fragmentation = sa.conn.fragmentation and msg.notify(
        NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is not None
    n = msg.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    if n is not None:
        # a pure function of the notify data, which a peer repeats in every IKE_SA_INIT
        sa.peer_hashes = ctx.memo(("peer-hashes", n.data), lambda: tuple(
            HASH_BY_ID[int(h)] for h in n.hash_algorithms if int(h) in HASH_BY_ID))


def _derive(ctx: IkeContext, sa: IkeSa, shared: object) -> None:
    assert sa.suite is not None
    s = sa.suite
    sa.keys = derive_ike_keys(ctx.router, s.prf, s.encr, s.encr_key_bits, s.integ, sa.ni, sa.nr,
                              shared, sa.spi_i, sa.spi_r)  # type: ignore[arg-type]
    wire.setup_protection(ctx.router, sa)


# --- initiator -----------------------------------------------------------------------------


def create(ctx: IkeContext, conn: Connection, child: ChildConfig | None, now: float) -> IkeSa:
    """A new IKE SA we initiate for `conn`, its setup chain queued (IKE_SA_INIT, then IKE_AUTH; the
    IKE_INTERMEDIATE exchanges go between them once IKE_SA_INIT has chosen additional key exchanges)
    and started."""
    local = (conn.local_addrs[0], conn.port)
    remote = (conn.remote_addrs[0], conn.port)
    sa = IkeSa(conn=conn, spi_i=ctx.new_ike_spi(), spi_r=bytes(8), initiator=True, local=local, remote=remote,
               state=IkeState.INIT_SENT, created=now, first_child=child)
    sa.ni = ctx.nonce()
    first = conn.ike_proposals[0].ke_groups()
    sa.ke_group = first[0] if first else int(KeyExchange.ECP_256)
    sa.tasks = [Task(TaskKind.IKE_SA_INIT), Task(TaskKind.IKE_AUTH)]
    ctx.sas.add(sa)
    ctx.log("info", "ike-sa-initiate", f"{conn.name}: IKE_SA_INIT to {remote[0]}")
    ctx.kick(sa, now)  # an error (the module refuses the key share, ...) closes the SA there
    return sa


def intermediate_rounds(sa: IkeSa) -> int:
    """How many IKE_INTERMEDIATE exchanges (RFC 9242) go between IKE_SA_INIT and IKE_AUTH: one per
    additional key exchange negotiated (RFC 9370 2.2.2); with none, one empty exchange when we initiate
    under intermediate=yes (libreswan's use of it: the exchange runs, and is authenticated, on its own)."""
    if sa.intermediate is None:
        return 0
    return len(sa.intermediate.methods) or int(sa.initiator and sa.conn.intermediate)


def _start_intermediate(ctx: IkeContext, sa: IkeSa, chosen: Proposal) -> None:
    """Both sides announced IKE_INTERMEDIATE: its exchanges run under (and update) the IKE SA's keys
    from here to IKE_AUTH, and are authenticated there (RFC 9242 3.3)."""
    assert sa.suite is not None and sa.keys is not None
    sa.intermediate = IntermediateKeyExchanges(ctx.router, sa.initiator, sa.suite, sa.keys, sa.ni, sa.nr,
                                               sa.spi_i, sa.spi_r, additional_key_exchanges(chosen))


def _send_init(ctx: IkeContext, sa: IkeSa, now: float) -> None:
    conn = sa.conn
    if sa.share is None or int(sa.share.group) != sa.ke_group:
        if sa.share is not None:
            sa.share.wipe()
        sa.share = ctx.router.ke_generate(KeyExchange(sa.ke_group))
    # proposals that can use the group of our KE payload go first, with that group first (RFC 7296 1.2)
    ordered = ctx.memo(("offer-order", ctx.ident(conn.ike_proposals)), lambda: offer_order(conn.ike_proposals))
    specs = [p for p in ordered if sa.ke_group in p.ke_groups()] + \
            [p for p in ordered if sa.ke_group not in p.ke_groups()]
    sa.offered = tuple(spec.to_proposal(i + 1, b"", sa.ke_group if sa.ke_group in spec.ke_groups() else None)
                       for i, spec in enumerate(specs))
    payloads: list[Payload] = []
    if sa.cookie:
        payloads.append(Notify.cookie(sa.cookie))  # RFC 7296 2.6: COOKIE comes first
    payloads += [wire.to_wire_sa(sa.offered), KeyExchangePayload(sa.ke_group, sa.share.public), Nonce(sa.ni)]
    payloads += _nat_notifies(ctx, sa.spi_i, bytes(8), sa.local, sa.remote)
    if conn.fragmentation:
        payloads.append(Notify.fragmentation_supported())
    if conn.announces_intermediate:
        payloads.append(Notify.intermediate_exchange_supported())  # RFC 9242 3.1, RFC 9370 2.2.1
    payloads.append(_sha_notify(ctx))
    sa.pending = None
    sa.next_request_id = 0
    ctx.send_request(sa, ExchangeType.IKE_SA_INIT, payloads, TaskKind.IKE_SA_INIT, now)


def handle_response(ctx: IkeContext, sa: IkeSa, msg: Message, data: bytes, src: Address, dst: Address,
                    now: float) -> None:
    cookie = msg.notify(NotifyType.COOKIE)
    if cookie is not None:
        sa.init_tries += 1
        if sa.init_tries > MAX_INIT_RETRIES:
            ctx.drop_ike(sa, "COOKIE loop", failed=True)
            return
        sa.cookie = cookie.data
        ctx.log("info", "cookie", f"{sa.conn.name}: responder asked for a COOKIE, retrying")
        _send_init(ctx, sa, now)
        return
    invalid_ke = msg.notify(NotifyType.INVALID_KE_PAYLOAD)
    if invalid_ke is not None:
        group = int(invalid_ke.accepted_group)
        offered = {g for spec in sa.conn.ike_proposals for g in spec.ke_groups()}
        sa.init_tries += 1
        if group not in offered or group == sa.ke_group or sa.init_tries > MAX_INIT_RETRIES:
            ctx.notify_error(sa, "INVALID_KE_PAYLOAD", f"responder wants group {group}, which we cannot use")
            ctx.drop_ike(sa, "INVALID_KE_PAYLOAD", failed=True)
            return
        ctx.log("info", "invalid-ke-payload", f"{sa.conn.name}: responder wants group {group}, retrying")
        sa.ke_group = group
        _send_init(ctx, sa, now)
        return
    for n in msg.notifies():
        if n.is_error:
            name = NotifyType(n.notify_type).name if n.notify_type in NotifyType._value2member_map_ \
                else str(n.notify_type)
            ctx.notify_error(sa, name, "IKE_SA_INIT refused by the responder")
            ctx.drop_ike(sa, name, failed=True)
            return
    sa_p = msg.get(SecurityAssociation)
    ke = msg.get(KeyExchangePayload)
    nonce = msg.get(Nonce)
    if sa_p is None or ke is None or nonce is None or msg.spi_r == bytes(8):
        ctx.log("warning", "invalid-syntax", f"{sa.conn.name}: IKE_SA_INIT response lacks SA, KE or Nr")
        ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
        return
    try:
        chosen = verify_choice(wire.from_wire_sa(sa_p), sa.offered, ctx.allowed)
        suite = ike_suite(chosen)
        if additional_key_exchanges(chosen) and msg.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is None:
            # RFC 9370 2.2.1: additional key exchanges run in IKE_INTERMEDIATE, which both must announce
            raise NoProposalChosen("responder chose additional key exchanges without IKE_INTERMEDIATE")
    except (NoProposalChosen, ValueError) as e:
        ctx.notify_error(sa, "NO_PROPOSAL_CHOSEN", str(e))
        ctx.drop_ike(sa, "NO_PROPOSAL_CHOSEN", failed=True)
        return
    if int(suite.ke) != ke.group or ke.group != sa.ke_group:
        ctx.drop_ike(sa, "INVALID_KE_PAYLOAD", failed=True)
        return
    if not 16 <= len(nonce.data) <= 256:
        ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
        return
    assert sa.share is not None
    try:
        shared = ctx.router.ke_derive(sa.share, ke.data)
    except (InvalidKeyShare, ProviderError) as e:
        ctx.log("warning", "invalid-ke", f"{sa.conn.name}: responder's KE refused: {type(e).__name__}")
        ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
        return
    sa.pending = None
    ctx.sas.set_spi_r(sa, msg.spi_r)
    sa.nr = nonce.data
    sa.suite = suite
    sa.init_response = data
    _derive(ctx, sa, shared)
    shared.wipe()
    sa.share.wipe()
    sa.share = None
    _check_nat(ctx, sa, msg, dst, src)
    _capabilities(ctx, sa, msg)
    if sa.peer_intermediate and sa.conn.announces_intermediate:
        _start_intermediate(ctx, sa, chosen)
    sa.peer_certreq = [a for c in msg.all(CertificateRequest) for a in _authorities(c)]
    if sa.nat_local or sa.nat_remote or sa.conn.encap:
        # RFC 7296 2.23: once a NAT is found, move to port 4500 for IKE_AUTH and after
        if sa.remote[1] == 500:
            ctx.sas.move_peer(sa, (sa.remote[0], 4500), (sa.local[0], 4500))
    # the setup chain goes on from the queue: [IKE_INTERMEDIATE x n,] IKE_AUTH
    sa.tasks[0:0] = [Task(TaskKind.IKE_INTERMEDIATE) for _ in range(intermediate_rounds(sa))]


def _authorities(c: CertificateRequest) -> tuple[bytes, ...]:
    try:
        return c.authorities
    except Exception:  # noqa: BLE001 - a ragged CERTREQ is only a hint (RFC 7296 3.7)
        return ()


# --- responder -----------------------------------------------------------------------------


def _candidates(ctx: IkeContext, src: Address, dst: Address) -> list[Connection]:
    """The connections whose IKE config fits the addresses: all that IKE_SA_INIT can know."""
    return [c for c in ctx.connections.values() if c.ike_cfg.fits(dst[0], src[0])]


def handle_request(ctx: IkeContext, msg: Message, data: bytes, src: Address, dst: Address, now: float) -> None:
    if msg.spi_r != bytes(8) or msg.message_id != 0 or not msg.initiator:
        ctx.log("debug", "drop", f"malformed IKE_SA_INIT request from {src[0]}")
        return
    existing = ctx.sas.by_init.get((msg.spi_i, src[0], src[1]))
    if existing is not None:
        # a retransmission (RFC 7296 2.1): same answer; a different request with the same SPIi is dropped
        if existing.init_request == data and existing.init_response:
            ctx.emit(SendDatagram(existing.init_response, dst, src))
        return
    sa_p = msg.get(SecurityAssociation)
    ke = msg.get(KeyExchangePayload)
    nonce = msg.get(Nonce)
    if sa_p is None or ke is None or nonce is None or not 16 <= len(nonce.data) <= 256:
        ctx.send_plain(msg, [Notify.error(NotifyType.INVALID_SYNTAX)], src, dst)
        return
    # COOKIE (RFC 7296 2.6): stateless until the initiator proves it can receive at its address
    if ctx.cookies.required(ctx.sas.half_open()):
        got = msg.notify(NotifyType.COOKIE)
        if got is None or not ctx.cookies.check(got.data, nonce.data, src[0], msg.spi_i, now):
            cookie = ctx.cookies.make(nonce.data, src[0], msg.spi_i, now)
            ctx.send_plain(msg, [Notify.cookie(cookie)], src, dst)
            ctx.log("info", "cookie-sent", f"IKE_SA_INIT from {src[0]} answered with a COOKIE")
            return
    if ctx.sas.half_open_from(src[0]) >= ctx.half_open_per_source:
        # silently dropped, as a request over the cookie threshold without a cookie costs no state
        ctx.log("warning", "half-open-limit", f"IKE_SA_INIT from {src[0]} dropped: "
                                               f"{ctx.half_open_per_source} half-open IKE SAs from it already")
        return
    cands = _candidates(ctx, src, dst)
    if not cands:
        ctx.log("warning", "no-connection", f"IKE_SA_INIT from {src[0]} to {dst[0]}: no connection")
        ctx.send_plain(msg, [Notify.error(NotifyType.NO_PROPOSAL_CHOSEN)], src, dst)
        return
    # The choice is a pure function of the offer (IKE_SA_INIT proposals carry no SPI), the KE
    # group, the candidate connections and the engine's fixed policy; a peer repeats its offer on
    # every connect, so it is remembered (keyed by the parsed SA payload, which compares by value).
    # additional key exchanges only with a peer that can run IKE_INTERMEDIATE (RFC 9370 2.2.1)
    peer_intermediate = msg.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None
    choice = ctx.memo(("ike-choice", sa_p, ke.group, peer_intermediate,
                       tuple((ctx.ident(c), ctx.ident(c.ike_proposals)) for c in cands)),
                      lambda: _choose(ctx, sa_p, ke.group, cands, peer_intermediate))
    if isinstance(choice, str):
        ctx.log("warning", "no-proposal-chosen", f"IKE_SA_INIT from {src[0]}: nothing acceptable in {choice}")
        ctx.send_plain(msg, [Notify.error(NotifyType.NO_PROPOSAL_CHOSEN)], src, dst)
        return
    chosen, suite, conn, reply_sa = choice
    if int(suite.ke) != ke.group:
        # stateless: no SA is kept (RFC 7296 1.2)
        ctx.send_plain(msg, [Notify.invalid_ke_payload(int(suite.ke))], src, dst)
        ctx.log("info", "invalid-ke-payload", f"IKE_SA_INIT from {src[0]}: asked for group {suite.ke.name}")
        return
    sa = IkeSa(conn=conn, spi_i=msg.spi_i, spi_r=ctx.new_ike_spi(), initiator=False, local=dst, remote=src,
               state=IkeState.INIT_DONE, created=now, candidates=tuple(cands))
    sa.ni = nonce.data
    sa.nr = ctx.nonce()
    sa.suite = suite
    sa.init_request = data
    sa.offered = (chosen,)
    try:
        if suite.ke.is_kem:
            ke_data, shared = ctx.router.ke_encapsulate(suite.ke, ke.data)
        else:
            share = ctx.router.ke_generate(suite.ke)
            shared = ctx.router.ke_derive(share, ke.data)
            ke_data = share.public
            share.wipe()
    except (InvalidKeyShare, ProviderError) as e:
        ctx.log("warning", "invalid-ke", f"IKE_SA_INIT from {src[0]}: KE refused: {type(e).__name__}")
        ctx.send_plain(msg, [Notify.error(NotifyType.INVALID_SYNTAX)], src, dst)
        return
    _derive(ctx, sa, shared)
    shared.wipe()
    _check_nat(ctx, sa, msg, dst, src)
    _capabilities(ctx, sa, msg)
    announce = sa.peer_intermediate and any(c.announces_intermediate for c in cands)
    if announce:
        _start_intermediate(ctx, sa, chosen)
    sa.half_open_deadline = now + 30.0
    ctx.sas.add(sa)
    reply: list[Payload] = [reply_sa, KeyExchangePayload(int(suite.ke), ke_data), Nonce(sa.nr)]
    reply += _nat_notifies(ctx, sa.spi_i, sa.spi_r, dst, src)
    reply += certreq(ctx, conn)
    if conn.fragmentation:
        reply.append(Notify.fragmentation_supported())
    if announce:
        reply.append(Notify.intermediate_exchange_supported())
    reply.append(_sha_notify(ctx))
    ctx.send_response(sa, msg, reply)
    ctx.log("info", "ike-sa-init", f"{conn.name}: IKE_SA_INIT from {src[0]} answered, {ctx.text(suite)}")


def _choose(ctx: IkeContext, sa_p: SecurityAssociation, group: int, cands: list[Connection],
            additional: bool) -> tuple[Proposal, IkeSuite, Connection, Payload] | str:
    """(chosen proposal, its suite, the connection it fits, our SA payload), or the offer as text
    when nothing is acceptable."""
    offered = wire.from_wire_sa(sa_p)
    # prefer the group of the KE payload the initiator sent, when it also fits a proposal (RFC 7296 1.2)
    offered = [ke_first(p, group) for p in offered]
    local = [spec for c in cands for spec in c.ike_proposals]
    try:
        chosen = ctx.select(offered, local, Protocol.IKE, additional=additional)
        suite = ike_suite(chosen)
        additional_key_exchanges(chosen)  # an unknown method refuses the offer here
    except (NoProposalChosen, ValueError):
        return ", ".join(str(p) for p in offered)
    # provisional: IKE_AUTH picks the connection by identity, among those whose own proposals admit
    # this suite (ike_auth._pick_connection)
    conn = next((c for c in cands if admits(c.ike_proposals, chosen)), cands[0])
    return chosen, suite, conn, wire.Prepared(wire.to_wire_sa([chosen]))


class IkeSaInit:
    """The IKE_SA_INIT task. A request has no IKE SA yet: the manager hands it to handle_request."""

    exchange = ExchangeType.IKE_SA_INIT
    kinds = frozenset({TaskKind.IKE_SA_INIT})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        _send_init(ctx, sa, now)

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        if sa.state == IkeState.INIT_SENT:
            handle_response(ctx, sa, rx.msg, rx.data, rx.src, rx.dst, now)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        pass  # never registered for requests inside an IKE SA
