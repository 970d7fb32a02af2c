"""CREATE_CHILD_SA (RFC 7296 1.3): new Child SAs, Child SA rekey (1.3.3, with or
without PFS), IKE SA rekey (1.3.2, 2.18), and simultaneous rekeys (2.8.1, 2.8.2):
the SA made by the exchange holding the lowest of the four nonces is redundant
and is deleted by the side that initiated that exchange; the other exchange's
initiator deletes the old SA."""

from __future__ import annotations

from collections.abc import Callable

from fipsike.ike import wire
from fipsike.ike.actions import ChildSaFailed
from fipsike.ike.context import IkeContext
from fipsike.ike.exchanges import child as childmod
from fipsike.ike.exchanges.common import adopt, ke_first
from fipsike.ike.exchanges.ike_auth import established
from fipsike.ike.followup_ke import RESPONDER_WAIT, FollowupKeyExchanges
from fipsike.ike.intermediate import AdditionalKeyExchangeError
from fipsike.ike.keymat import derive_followup_rekeyed_ike_keys
from fipsike.ike.message import Message
from fipsike.ike.payloads import KeyExchangePayload, Nonce, Notify, Payload, SecurityAssociation
from fipsike.ike.proposals import (
    NoProposalChosen,
    Proposal,
    Protocol,
    additional_key_exchanges,
    ike_suite,
    offer_order,
    verify_choice,
)
from fipsike.ike.registry import ExchangeType, NotifyType, ProtocolId
from fipsike.ike.sa import ChildSa, ChildState, Exchange, FollowupResponder, IkeSa, IkeState, Task
from fipsike.ike.spis import SpiUnavailable
from fipsike.ike.tasks import Received, TaskKind
from providers.algorithms import KeyExchange
from providers.errors import InvalidKeyShare, ProviderError
from providers.handles import SecretKey

# Seconds before a refused rekey is tried again (RFC 7296 2.25 asks for a retry "after a short delay").
# IKE SA rekeys retry sooner than Child SA rekeys, so an IKE rekey and a Child rekey that refused each
# other do not meet again; a random quarter on top keeps two peers from retrying in lockstep.
IKE_RETRY_DELAY = 2.0
CHILD_RETRY_DELAY = 5.0
# A new Child SA refused with TEMPORARY_FAILURE is tried again after CHILD_RETRY_DELAY (plus the random
# quarter) at most this many times, i.e. 1 + 3 attempts over ~15-19 s, then reported as ChildSaFailed:
# long enough to outlast a rekey collision, short enough that a peer that always refuses is not hammered.
CREATE_CHILD_RETRIES = 3
# The same cap for a rekey of a Child SA or of the IKE SA. Only TEMPORARY_FAILURE is retried (RFC 7296
# 2.25); any other refusal (NO_PROPOSAL_CHOSEN, INVALID_SYNTAX, ...) cannot change by itself, so the
# old SA is kept, unrekeyed, until its hard lifetime ends it (libreswan recipe section 10: pluto's
# refusals were retried every 5 s without end).
REKEY_RETRIES = CREATE_CHILD_RETRIES


def _retry_at(ctx: IkeContext, now: float, base: float) -> float:
    jitter: int = bytes(ctx.router.random(1))[0]
    return now + base * (1.0 + jitter / 1024)


# --- initiator -----------------------------------------------------------------------------


def _ke_payload(ctx: IkeContext, ex: Exchange, group: int | None) -> list[Payload]:
    if not group:
        return []
    ex.share = ctx.router.ke_generate(KeyExchange(group))
    return [KeyExchangePayload(group, ex.share.public)]


def _first_group(cfg_group: int | None, task_group: int) -> int | None:
    return task_group or cfg_group


def start_create(ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
    try:
        cfg = sa.conn.child(task.child)
    except KeyError:
        ctx.log("error", "config", f"{sa.conn.name}: no child {task.child}")
        return
    ex = Exchange(TaskKind.CREATE_CHILD, nonce=ctx.nonce(), tries=task.tries)
    try:
        head, tail = childmod.request_payloads(ctx, sa, ex, cfg, in_ike_auth=False)
    except SpiUnavailable as e:
        ctx.log("error", "spi-unavailable", f"{sa.conn.name}/{cfg.name}: {e}")
        ctx.emit(ChildSaFailed(sa.name, sa.conn.name, cfg.name, "SPI_UNAVAILABLE"))
        return
    group = _first_group(childmod.pfs_group(cfg), task.group)
    payloads = head + [Nonce(ex.nonce)] + _ke_payload(ctx, ex, group) + tail
    sa.exchange = ex
    ctx.send_request(sa, ExchangeType.CREATE_CHILD_SA, payloads, TaskKind.CREATE_CHILD, now)


def start_rekey_child(ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
    old = sa.children.get(task.spi)
    if old is None or old.state != ChildState.INSTALLED:
        return
    old.state = ChildState.REKEYING
    ex = Exchange(TaskKind.REKEY_CHILD, nonce=ctx.nonce(), rekey_spi=old.spi_in)
    try:
        head, tail = childmod.request_payloads(ctx, sa, ex, old.config, in_ike_auth=False, local_ts=old.local_ts,
                                               remote_ts=old.remote_ts)
    except SpiUnavailable as e:
        old.state = ChildState.INSTALLED
        _rekey_child_refused(ctx, sa, old, f"no inbound SPI ({e})", now, permanent=False)
        return
    ex.transport = old.mode == "transport"
    group = _first_group(childmod.pfs_group(old.config), task.group)
    payloads: list[Payload] = [Notify.rekey_sa(ProtocolId.ESP, old.spi_in.to_bytes(4, "big"))]
    payloads += head + [Nonce(ex.nonce)] + _ke_payload(ctx, ex, group) + tail
    sa.exchange = ex
    ctx.log("info", "child-sa-rekey", f"{sa.conn.name}/{old.name}: rekeying {old.spi_in:08x}")
    ctx.send_request(sa, ExchangeType.CREATE_CHILD_SA, payloads, TaskKind.REKEY_CHILD, now)


def start_rekey_ike(ctx: IkeContext, sa: IkeSa, now: float, group: int = 0) -> None:
    if sa.state != IkeState.ESTABLISHED or sa.suite is None:
        return
    g = group or int(sa.suite.ke)
    ex = Exchange(TaskKind.REKEY_IKE, nonce=ctx.nonce(), new_spi=ctx.new_ike_spi())
    specs = ctx.memo(("offer-order", ctx.ident(sa.conn.ike_proposals)), lambda: offer_order(sa.conn.ike_proposals))
    ex.proposals = tuple(s.to_proposal(i + 1, ex.new_spi, g if g in s.ke_groups() else None)
                         for i, s in enumerate(specs))
    payloads: list[Payload] = [wire.to_wire_sa(ex.proposals), Nonce(ex.nonce)] + _ke_payload(ctx, ex, g)
    sa.exchange = ex
    ctx.log("info", "ike-sa-rekey", f"{sa.conn.name} {sa.name}: rekeying the IKE SA")
    ctx.send_request(sa, ExchangeType.CREATE_CHILD_SA, payloads, TaskKind.REKEY_IKE, now)


def _shared_from_response(ctx: IkeContext, ex: Exchange, msg: Message) -> SecretKey | None:
    if ex.share is None:
        return None
    ke = msg.get(KeyExchangePayload)
    if ke is None or ke.group != int(ex.share.group):
        raise childmod.ChildError(NotifyType.INVALID_KE_PAYLOAD, "response lacks the KE payload of our group")
    try:
        shared: SecretKey = ctx.router.ke_derive(ex.share, ke.data)
        return shared
    except (InvalidKeyShare, ProviderError) as e:
        raise childmod.ChildError(NotifyType.INVALID_SYNTAX, f"peer's KE refused: {type(e).__name__}") from None
    finally:
        ex.share.wipe()


def handle_response(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    ex = sa.exchange
    sa.exchange = None
    if ex is None:
        return
    old = sa.children.get(ex.rekey_spi) if ex.kind == TaskKind.REKEY_CHILD else None
    err = next((n for n in msg.notifies() if n.is_error), None)
    if err is not None:
        _failed(ctx, sa, ex, old, err, now)
        return
    nonce = msg.get(Nonce)
    if nonce is None:
        _failed(ctx, sa, ex, old, Notify.error(NotifyType.INVALID_SYNTAX), now)
        return
    if ex.kind == TaskKind.REKEY_IKE:
        _complete_rekey_ike(ctx, sa, ex, msg, nonce.data, now)
        return
    try:
        shared = _shared_from_response(ctx, ex, msg)
        methods = _chosen_additional(ctx, ex, msg)
        if methods:
            _start_followup(ctx, sa, ex, msg, nonce.data, shared, methods, now)
            return
    except childmod.ChildError as e:
        _child_failed(ctx, sa, ex, old, e, now)
        return
    finish_child(ctx, sa, ex, old, msg, nonce.data, shared, (), now)


def _chosen_additional(ctx: IkeContext, ex: Exchange, msg: Message) -> tuple[KeyExchange, ...]:
    """The additional key exchanges the responder chose for our Child SA (checked again, with the rest of
    its answer, by childmod.complete)."""
    sa_p = msg.get(SecurityAssociation)
    if sa_p is None:
        return ()
    try:
        return additional_key_exchanges(verify_choice(wire.from_wire_sa(sa_p), ex.esp_proposals, ctx.allowed))
    except (NoProposalChosen, ValueError):
        return ()


def _start_followup(ctx: IkeContext, sa: IkeSa, ex: Exchange, msg: Message, nr: bytes, shared: SecretKey | None,
                    methods: tuple[KeyExchange, ...], now: float) -> None:
    """RFC 9370 2.2.4: the CREATE_CHILD_SA's SA waits for its IKE_FOLLOWUP_KE exchanges. Raises ChildError."""
    fk = FollowupKeyExchanges(ctx.router, True, methods, shared)
    try:
        fk.on_create_response(msg.payloads)
    except AdditionalKeyExchangeError as e:
        fk.wipe()
        raise childmod.ChildError(NotifyType.INVALID_SYNTAX, str(e)) from None
    ex.followup, ex.response, ex.nr = fk, msg, nr
    sa.exchange = ex
    send_followup(ctx, sa, ex, now)


def send_followup(ctx: IkeContext, sa: IkeSa, ex: Exchange, now: float) -> None:
    assert ex.followup is not None
    ctx.send_request(sa, ExchangeType.IKE_FOLLOWUP_KE, ex.followup.next_request(), TaskKind.FOLLOWUP_KE, now)


def followup_done(ctx: IkeContext, sa: IkeSa, ex: Exchange, now: float) -> None:
    """Initiator: the last IKE_FOLLOWUP_KE is answered; make the SA of the CREATE_CHILD_SA."""
    assert ex.followup is not None and ex.response is not None
    sk0, extra = ex.followup.secrets()
    try:
        if ex.kind == TaskKind.REKEY_IKE:
            sa_p = ex.response.get(SecurityAssociation)
            assert sa_p is not None  # checked when the CREATE_CHILD_SA response came
            chosen = verify_choice(wire.from_wire_sa(sa_p), ex.proposals, ctx.allowed)
            assert sk0 is not None
            _finish_rekey_ike(ctx, sa, ex, chosen, ex.nr, sk0, extra, now)
        else:
            old = sa.children.get(ex.rekey_spi) if ex.kind == TaskKind.REKEY_CHILD else None
            finish_child(ctx, sa, ex, old, ex.response, ex.nr, sk0, extra, now)
    finally:
        ex.followup.wipe()


def followup_failed(ctx: IkeContext, sa: IkeSa, ex: Exchange, err: Notify, now: float) -> None:
    """Initiator: an IKE_FOLLOWUP_KE refused or broken; the CREATE_CHILD_SA fails as if refused."""
    if ex.followup is not None:
        ex.followup.wipe()
    old = sa.children.get(ex.rekey_spi) if ex.kind == TaskKind.REKEY_CHILD else None
    _failed(ctx, sa, ex, old, err, now)


def _child_failed(ctx: IkeContext, sa: IkeSa, ex: Exchange, old: ChildSa | None, e: childmod.ChildError,
                  now: float) -> None:
    ctx.notify_error(sa, e.notify.name, str(e))
    if ex.child_cfg is not None:
        ctx.emit(ChildSaFailed(sa.name, sa.conn.name, ex.child_cfg.name, e.notify.name))
    if old is not None and old.state == ChildState.REKEYING:
        old.state = ChildState.INSTALLED
        _rekey_child_refused(ctx, sa, old, e.notify.name, now, permanent=True)
    ctx.queue(sa, Task(TaskKind.DELETE_SPI, spi=ex.spi_in), now)


def finish_child(ctx: IkeContext, sa: IkeSa, ex: Exchange, old: ChildSa | None, msg: Message, nr: bytes,
                 shared: SecretKey | None, additional: tuple[SecretKey, ...] | list[SecretKey], now: float) -> None:
    try:
        new = childmod.complete(ctx, sa, ex, msg, ex.nonce, nr, shared, now,
                                reqid=old.reqid if old is not None else 0, additional=additional)
        if shared is not None:
            shared.wipe()
    except childmod.ChildError as e:
        _child_failed(ctx, sa, ex, old, e, now)
        return
    ctx.install_child(sa, new, rekey_of=old.spi_in if old is not None else None)
    if old is None:
        return
    old.replaced_by = new.spi_in
    if old.collision is not None and old.collision.spi_in in sa.children:
        theirs = old.collision
        ours_low = min(new.nonces)
        theirs_low = min(theirs.nonces)
        if ours_low < theirs_low:
            # ours holds the lowest nonce: it is redundant and ours to delete; the peer deletes the old
            ctx.log("info", "rekey-collision", f"{sa.conn.name}/{old.name}: lost the rekey collision, "
                                               f"deleting our {new.spi_in:08x}")
            new.state = ChildState.REKEYED
            old.state = ChildState.REKEYED
            old.replaced_by = theirs.spi_in
            ctx.queue(sa, Task(TaskKind.DELETE_CHILD, spi=new.spi_in), now)
            return
        ctx.log("info", "rekey-collision", f"{sa.conn.name}/{old.name}: won the rekey collision")
    old.state = ChildState.REKEYED
    ctx.queue(sa, Task(TaskKind.DELETE_CHILD, spi=old.spi_in), now)


def _failed(ctx: IkeContext, sa: IkeSa, ex: Exchange, old: ChildSa | None, err: Notify, now: float) -> None:
    name = NotifyType(err.notify_type).name if err.notify_type in NotifyType._value2member_map_ \
        else str(err.notify_type)
    used = int(ex.share.group) if ex.share is not None else 0
    if ex.share is not None:
        ex.share.wipe()
    if err.notify_type == NotifyType.INVALID_KE_PAYLOAD and len(err.data) == 2:
        group = int.from_bytes(err.data, "big")
        offered = {g for p in (ex.proposals or ex.esp_proposals) for g in
                   (t.id for t in p.transforms if int(t.type) == 4)}
        # one retry with the group the peer asks for; asked again for the group just used, it is refused
        if group in offered and group != used:
            ctx.log("info", "invalid-ke-payload", f"{sa.conn.name}: peer wants group {group}, retrying")
            if ex.kind == TaskKind.REKEY_IKE:
                start_rekey_ike(ctx, sa, now, group)
            elif ex.kind == TaskKind.REKEY_CHILD and old is not None:
                old.state = ChildState.INSTALLED
                start_rekey_child(ctx, sa, Task(TaskKind.REKEY_CHILD, spi=old.spi_in, group=group), now)
            elif ex.child_cfg is not None:
                start_create(ctx, sa, Task(TaskKind.CREATE_CHILD, child=ex.child_cfg.name, group=group, tries=ex.tries),
                             now)
            return
    ctx.notify_error(sa, name, f"{ex.kind} refused by the peer")
    temporary = err.notify_type == NotifyType.TEMPORARY_FAILURE
    if ex.kind == TaskKind.REKEY_IKE:
        if temporary and sa.collision is not None:
            adopt(ctx, sa, sa.collision[0], now)
        elif sa.state == IkeState.ESTABLISHED:
            _rekey_ike_refused(ctx, sa, name, now, permanent=not temporary)
        return
    if ex.kind == TaskKind.REKEY_CHILD and old is not None:
        if err.notify_type == NotifyType.CHILD_SA_NOT_FOUND:
            ctx.remove_child(sa, old, "peer has no such Child SA")
        elif temporary and old.collision is not None:
            # the peer rekeyed it first and refused ours (RFC 7296 2.25): its SA is the one
            old.state = ChildState.REKEYED
            old.replaced_by = old.collision.spi_in
        elif old.state == ChildState.REKEYING:
            old.state = ChildState.INSTALLED
            _rekey_child_refused(ctx, sa, old, name, now, permanent=not temporary)
        return
    if ex.child_cfg is None:
        return
    if err.notify_type == NotifyType.TEMPORARY_FAILURE and ex.tries < CREATE_CHILD_RETRIES:
        # "retry later" (RFC 7296 2.25): the same delay as a refused Child SA rekey, so an IKE SA rekey
        # that caused the refusal (retried after IKE_RETRY_DELAY) goes first and the Child SA follows it
        ctx.log("info", "create-child-retry", f"{sa.conn.name}/{ex.child_cfg.name}: peer busy, retry "
                                              f"{ex.tries + 1} of {CREATE_CHILD_RETRIES}")
        task = Task(TaskKind.CREATE_CHILD, child=ex.child_cfg.name, tries=ex.tries + 1)
        sa.deferred.append((_retry_at(ctx, now, CHILD_RETRY_DELAY), task))
        ctx.touch(sa)
        return
    ctx.emit(ChildSaFailed(sa.name, sa.conn.name, ex.child_cfg.name, name))


def _rekey_child_refused(ctx: IkeContext, sa: IkeSa, old: ChildSa, reason: str, now: float,
                         permanent: bool) -> None:
    """A rekey of `old` failed for `reason`: retry after TEMPORARY_FAILURE, at most REKEY_RETRIES times;
    otherwise keep the SA unrekeyed until its hard lifetime (RFC 7296 2.25)."""
    what = f"{sa.conn.name}/{old.name} {old.spi_in:08x}"
    if not permanent and old.rekey_tries < REKEY_RETRIES:
        old.rekey_tries += 1
        old.rekey_at = _retry_at(ctx, now, CHILD_RETRY_DELAY)
        ctx.log("info", "rekey-retry", f"{what}: Child SA rekey refused with {reason}, retry {old.rekey_tries} "
                                       f"of {REKEY_RETRIES} in {old.rekey_at - now:.1f} s")
        return
    old.rekey_at = 0.0
    ctx.log("warning", "rekey-given-up", f"{what}: Child SA rekey refused with {reason}"
                                         f"{f' after {old.rekey_tries} retries' if old.rekey_tries else ''}; "
                                         f"no more tries, the SA lives until its hard lifetime "
                                         f"({max(old.expire_at - now, 0.0):.0f} s)")


def _rekey_ike_refused(ctx: IkeContext, sa: IkeSa, reason: str, now: float, permanent: bool) -> None:
    """The same for a rekey of the IKE SA `sa`."""
    if not permanent and sa.rekey_tries < REKEY_RETRIES:
        sa.rekey_tries += 1
        sa.rekey_at = _retry_at(ctx, now, IKE_RETRY_DELAY)
        ctx.log("info", "rekey-retry", f"{sa.conn.name} {sa.name}: IKE SA rekey refused with {reason}, retry "
                                       f"{sa.rekey_tries} of {REKEY_RETRIES} in {sa.rekey_at - now:.1f} s")
        return
    sa.rekey_at = 0.0
    ctx.log("warning", "rekey-given-up", f"{sa.conn.name} {sa.name}: IKE SA rekey refused with {reason}"
                                         f"{f' after {sa.rekey_tries} retries' if sa.rekey_tries else ''}; "
                                         f"no more tries, the IKE SA lives until its hard lifetime "
                                         f"({max(sa.expire_at - now, 0.0):.0f} s)")


def _new_ike_sa(ctx: IkeContext, old: IkeSa, initiator: bool, spi_i: bytes, spi_r: bytes, proposal: Proposal,
                ni: bytes, nr: bytes, shared: SecretKey, now: float,
                additional: tuple[SecretKey, ...] | list[SecretKey] = ()) -> IkeSa:
    assert old.keys is not None and old.suite is not None
    suite = ike_suite(proposal)
    # SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr [| SK(1..n)]) (RFC 7296 2.18, RFC 9370 2.2.4)
    keys = derive_followup_rekeyed_ike_keys(ctx.router, old.suite.prf, old.keys.sk_d, suite.prf, suite.encr,
                                            suite.encr_key_bits, suite.integ, shared, ni, nr, spi_i, spi_r,
                                            additional)
    new = IkeSa(conn=old.conn, spi_i=spi_i, spi_r=spi_r, initiator=initiator, local=old.local, remote=old.remote,
                state=IkeState.ESTABLISHED, created=now, suite=suite, keys=keys, ni=ni, nr=nr,
                local_id=old.local_id, remote_id=old.remote_id, peer_cert=old.peer_cert,
                peer_hashes=old.peer_hashes, peer_fragmentation=old.peer_fragmentation,
                nat_local=old.nat_local, nat_remote=old.nat_remote)
    wire.setup_protection(ctx.router, new)
    ctx.sas.add(new)
    established(ctx, new, now, announce=False)
    return new


def _complete_rekey_ike(ctx: IkeContext, sa: IkeSa, ex: Exchange, msg: Message, nr: bytes, now: float) -> None:
    sa_p = msg.get(SecurityAssociation)
    try:
        if sa_p is None:
            raise NoProposalChosen("no SA payload")
        chosen = verify_choice(wire.from_wire_sa(sa_p), ex.proposals, ctx.allowed)
        if len(chosen.spi) != 8 or chosen.spi == bytes(8):
            raise NoProposalChosen("responder's new IKE SPI is not 8 octets")
        shared = _shared_from_response(ctx, ex, msg)
        if shared is None or ex.share is None or int(ike_suite(chosen).ke) != int(ex.share.group):
            raise NoProposalChosen("key exchange mismatch")
        methods = additional_key_exchanges(chosen)
        if methods:
            fk = FollowupKeyExchanges(ctx.router, True, methods, shared)
            try:
                fk.on_create_response(msg.payloads)
            except AdditionalKeyExchangeError:
                fk.wipe()
                raise
            ex.followup, ex.response, ex.nr = fk, msg, nr
            sa.exchange = ex
            send_followup(ctx, sa, ex, now)
            return
    except (NoProposalChosen, childmod.ChildError, ValueError, AdditionalKeyExchangeError) as e:
        ctx.notify_error(sa, "NO_PROPOSAL_CHOSEN", f"IKE SA rekey: {e}")
        _rekey_ike_refused(ctx, sa, "NO_PROPOSAL_CHOSEN", now, permanent=True)
        return
    _finish_rekey_ike(ctx, sa, ex, chosen, nr, shared, (), now)


def _finish_rekey_ike(ctx: IkeContext, sa: IkeSa, ex: Exchange, chosen: Proposal, nr: bytes, shared: SecretKey,
                      additional: tuple[SecretKey, ...] | list[SecretKey], now: float) -> None:
    # the rekey initiator is the new SA's initiator (RFC 7296 2.18)
    new = _new_ike_sa(ctx, sa, True, ex.new_spi, chosen.spi, chosen, ex.nonce, nr, shared, now, additional)
    shared.wipe()
    if sa.collision is not None:
        theirs, t_ni, t_nr = sa.collision
        if min(ex.nonce, nr) < min(t_ni, t_nr):
            ctx.log("info", "rekey-collision", f"{sa.conn.name}: lost the IKE SA rekey collision")
            adopt(ctx, sa, theirs, now)
            # ours is redundant: we delete it; the peer deletes the old one
            new.tasks.clear()
            ctx.queue(new, Task(TaskKind.DELETE_IKE), now)
            return
        ctx.log("info", "rekey-collision", f"{sa.conn.name}: won the IKE SA rekey collision")
    adopt(ctx, sa, new, now)
    ctx.queue(sa, Task(TaskKind.DELETE_IKE), now)


# --- responder -----------------------------------------------------------------------------


def handle_request(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    sa_p = msg.get(SecurityAssociation)
    nonce = msg.get(Nonce)
    if sa_p is None or nonce is None or not 16 <= len(nonce.data) <= 256:
        ctx.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
        return
    if sa.state != IkeState.ESTABLISHED:
        # being rekeyed or deleted (RFC 7296 2.25)
        ctx.send_response(sa, msg, [Notify.error(NotifyType.TEMPORARY_FAILURE)])
        return
    ours = sa.exchange.kind if sa.exchange is not None else ""
    if any(p.protocol == ProtocolId.IKE for p in sa_p.proposals):
        if ours in (TaskKind.REKEY_CHILD, TaskKind.CREATE_CHILD):
            # our Child SA exchange must finish on this IKE SA first (RFC 7296 2.25.2)
            ctx.send_response(sa, msg, [Notify.error(NotifyType.TEMPORARY_FAILURE)])
            return
        _respond_rekey_ike(ctx, sa, msg, sa_p, nonce.data, now)
        return
    if ours == TaskKind.REKEY_IKE:
        # the Child SAs are about to move to a new IKE SA: ask the peer to retry there (RFC 7296 2.25.2)
        ctx.send_response(sa, msg, [Notify.error(NotifyType.TEMPORARY_FAILURE)])
        return
    rekey = msg.notify(NotifyType.REKEY_SA)
    old: ChildSa | None = None
    if rekey is not None:
        spi = int.from_bytes(rekey.spi, "big")
        old = next((c for c in sa.children.values() if c.spi_out == spi), None)
        if old is None or old.state in (ChildState.DELETING, ChildState.DELETED):
            ctx.send_response(sa, msg, [Notify.error(NotifyType.CHILD_SA_NOT_FOUND, b"", int(ProtocolId.ESP),
                                                     rekey.spi)])
            return
        if old.state == ChildState.REKEYED:
            ctx.send_response(sa, msg, [Notify.error(NotifyType.TEMPORARY_FAILURE)])
            return
    try:
        n = childmod.negotiate(ctx, sa, msg, in_ike_auth=False, only=old.config if old is not None else None)
        shared, ke_reply = _responder_ke(ctx, msg, n.proposal)
    except childmod.ChildError as e:
        ctx.notify_error(sa, e.notify.name, str(e))
        ctx.send_response(sa, msg, [Notify.error(e.notify, e.data)])
        return
    try:
        # no SPI now is a passing trouble: the peer may try again (RFC 7296 2.25)
        spi_in = childmod.responder_spi(ctx, sa, n.cfg, NotifyType.TEMPORARY_FAILURE)
    except childmod.ChildError as e:
        if shared is not None:
            shared.wipe()
        ctx.notify_error(sa, e.notify.name, str(e))
        ctx.send_response(sa, msg, [Notify.error(e.notify, e.data)])
        return
    nr = ctx.nonce()
    head, tail = childmod.response_payloads(n, spi_in)
    ni = nonce.data

    def make(t: float, sk0: SecretKey | None, additional: tuple[SecretKey, ...] | list[SecretKey]) -> None:
        new = childmod.make_child(ctx, sa, n.cfg, n.proposal, spi_in, int.from_bytes(n.proposal.spi, "big"),
                                  n.local_ts, n.remote_ts, n.transport, ni, nr, sk0, False, t,
                                  reqid=old.reqid if old is not None else 0, additional=additional)
        _responder_installs(ctx, sa, new, old, t)

    methods = additional_key_exchanges(n.proposal)
    if methods:
        link = _await_followup(ctx, sa, methods, shared, make, now, spi_in)
        ctx.send_response(sa, msg, head + [Nonce(nr)] + ke_reply + tail + [link])
        return
    try:
        make(now, shared, ())
    finally:
        if shared is not None:
            shared.wipe()
    ctx.send_response(sa, msg, head + [Nonce(nr)] + ke_reply + tail)


def _await_followup(ctx: IkeContext, sa: IkeSa, methods: tuple[KeyExchange, ...], shared: SecretKey | None,
                    make: Callable[[float, SecretKey | None, list[SecretKey]], None], now: float,
                    spi_in: int = 0) -> Notify:
    """Responder: hold the CREATE_CHILD_SA's state for its IKE_FOLLOWUP_KE exchanges (RFC 9370 2.2.4);
    the ADDITIONAL_KEY_EXCHANGE notify (link 1) for the response."""
    fk = FollowupKeyExchanges(ctx.router, False, methods, shared)

    def finish(t: float) -> None:
        sk0, extra = fk.secrets()
        try:
            make(t, sk0, extra)
        finally:
            fk.wipe()

    if sa.followup is not None:  # a peer that started another before finishing: the old one is dropped
        sa.followup.exchanges.wipe()
    sa.followup = FollowupResponder(fk, finish, now + RESPONDER_WAIT, spi_in)
    return fk.create_response_notify()


def _responder_installs(ctx: IkeContext, sa: IkeSa, new: ChildSa, old: ChildSa | None, now: float) -> None:
    # installed before the response leaves: the initiator sends on the new SA as soon as it has the
    # response. Our own sending waits for its DELETE of the old SA (defer_outbound): RFC 7296 2.8 has
    # the initiator delete the old SA once the new one is up; strongSwan's responder switches then too
    ctx.install_child(sa, new, rekey_of=old.spi_in if old is not None else None, defer_outbound=old is not None)
    if old is not None:
        if old.state == ChildState.REKEYING:
            old.collision = new  # resolved when our own rekey's answer comes (RFC 7296 2.8.1)
        else:
            old.state = ChildState.REKEYED
            old.replaced_by = new.spi_in
            # the initiator deletes the old SA; if it never does, the lifetime still ends it
            old.expire_at = min(old.expire_at, now + 60.0) if old.expire_at else now + 60.0


def _responder_ke(ctx: IkeContext, msg: Message, proposal: Proposal) -> tuple[SecretKey | None, list[Payload]]:
    groups = [t.id for t in proposal.transforms if int(t.type) == 4 and t.id]
    if not groups:
        return None, []
    group = groups[0]
    ke = msg.get(KeyExchangePayload)
    if ke is None or ke.group != group:
        raise childmod.ChildError(NotifyType.INVALID_KE_PAYLOAD, f"KE must be group {group}",
                                  group.to_bytes(2, "big"))
    try:
        if KeyExchange(group).is_kem:
            ct, shared = ctx.router.ke_encapsulate(KeyExchange(group), ke.data)
            return shared, [KeyExchangePayload(group, ct)]
        share = ctx.router.ke_generate(KeyExchange(group))
        shared = ctx.router.ke_derive(share, ke.data)
        share.wipe()
        return shared, [KeyExchangePayload(group, share.public)]
    except (InvalidKeyShare, ProviderError) as e:
        raise childmod.ChildError(NotifyType.INVALID_SYNTAX, f"peer's KE refused: {type(e).__name__}") from None


def _respond_rekey_ike(ctx: IkeContext, sa: IkeSa, msg: Message, sa_p: SecurityAssociation, ni: bytes,
                       now: float) -> None:
    offered = wire.from_wire_sa(sa_p)
    ke = msg.get(KeyExchangePayload)
    try:
        if ke is not None:
            offered = [ke_first(p, ke.group) for p in offered]
        # the offer itself shows RFC 9370 support: IKE_FOLLOWUP_KE can run (2.2.4)
        chosen = ctx.select(offered, sa.conn.ike_proposals, Protocol.IKE, additional=True)
        suite = ike_suite(chosen)
        if len(chosen.spi) != 8 or chosen.spi == bytes(8):
            raise NoProposalChosen("the new IKE SA's SPI is not 8 octets")
    except (NoProposalChosen, ValueError) as e:
        ctx.notify_error(sa, "NO_PROPOSAL_CHOSEN", f"IKE SA rekey: {e}")
        ctx.send_response(sa, msg, [Notify.error(NotifyType.NO_PROPOSAL_CHOSEN)])
        return
    try:
        shared, ke_reply = _responder_ke(ctx, msg, chosen)
    except childmod.ChildError as e:
        ctx.send_response(sa, msg, [Notify.error(e.notify, e.data)])
        return
    if shared is None:
        ctx.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
        return
    del suite
    our_spi = ctx.new_ike_spi()
    nr = ctx.nonce()
    reply_sa = wire.to_wire_sa([Proposal(chosen.number, chosen.protocol, our_spi, chosen.transforms)])

    def make(t: float, sk0: SecretKey | None, additional: tuple[SecretKey, ...] | list[SecretKey]) -> None:
        assert sk0 is not None
        new = _new_ike_sa(ctx, sa, False, chosen.spi, our_spi, chosen, ni, nr, sk0, t, additional)
        _responder_rekeyed(ctx, sa, new, ni, nr, t)

    methods = additional_key_exchanges(chosen)
    if methods:
        link = _await_followup(ctx, sa, methods, shared, make, now)
        ctx.send_response(sa, msg, [reply_sa, Nonce(nr)] + ke_reply + [link])
        return
    ctx.send_response(sa, msg, [reply_sa, Nonce(nr)] + ke_reply)
    try:
        make(now, shared, ())
    finally:
        shared.wipe()


def _responder_rekeyed(ctx: IkeContext, sa: IkeSa, new: IkeSa, ni: bytes, nr: bytes, now: float) -> None:
    if sa.exchange is not None and sa.exchange.kind == TaskKind.REKEY_IKE:
        sa.collision = (new, ni, nr)  # resolved when our own rekey's answer arrives
        return
    adopt(ctx, sa, new, now)


class CreateChildSa:
    """The CREATE_CHILD_SA task: new Child SAs, Child SA and IKE SA rekeys."""

    exchange = ExchangeType.CREATE_CHILD_SA
    kinds = frozenset({TaskKind.CREATE_CHILD, TaskKind.REKEY_CHILD, TaskKind.REKEY_IKE})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        if task.kind is TaskKind.CREATE_CHILD:
            start_create(ctx, sa, task, now)
        elif task.kind is TaskKind.REKEY_CHILD:
            start_rekey_child(ctx, sa, task, now)
        else:
            start_rekey_ike(ctx, sa, now, task.group)

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        handle_response(ctx, sa, rx.msg, now)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        handle_request(ctx, sa, rx.msg, now)
