"""A refused rekey is retried only after TEMPORARY_FAILURE (RFC 7296 2.25), at most REKEY_RETRIES
times; a permanent refusal ends the retries and the old SA lives until its hard lifetime; each retry
is logged with its reason (issue 11, fix 7; libreswan recipe section 10)."""

from __future__ import annotations

import pytest

from fipsike.ike.exchanges import create_child_sa
from fipsike.ike.exchanges.create_child_sa import REKEY_RETRIES
from fipsike.ike.payloads import Notify
from fipsike.ike.proposals import Protocol, parse_proposals
from fipsike.ike.registry import ExchangeType, NotifyType
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.harness import Net, Side


def _requests(net: Net, side: Side) -> int:
    """CREATE_CHILD_SA requests `side` sent that were delivered."""
    return sum(1 for p in net.delivered
               if p.src[0] == side.ip and not p.msg.response and p.msg.exchange == ExchangeType.CREATE_CHILD_SA)


def _busy(eng, sa, msg, now):  # type: ignore[no-untyped-def]
    eng.send_response(sa, msg, [Notify.error(NotifyType.TEMPORARY_FAILURE)])


def _up(pair: PairFactory, **kw: object) -> Net:
    net = pair(**kw)
    net.initiate(net.a, "gw")
    net.run()
    return net


def test_child_rekey_no_proposal_chosen_is_not_retried(pair: PairFactory) -> None:
    """moon now wants PFS with MODP-3072, which sun's Child SA policy does not take: one rekey
    request, NO_PROPOSAL_CHOSEN, no retry over two minutes, and the old SA stays installed."""
    net = _up(pair)
    moon_child = net.a.engine.connections["gw"].children[0]
    moon_child.esp_proposals = parse_proposals(["aes256gcm16-modp3072"], Protocol.ESP)
    (spi,) = net.a.kernel
    net.take(net.a, net.a.engine.rekey_child(spi, net.now))
    net.run()
    net.settle(120, step=1.0)
    assert _requests(net, net.a) == 1
    assert list(net.a.kernel) == [spi]
    (given_up,) = [lg for lg in net.a.logs if lg.event == "rekey-given-up"]
    assert "NO_PROPOSAL_CHOSEN" in given_up.message
    assert not [lg for lg in net.a.logs if lg.event == "rekey-retry"]
    child = net.a.engine.find_child(spi)
    assert child is not None and child[1].rekey_at == 0.0 and child[1].expire_at > net.now


def test_child_rekey_invalid_syntax_from_timer_is_not_retried(pair: PairFactory,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """pluto's INVALID_SYNTAX answer to a scheduled rekey: no retry; at the hard lifetime the SA is
    deleted (and not rekeyed)."""
    net = _up(pair, child_rekey_time=60.0, child_life_time=200.0)

    def invalid(eng, sa, msg, now):  # type: ignore[no-untyped-def]
        eng.send_response(sa, msg, [Notify.error(NotifyType.INVALID_SYNTAX)])

    monkeypatch.setattr(create_child_sa, "handle_request", invalid)
    (spi,) = net.a.kernel
    net.settle(150, step=1.0)
    # both sides' own rekeys at 60 s were refused once each; nobody tried again
    assert _requests(net, net.a) == 1 and _requests(net, net.b) == 1
    assert list(net.a.kernel) == [spi]
    net.settle(60, step=1.0)
    assert spi not in net.a.kernel  # the hard lifetime ended it


def test_child_rekey_temporary_failure_retried_three_times(pair: PairFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    net = _up(pair)
    monkeypatch.setattr(create_child_sa, "handle_request", _busy)
    (spi,) = net.a.kernel
    net.take(net.a, net.a.engine.rekey_child(spi, net.now))
    net.run()
    net.settle(120, step=1.0)
    assert _requests(net, net.a) == 1 + REKEY_RETRIES
    retries = [lg.message for lg in net.a.logs if lg.event == "rekey-retry"]
    assert len(retries) == REKEY_RETRIES and all("TEMPORARY_FAILURE" in m for m in retries)
    assert [lg.event for lg in net.a.logs].count("rekey-given-up") == 1
    assert list(net.a.kernel) == [spi]


def test_ike_rekey_temporary_failure_retried_three_times(pair: PairFactory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    net = _up(pair)
    monkeypatch.setattr(create_child_sa, "handle_request", _busy)
    sa = net.a.the_ike_sa()
    net.take(net.a, net.a.engine.rekey_ike(sa.name, net.now))
    net.run()
    net.settle(60, step=0.5)
    assert _requests(net, net.a) == 1 + REKEY_RETRIES
    retries = [lg.message for lg in net.a.logs if lg.event == "rekey-retry"]
    assert len(retries) == REKEY_RETRIES and all("IKE SA rekey refused with TEMPORARY_FAILURE" in m for m in retries)
    assert net.a.the_ike_sa() is sa and sa.rekey_at == 0.0


def test_ike_rekey_no_proposal_chosen_is_not_retried(pair: PairFactory) -> None:
    net = _up(pair)
    conn = net.a.engine.connections["gw"]
    conn.ike_proposals = parse_proposals(["aes128gcm16-prfsha256-ecp256"], Protocol.IKE)
    sa = net.a.the_ike_sa()
    net.take(net.a, net.a.engine.rekey_ike(sa.name, net.now))
    net.run()
    net.settle(60, step=0.5)
    assert _requests(net, net.a) == 1
    (given_up,) = [lg for lg in net.a.logs if lg.event == "rekey-given-up"]
    assert "NO_PROPOSAL_CHOSEN" in given_up.message
    assert net.a.the_ike_sa() is sa
