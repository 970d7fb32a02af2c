"""Exchanges as tasks (issue 11, restructure): a registry by task kind and by (exchange, state), a
queue per IKE SA that chains IKE_SA_INIT, IKE_INTERMEDIATE x n and IKE_AUTH, and a new exchange
added as one object and one registration."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import IkeSaEstablished
from fipsike.ike.context import IkeContext
from fipsike.ike.exchanges import ike_sa_init
from fipsike.ike.exchanges.create_child_sa import CreateChildSa
from fipsike.ike.exchanges.ike_auth import IkeAuth
from fipsike.ike.exchanges.ike_sa_init import IkeSaInit
from fipsike.ike.exchanges.informational import Informational
from fipsike.ike.exchanges.registrations import LIVE, default_registry
from fipsike.ike.registry import ExchangeType
from fipsike.ike.sa import IkeSa, IkeState, Task
from fipsike.ike.tasks import SETUP, Received, TaskKind, TaskRegistry, UnknownTask
from tests.ike.engine.conftest import PairFactory


class EmptyIntermediate:
    """A stand-in IKE_INTERMEDIATE (RFC 9242): an empty request and an empty answer."""

    exchange = ExchangeType.IKE_INTERMEDIATE
    kinds = frozenset({TaskKind.IKE_INTERMEDIATE})

    def __init__(self) -> None:
        self.seen: list[str] = []

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        self.seen.append("start")
        ctx.send_request(sa, self.exchange, [], TaskKind.IKE_INTERMEDIATE, now)

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        self.seen.append(f"response {rx.msg.message_id}")

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        self.seen.append(f"request {rx.msg.message_id}")
        ctx.send_response(sa, rx.msg, [])


def without_intermediate() -> TaskRegistry:
    """The default registry but for IKE_INTERMEDIATE: the slot a new exchange fills."""
    r = TaskRegistry()
    r.register(IkeSaInit())
    r.register(IkeAuth(), request_states=(IkeState.INIT_DONE,))
    r.register(CreateChildSa(), request_states=LIVE)
    r.register(Informational(), request_states=LIVE)
    return r


def test_registry_lookups() -> None:
    r = default_registry()
    assert r.for_kind(TaskKind.REKEY_IKE).exchange is ExchangeType.CREATE_CHILD_SA
    assert r.for_kind(TaskKind.DPD).exchange is ExchangeType.INFORMATIONAL
    assert r.for_request(int(ExchangeType.IKE_AUTH), IkeState.INIT_DONE) is r.for_kind(TaskKind.IKE_AUTH)
    assert r.for_request(int(ExchangeType.IKE_AUTH), IkeState.ESTABLISHED) is None
    assert r.for_request(int(ExchangeType.CREATE_CHILD_SA), IkeState.INIT_DONE) is None
    # RFC 9242's IKE_INTERMEDIATE fills its slot in the default registry
    assert r.for_request(int(ExchangeType.IKE_INTERMEDIATE), IkeState.INIT_DONE) is r.for_kind(
        TaskKind.IKE_INTERMEDIATE)
    with pytest.raises(ValueError, match="twice"):
        r.register(EmptyIntermediate())
    r = without_intermediate()
    assert not r.knows_kind(TaskKind.IKE_INTERMEDIATE)
    with pytest.raises(UnknownTask):
        r.for_kind(TaskKind.IKE_INTERMEDIATE)
    r.register(EmptyIntermediate(), request_states=(IkeState.INIT_DONE,))
    assert r.for_kind(TaskKind.IKE_INTERMEDIATE).exchange is ExchangeType.IKE_INTERMEDIATE
    with pytest.raises(ValueError, match="twice"):
        r.register(EmptyIntermediate())


def test_setup_is_a_queue(pair: PairFactory) -> None:
    """While IKE_SA_INIT is in flight the IKE SA's queue holds IKE_AUTH; IKE_AUTH is started from the
    queue once the IKE_SA_INIT answer is taken (not called by IKE_SA_INIT)."""
    net = pair()
    net.initiate(net.a, "gw")
    (sa,) = net.a.engine.ike_sas()
    assert sa.pending is not None and sa.pending.exchange is TaskKind.IKE_SA_INIT
    assert [t.kind for t in sa.tasks] == [TaskKind.IKE_AUTH]
    net.take(net.a, net.a.engine.liveness(sa.name, net.now))  # queued behind the setup chain
    assert [t.kind for t in sa.tasks] == [TaskKind.IKE_AUTH, TaskKind.DPD]
    net.step()
    net.step()
    assert sa.pending is not None and sa.pending.exchange is TaskKind.IKE_AUTH
    assert [t.kind for t in sa.tasks] == [TaskKind.DPD]
    net.run()
    assert sa.state is IkeState.ESTABLISHED and not sa.tasks
    assert TaskKind.IKE_INTERMEDIATE in SETUP


def test_new_exchange_is_a_module_and_a_registration(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register an IKE_INTERMEDIATE task on both sides and have IKE_SA_INIT ask for two rounds: the
    queue runs IKE_SA_INIT, IKE_INTERMEDIATE (message IDs 1 and 2), then IKE_AUTH (3)."""
    net = pair()
    moon, sun = EmptyIntermediate(), EmptyIntermediate()
    net.a.engine.registry = without_intermediate()
    net.b.engine.registry = without_intermediate()
    net.a.engine.registry.register(moon)
    net.b.engine.registry.register(sun, request_states=(IkeState.INIT_DONE,))
    monkeypatch.setattr(ike_sa_init, "intermediate_rounds", lambda sa: 2)
    net.initiate(net.a, "gw")
    net.run()
    assert moon.seen == ["start", "response 1", "start", "response 2"]
    assert sun.seen == ["request 1", "request 2"]
    exchanges = [(p.msg.exchange, p.msg.message_id) for p in net.delivered if not p.msg.response]
    assert exchanges == [(ExchangeType.IKE_SA_INIT, 0), (ExchangeType.IKE_INTERMEDIATE, 1),
                         (ExchangeType.IKE_INTERMEDIATE, 2), (ExchangeType.IKE_AUTH, 3)]
    assert len(net.a.of(IkeSaEstablished)) == 1 and len(net.b.of(IkeSaEstablished)) == 1


def test_intermediate_request_without_a_registration_is_dropped(pair: PairFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """moon runs an IKE_INTERMEDIATE round; sun has none registered: the request is dropped (as any
    request in a state nothing takes it in), moon retransmits, and no IKE SA comes up."""
    net = pair()
    net.a.engine.registry = without_intermediate()
    net.b.engine.registry = without_intermediate()
    net.a.engine.registry.register(EmptyIntermediate())
    monkeypatch.setattr(ike_sa_init, "intermediate_rounds", lambda sa: 1)
    net.initiate(net.a, "gw")
    net.run()
    assert any(lg.event == "unexpected-request" for lg in net.b.logs)
    assert not net.a.of(IkeSaEstablished) and not net.b.of(IkeSaEstablished)
