"""Malformed and mutated messages: the engine answers or drops, never raises, never corrupts a live SA."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fipsike.ike.tasks import TaskKind
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import paired, up


def _no_internal_errors(*sides) -> None:  # type: ignore[no-untyped-def]
    for s in sides:
        bad = [lg.message for lg in s.logs if lg.event == "internal-error"]
        assert not bad, bad


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 2000), st.integers(1, 255)), min_size=1, max_size=4),
       which=st.integers(0, 1), cut=st.integers(0, 40))
def test_mutated_ike_sa_init(pair: PairFactory, flips: list[tuple[int, int]], which: int, cut: int) -> None:
    net = pair()
    net.initiate(net.a, "gw")
    if which == 1:
        net.step()  # mutate the response instead of the request
    pkt = net.wire.pop(0)
    data = bytearray(pkt.data)
    for pos, x in flips:
        data[pos % len(data)] ^= x
    if cut:
        data = data[:-cut]
    target = net.b if which == 0 else net.a
    net.take(target, target.engine.receive(bytes(data), pkt.src, pkt.dst, net.now))
    _no_internal_errors(net.a, net.b)
    net.run()
    net.settle(10, step=2)
    _no_internal_errors(net.a, net.b)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.binary(min_size=0, max_size=300), spi_from_sa=st.booleans())
def test_junk_to_a_live_sa(pair: PairFactory, junk: bytes, spi_from_sa: bool) -> None:
    net, i, r = up(pair, True)
    sa = r.the_ike_sa()
    header = bytearray(28)
    if spi_from_sa:
        header[0:8], header[8:16] = sa.spi_i, sa.spi_r
    header[16], header[17], header[18], header[19] = 46, 0x20, 37, 0x08
    header[20:24] = (2).to_bytes(4, "big")
    header[24:28] = (28 + len(junk)).to_bytes(4, "big")
    net.take(r, r.engine.receive(bytes(header) + junk, ("10.99.0.1", 500), ("10.99.0.2", 500), net.now))
    _no_internal_errors(r)
    # nothing answers garbage, except the rate-limited INVALID_IKE_SPI for a parseable request to an
    # unknown SA (RFC 7296 2.21.4)
    for p in net.wire:
        assert not spi_from_sa and p.msg.response and p.msg.notify(4) is not None
    net.wire.clear()
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.run()
    assert paired(net)


def _payload_strategy():  # type: ignore[no-untyped-def]
    from fipsike.ike.payloads import (
        Delete,
        KeyExchangePayload,
        Nonce,
        Notify,
        SecurityAssociation,
        TrafficSelector,
        TrafficSelectorInitiator,
        TrafficSelectorResponder,
    )
    from fipsike.ike.payloads import Proposal as WP
    from fipsike.ike.payloads import Transform as WT

    ip = st.builds(lambda n: __import__("ipaddress").IPv4Address(n), st.integers(0, 2**32 - 1))
    ts = st.builds(lambda a, b, p: TrafficSelector(p, 0, 65535, min(a, b), max(a, b)), ip, ip, st.sampled_from([0, 6]))
    transform = st.builds(lambda t, i, k: WT.make(t, i, k), st.integers(1, 5), st.integers(0, 40),
                          st.one_of(st.none(), st.sampled_from([128, 256])))
    proposal = st.builds(lambda n, p, spi, ts_: WP(n, p, spi, tuple(ts_)), st.integers(1, 3), st.sampled_from([1, 3]),
                         st.sampled_from([b"", b"\x01\x02\x03\x04", bytes(8), b"\x11" * 8]),
                         st.lists(transform, max_size=6))
    return st.lists(st.one_of(
        st.builds(lambda ps: SecurityAssociation(tuple(ps)), st.lists(proposal, max_size=3)),
        st.builds(Nonce, st.binary(min_size=16, max_size=40)),  # the codec builds 16-256 octets only
        st.builds(KeyExchangePayload, st.sampled_from([19, 20, 14, 31]), st.binary(max_size=100)),
        st.builds(lambda s: TrafficSelectorInitiator(tuple(s)), st.lists(ts, max_size=2)),
        st.builds(lambda s: TrafficSelectorResponder(tuple(s)), st.lists(ts, max_size=2)),
        st.builds(lambda p, spis: Delete(p, tuple(spis)), st.sampled_from([1, 3]),
                  st.lists(st.binary(min_size=4, max_size=4), max_size=3)),
        st.builds(lambda t, spi: Notify(t, b"", 3 if spi else 0, spi),
                  st.sampled_from([16393, 16391, 16384, 43, 44, 50000]),
                  st.sampled_from([b"", b"\x00\x00\x10\x00"])),
    ), max_size=7)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=_payload_strategy(), exchange=st.sampled_from([36, 37]))
def test_authentic_but_odd_requests(pair: PairFactory, payloads: list, exchange: int) -> None:  # type: ignore[type-arg]
    """Well-formed, correctly protected requests with odd payload combinations: the responder answers
    (an error notify at worst) and the IKE SA stays usable."""
    from fipsike.ike.registry import ExchangeType

    net, i, r = up(pair, True)
    sa = i.the_ike_sa()
    # every strategy payload is encodable: a ValueError here is a codec bug, not a skip
    i.engine.send_request(sa, ExchangeType(exchange), payloads, TaskKind.DPD, net.now)
    sa.pending = None  # the answer is not for a real exchange of ours
    net.take(i, i.engine._flush())
    pkts = list(net.wire)
    net.wire.clear()
    for p in pkts:
        net.deliver(p)
    _no_internal_errors(r)
    # everything else on the wire (sun's answer, and any request of its own) is delivered: a request
    # of sun's that moon never saw would show as a message ID desync below
    net.run()
    _no_internal_errors(i, r)
    if not r.engine.ike_sas():
        assert any(getattr(p, "protocol", 0) == 1 and type(p).__name__ == "Delete" for p in payloads)
        return  # a Delete of the IKE SA is a Delete of the IKE SA
    if r.the_ike_sa().state.value == "established" and r.kernel and i.kernel:
        # message IDs stay in step both ways (RFC 7296 2.2), and a real exchange still works
        rsa = r.the_ike_sa()
        assert (sa.expected_request_id, sa.next_request_id) == (rsa.next_request_id, rsa.expected_request_id)
        (spi,) = [s for s in i.kernel if i.engine.find_child(s)]
        net.take(i, i.engine.liveness(sa.name, net.now))
        net.run()
        _no_internal_errors(i, r)


def test_authentic_malformed_request_gets_invalid_syntax(pair: PairFactory) -> None:
    """An authenticated request whose decrypted payloads are malformed (an SA payload without a
    proposal) is answered with INVALID_SYNTAX (RFC 7296 3.10.1), so message IDs stay in step; a
    forged one (bad ICV) is still dropped without an answer."""
    from fipsike.ike.payloads import SecurityAssociation
    from fipsike.ike.registry import ExchangeType, NotifyType

    net, i, r = up(pair, True)
    sa = i.the_ike_sa()
    i.engine.send_request(sa, ExchangeType.CREATE_CHILD_SA, [SecurityAssociation(())], TaskKind.CREATE_CHILD,
                          net.now)
    net.take(i, i.engine._flush())
    (req,) = net.wire
    net.wire.clear()
    forged = bytearray(req.data)
    forged[-1] ^= 1
    net.take(r, r.engine.receive(bytes(forged), req.src, req.dst, net.now))
    assert not net.wire
    net.deliver(req)
    (answer,) = net.wire
    from tests.ike.engine.test_establish import opened

    msg = opened(i, net)
    assert msg.response and [n.notify_type for n in msg.notifies()] == [NotifyType.INVALID_SYNTAX]
    assert answer.msg.message_id == req.msg.message_id
    net.run()
    rsa = r.the_ike_sa()
    assert (sa.next_request_id, sa.expected_request_id) == (rsa.expected_request_id, rsa.next_request_id)
    assert sa.pending is None
