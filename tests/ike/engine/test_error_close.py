"""An unexpected exception while handling one IKE SA closes that SA, in receive() and timer()
alike: it is deleted locally, its state freed, the exception's type (only) logged, and nothing
is left without a deadline (issue 11, fix 6)."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import IkeSaDeleted, IkeSaFailed
from fipsike.ike.exchanges import create_child_sa, ike_auth
from providers.errors import ProviderError
from tests.ike.engine.conftest import PairFactory

SECRET = "do-not-log-this-text"


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError(SECRET)


def test_exception_in_a_response_handler_closes_the_sa(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """moon's IKE_AUTH response handler raises: before, the AUTH_SENT SA stayed with no deadline."""
    net = pair()
    net.initiate(net.a, "gw")
    net.step()  # IKE_SA_INIT request
    net.step()  # response: moon sends IKE_AUTH
    monkeypatch.setattr(ike_auth, "handle_response", _boom)
    net.step()  # sun answers
    net.step()  # moon's handler raises
    moon = net.a.engine
    assert not moon.ike_sas() and set(moon.sas.sizes().values()) == {0}
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["internal error (RuntimeError)"]
    (line,) = [lg for lg in net.a.logs if lg.event == "internal-error"]
    assert "RuntimeError" in line.message and SECRET not in line.message
    assert moon.next_deadline() is None


def test_exception_in_a_request_handler_closes_only_that_sa(pair: PairFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    net = pair(initial_contact=False)
    for _ in range(2):
        net.initiate(net.a, "gw")
        net.run()
    first, second = net.b.engine.ike_sas()
    monkeypatch.setattr(create_child_sa, "handle_request", _boom)
    net.take(net.a, net.a.engine.rekey_ike(next(s.name for s in net.a.engine.ike_sas() if s.name == first.name),
                                           net.now))
    net.run()
    assert [sa.name for sa in net.b.engine.ike_sas()] == [second.name]
    assert [e.ike_sa for e in net.b.of(IkeSaDeleted)] == [first.name]
    assert not any(SECRET in lg.message for lg in net.b.logs)


def test_exception_in_timer_closes_the_sa(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The IKE SA rekey started from timer() raises a non-provider error: before, it escaped timer()."""
    net = pair(rekey_time=100.0)
    net.initiate(net.a, "gw")
    net.run()
    sa = net.a.the_ike_sa()
    monkeypatch.setattr(create_child_sa, "start_rekey_ike", _boom)
    net.advance(sa.rekey_at - net.now + 0.1)
    assert not net.a.engine.ike_sas() and not net.a.kernel
    assert [e.ike_sa for e in net.a.of(IkeSaDeleted)] == [sa.name]
    assert any(lg.event == "internal-error" and "RuntimeError" in lg.message for lg in net.a.logs)


def test_provider_error_in_timer_closes_the_sa(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    net = pair(rekey_time=100.0)
    net.initiate(net.a, "gw")
    net.run()
    sa = net.a.the_ike_sa()

    def refused(*_: object, **__: object) -> None:
        raise ProviderError("key share refused")

    monkeypatch.setattr(net.a.engine.router, "ke_generate", refused)
    net.advance(sa.rekey_at - net.now + 0.1)
    assert not net.a.engine.ike_sas()
    assert any(lg.event == "provider-error" and "ProviderError" in lg.message for lg in net.a.logs)


def test_initiate_with_a_refused_key_share_leaves_nothing(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    net = pair()

    def refused(*_: object, **__: object) -> None:
        raise ProviderError("key share refused")

    monkeypatch.setattr(net.a.engine.router, "ke_generate", refused)
    net.initiate(net.a, "gw")
    assert not net.wire and not net.a.engine.ike_sas()
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["internal error (ProviderError)"]
