"""IKE_SA_INIT + IKE_AUTH + the first Child SA, message by message (RFC 7296 1.2)."""

from __future__ import annotations

import pytest

from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    IdentificationInitiator,
    IdentificationResponder,
    KeyExchangePayload,
    Nonce,
    SecurityAssociation,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
)
from fipsike.ike.registry import AuthMethod, ExchangeType, NotifyType
from fipsike.ike.sa import IkeState
from tests.ike.engine.conftest import PairFactory, Pki
from tests.ike.engine.harness import Net, Side


def sides(net: Net, moon_initiates: bool) -> tuple[Side, Side]:
    return (net.a, net.b) if moon_initiates else (net.b, net.a)


def opened(side: Side, net: Net) -> Message:
    """Decrypt the next message on the wire with the keys of `side`'s IKE SA (the test reads what
    goes over the wire); an RFC 7383 fragmented message is reassembled from its fragments."""
    from fipsike.ike import wire

    first = net.wire[0].msg
    for pkt in net.wire:
        msg = pkt.msg
        if msg.message_id != first.message_id or msg.response != first.response:
            continue
        sa = side.engine.sas.by_spi[msg.spi_r if not _is_init(side, msg) else msg.spi_i]
        out = wire.unprotect(side.engine.router, sa, msg, pkt.data)
        if out is not None:
            return out
    raise AssertionError("message incomplete on the wire")


def _is_init(side: Side, msg: Message) -> bool:
    return msg.spi_i in side.engine.sas.by_spi and side.engine.sas.by_spi[msg.spi_i].initiator


@pytest.mark.parametrize("moon_initiates", [True, False], ids=["moon-initiates", "sun-initiates"])
def test_establish_message_by_message(pair: PairFactory, moon_initiates: bool) -> None:
    net = pair()
    i, r = sides(net, moon_initiates)
    net.initiate(i, "gw")

    # message 1: HDR, SAi1, KEi, Ni, N(NAT_DETECTION_*), N(FRAGMENTATION_SUPPORTED), N(SIGNATURE_HASH_ALGORITHMS)
    assert len(net.wire) == 1
    m1 = net.wire[0].msg
    assert m1.exchange == ExchangeType.IKE_SA_INIT and not m1.response and m1.initiator and m1.message_id == 0
    assert m1.spi_r == bytes(8)
    assert m1.get(SecurityAssociation) and m1.get(Nonce) and m1.get(KeyExchangePayload).group == 19
    assert len(m1.get(Nonce).data) == 32
    for n in (NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
              NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.SIGNATURE_HASH_ALGORITHMS):
        assert m1.notify(n) is not None, n
    assert [int(h) for h in m1.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS).hash_algorithms] == [2, 3, 4]
    assert i.engine.ike_sas()[0].state == IkeState.INIT_SENT
    net.step()

    # message 2: HDR, SAr1, KEr, Nr, N(NAT_D), [CERTREQ], N(FRAG), N(SHA)
    m2 = net.wire[0].msg
    assert m2.response and not m2.initiator and m2.spi_r != bytes(8)
    prop = m2.get(SecurityAssociation).proposals
    assert len(prop) == 1
    assert {(t.type, t.id) for t in prop[0].transforms} == {(1, 20), (2, 6), (4, 19)}
    creq = m2.get(CertificateRequest)
    assert creq is not None and len(creq.authorities) == 1  # SHA-1 of the one trust anchor's SPKI
    rsa = r.engine.ike_sas()[0]
    assert rsa.state == IkeState.INIT_DONE and rsa.keys is not None
    net.step()

    # message 3: HDR, SK {IDi, CERT, N(INITIAL_CONTACT), CERTREQ, IDr, AUTH, SAi2, TSi, TSr}
    p3 = net.wire[0]
    assert p3.msg.exchange == ExchangeType.IKE_AUTH and p3.msg.message_id == 1
    m3 = opened(r, net)
    assert m3.get(IdentificationInitiator).data == (b"moon.test" if moon_initiates else b"sun.test")
    assert m3.get(IdentificationResponder) is not None
    assert m3.get(Certificate) is not None and m3.notify(NotifyType.INITIAL_CONTACT) is not None
    assert m3.get(Authentication).method == AuthMethod.DIGITAL_SIGNATURE
    assert m3.get(TrafficSelectorInitiator) and m3.get(TrafficSelectorResponder)
    assert i.engine.ike_sas()[0].state == IkeState.AUTH_SENT
    net.step()
    assert r.the_ike_sa().state == IkeState.ESTABLISHED
    assert len(r.kernel) == 1 and len(i.kernel) == 0

    # message 4: HDR, SK {IDr, CERT, AUTH, SAr2, TSi, TSr}
    m4 = opened(i, net)
    assert m4.get(IdentificationResponder).data == (b"sun.test" if moon_initiates else b"moon.test")
    assert m4.get(Authentication).method == AuthMethod.DIGITAL_SIGNATURE
    net.step()
    assert not net.wire

    # both sides: one established IKE SA, one Child SA with mirrored SPIs and the same suite
    isa, rsa = i.the_ike_sa(), r.the_ike_sa()
    assert isa.name == rsa.name
    assert str(isa.suite) == "ENCR_AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_256"
    (ic,), (rc,) = i.kernel.values(), r.kernel.values()
    assert ic.inbound.spi == rc.outbound.spi and ic.outbound.spi == rc.inbound.spi
    # the same key on both ends of each direction, a different one per direction (RFC 7296 2.17)
    def key_of(side: Side, k: object) -> str:
        fp: str = side.engine.router.keyed_fingerprint(side.engine.router.release_esp_key(k, "test"))
        return fp

    assert key_of(i, ic.inbound.encr_key) == key_of(r, rc.outbound.encr_key)
    assert key_of(i, ic.outbound.encr_key) == key_of(r, rc.inbound.encr_key)
    assert key_of(i, ic.inbound.encr_key) != key_of(i, ic.outbound.encr_key)
    assert len(ic.inbound.encr_key) == 32 + 4  # AES-256-GCM key + 4-octet salt (RFC 4106 8.1)
    assert ic.mode == "tunnel" and ic.reqid == rc.reqid
    assert [e.initiator for e in i.established()] == [True]
    assert [e.initiator for e in r.established()] == [False]


def test_esp_keys_match_across_sides(pair: PairFactory) -> None:
    """The initiator's outbound key is the responder's inbound key (RFC 7296 2.17 KEYMAT order)."""
    net = pair()
    net.initiate(net.a, "gw")
    net.run()
    (a,), (b,) = net.a.kernel.values(), net.b.kernel.values()
    ra, rb = net.a.engine.router, net.b.engine.router
    fp = ra.keyed_fingerprint
    assert fp(ra.release_esp_key(a.outbound.encr_key, "test")) == fp(rb.release_esp_key(b.inbound.encr_key, "test"))
    assert fp(ra.release_esp_key(a.inbound.encr_key, "test")) == fp(rb.release_esp_key(b.outbound.encr_key, "test"))
    assert fp(ra.release_esp_key(a.inbound.encr_key, "test")) != fp(ra.release_esp_key(a.outbound.encr_key, "test"))


def test_invalid_ke_payload_retry(pair: PairFactory) -> None:
    """Initiator guesses ECP-256 first; the responder only takes ECP-384: INVALID_KE_PAYLOAD(20), retry."""
    net = pair(moon_kw={"ike": ["aes256gcm16-prfsha384-ecp256-ecp384"]},
               sun_kw={"ike": ["aes256gcm16-prfsha384-ecp384"]})
    net.initiate(net.a, "gw")
    net.step()
    m2 = net.wire[0].msg
    n = m2.notify(NotifyType.INVALID_KE_PAYLOAD)
    assert n is not None and int(n.accepted_group) == 20
    assert len(net.b.engine.ike_sas()) == 0  # stateless
    net.step()
    m1b = net.wire[0].msg
    assert m1b.get(KeyExchangePayload).group == 20 and m1b.message_id == 0
    net.run()
    assert str(net.a.the_ike_sa().suite).endswith("ECP_384")
    assert len(net.a.kernel) == 1


def test_cookie_round_trip(pair: PairFactory) -> None:
    """Above the half-open threshold the responder answers with a COOKIE only (RFC 7296 2.6)."""
    net = pair()
    net.b.engine.cookies.threshold = 0
    net.initiate(net.a, "gw")
    net.step()
    m2 = net.wire[0].msg
    assert m2.notify(NotifyType.COOKIE) is not None and len(m2.payloads) == 1
    assert len(net.b.engine.ike_sas()) == 0
    net.step()
    m1b = net.wire[0].msg
    assert m1b.payloads[0].notify_type == NotifyType.COOKIE  # first payload
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1


def test_forged_cookie_refused(pair: PairFactory) -> None:
    net = pair()
    net.b.engine.cookies.threshold = 0
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    pkt = net.wire.pop(0)
    cookie = pkt.msg.payloads[0]
    assert cookie.notify_type == NotifyType.COOKIE
    data = bytearray(pkt.data)
    # flip one octet of the cookie value (it starts after the header and the notify's fixed part)
    pos = 28 + 4 + 4 + 5
    assert data[28 + 8:28 + 8 + len(cookie.data)] == cookie.data
    data[pos] ^= 0x01
    net.take(net.b, net.b.engine.receive(bytes(data), pkt.src, pkt.dst, net.now))
    assert net.wire.pop(0).msg.notify(NotifyType.COOKIE) is not None
    assert len(net.b.engine.ike_sas()) == 0
    # the same request with the cookie intact is taken: only the flipped octet made the difference
    net.deliver(pkt)
    assert net.wire[0].msg.get(KeyExchangePayload) is not None and len(net.b.engine.ike_sas()) == 1


def test_no_proposal_chosen(pair: PairFactory) -> None:
    net = pair(moon_kw={"ike": ["aes128-sha256-modp2048"]}, sun_kw={"ike": ["aes256gcm16-prfsha384-ecp384"]})
    net.initiate(net.a, "gw")
    net.run()
    from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed

    assert net.a.of(IkeSaEstablished) == [] and net.b.of(IkeSaEstablished) == []
    (answer,) = [p.msg for p in net.delivered if p.src[0] == net.b.ip]
    assert [n.notify_type for n in answer.notifies()] == [NotifyType.NO_PROPOSAL_CHOSEN]

    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    assert not net.b.engine.ike_sas() and not net.a.engine.ike_sas()


def test_non_approved_transform_never_selected(pair: PairFactory) -> None:
    """A default-profile initiator offers SHA-1 and X25519 first; the fips responder skips them."""
    net = pair(moon_kw={"ike": ["aes256gcm16-prfsha1-x25519", "aes256gcm16-prfsha1-prfsha256-x25519-ecp256"]},
               sun_kw={"ike": ["aes256gcm16-prfsha1-prfsha256-x25519-ecp256"]}, profile="fips")
    # moon runs the default profile so that it may offer SHA-1 / X25519 at all
    from fipsike.ike.engine import Engine
    from providers import open_router

    net.a.engine = Engine(open_router("default"), list(net.a.engine.connections.values()))
    net.initiate(net.a, "gw")
    net.step()  # KE X25519 -> sun asks for ECP-256 (the only approved group)
    assert int(net.wire[0].msg.notify(NotifyType.INVALID_KE_PAYLOAD).accepted_group) == 19
    net.run()
    assert str(net.b.the_ike_sa().suite) == "ENCR_AES_GCM_16_256/PRF_HMAC_SHA2_256/ECP_256"


def test_peer_validated_against_trust_anchor(pair: PairFactory, pki: Pki) -> None:
    """A certificate from another CA: the responder answers AUTHENTICATION_FAILED (RFC 7296 2.21.2)."""
    from fipsike.ike.actions import IkeSaFailed

    net = pair()
    conn = net.a.engine.connections["gw"]
    conn.certificate, conn.private_key = pki.stranger.cert, pki.stranger.key
    conn.local_id = "sun.test"  # even the right name does not help
    net.b.engine.connections["gw"].remote_id = "%any"
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    net.step()
    m4 = opened(net.a, net)
    assert m4.notify(NotifyType.AUTHENTICATION_FAILED) is not None
    net.run()
    assert net.a.of(IkeSaFailed) and net.b.of(IkeSaFailed)
    assert not net.a.kernel and not net.b.kernel


def test_identity_must_match(pair: PairFactory) -> None:
    from fipsike.ike.actions import IkeSaFailed

    net = pair(sun_kw={"remote_id": "mars.test"})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]


def test_identity_bound_to_certificate(pair: PairFactory) -> None:
    """moon claims an ID its certificate does not carry."""
    from fipsike.ike.actions import IkeSaFailed

    net = pair(moon_kw={"local_id": "mars.test"}, sun_kw={"remote_id": "%any"})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]


def test_fromcert_and_ip_identities(pair: PairFactory) -> None:
    net = pair(moon_kw={"local_id": "%fromcert", "remote_id": "10.99.0.2"},
               sun_kw={"local_id": "10.99.0.2", "remote_id": "C=US, O=fipsike test, CN=moon.test"})
    net.initiate(net.a, "gw")
    net.run()
    assert net.b.the_ike_sa().remote_id.id_type.name == "ID_DER_ASN1_DN"
    assert net.a.the_ike_sa().remote_id.id_type.name == "ID_IPV4_ADDR"


def test_null_auth_only_when_allowed(pair: PairFactory) -> None:
    from fipsike.ike.actions import IkeSaFailed

    null = {"local_auth": "null", "remote_auth": "null", "local_id": "%null", "remote_id": "%any"}
    net = pair(moon_kw=dict(null, allow_null=True), sun_kw=dict(null, allow_null=True))
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    m3 = opened(net.b, net)
    assert m3.get(Authentication).method == AuthMethod.NULL_AUTH
    assert m3.get(IdentificationInitiator).id_type == 13  # ID_NULL
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1

    net = pair(moon_kw=dict(null, allow_null=True), sun_kw=dict(null, allow_null=False))
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]


def test_certificate_peer_refuses_null(pair: PairFactory) -> None:
    from fipsike.ike.actions import IkeSaFailed

    net = pair(moon_kw={"local_auth": "null", "local_id": "%null", "allow_null": True})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]


def test_chain_with_intermediate(pair: PairFactory) -> None:
    """moon's certificate hangs below a sub-CA that sun does not know: moon sends the chain
    (CERT payloads, end entity first) and sun validates it up to its trust anchor."""
    net = pair(moon_kw={"key": "via-sub"})
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    m3 = opened(net.b, net)
    certs = m3.all(Certificate)
    assert len(certs) == 2 and all(c.encoding == 4 for c in certs)
    net.run()
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1

    from fipsike.ike.actions import IkeSaFailed

    net = pair(moon_kw={"key": "via-sub", "intermediates": ()})  # without the sub-CA: refused
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]


def test_verdict_cache_expires_and_follows_the_anchors(pair: PairFactory, pki: Pki) -> None:
    """A validated chain is remembered for verdict_cache_ttl seconds of wall-clock time only, and only
    for the same trust anchors: after that, or with other anchors, the chain is validated again."""
    from datetime import UTC, datetime, timedelta

    clock = [datetime.now(UTC)]
    net = pair()
    eng = net.b.engine
    eng.wallclock = lambda: clock[0]
    calls = []
    real = eng.peers.validator
    eng.peers.validator = lambda anchors, strict=False: calls.append(anchors) or real(anchors, strict)  # type: ignore[method-assign]
    for _ in range(2):
        net.initiate(net.a, "gw")
        net.run()
    assert len(calls) == 1  # the second handshake used the remembered verdict
    clock[0] += timedelta(seconds=eng.peers.verdict_cache_ttl + 1)
    net.initiate(net.a, "gw")
    net.run()
    assert len(calls) == 2
    eng.connections["gw"].trust_anchors = (pki.other_ca.cert,)  # moon's CA no longer trusted
    net.initiate(net.a, "gw")
    net.run()
    from fipsike.ike.actions import IkeSaFailed

    assert len(calls) == 3 and [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
