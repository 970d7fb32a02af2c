"""Malformed and mutated messages: the engine answers or drops, never raises, never corrupts a live SA."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    assert not net.wire  # nothing answers garbage
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.run()
    assert paired(net)
