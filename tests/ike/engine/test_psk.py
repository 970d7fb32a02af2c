"""Pre-shared key authentication (RFC 7296 2.15, AUTH method 2 SHARED_KEY_MIC) between two engines."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from fipsike.ike.actions import IkeSaFailed
from fipsike.ike.config import Connection
from fipsike.ike.engine import Engine
from fipsike.ike.payloads import Authentication, Certificate, CertificateRequest, IdentificationInitiator
from fipsike.ike.registry import AuthMethod
from providers import open_router
from providers.handles import SecretKey
from tests.ike.engine.conftest import MOON, SUN, PairFactory, Pki, make_conn
from tests.ike.engine.harness import Net, Side
from tests.ike.engine.test_establish import opened

PSK = b"correct horse battery staple, 32+ octets"
OTHER = b"a different pre-shared key of 32+ octets"


def psk(secret: bytes = PSK) -> SecretKey:
    return open_router("fips").import_psk(secret, "test")


def psk_kw(secret: bytes = PSK) -> dict[str, object]:
    return {"local_auth": "psk", "remote_auth": "psk", "psk": psk(secret), "send_certreq": False}


def failures(side: Side) -> list[str]:
    return [e.reason for e in side.of(IkeSaFailed)]


def test_psk_handshake_sends_shared_key_mic_that_the_peer_can_recompute(pair: PairFactory) -> None:
    net = pair(moon_kw=psk_kw(), sun_kw=psk_kw())
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    m3 = opened(net.b, net)
    auth = m3.get(Authentication)
    assert auth.method == AuthMethod.SHARED_KEY_MIC == 2
    assert not m3.all(Certificate) and not m3.all(CertificateRequest)
    # the AUTH value is RFC 7296 2.15's formula, recomputed here outside the engine from moon's keys
    sa = net.a.ike_sas()[0]
    idi = m3.get(IdentificationInitiator)
    h = sa.suite.prf.hash

    def prf(k: bytes, d: bytes) -> bytes:
        m = chmac.HMAC(k, getattr(hashes, h.name)())
        m.update(d)
        return m.finalize()

    sk_pi = sa.keys.sk_pi._bytes()
    octets = sa.init_request + sa.nr + prf(sk_pi, bytes([idi.id_type, 0, 0, 0]) + idi.data)
    assert auth.data == prf(prf(PSK, b"Key Pad for IKEv2"), octets)
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1
    assert str(net.b.the_ike_sa().remote_id) == "@moon.test"
    assert any(rec.event == "peer-authenticated" and "pre-shared key" in rec.message for rec in net.b.logs)


def test_wrong_psk_fails_on_both_sides(pair: PairFactory) -> None:
    net = pair(moon_kw=psk_kw(), sun_kw=psk_kw(OTHER))
    net.initiate(net.a, "gw")
    net.run()
    assert failures(net.b) == ["AUTHENTICATION_FAILED"]
    assert failures(net.a) == ["AUTHENTICATION_FAILED"]
    assert not net.a.kernel and not net.b.kernel


def test_responder_with_wrong_psk_is_refused_by_the_initiator(pair: PairFactory) -> None:
    """sun initiates with the right PSK for its side; moon (responder) answers with another: the
    initiator checks the responder's AUTH and deletes the IKE SA (RFC 7296 2.21.2)."""
    net = pair(moon_kw=psk_kw(), sun_kw=psk_kw())
    # moon's AUTH uses OTHER, but it verifies sun's AUTH with PSK: split the conn's key use
    net.a.engine.connections["gw"].psk = psk(OTHER)
    net.initiate(net.b, "gw")
    net.run()
    assert failures(net.a) == ["AUTHENTICATION_FAILED"]
    assert not net.a.kernel


def test_psk_and_certificate_conns_refuse_each_other(pair: PairFactory) -> None:
    net = pair(moon_kw=psk_kw())  # sun expects a certificate
    net.initiate(net.a, "gw")
    net.run()
    assert failures(net.b) == ["AUTHENTICATION_FAILED"]
    net = pair(sun_kw=psk_kw())  # sun expects a PSK, moon signs
    net.initiate(net.a, "gw")
    net.run()
    assert failures(net.b) == ["AUTHENTICATION_FAILED"]


def test_mixed_psk_one_way_signature_the_other(pair: PairFactory) -> None:
    """local_auth and remote_auth are separate (libreswan leftauth=/rightauth=)."""
    key = psk()
    net = pair(moon_kw={"local_auth": "psk", "psk": key}, sun_kw={"remote_auth": "psk", "psk": key})
    net.initiate(net.a, "gw")
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1


def test_identity_picks_the_connection_and_so_the_psk(pki: Pki) -> None:
    """The responder holds two PSK conns for two peers. The peer is chosen by its ID first: moon
    claiming moon.test with the PSK of the other peer's conn is refused, with its own it passes."""
    sun_router = open_router("fips")
    mine = make_conn(pki, "sun", local_auth="psk", remote_auth="psk", remote_id="moon.test",
                     psk=sun_router.import_psk(PSK, "gw"), send_certreq=False)
    other = make_conn(pki, "sun", local_auth="psk", remote_auth="psk", remote_id="venus.test",
                      psk=sun_router.import_psk(OTHER, "other"), send_certreq=False)
    other.name = "other"
    for moon_key, ok in ((OTHER, False), (PSK, True)):
        moon = make_conn(pki, "moon", **psk_kw(moon_key))
        net = Net(Side("moon", Engine(open_router("fips"), [moon]), MOON),
                  Side("sun", Engine(sun_router, [other, mine]), SUN))
        net.initiate(net.a, "gw")
        net.run()
        if ok:
            assert len(net.b.kernel) == 1 and net.b.the_ike_sa().conn.name == "gw"
        else:
            assert failures(net.b) == ["AUTHENTICATION_FAILED"] and not net.b.kernel


def test_fips_profile_refuses_a_short_psk_at_use(pair: PairFactory) -> None:
    """16 octets is below half of PRF-HMAC-SHA2-384's output (24): the router refuses it in the fips
    profile (the config loader refuses it before, with FILE:LINE); the default profile takes it."""
    short = b"0123456789abcdef"
    net = pair(moon_kw=psk_kw(short), sun_kw=psk_kw(short), ike=["aes256gcm16-prfsha384-ecp384"])
    net.initiate(net.a, "gw")
    net.run()
    assert "cannot sign" in failures(net.a) and not net.a.kernel
    net = pair(moon_kw=psk_kw(short), sun_kw=psk_kw(short), ike=["aes256gcm16-prfsha384-ecp384"],
               profile="default")
    net.initiate(net.a, "gw")
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1


def test_psk_never_shows_in_logs_events_or_reprs(pair: PairFactory) -> None:
    canary = b"CANARY-psk-7f3a9c1e-do-not-leak-0123456789"
    net = pair(moon_kw=psk_kw(canary), sun_kw=psk_kw(canary))
    net.initiate(net.a, "gw")
    net.run()
    bad = pair(moon_kw=psk_kw(canary), sun_kw=psk_kw(OTHER))
    bad.initiate(bad.a, "gw")
    bad.run()
    assert failures(bad.b) == ["AUTHENTICATION_FAILED"]
    texts = [repr(x) for n in (net, bad) for s in (n.a, n.b) for x in (*s.logs, *s.events)]
    conn: Connection = net.a.engine.connections["gw"]
    texts += [repr(conn), str(conn), repr(conn.psk), repr(net.a.the_ike_sa())]
    texts += [p.data.hex() for p in net.delivered] + [repr(p.data) for p in net.delivered]
    blob = "\n".join(texts)
    assert "CANARY-psk" not in blob and canary.hex() not in blob
    assert "SecretKey(kind='PSK'" in repr(conn)  # the handle shows, its bytes do not
