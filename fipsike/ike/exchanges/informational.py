"""INFORMATIONAL (RFC 7296 1.4, 1.5, 2.4): deleting Child and IKE SAs, liveness checks."""

from __future__ import annotations

from fipsike.ike.context import IkeContext
from fipsike.ike.exchanges.common import adopt
from fipsike.ike.message import Message
from fipsike.ike.payloads import Delete, Payload
from fipsike.ike.registry import ExchangeType, ProtocolId
from fipsike.ike.sa import ChildState, Exchange, IkeSa, IkeState, Task
from fipsike.ike.tasks import Received, TaskKind


def start_delete_child(ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
    child = sa.children.get(task.spi)
    if child is None or child.state in (ChildState.DELETING, ChildState.DELETED):
        return
    child.state = ChildState.DELETING
    sa.exchange = Exchange(TaskKind.DELETE_CHILD, delete_spis=(child.spi_in,))
    # the Delete names the SA by the SPI we receive with (RFC 7296 3.11)
    ctx.send_request(sa, ExchangeType.INFORMATIONAL,
                     [Delete(int(ProtocolId.ESP), (child.spi_in.to_bytes(4, "big"),))], TaskKind.DELETE_CHILD, now)


def start_delete_spi(ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
    """Delete an SA the peer installed but we refused to (a bad Child SA answer)."""
    sa.exchange = Exchange(TaskKind.DELETE_CHILD, delete_spis=())
    ctx.send_request(sa, ExchangeType.INFORMATIONAL,
                     [Delete(int(ProtocolId.ESP), (task.spi.to_bytes(4, "big"),))], TaskKind.DELETE_CHILD, now)


def start_delete_ike(ctx: IkeContext, sa: IkeSa, now: float) -> None:
    if sa.state == IkeState.ESTABLISHED:
        sa.state = IkeState.DELETING
    sa.exchange = Exchange(TaskKind.DELETE_IKE)
    ctx.log("info", "ike-sa-delete", f"{sa.conn.name} {sa.name}: deleting")
    ctx.send_request(sa, ExchangeType.INFORMATIONAL, [Delete(int(ProtocolId.IKE))], TaskKind.DELETE_IKE, now)


def start_dpd(ctx: IkeContext, sa: IkeSa, now: float) -> None:
    sa.exchange = Exchange(TaskKind.DPD)
    ctx.send_request(sa, ExchangeType.INFORMATIONAL, [], TaskKind.DPD, now)


def handle_response(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    ex = sa.exchange
    sa.exchange = None
    if ex is None:
        return
    if ex.kind == TaskKind.DELETE_IKE:
        ctx.drop_ike(sa, "deleted")
    elif ex.kind == TaskKind.DELETE_CHILD:
        for spi in ex.delete_spis:
            child = sa.children.get(spi)
            if child is not None:
                ctx.remove_child(sa, child, "deleted", keep_policies=child.replaced_by != 0)


def handle_request(ctx: IkeContext, sa: IkeSa, msg: Message, now: float) -> None:
    deletes = msg.all(Delete)
    if any(d.protocol == ProtocolId.IKE for d in deletes):
        # RFC 7296 1.4.1: answer with an empty INFORMATIONAL, then the IKE SA and its Child SAs are gone
        ctx.send_response(sa, msg, [])
        if sa.collision is not None:
            adopt(ctx, sa, sa.collision[0], now)
        ctx.log("info", "ike-sa-deleted", f"{sa.conn.name} {sa.name}: deleted by the peer")
        ctx.drop_ike(sa, "deleted by peer")
        return
    reply_spis: list[bytes] = []
    for d in deletes:
        if d.protocol not in (ProtocolId.ESP, ProtocolId.AH):
            continue
        for raw in d.spis:
            spi_out = int.from_bytes(raw, "big")
            child = next((c for c in sa.children.values() if c.spi_out == spi_out), None)
            if child is None:
                continue
            # an SA we are deleting ourselves is not named again in the answer (RFC 7296 1.4.1)
            if child.state != ChildState.DELETING:
                reply_spis.append(child.spi_in.to_bytes(4, "big"))
            ctx.remove_child(sa, child, "deleted by peer", keep_policies=child.replaced_by != 0)
            ctx.log("info", "child-sa-deleted", f"{sa.conn.name}/{child.name} {child.spi_in:08x}: deleted by peer")
    reply: list[Payload] = [Delete(int(ProtocolId.ESP), tuple(reply_spis))] if reply_spis else []
    ctx.send_response(sa, msg, reply)


class Informational:
    """The INFORMATIONAL task: deletes and liveness checks."""

    exchange = ExchangeType.INFORMATIONAL
    kinds = frozenset({TaskKind.DELETE_CHILD, TaskKind.DELETE_SPI, TaskKind.DELETE_IKE, TaskKind.DPD})

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        if task.kind is TaskKind.DELETE_CHILD:
            start_delete_child(ctx, sa, task, now)
        elif task.kind is TaskKind.DELETE_SPI:
            start_delete_spi(ctx, sa, task, now)
        elif task.kind is TaskKind.DELETE_IKE:
            start_delete_ike(ctx, sa, now)
        else:
            start_dpd(ctx, sa, now)

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        handle_response(ctx, sa, rx.msg, now)

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        handle_request(ctx, sa, rx.msg, now)
