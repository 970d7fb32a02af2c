"""One SaTable owns every index; a deleted SA leaves all of them, NAT or not (issue 11, fix 3),
and one address holds at most `half_open_per_source` half-open responder SAs (fix 6)."""

from __future__ import annotations

from fipsike.ike.actions import IkeSaDeleted
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.harness import Net, Packet

NAT_PORTS = {500: 40500, 4500: 44500}


def _through_nat(net: Net) -> None:
    """Deliver everything, moon behind a NAT that maps :500 -> :40500 and :4500 -> :44500."""
    back = {v: k for k, v in NAT_PORTS.items()}
    for _ in range(200):
        if not net.wire:
            return
        pkt = net.wire.pop(0)
        if pkt.src[0] == net.a.ip:
            net.deliver(Packet(pkt.data, (pkt.src[0], NAT_PORTS[pkt.src[1]]), pkt.dst))
        else:
            net.deliver(Packet(pkt.data, pkt.src, (pkt.dst[0], back[pkt.dst[1]])))
    raise AssertionError("message storm")


def test_nat_sas_deleted_leave_an_empty_table(pair: PairFactory) -> None:
    net = pair(initial_contact=False)
    for _ in range(3):
        net.initiate(net.a, "gw")
        _through_nat(net)
    sun = net.b.engine
    assert len(sun.ike_sas()) == 3
    assert all(sa.nat_remote and sa.remote[1] == 44500 for sa in sun.ike_sas())
    assert sun.sas.sizes()["by_init"] == 3 and sun.sas.sizes()["children"] == 3
    for sa in net.a.engine.ike_sas():
        net.take(net.a, net.a.engine.delete_ike(sa.name, net.now))
        _through_nat(net)
    assert len(net.b.of(IkeSaDeleted)) == 3
    assert set(sun.sas.sizes().values()) == {0}, sun.sas.sizes()
    assert not sun.sas.by_init and not sun.sas.by_spi
    assert set(net.a.engine.sas.sizes().values()) == {0}


def test_initial_contact_behind_nat_leaves_no_index(pair: PairFactory) -> None:
    """INITIAL_CONTACT replaces the older NAT'd IKE SAs: only the newest one stays indexed."""
    net = pair()
    for _ in range(3):
        net.initiate(net.a, "gw")
        _through_nat(net)
    sizes = net.b.engine.sas.sizes()
    assert sizes["by_spi"] == 1 and sizes["by_init"] == 1 and sizes["by_name"] == 1 and sizes["children"] == 1


def test_child_index_follows_a_rekeyed_ike_sa(pair: PairFactory) -> None:
    net = pair()
    net.initiate(net.a, "gw")
    net.run()
    (spi,) = net.b.kernel
    old = net.b.the_ike_sa()
    net.take(net.b, net.b.engine.rekey_ike(old.name, net.now))
    net.run()
    new = net.b.the_ike_sa()
    assert new.name != old.name and net.b.engine.find_ike(old.name) is None
    found = net.b.engine.find_child(spi)
    assert found is not None and found[0] is new


def test_child_index_follows_child_rekeys_and_deletes(pair: PairFactory) -> None:
    """find_child is one dict lookup (no scan of the SAs): the SPI index gains the new inbound SPI
    on a Child SA rekey, loses the old one with its Delete, and is empty once the Child SA goes."""
    net = pair()
    net.initiate(net.a, "gw")
    net.run()
    for side in (net.a, net.b):
        (spi,) = side.kernel
        eng = side.engine
        assert eng.sas.sizes()["children"] == 1 and eng.find_child(spi) is not None
    (old,) = net.b.kernel
    net.take(net.b, net.b.engine.rekey_child(old, net.now))
    net.run()
    (new,) = net.b.kernel
    sun = net.b.engine
    assert new != old and sun.find_child(old) is None and sun.sas.sizes()["children"] == 1
    found = sun.find_child(new)
    assert found is not None and found[1].spi_in == new and found[0] is net.b.the_ike_sa()
    net.take(net.b, sun.delete_child(new, net.now))
    net.run()
    assert sun.find_child(new) is None and sun.sas.sizes()["children"] == 0
    assert net.a.engine.sas.sizes()["children"] == 0


def test_half_open_limit_per_source(pair: PairFactory) -> None:
    """sun keeps at most 2 half-open SAs from moon's address; a third IKE_SA_INIT is dropped with a
    log line, and once one completes, the next is taken again."""
    net = pair()
    net.b.engine.half_open_per_source = 2
    for _ in range(3):
        net.initiate(net.a, "gw")
    inits = list(net.wire)
    net.wire.clear()
    for p in inits:
        net.deliver(p)
    assert net.b.engine.sas.half_open_from(net.a.ip) == 2
    assert len(net.wire) == 2  # two IKE_SA_INIT answers, nothing for the third
    assert [log.event for log in net.b.logs].count("half-open-limit") == 1
    net.run()  # the two complete IKE_AUTH
    assert net.b.engine.sas.half_open_from(net.a.ip) == 0
    net.initiate(net.a, "gw")
    net.run()
    assert len(net.b.engine.sas.established()) >= 1 and net.b.engine.sas.half_open() == 0
