"""The chosen connection's own proposals hold for the IKE SA and its Child SAs (issue 11, fix 2).

IKE_SA_INIT picks the suite before the peer's identity is known, from every connection that fits
the addresses; IKE_AUTH then picks the connection by identity. An SA is never established under a
connection whose policy it does not meet."""

from __future__ import annotations

import dataclasses

from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed
from fipsike.ike.engine import Engine
from fipsike.ike.proposals import Protocol, parse_proposals
from providers import open_router
from tests.ike.engine.conftest import Pki, make_conn
from tests.ike.engine.harness import Net, Side

MOON, SUN = "10.99.0.1", "10.99.0.2"


def _net(pki: Pki, moon_ike: str, strong_esp: str = "aes256gcm16") -> Net:
    """sun has "strong" for moon.test (aes256gcm16-prfsha384-ecp384 only) and "weak" for mars.test
    (aes128gcm16-prfsha256-ecp256), both from moon's address."""
    strong = make_conn(pki, "sun", ike=["aes256gcm16-prfsha384-ecp384"], child_esp=[strong_esp])
    strong = dataclasses.replace(strong, name="strong")
    weak = make_conn(pki, "sun", ike=["aes128gcm16-prfsha256-ecp256"], remote_id="mars.test")
    weak = dataclasses.replace(weak, name="weak")
    moon = make_conn(pki, "moon", ike=[moon_ike], child_esp=["aes128gcm16", "aes256gcm16"])
    a = Side("moon", Engine(open_router("fips"), [moon]), MOON)
    b = Side("sun", Engine(open_router("fips"), [weak, strong]), SUN)
    return Net(a, b)


def test_suite_of_another_connection_refused(pki: Pki) -> None:
    """moon (moon.test) offers only what "weak" allows; IKE_AUTH picks "strong" by identity, whose
    policy the suite does not meet: AUTHENTICATION_FAILED, nothing established."""
    net = _net(pki, "aes128gcm16-prfsha256-ecp256")
    net.initiate(net.a, "gw")
    net.run()
    assert not net.b.of(IkeSaEstablished) and not net.a.of(IkeSaEstablished)
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert not net.a.kernel and not net.b.kernel
    assert not net.b.engine.ike_sas()


def test_suite_of_the_connection_accepted_and_child_policy_holds(pki: Pki) -> None:
    """With a suite "strong" allows, moon is established under "strong", and its Child SA takes
    "strong"'s ESP policy (AES-256-GCM), not moon's first choice (AES-128-GCM)."""
    net = _net(pki, "aes256gcm16-prfsha384-ecp384")
    net.initiate(net.a, "gw")
    net.run()
    (est,) = net.b.of(IkeSaEstablished)
    assert est.connection == "strong"
    assert str(net.b.the_ike_sa().suite) == "ENCR_AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_384"
    (child,) = net.b.kernel.values()
    assert child.inbound.encr_key_bits == 256
    # moon takes the answer's proposal number 2 (its second ESP proposal) and installs the same
    (mine,) = net.a.kernel.values()
    assert mine.inbound.spi == child.outbound.spi and mine.inbound.encr_key_bits == 256


def test_ike_rekey_keeps_the_connection_policy(pki: Pki) -> None:
    """A rekey of the IKE SA is chosen from the chosen connection's proposals only: moon's rekey
    offering only "weak"'s suite is refused with NO_PROPOSAL_CHOSEN."""
    net = _net(pki, "aes256gcm16-prfsha384-ecp384")
    net.initiate(net.a, "gw")
    net.run()
    conn = net.a.engine.connections["gw"]
    conn.ike_proposals = parse_proposals(["aes128gcm16-prfsha256-ecp256"], Protocol.IKE)
    sa = net.a.the_ike_sa()
    sa.conn = conn
    net.take(net.a, net.a.engine.rekey_ike(sa.name, net.now))
    net.run()
    assert any(log.event == "no-proposal-chosen" for log in net.b.logs)
    assert net.b.the_ike_sa().name == sa.name
