"""A new Child SA refused with TEMPORARY_FAILURE (RFC 7296 2.25, 1.3: "retry later") is tried
again after the Child SA retry delay, a bounded number of times; other refusals fail at once."""

from __future__ import annotations

from fipsike.ike.actions import ChildSaFailed
from fipsike.ike.config import ChildConfig
from fipsike.ike.exchanges.create_child_sa import CHILD_RETRY_DELAY, CREATE_CHILD_RETRIES
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.ts import ts_from_cidr
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.harness import Net, Packet, Side
from tests.ike.engine.test_create_child_sa import paired, up
from tests.ike.engine.test_establish import opened


def _add_web(net: Net, esp_moon: str | None = None, esp_sun: str | None = None) -> None:
    from fipsike.ike.proposals import Protocol, parse_proposals

    for side, (lo, rr), esp in ((net.a, ("10.1.1.0/24", "10.2.1.0/24"), esp_moon),
                                (net.b, ("10.2.1.0/24", "10.1.1.0/24"), esp_sun)):
        conn = side.engine.connections["gw"]
        web = ChildConfig("web", (ts_from_cidr(lo),), (ts_from_cidr(rr),))
        if esp is not None:
            web.esp_proposals = parse_proposals([esp], Protocol.ESP)
        conn.children = (*conn.children, web)


def _web(side: Side) -> list[object]:
    return [x for x in side.kernel.values() if x.child == "web"]


def _answers(side: Side, net: Net) -> list[NotifyType | None]:
    """The error notify of each CREATE_CHILD_SA response `side` received so far."""
    out: list[NotifyType | None] = []
    for pkt in net.delivered:
        m = pkt.msg
        if pkt.dst[0] == side.ip and m.response and m.exchange == ExchangeType.CREATE_CHILD_SA:
            out.append(_first_error(side, net, pkt))
    return out


def _first_error(side: Side, net: Net, pkt: Packet) -> NotifyType | None:
    net.wire.insert(0, pkt)
    try:
        msg = opened(side, net)
    finally:
        net.wire.pop(0)
    err = next((n for n in msg.notifies() if n.is_error), None)
    return NotifyType(err.notify_type) if err is not None else None


def test_create_child_retried_after_ike_rekey(pair: PairFactory) -> None:
    """sun rekeys the IKE SA while moon creates a Child SA: each refuses the other with
    TEMPORARY_FAILURE (RFC 7296 2.25.2); the IKE SA rekey retries first (2 s), and the Child SA
    creation follows on the new IKE SA after the Child SA delay and is installed on both sides."""
    net, moon, sun = up(pair, True)
    _add_web(net)
    old = sun.the_ike_sa().name
    net.take(sun, sun.engine.rekey_ike(old, net.now))
    net.take(moon, moon.engine.initiate("gw", net.now, child="web"))
    assert len(net.wire) == 2
    net.step(0)  # sun's IKE rekey -> moon, whose create-child is outstanding: TEMPORARY_FAILURE
    net.step(0)  # moon's create-child -> sun, whose IKE rekey is outstanding: TEMPORARY_FAILURE
    net.run()
    assert not _web(moon) and not moon.of(ChildSaFailed)
    assert any(lg.event == "create-child-retry" for lg in moon.logs)
    # nothing before the delay: the retry waits for the Child SA delay, not the next timer call
    net.settle(CHILD_RETRY_DELAY - 1, step=0.5)
    assert not _web(moon)
    assert moon.the_ike_sa().name != old  # the IKE SA rekey went first
    net.settle(CHILD_RETRY_DELAY * 0.25 + 2, step=0.5)
    a, b = moon.the_ike_sa(), sun.the_ike_sa()
    assert a.name == b.name != old
    assert len(_web(moon)) == 1 and len(_web(sun)) == 1 and paired(net)
    assert not moon.of(ChildSaFailed)


def test_create_child_temporary_failure_bounded(pair: PairFactory) -> None:
    """sun's IKE SA rekey never completes (its requests are lost), so sun refuses every new Child SA
    with TEMPORARY_FAILURE: moon tries 1 + CREATE_CHILD_RETRIES times, then reports ChildSaFailed."""
    net, moon, sun = up(pair, True)
    _add_web(net)
    net.take(sun, sun.engine.rekey_ike(sun.the_ike_sa().name, net.now))
    net.wire.clear()  # sun's rekey request is lost (and so are its retransmissions below)

    def from_moon(pkt: Packet) -> bool:
        return pkt.src[0] == moon.ip or pkt.msg.response

    net.take(moon, moon.engine.initiate("gw", net.now, child="web"))
    net.run(filt=from_moon)
    for _ in range(int((CREATE_CHILD_RETRIES + 1) * CHILD_RETRY_DELAY * 1.25) + 2):
        net.advance(1.0)
        net.run(filt=from_moon)
    answers = _answers(moon, net)
    assert answers == [NotifyType.TEMPORARY_FAILURE] * (CREATE_CHILD_RETRIES + 1)
    assert [e.notify for e in moon.of(ChildSaFailed)] == ["TEMPORARY_FAILURE"]
    assert not _web(moon) and not _web(sun)
    # and no further attempt after giving up
    net.advance(3 * CHILD_RETRY_DELAY)
    net.run(filt=from_moon)
    assert len(_answers(moon, net)) == CREATE_CHILD_RETRIES + 1


def test_create_child_no_proposal_chosen_not_retried(pair: PairFactory) -> None:
    net, moon, sun = up(pair, True)
    _add_web(net, esp_moon="aes128gcm16", esp_sun="aes256gcm16")
    net.take(moon, moon.engine.initiate("gw", net.now, child="web"))
    net.run()
    assert [e.notify for e in moon.of(ChildSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    net.settle(3 * CHILD_RETRY_DELAY, step=1.0)
    assert _answers(moon, net) == [NotifyType.NO_PROPOSAL_CHOSEN]
    assert len(moon.of(ChildSaFailed)) == 1 and not _web(moon)
    assert not any(lg.event == "create-child-retry" for lg in moon.logs)
