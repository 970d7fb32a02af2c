"""CREATE_CHILD_SA: new Child SAs, Child SA rekey with and without PFS, IKE SA rekey, and the
simultaneous rekey collisions of RFC 7296 2.8.1 / 2.8.2 in both orders."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import DeleteChildSa, IkeSaDeleted, IkeSaRekeyed, InstallChildSa
from fipsike.ike.config import ChildConfig
from fipsike.ike.payloads import KeyExchangePayload, Notify
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import ChildState, IkeState
from fipsike.ike.ts import ts_from_cidr
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.harness import Net, Side
from tests.ike.engine.test_establish import opened

BOTH = pytest.mark.parametrize("moon_initiates", [True, False], ids=["moon-initiates", "sun-initiates"])


def up(pair: PairFactory, moon_initiates: bool = True, **kw: object) -> tuple[Net, Side, Side]:
    net = pair(**kw)
    i, r = (net.a, net.b) if moon_initiates else (net.b, net.a)
    net.initiate(i, "gw")
    net.run()
    assert len(i.kernel) == 1 and len(r.kernel) == 1
    return net, i, r


def child_spis(side: Side) -> set[int]:
    return set(side.kernel)


def paired(net: Net) -> bool:
    """Every SA in one kernel has its mirror in the other."""
    a = {(x.inbound.spi, x.outbound.spi) for x in net.a.kernel.values()}
    b = {(x.outbound.spi, x.inbound.spi) for x in net.b.kernel.values()}
    return a == b


@BOTH
@pytest.mark.parametrize("pfs", [False, True], ids=["no-pfs", "pfs"])
def test_child_rekey(pair: PairFactory, moon_initiates: bool, pfs: bool) -> None:
    esp = ["aes256gcm16-ecp384"] if pfs else ["aes256gcm16"]
    net, i, r = up(pair, moon_initiates, child_esp=esp)
    (old,) = i.kernel
    net.take(i, i.engine.rekey_child(old, net.now))
    # request: HDR, SK {N(REKEY_SA), SA, Ni, [KEi], TSi, TSr}
    req = opened(r, net)
    assert req.exchange == ExchangeType.CREATE_CHILD_SA
    n = req.notify(NotifyType.REKEY_SA)
    assert n is not None and int.from_bytes(n.spi, "big") == old
    assert (req.get(KeyExchangePayload) is not None) == pfs
    net.step()
    # responder installed the new SA next to the old one
    assert len(r.kernel) == 2
    rnew = [x for x in r.kernel.values() if x.rekey_of is not None]
    assert rnew and rnew[0].reqid == next(iter(i.kernel.values())).reqid
    # ... but sends on the old one until the initiator deletes it (it cannot receive on the new one yet)
    assert rnew[0].defer_outbound
    resp = opened(i, net)
    assert (resp.get(KeyExchangePayload) is not None) == pfs
    net.step()
    # initiator installed the new SA and now deletes the old one (INFORMATIONAL, Delete)
    assert len(i.kernel) == 2
    assert i.engine.find_child(old)[1].state == ChildState.DELETING
    assert not [x for x in i.kernel.values() if x.rekey_of is not None][0].defer_outbound
    net.run()
    assert len(i.kernel) == 1 and len(r.kernel) == 1 and old not in i.kernel
    assert paired(net)
    dels = i.of(DeleteChildSa)
    assert [d.inbound_spi for d in dels] == [old] and dels[0].keep_policies


def test_pfs_group_mismatch_invalid_ke(pair: PairFactory) -> None:
    """The rekey initiator guesses ECP-256; the responder wants ECP-384 for PFS: INVALID_KE_PAYLOAD, retry."""
    net, i, r = up(pair, True, moon_kw={"child_esp": ["aes256gcm16-ecp256-ecp384"]},
                   sun_kw={"child_esp": ["aes256gcm16-ecp384"]})
    (old,) = i.kernel
    net.take(i, i.engine.rekey_child(old, net.now))
    net.step()
    resp = opened(i, net)
    assert int.from_bytes(resp.notify(NotifyType.INVALID_KE_PAYLOAD).data, "big") == 20
    net.step()
    req2 = opened(r, net)
    assert req2.get(KeyExchangePayload).group == 20
    net.run()
    assert len(i.kernel) == 1 and old not in i.kernel and paired(net)
    assert next(iter(i.kernel.values())) is not None


@BOTH
def test_create_second_child(pair: PairFactory, moon_initiates: bool) -> None:
    net, i, r = up(pair, moon_initiates)
    for side, (lo, rr) in ((net.a, ("10.1.1.0/24", "10.2.1.0/24")), (net.b, ("10.2.1.0/24", "10.1.1.0/24"))):
        conn = side.engine.connections["gw"]
        conn.children = (*conn.children, ChildConfig("web", (ts_from_cidr(lo),), (ts_from_cidr(rr),)))
    net.take(i, i.engine.initiate("gw", net.now, child="web"))
    assert opened(r, net).exchange == ExchangeType.CREATE_CHILD_SA
    net.run()
    assert {x.child for x in i.kernel.values()} == {"net", "web"}
    assert paired(net)
    web = next(x for x in i.kernel.values() if x.child == "web")
    assert web.local_ts[0].start.endswith(".1.0")


def test_create_child_ts_unacceptable(pair: PairFactory) -> None:
    from fipsike.ike.actions import ChildSaFailed

    net, i, r = up(pair, True)
    conn = i.engine.connections["gw"]
    conn.children = (*conn.children, ChildConfig("bad", (ts_from_cidr("192.0.2.0/24"),),
                                                 (ts_from_cidr("198.51.100.0/24"),)))
    net.take(i, i.engine.initiate("gw", net.now, child="bad"))
    net.step()
    assert opened(i, net).notify(NotifyType.TS_UNACCEPTABLE) is not None
    net.run()
    assert [e.notify for e in i.of(ChildSaFailed)] == ["TS_UNACCEPTABLE"]
    assert len(i.kernel) == 1 and i.the_ike_sa().state == IkeState.ESTABLISHED


@BOTH
def test_ike_sa_rekey(pair: PairFactory, moon_initiates: bool) -> None:
    net, i, r = up(pair, moon_initiates)
    old = i.the_ike_sa()
    child_before = set(i.kernel)
    net.take(i, i.engine.rekey_ike(old.name, net.now))
    req = opened(r, net)
    sa_p = req.payloads[0]
    assert sa_p.proposals[0].protocol == 1 and len(sa_p.proposals[0].spi) == 8
    net.run()
    new_i, new_r = i.the_ike_sa(), r.the_ike_sa()
    assert new_i.name == new_r.name != old.name
    assert new_i.initiator and not new_r.initiator  # the rekey initiator is the new SA's initiator (2.18)
    assert set(i.kernel) == child_before  # Child SAs moved, untouched
    assert len(new_i.children) == 1 and len(new_r.children) == 1
    assert [e.new_ike_sa for e in i.of(IkeSaRekeyed)] == [new_i.name]
    assert [e.ike_sa for e in i.of(IkeSaDeleted)] == [old.name]
    assert [e.ike_sa for e in r.of(IkeSaDeleted)] == [old.name]
    assert not i.of(DeleteChildSa) and not r.of(DeleteChildSa)
    assert new_i.next_request_id == 0 or new_i.next_request_id == 0  # counters restart (RFC 7296 2.18)
    # the new IKE SA works: a Child SA rekey over it
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.run()
    assert len(i.kernel) == 1 and spi not in i.kernel and paired(net)


def _collide(net: Net, order: str) -> None:
    """Both requests are on the wire; deliver per `order`:
    'crossed': each side sees the other's request before its own response;
    'serial': moon's exchange completes entirely before sun's request arrives."""
    assert len(net.wire) == 2
    if order == "crossed":
        net.step(0)  # moon's request -> sun (sun's own is outstanding)
        net.step(0)  # sun's request -> moon
        net.run()
    else:
        net.step(0)  # moon's request -> sun; sun answers
        sun_req = net.wire.pop(0)
        net.step(0)  # sun's answer -> moon: moon's exchange is complete, moon sends DELETE
        net.wire.insert(0, sun_req)
        net.run()


@pytest.mark.parametrize("order", ["crossed", "serial"])
@pytest.mark.parametrize("nonce_winner", ["moon", "sun"])
def test_child_rekey_collision(pair: PairFactory, order: str, nonce_winner: str) -> None:
    """RFC 7296 2.8.1: the SA made by the exchange with the lowest nonce is deleted by its initiator."""
    net, i, r = up(pair, True)
    (spi_a,) = net.a.kernel
    (spi_b,) = net.b.kernel
    # make the loser's nonces deterministic and low: the loser's exchange holds the lowest nonce
    loser = net.b if nonce_winner == "moon" else net.a
    real = loser.engine.nonce
    loser.engine.nonce = lambda: b"\x00" * 32  # type: ignore[method-assign]
    net.take(net.a, net.a.engine.rekey_child(spi_a, net.now))
    net.take(net.b, net.b.engine.rekey_child(spi_b, net.now))
    loser.engine.nonce = real  # type: ignore[method-assign]
    _collide(net, order)
    net.settle(3)
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1, (net.a.kernel.keys(), net.b.kernel.keys())
    assert paired(net)
    (x,) = net.a.kernel.values()
    assert x.inbound.spi != spi_a and x.outbound.spi != spi_b
    # crossed: the surviving SA is the one the nonce winner initiated. serial: moon's rekey completed
    # before sun's request arrived, so moon refused it (TEMPORARY_FAILURE / CHILD_SA_NOT_FOUND,
    # RFC 7296 2.25) and there was never a redundant SA: moon's survives whatever the nonces
    winner = (net.a if nonce_winner == "moon" else net.b) if order == "crossed" else net.a
    if order == "crossed":
        for side in (net.a, net.b):
            assert any(lg.event == "rekey-collision" for lg in side.logs)
    (w,) = winner.kernel.values()
    assert winner.engine.find_child(w.inbound.spi)[1].initiator


@pytest.mark.parametrize("order", ["crossed", "serial"])
@pytest.mark.parametrize("nonce_winner", ["moon", "sun"])
def test_ike_rekey_collision(pair: PairFactory, order: str, nonce_winner: str) -> None:
    net, i, r = up(pair, True)
    old = net.a.the_ike_sa().name
    loser = net.b if nonce_winner == "moon" else net.a
    real = loser.engine.nonce
    loser.engine.nonce = lambda: b"\x00" * 32  # type: ignore[method-assign]
    net.take(net.a, net.a.engine.rekey_ike(old, net.now))
    net.take(net.b, net.b.engine.rekey_ike(old, net.now))
    loser.engine.nonce = real  # type: ignore[method-assign]
    _collide(net, order)
    net.settle(3)
    a, b = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert a.name == b.name != old
    assert len(a.children) == 1 and len(b.children) == 1
    assert len(net.a.engine.ike_sas()) == 1 and len(net.b.engine.ike_sas()) == 1
    winner = (net.a if nonce_winner == "moon" else net.b) if order == "crossed" else net.a
    assert winner.the_ike_sa().initiator  # the winner initiated the surviving IKE SA
    # and it still works
    (spi,) = net.a.kernel
    net.take(net.a, net.a.engine.rekey_child(spi, net.now))
    net.run()
    assert paired(net) and len(net.a.kernel) == 1


def test_rekey_on_lifetime_timer(pair: PairFactory) -> None:
    net, i, r = up(pair, True, moon_kw={"child_rekey_time": 100.0, "child_life_time": 200.0},
                   sun_kw={"child_rekey_time": 150.0, "child_life_time": 300.0})
    (first,) = i.kernel
    net.settle(101)
    assert first not in i.kernel and len(i.kernel) == 1 and paired(net)
    assert i.timers and min(i.timers) > 0


def test_rekey_on_kernel_soft_expire(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = r.kernel
    net.take(r, r.engine.expire(spi, hard=False, now=net.now))
    net.run()
    assert spi not in r.kernel and len(r.kernel) == 1 and paired(net)
    # a hard expire deletes the Child SA
    (spi,) = r.kernel
    net.take(r, r.engine.expire(spi, hard=True, now=net.now))
    net.run()
    assert not r.kernel and not i.kernel
    assert r.the_ike_sa().state == IkeState.ESTABLISHED


def test_ike_lifetime_rekey_and_fips_caps(pair: PairFactory) -> None:
    net, i, r = up(pair, True, moon_kw={"rekey_time": 500.0, "life_time": 90000.0,
                                        "child_life_time": 40000.0, "child_rekey_time": 39000.0})
    conn = i.engine.connections["gw"]
    assert conn.life_time == 24 * 3600  # FIPS cap: IKE SA 24 h
    assert conn.children[0].life_time == 8 * 3600  # Child SA 8 h
    (inst,) = i.kernel.values()
    assert inst.lifetime_hard <= 8 * 3600
    old = i.the_ike_sa().name
    net.settle(501, step=50)
    assert i.the_ike_sa().name != old and paired(net)


def test_rekey_request_for_unknown_child(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    # sun forgets the Child SA behind moon's back
    sa = r.the_ike_sa()
    for c in list(sa.children.values()):
        r.engine.remove_child(sa, c, "test")
    net.step()
    resp = opened(i, net)
    assert resp.notify(NotifyType.CHILD_SA_NOT_FOUND) is not None
    net.run()
    assert not i.kernel


_ = (Notify, InstallChildSa)


@pytest.mark.parametrize("order", ["crossed", "serial"])
def test_ike_rekey_meets_child_rekey(pair: PairFactory, order: str) -> None:
    """moon rekeys the IKE SA while sun rekeys the Child SA: one side answers TEMPORARY_FAILURE
    (RFC 7296 2.25.2), the Child SA rekey is retried later, and everything ends consistent."""
    net, i, r = up(pair, True)
    old = net.a.the_ike_sa().name
    (spi_b,) = net.b.kernel
    net.take(net.a, net.a.engine.rekey_ike(old, net.now))
    net.take(net.b, net.b.engine.rekey_child(spi_b, net.now))
    _collide(net, order)
    net.settle(12, step=1)
    a, b = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert a.name == b.name != old
    assert len(net.a.kernel) == 1 and paired(net)
    assert spi_b not in net.b.kernel  # the Child SA was rekeyed after all
