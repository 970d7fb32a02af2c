"""IKE_INTERMEDIATE (RFC 9242): the exchanges between IKE_SA_INIT and IKE_AUTH, one per additional
key exchange (RFC 9370 2.2.2).

    HDR(IKE_INTERMEDIATE), SK {KEi(n)}  -->
                                  <--  HDR(IKE_INTERMEDIATE), SK {KEr(n)}

Exchange n is protected by the keys of exchange n-1 and both its messages are chained into IntAuth
under them (fipsike.ike.intermediate holds the state). The initiator switches keys once it has the
response, the responder once it has sent it: its cached response, and a repeated request (known by its
octets, exchanges.dispatch), stay with the old keys. A request past the negotiated exchanges carries
no KE payload and changes no key (RFC 9242 allows IKE_INTERMEDIATE for other data): it only counts in
IntAuth.
"""

from __future__ import annotations

from fipsike.ike import wire
from fipsike.ike.context import IkeContext
from fipsike.ike.errors import CodecError
from fipsike.ike.intauth import sent_intauth_data
from fipsike.ike.intermediate import AdditionalKeyExchangeError
from fipsike.ike.payloads import KeyExchangePayload, Notify, Payload
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import IkeSa, Task
from fipsike.ike.tasks import Received, TaskKind
from providers.errors import ProviderError


def _switch(ctx: IkeContext, sa: IkeSa) -> None:
    """The IKE SA's keys and SK protection follow the additional key exchange just completed."""
    assert sa.intermediate is not None
    sa.keys = sa.intermediate.keys
    wire.setup_protection(ctx.router, sa)


class IkeIntermediate:
    """The IKE_INTERMEDIATE task: queued by IKE_SA_INIT (ike_sa_init.intermediate_rounds)."""

    exchange = ExchangeType.IKE_INTERMEDIATE
    kinds = frozenset({TaskKind.IKE_INTERMEDIATE})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        ike = sa.intermediate
        if ike is None:
            return  # not negotiated (the queue moves on to IKE_AUTH)
        if ike.done:
            # intermediate=yes without additional key exchanges: one empty exchange, in IntAuth only
            msg = ctx.send_request(sa, ExchangeType.IKE_INTERMEDIATE, [], TaskKind.IKE_INTERMEDIATE, now)
            ike.int_auth.add(ctx.router, ike.keys, sent_intauth_data(msg), sent_by_initiator=True)
            return
        msg = ctx.send_request(sa, ExchangeType.IKE_INTERMEDIATE, ike.next_request(), TaskKind.IKE_INTERMEDIATE,
                               now)
        ike.request_sent(sent_intauth_data(msg))

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        ike = sa.intermediate
        assert ike is not None
        err = next((n for n in rx.msg.notifies() if n.is_error), None)
        if err is not None:
            name = NotifyType(err.notify_type).name if err.notify_type in NotifyType._value2member_map_ \
                else f"NOTIFY_{err.notify_type}"
            ctx.notify_error(sa, name, f"IKE_INTERMEDIATE {ike.completed + 1} refused by the responder")
            ctx.drop_ike(sa, name, failed=True)
            return
        if ike.done:  # the answer to an empty exchange: no key changes
            ike.int_auth.add(ctx.router, ike.keys, rx.intauth, sent_by_initiator=False)
            return
        try:
            ike.on_response(rx.msg.payloads, rx.intauth)
        except (AdditionalKeyExchangeError, CodecError, ProviderError) as e:
            ctx.log("warning", "intermediate", f"{sa.conn.name}: IKE_INTERMEDIATE response refused: {e}")
            ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
            return
        _switch(ctx, sa)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        ike = sa.intermediate
        if ike is None:
            # RFC 9242 3.2: IKE_INTERMEDIATE only where both announced it in IKE_SA_INIT
            ctx.send_response(sa, rx.msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
            ctx.drop_ike(sa, "IKE_INTERMEDIATE not negotiated", failed=True)
            return
        keyed = not ike.done or any(isinstance(p, KeyExchangePayload) for p in rx.msg.payloads)
        try:
            reply: list[Payload] = ike.on_request(rx.msg.payloads, rx.intauth) if keyed else []
        except (AdditionalKeyExchangeError, CodecError, ProviderError) as e:
            ctx.log("warning", "intermediate", f"{sa.conn.name}: IKE_INTERMEDIATE request refused: {e}")
            ctx.send_response(sa, rx.msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
            ctx.drop_ike(sa, "INVALID_SYNTAX", failed=True)
            return
        if not keyed:
            ike.int_auth.add(ctx.router, ike.keys, rx.intauth, sent_by_initiator=True)
        # sealed under the keys the request came with, before they change
        msg = ctx.send_response(sa, rx.msg, reply)
        if keyed:
            ike.response_sent(sent_intauth_data(msg))
            sa.switched_request = rx.data
            _switch(ctx, sa)
        else:
            ike.int_auth.add(ctx.router, ike.keys, sent_intauth_data(msg), sent_by_initiator=False)
            sa.switched_request = b""
