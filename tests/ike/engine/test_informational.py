"""INFORMATIONAL: deletes, liveness checks and dead peers, INITIAL_CONTACT (RFC 7296 1.4, 2.4)."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import DeadPeer, DeleteChildSa, IkeSaDeleted, IkeSaEstablished
from fipsike.ike.payloads import Delete
from fipsike.ike.registry import ExchangeType
from fipsike.ike.sa import IkeState
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import BOTH, up
from tests.ike.engine.test_establish import opened


@BOTH
def test_delete_child(pair: PairFactory, moon_initiates: bool) -> None:
    net, i, r = up(pair, moon_initiates)
    (spi,) = r.kernel
    net.take(r, r.engine.delete_child(spi, net.now))
    req = opened(i, net)
    assert req.exchange == ExchangeType.INFORMATIONAL
    (d,) = req.all(Delete)
    assert d.protocol == 3 and d.spis == (spi.to_bytes(4, "big"),)  # our inbound SPI names it (3.11)
    net.step()
    resp = opened(r, net)
    (d2,) = resp.all(Delete)
    (ispi,) = (x.inbound_spi for x in i.of(DeleteChildSa))
    assert d2.spis == (ispi.to_bytes(4, "big"),)  # the answer names the other direction (1.4.1)
    net.run()
    assert not i.kernel and not r.kernel
    assert i.the_ike_sa().state == IkeState.ESTABLISHED and r.the_ike_sa().state == IkeState.ESTABLISHED


@BOTH
def test_delete_ike_sa(pair: PairFactory, moon_initiates: bool) -> None:
    net, i, r = up(pair, moon_initiates)
    name = r.the_ike_sa().name
    net.take(r, r.engine.delete_ike(name, net.now))
    req = opened(i, net)
    assert req.all(Delete)[0].protocol == 1
    net.run()
    assert not i.engine.ike_sas() and not r.engine.ike_sas()
    assert not i.kernel and not r.kernel
    assert [e.ike_sa for e in i.of(IkeSaDeleted)] == [name] == [e.ike_sa for e in r.of(IkeSaDeleted)]


def test_simultaneous_child_delete(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (a,) = net.a.kernel
    (b,) = net.b.kernel
    net.take(net.a, net.a.engine.delete_child(a, net.now))
    net.take(net.b, net.b.engine.delete_child(b, net.now))
    net.run()
    assert not net.a.kernel and not net.b.kernel
    assert net.a.the_ike_sa().state == IkeState.ESTABLISHED


def test_liveness_check_answered(pair: PairFactory) -> None:
    net, i, r = up(pair, True, moon_kw={"dpd_delay": 10.0}, sun_kw={"dpd_delay": 0.0})
    net.advance(10.5)
    assert len(net.wire) == 1
    req = opened(r, net)
    assert req.exchange == ExchangeType.INFORMATIONAL and req.payloads == ()
    net.run()
    assert i.the_ike_sa().last_heard == pytest.approx(10.5)
    assert not i.of(DeadPeer)


@pytest.mark.parametrize("action", ["clear", "hold", "restart"])
def test_dead_peer(pair: PairFactory, action: str) -> None:
    net, i, r = up(pair, True, moon_kw={"dpd_delay": 10.0, "dpd_timeout": 60.0, "dpd_action": action},
                   sun_kw={"dpd_delay": 0.0})
    # the peer vanishes: from now on nothing reaches sun
    sent = 0
    for _ in range(120):
        net.advance(1.0)
        sent += len(net.wire)
        net.wire.clear()
        if i.of(DeadPeer):
            break
    (dp,) = i.of(DeadPeer)
    assert dp.action == action
    assert sent >= 3  # the liveness check was retransmitted before giving up
    assert not i.kernel
    assert [e.reason for e in i.of(IkeSaDeleted)] == ["dead peer"]
    sas = i.engine.ike_sas()
    if action == "restart":
        assert len(sas) == 1 and sas[0].state == IkeState.INIT_SENT
    else:
        assert sas == []
    assert net.now <= 10 + 60 + 5


def test_initial_contact_replaces_stale_sa(pair: PairFactory) -> None:
    """moon reboots (a fresh engine) and connects again: sun drops the old IKE SA (RFC 7296 2.4)."""
    from fipsike.ike.engine import Engine
    from providers import open_router

    net, i, r = up(pair, True)
    old = r.the_ike_sa().name
    net.a.engine = Engine(open_router("fips"), list(net.a.engine.connections.values()))
    net.a.kernel.clear()
    net.initiate(net.a, "gw")
    net.run()
    assert r.the_ike_sa().name != old
    assert [e.ike_sa for e in r.of(IkeSaDeleted)] == [old]
    assert len(r.kernel) == 1 and len(r.of(IkeSaEstablished)) == 2


def test_status_is_plain_data_without_keys(pair: PairFactory) -> None:
    import json

    net, i, r = up(pair, True)
    st = i.engine.status()
    text = json.dumps(st)
    (sa,) = st
    assert sa["state"] == "established" and sa["local_id"] == "@moon.test"
    (c,) = sa["children"]
    assert c["state"] == "installed" and c["suite"].startswith("ENCR_AES_GCM_16_256")
    assert c["local_ts"] == ["10.1.0.0-10.1.0.255"]
    (x,) = i.kernel.values()
    key = i.engine.router.release_esp_key(x.inbound.encr_key, "test").hex()
    assert key[:12] not in text


@BOTH
def test_idle_sa_holds_no_cipher_context(pair: PairFactory, moon_initiates: bool) -> None:
    """Once an exchange is done, an established SA's SK_e keys drop their cipher contexts (an idle
    SA's largest part); the next exchange rebuilds them, and the usage meters count straight through."""
    net, i, r = up(pair, moon_initiates)
    for side in (i, r):
        keys = side.the_ike_sa().keys
        assert keys.sk_ei._ctx is None and keys.sk_er._ctx is None and not keys.sk_ei.wiped
    rkeys = r.the_ike_sa().keys
    sealed = r.engine.router.usage(rkeys.sk_er).used  # type: ignore[attr-defined]
    (spi,) = r.kernel
    net.take(r, r.engine.delete_child(spi, net.now))  # the responder's request: sealed under SK_er
    net.run()
    assert not i.kernel and not r.kernel
    assert r.engine.router.usage(rkeys.sk_er).used == sealed + 1  # type: ignore[attr-defined]
    for side in (i, r):
        sa = side.the_ike_sa()
        assert sa.state == IkeState.ESTABLISHED and sa.keys.sk_ei._ctx is None and sa.keys.sk_er._ctx is None
