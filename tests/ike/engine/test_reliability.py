"""Message IDs, retransmission, duplicates, loss and reordering (RFC 7296 2.1, 2.2, 2.3, 2.21)."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import IkeSaFailed
from fipsike.ike.retransmit import RetransmitPolicy
from fipsike.ike.sa import IkeState
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import paired, up


def test_retransmit_schedule() -> None:
    p = RetransmitPolicy()
    assert [round(p.timeout(n), 2) for n in range(5)] == [4.0, 7.2, 12.96, 23.33, 41.99]
    assert round(p.total(), 1) == 89.5
    assert RetransmitPolicy(cap=10.0).timeout(4) == 10.0


def test_initiator_retransmits_then_gives_up(pair: PairFactory) -> None:
    net = pair()
    net.initiate(net.a, "gw")
    times = []
    for _ in range(300):
        if net.wire:
            times.append(net.now)
            net.wire.clear()
        if net.a.of(IkeSaFailed):
            break
        net.advance(0.5)
    assert times == [0.0, 4.0, 11.5, 24.5, 48.0]  # 4, 7.2, 12.96, 23.3 s later (rounded up to the tick)
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["timeout"]
    assert 89.5 <= net.now <= 90.5  # the last wait (42 s) runs out
    assert not net.a.engine.ike_sas()


@pytest.mark.parametrize("lost", [0, 1, 2, 3], ids=["init-req", "init-resp", "auth-req", "auth-resp"])
def test_any_handshake_message_lost(pair: PairFactory, lost: int) -> None:
    net = pair()
    net.initiate(net.a, "gw")
    for n in range(4):
        if n == lost:
            net.drop()
            net.advance(4.0)  # the initiator retransmits its request
        net.step()
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1 and paired(net)
    assert len(net.b.engine.ike_sas()) == 1


@pytest.mark.parametrize("dup", [0, 1, 2, 3])
def test_duplicated_messages(pair: PairFactory, dup: int) -> None:
    """A repeated request is answered from the cache; a repeated response is ignored."""
    net = pair()
    net.initiate(net.a, "gw")
    for n in range(4):
        if n == dup:
            net.wire.insert(1, net.wire[0])
        net.step()
        if n == dup:
            net.step()  # the duplicate
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1 and paired(net)
    assert len(net.b.engine.ike_sas()) == 1
    if dup in (0, 2):
        assert any(lg.event in ("retransmit-response",) for lg in net.b.logs) or dup == 0


def test_retransmitted_request_gets_identical_response(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    req = net.wire[0]
    net.step()
    first = net.wire.pop(0)
    net.deliver(req)  # the request again
    again = net.wire.pop(0)
    assert again.data == first.data
    net.deliver(first)
    net.run()
    assert len(r.kernel) == 1 and paired(net)


def test_reordered_and_stale(pair: PairFactory) -> None:
    """A stale response and an out-of-window request are dropped without harm."""
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.step()
    resp = net.wire.pop(0)
    net.deliver(resp)
    net.run()
    before = (set(i.kernel), set(r.kernel))
    net.deliver(resp)  # stale: the exchange is over
    assert not net.wire
    assert (set(i.kernel), set(r.kernel)) == before
    assert any(lg.event == "stale-response" for lg in i.logs)


def test_lost_response_in_create_child_sa(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.step()
    net.drop()  # the response is lost
    net.advance(4.0)  # moon retransmits; sun answers from its cache (no second Child SA)
    net.run()
    assert len(i.kernel) == 1 and len(r.kernel) == 1 and paired(net)


def test_window_of_one_queues_requests(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    sa = i.the_ike_sa()
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.take(i, i.engine.liveness(sa.name, net.now))
    assert len(net.wire) == 1 and len(sa.tasks) == 1  # the second request waits for the window
    net.run()
    # IKE_SA_INIT 0, IKE_AUTH 1, CREATE_CHILD_SA 2, INFORMATIONAL (delete the old SA) 3, liveness 4
    assert sa.next_request_id == 5 and r.the_ike_sa().expected_request_id == 5
    assert sa.state == IkeState.ESTABLISHED and paired(net)


def test_garbage_and_tampering_dropped(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    pkt = net.wire.pop(0)
    bad = bytearray(pkt.data)
    bad[-1] ^= 0xFF  # ICV broken: dropped silently (RFC 7296 2.21.2)
    net.take(r, r.engine.receive(bytes(bad), pkt.src, pkt.dst, net.now))
    net.take(r, r.engine.receive(b"\x00" * 10, pkt.src, pkt.dst, net.now))
    assert not net.wire
    net.deliver(pkt)
    net.run()
    assert paired(net)


def test_ike_rekey_response_lost(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    old = i.the_ike_sa().name
    net.take(i, i.engine.rekey_ike(old, net.now))
    net.step()
    net.drop()  # the CREATE_CHILD_SA response is lost; sun has already moved to the new IKE SA
    net.advance(4.0)
    net.run()
    assert i.the_ike_sa().name == r.the_ike_sa().name != old
    assert len(i.engine.ike_sas()) == 1 and len(r.engine.ike_sas()) == 1 and paired(net)


def test_delete_response_lost(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    net.take(i, i.engine.delete_ike(i.the_ike_sa().name, net.now))
    net.step()
    net.drop()  # sun deleted the SA and its answer is lost: moon retransmits into the void, then gives up
    net.settle(100, step=5)
    assert not i.engine.ike_sas() and not r.engine.ike_sas() and not i.kernel and not r.kernel


def test_init_request_retransmitted_after_auth(pair: PairFactory) -> None:
    """A late copy of IKE_SA_INIT never gets another exchange's answer, nor a second IKE SA. Once
    IKE_AUTH (message ID 1) is answered, the IKE_SA_INIT response (ID 0) need not be remembered
    (RFC 7296 2.1) and the SA no longer keeps it: the copy is dropped. Before that it is answered."""
    net = pair()
    net.initiate(net.a, "gw")
    first = net.wire.pop(0)
    net.deliver(first)
    net.deliver(first)  # retransmitted while half open: the same answer again
    assert [p.msg.exchange for p in net.wire] == [34, 34] and all(p.msg.response for p in net.wire)
    assert net.wire[0].data == net.wire[1].data
    net.wire.pop()
    net.run()
    net.deliver(first)
    assert net.wire == []
    net.run()
    assert paired(net) and len(net.b.engine.ike_sas()) == 1


def test_cost_per_message_does_not_grow_with_the_table(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """With 40 IKE SAs up, one liveness exchange recomputes the deadlines of one SA only (timer heap),
    and the half-open count is a set size (cookies, RFC 7296 2.6)."""
    import fipsike.ike.engine as E

    net = pair(dpd_delay=0.0, initial_contact=False)
    for _ in range(40):
        net.initiate(net.a, "gw")
        net.run()
    assert len(net.a.engine.ike_sas()) == 40 and net.b.engine.sas.half_open() == 0
    calls = []
    from fipsike.ike import deadlines as D

    real = D.sa_deadline
    monkeypatch.setattr(E.Engine, "next_deadline", lambda self: None)  # the harness's full-scan check
    monkeypatch.setattr(D, "sa_deadline", lambda sa: calls.append(sa) or real(sa))
    sa = net.a.engine.ike_sas()[7]
    net.take(net.a, net.a.engine.liveness(sa.name, net.now))
    net.run()
    assert 0 < len({id(s) for s in calls if s is not None}) <= 2


def test_a_new_ike_sa_does_not_scan_the_table(pair: PairFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """initiate() of a connection's next IKE SA looks at no established SA (a load generator's or an
    acquire's initiate stays O(1) in the SAs up); a named Child SA still reuses an IKE SA that is up."""
    from fipsike.ike.sa_table import SaTable

    net = pair(dpd_delay=0.0, initial_contact=False)
    for _ in range(3):
        net.initiate(net.a, "gw")
        net.run()
    scans: list[int] = []
    real = SaTable.established
    monkeypatch.setattr(SaTable, "established", lambda self: scans.append(len(self)) or real(self))
    net.initiate(net.a, "gw")
    net.run()
    assert scans == [] and len(net.a.engine.ike_sas()) == 4
    net.take(net.a, net.a.engine.initiate("gw", net.now, child="net"))
    net.run()
    assert scans == [4] and len(net.a.engine.ike_sas()) == 4


def test_module_in_error_state_refuses_without_crashing(pair: PairFactory) -> None:
    """The cryptographic module enters its error state mid-handshake: every call is refused, the
    engine logs it and carries on (nothing is established, nothing raises)."""
    net = pair()
    net.initiate(net.a, "gw")
    net.step()
    net.b.engine.router.gate.fail("self-test failure (test)")
    net.step()  # moon's IKE_AUTH to sun: sun cannot decrypt, sign or derive
    net.run()
    net.settle(10, step=2)
    assert not net.b.kernel and not net.a.kernel
    assert any(lg.event in ("provider-error", "drop") for lg in net.b.logs)
    assert not any(lg.event == "internal-error" for lg in net.b.logs)


def test_invalid_ike_spi_after_restart(pair: PairFactory) -> None:
    """sun restarts and forgets the IKE SA: moon's next request gets an unprotected INVALID_IKE_SPI
    (RFC 7296 2.21.4), rate-limited; responses for unknown SAs are never answered."""
    from fipsike.ike.engine import Engine
    from fipsike.ike.registry import NotifyType
    from providers import open_router

    net, i, r = up(pair, True)
    net.b.engine = Engine(open_router("fips"), list(net.b.engine.connections.values()))
    sa = i.the_ike_sa()
    net.take(i, i.engine.liveness(sa.name, net.now))
    req = net.wire[0].msg
    net.step()
    (ans,) = net.wire
    m = ans.msg
    assert m.response and m.message_id == req.message_id and (m.spi_i, m.spi_r) == (req.spi_i, req.spi_r)
    assert m.notify(NotifyType.INVALID_IKE_SPI) is not None and m.encrypted is None
    net.wire.clear()
    pkt_data = net.delivered[-1].data
    for _ in range(30):
        net.take(net.b, net.b.engine.receive(pkt_data, ("10.99.0.1", 500), ("10.99.0.2", 500), net.now))
    assert len(net.wire) == 9  # 10 per second in all
