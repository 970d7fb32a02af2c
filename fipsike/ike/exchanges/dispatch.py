"""The task manager: routing of received messages to their ExchangeTask (the registry, by the
pending request's TaskKind for responses, by exchange type and IKE SA state for requests),
message-ID checks (RFC 7296 2.2, 2.3, 2.21), starting queued tasks, and the timer sweep
(retransmission, rekeying, lifetimes, liveness).

An IKE_SA_INIT request is the one message that comes before any IKE SA: it goes straight to
ike_sa_init.handle_request, which makes the SA (or answers statelessly)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fipsike.ike import wire
from fipsike.ike.actions import Address, SendDatagram
from fipsike.ike.errors import AuthenticInvalidSyntax, CodecError, UnsupportedCriticalPayload
from fipsike.ike.exchanges import ike_sa_init
from fipsike.ike.exchanges.registrations import LIVE
from fipsike.ike.message import Message
from fipsike.ike.payloads import Notify
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import ChildState, IkeSa, IkeState, Task
from fipsike.ike.tasks import Received, TaskKind

if TYPE_CHECKING:
    from fipsike.ike.engine import Engine


def receive(eng: Engine, msg: Message, data: bytes, src: Address, dst: Address, now: float) -> None:
    if msg.exchange == ExchangeType.IKE_SA_INIT and not msg.response:
        ike_sa_init.handle_request(eng, msg, data, src, dst, now)
        return
    # the I flag says who sent it: from the original initiator, our SPI is SPIr (RFC 7296 3.1)
    ours = msg.spi_r if msg.initiator else msg.spi_i
    sa = eng.sas.by_spi.get(ours)
    if sa is not None:
        eng.touch(sa)
    if sa is None or sa.initiator == msg.initiator:
        eng.log("debug", "unknown-spi", f"message for an unknown IKE SA from {src[0]}:{src[1]}")
        if not msg.response and eng.invalid_spi_allowed(now):
            # RFC 7296 2.21.4: a request outside any IKE SA we know (the peer may have missed our
            # restart) MAY get an unprotected INVALID_IKE_SPI with the same SPIs and Message ID;
            # rate-limited, and never for responses
            reply = Message(msg.spi_i, msg.spi_r, int(msg.exchange), msg.message_id, not msg.initiator, True,
                            (Notify.error(NotifyType.INVALID_IKE_SPI),))
            eng.emit(SendDatagram(reply.serialize(), dst, src))
        return
    try:
        _receive_in(eng, sa, msg, data, src, dst, now)
    except Exception as e:  # noqa: BLE001 - any error in one SA's handling closes that SA only
        eng.close_on_error(sa, e)


def _receive_in(eng: Engine, sa: IkeSa, msg: Message, data: bytes, src: Address, dst: Address,
                now: float) -> None:
    """A message for our IKE SA `sa`."""
    if msg.response:
        pending = sa.pending
        if pending is None or pending.message_id != msg.message_id:
            eng.log("debug", "stale-response", f"{sa.name}: response {msg.message_id} matches no request")
            return
        kind = pending.exchange
        task = eng.registry.for_kind(kind)
        if msg.exchange != task.exchange:
            eng.log("debug", "drop", f"{sa.name}: {msg.exchange} response to our {task.exchange.name} request")
            return
        if msg.exchange == ExchangeType.IKE_SA_INIT:
            # unprotected; the task clears `pending` itself once the answer is taken (not for COOKIE
            # or INVALID_KE_PAYLOAD, which it answers with a new request)
            task.on_response(eng, sa, Received(msg, data, src, dst), kind, now)
        else:
            got = _open_rx(eng, sa, msg, data, src, dst)
            if got is None:
                return
            _follow(eng, sa, src, dst)
            sa.last_heard = now
            sa.pending = None
            task.on_response(eng, sa, got, kind, now)
        eng.kick(sa, now)  # the next task in the queue (the next setup exchange, or queued work)
        return
    # a request
    if sa.keys is None:
        return
    if msg.message_id == sa.expected_request_id - 1 and sa.last_response is not None \
            and sa.last_response[0] == msg.message_id:
        # a retransmitted request: verify it, then answer from the cache (RFC 7296 2.1). After an
        # IKE_INTERMEDIATE exchange the keys have moved on (RFC 9370 2.2.2): its request is known by
        # its octets, which were verified when it first came (strongSwan likewise hashes them)
        if msg.exchange == ExchangeType.IKE_INTERMEDIATE and sa.switched_request:
            if data != sa.switched_request:
                return
        elif _open(eng, sa, msg, data) is None:
            return
        eng.log("debug", "retransmit-response", f"{sa.name}: request {msg.message_id} repeated, cached answer")
        eng.resend(sa, sa.last_response[1])
        return
    if msg.message_id != sa.expected_request_id:
        eng.log("debug", "bad-message-id",
                f"{sa.name}: request ID {msg.message_id}, expected {sa.expected_request_id}: dropped")
        return
    try:
        got = _open_rx(eng, sa, msg, data, src, dst, strict=True)
    except UnsupportedCriticalPayload as e:
        # decrypted and authentic, but it needs a payload we do not know (RFC 7296 2.5)
        eng.send_response(sa, msg, [Notify.error(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, e.notify_data)])
        return
    except AuthenticInvalidSyntax as e:
        # authentic but malformed inside: INVALID_SYNTAX in the protected answer (RFC 7296 3.10.1)
        eng.log("debug", "invalid-syntax", f"{sa.name}: request {msg.message_id}: {e}")
        eng.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
        return
    if got is None:
        return
    inner = got.msg
    _follow(eng, sa, src, dst)
    sa.last_heard = now
    ex = msg.exchange
    handler = eng.registry.for_request(int(ex), sa.state)
    if handler is not None:
        handler.on_request(eng, sa, got, now)
    elif sa.state not in LIVE:
        eng.log("debug", "unexpected-request", f"{sa.name}: {ex} request in state {sa.state.value}: dropped")
        return
    else:
        # RFC 7296 1.5 / 2.21: an exchange we do not know gets an error answer in the IKE SA
        eng.send_response(sa, inner, [Notify.error(NotifyType.INVALID_SYNTAX)])
    eng.kick(sa, now)


def _follow(eng: Engine, sa: IkeSa, src: Address, dst: Address) -> None:
    """RFC 7296 2.23: behind a NAT (or once on port 4500) the peer's address is the one its last
    authenticated message came from; answers and requests go there."""
    if (sa.nat_local or sa.nat_remote or dst[1] == 4500) and (src != sa.remote or dst != sa.local):
        eng.log("info", "address-update", f"{sa.name}: peer now at {src[0]}:{src[1]}")
        eng.sas.move_peer(sa, src, dst)


def _open_rx(eng: Engine, sa: IkeSa, msg: Message, data: bytes, src: Address, dst: Address,
             strict: bool = False) -> Received | None:
    """The decrypted message as an exchange receives it: an IKE_INTERMEDIATE one with its IntAuth
    A | P (RFC 9242 3.3.2)."""
    if msg.exchange != ExchangeType.IKE_INTERMEDIATE:
        inner = _open(eng, sa, msg, data, strict)
        return None if inner is None else Received(inner, data, src, dst)
    if sa.codec is None:
        return None
    try:
        got = wire.unprotect_intermediate(sa, msg, data)
    except CodecError as e:
        eng.log("debug", "drop", f"{sa.name}: {type(e).__name__}: {e}")
        return None
    return None if got is None else Received(got[0], data, src, dst, got[1])


def _open(eng: Engine, sa: IkeSa, msg: Message, data: bytes, strict: bool = False) -> Message | None:
    if sa.codec is None:
        return None
    try:
        return wire.unprotect(eng.router, sa, msg, data)
    except UnsupportedCriticalPayload:
        if strict:
            raise
        return None
    except CodecError as e:
        if strict and isinstance(e, AuthenticInvalidSyntax):
            raise  # a request: answered with INVALID_SYNTAX
        # integrity failures are dropped silently (RFC 7296 2.21.2); so is garbage
        eng.log("debug", "drop", f"{sa.name}: {type(e).__name__}: {e}")
        return None


def start_task(eng: Engine, sa: IkeSa, task: Task, now: float) -> None:
    if sa.state == IkeState.REKEYED and task.kind is not TaskKind.DELETE_IKE:
        # the SA is being replaced: its pending work moves to the new one
        new = eng.find_ike(sa.rekeyed_to)
        if new is not None:
            eng.queue(new, task, now)
        return
    eng.registry.for_kind(task.kind).start(eng, sa, task, now)


def timer(eng: Engine, now: float) -> None:
    for sa in eng.due_sas(now):
        eng.touch(sa)
        try:
            timer_sa(eng, sa, now)
        except Exception as e:  # noqa: BLE001 - any error in one SA's timer closes that SA only
            eng.close_on_error(sa, e)


def timer_sa(eng: Engine, sa: IkeSa, now: float) -> None:
    """Everything due for one IKE SA at `now` (idempotent: a second call at the same time does nothing)."""
    if sa.state == IkeState.DELETED:
        return
    p = sa.pending
    if p is not None and p.due(now):
        policy = sa.conn.retransmit
        give_up = p.exhausted(policy)
        if p.exchange == TaskKind.DPD and now - p.sent_at >= sa.conn.dpd_timeout:
            give_up = True
        if give_up:
            if p.exchange == TaskKind.DELETE_IKE:
                eng.drop_ike(sa, "deleted (no answer)")
            elif sa.state in (IkeState.INIT_SENT, IkeState.AUTH_SENT):
                eng.log("warning", "ike-sa-timeout", f"{sa.conn.name}: no answer from {sa.remote[0]}")
                eng.drop_ike(sa, "timeout", failed=True)
            else:
                eng.peer_dead(sa, now)
            return
        p.tries += 1
        p.arm(policy, now)
        if p.exchange == TaskKind.DPD:
            # a liveness check gives up after dpd_timeout, whatever the retransmission schedule says
            p.deadline = min(p.deadline, p.sent_at + sa.conn.dpd_timeout)
        eng.log("debug", "retransmit", f"{sa.name}: request {p.message_id} try {p.tries}")
        eng.resend(sa, p.packets)
    if sa.state in (IkeState.INIT_DONE, IkeState.REKEYED) and sa.half_open_deadline \
            and now >= sa.half_open_deadline:
        eng.drop_ike(sa, "half-open timeout" if sa.state == IkeState.INIT_DONE else "rekeyed")
        return
    if sa.state != IkeState.ESTABLISHED:
        return
    if sa.expire_at and now >= sa.expire_at:
        eng.log("info", "ike-sa-expired", f"{sa.name}: lifetime reached")
        sa.expire_at = 0.0
        eng.queue(sa, Task(TaskKind.DELETE_IKE), now)
        return
    if sa.rekey_at and now >= sa.rekey_at:
        sa.rekey_at = 0.0
        eng.queue(sa, Task(TaskKind.REKEY_IKE), now)
    if sa.deferred and any(when <= now for when, _ in sa.deferred):
        due = [t for when, t in sa.deferred if when <= now]
        sa.deferred = [(when, t) for when, t in sa.deferred if when > now]
        for task in due:
            eng.queue(sa, task, now)
    for child in list(sa.children.values()):
        if child.expire_at and now >= child.expire_at:
            child.expire_at = 0.0
            eng.queue(sa, Task(TaskKind.DELETE_CHILD, spi=child.spi_in), now)
        elif child.state == ChildState.INSTALLED and child.rekey_at and now >= child.rekey_at:
            child.rekey_at = 0.0
            eng.queue(sa, Task(TaskKind.REKEY_CHILD, spi=child.spi_in), now)
    if sa.conn.dpd_delay > 0 and sa.pending is None and not sa.tasks \
            and now >= sa.last_heard + sa.conn.dpd_delay:
        eng.queue(sa, Task(TaskKind.DPD), now)
