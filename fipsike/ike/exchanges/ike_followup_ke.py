"""IKE_FOLLOWUP_KE (RFC 9370 2.2.4): the additional key exchanges of a CREATE_CHILD_SA (a new or
rekeyed Child SA, or an IKE SA rekey), one exchange each, linked to it by ADDITIONAL_KEY_EXCHANGE.

The initiator sends them back to back once the CREATE_CHILD_SA response names the first link
(exchanges.create_child_sa starts them, and finishes the SA after the last); the responder keeps the
state of the CREATE_CHILD_SA it answered (IkeSa.followup) and answers STATE_NOT_FOUND to a link it does
not hold. The IKE SA's keys protect every message and do not change.
"""

from __future__ import annotations

from fipsike.ike.context import IkeContext
from fipsike.ike.errors import CodecError
from fipsike.ike.exchanges import create_child_sa as ccs
from fipsike.ike.followup_ke import RESPONDER_WAIT, StateNotFound
from fipsike.ike.intermediate import AdditionalKeyExchangeError
from fipsike.ike.payloads import Notify
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import IkeSa, Task
from fipsike.ike.tasks import Received, TaskKind
from providers.errors import ProviderError


class IkeFollowupKe:
    """The IKE_FOLLOWUP_KE task. It never starts from the queue: a CREATE_CHILD_SA response does."""

    exchange = ExchangeType.IKE_FOLLOWUP_KE
    kinds = frozenset({TaskKind.FOLLOWUP_KE})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        pass  # sent by create_child_sa.send_followup while its exchange is open

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        ex = sa.exchange
        sa.exchange = None
        if ex is None or ex.followup is None:
            return
        err = next((n for n in rx.msg.notifies() if n.is_error), None)
        if err is not None:
            ccs.followup_failed(ctx, sa, ex, err, now)
            return
        try:
            ex.followup.on_response(rx.msg.payloads)
        except (AdditionalKeyExchangeError, ProviderError) as e:
            ctx.log("warning", "followup-ke", f"{sa.conn.name}: IKE_FOLLOWUP_KE response refused: {e}")
            ccs.followup_failed(ctx, sa, ex, Notify.error(NotifyType.INVALID_SYNTAX), now)
            return
        if not ex.followup.done:
            sa.exchange = ex
            ccs.send_followup(ctx, sa, ex, now)
            return
        ccs.followup_done(ctx, sa, ex, now)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        st = sa.followup
        if st is not None and now >= st.deadline:
            # RFC 9370 2.2.4: the state is not kept past a reasonable wait
            st.exchanges.wipe()
            sa.followup = st = None
        try:
            if st is None:
                raise StateNotFound("no CREATE_CHILD_SA waits for IKE_FOLLOWUP_KE")
            reply = st.exchanges.on_request(rx.msg.payloads)
        except StateNotFound as e:
            ctx.log("info", "followup-ke", f"{sa.conn.name}: {e}")
            ctx.send_response(sa, rx.msg, [Notify.error(NotifyType.STATE_NOT_FOUND)])
            return
        except (AdditionalKeyExchangeError, CodecError, ProviderError) as e:
            ctx.log("warning", "followup-ke", f"{sa.conn.name}: IKE_FOLLOWUP_KE request refused: {e}")
            ctx.send_response(sa, rx.msg, [Notify.error(NotifyType.INVALID_SYNTAX)])
            if st is not None:
                st.exchanges.wipe()
            sa.followup = None
            return
        st.deadline = now + RESPONDER_WAIT
        ctx.send_response(sa, rx.msg, reply)
        if st.exchanges.done:
            sa.followup = None
            st.finish(now)
