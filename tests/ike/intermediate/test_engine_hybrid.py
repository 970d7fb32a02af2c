"""IKE_INTERMEDIATE (RFC 9242) with ML-KEM additional key exchanges (RFC 9370) in the engine: two
engines back to back over the real Router (FIPS policy), message by message."""

from __future__ import annotations

from typing import Any

import pytest

from fipsike.ike.proposals import Protocol, from_libreswan
from fipsike.ike.registry import ExchangeType, NotifyType
from providers.policy import Policy
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.harness import IkeSaFailed, Net, Packet, Side

FIPS = Policy("fips")


def ike(value: str) -> dict[str, Any]:
    return {"ike_proposals": from_libreswan(value, Protocol.IKE, FIPS)}


def exchanges(net: Net) -> list[tuple[int, bool]]:
    """The messages delivered (RFC 7383 fragments of one message counted once), in order."""
    seen: list[tuple[int, int, bool]] = []
    for p in net.delivered:
        key = (int(p.msg.exchange), p.msg.message_id, p.msg.response)
        if key not in seen:
            seen.append(key)
    return [(e, r) for e, _, r in seen]


def esp_pairs(net: Net) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Each installed Child SA as (outbound, inbound) ESP key fingerprints on moon, (inbound, outbound)
    on sun: equal sets when both derived the same KEYMAT (RFC 7296 2.17)."""
    ra, rb = net.a.engine.router, net.b.engine.router
    fp = ra.keyed_fingerprint

    def pairs(side: Side, router: Any, swap: bool) -> set[tuple[str, str]]:
        out = set()
        for inst in side.kernel.values():
            o = fp(router.release_esp_key(inst.outbound.encr_key, "test"))
            i = fp(router.release_esp_key(inst.inbound.encr_key, "test"))
            out.add((i, o) if swap else (o, i))
        return out

    return pairs(net.a, ra, False), pairs(net.b, rb, True)


def agree(net: Net, children: int = 1) -> None:
    a, b = esp_pairs(net)
    assert len(a) == children and a == b


HYBRIDS = [
    ("aes_gcm256-sha384-ecp384;addke1=ml_kem_1024", "ECP_384", [37]),
    ("aes_gcm256-sha384-ecp256;addke1=ml_kem_768", "ECP_256", [36]),
    ("aes256-sha384-modp3072;addke1=ml_kem_768", "MODP_3072", [36]),
    ("aes_gcm256-sha384-ecp384;addke1=ml_kem_768;addke2=ml_kem_1024", "ECP_384", [36, 37]),
]


@pytest.mark.parametrize("value,group,methods", HYBRIDS, ids=[h[0] for h in HYBRIDS])
def test_hybrid_establishes(pair: PairFactory, value: str, group: str, methods: list[int]) -> None:
    net = pair(**ike(value))
    net.initiate(net.a, "gw")
    m1 = net.wire[0].msg
    assert m1.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is not None
    net.run()
    isa, rsa = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert group in str(isa.suite) and str(isa.suite) == str(rsa.suite)
    names = {36: "ML_KEM_768", 37: "ML_KEM_1024"}
    assert str(isa.suite).endswith("/" + "+".join([group, *(names[m] for m in methods)]))
    assert [int(k) for k in isa.suite.additional] == methods
    # one IKE_INTERMEDIATE exchange per ADDKE, between IKE_SA_INIT and IKE_AUTH (RFC 9370 2.2.2)
    ex = [e for e, resp in exchanges(net) if not resp]
    assert ex == [ExchangeType.IKE_SA_INIT] + [ExchangeType.IKE_INTERMEDIATE] * len(methods) + [ExchangeType.IKE_AUTH]
    assert [e for e, _ in exchanges(net)].count(ExchangeType.IKE_INTERMEDIATE) == 2 * len(methods)
    assert isa.intermediate is None and rsa.intermediate is None  # done with once IKE_AUTH is
    agree(net)


def test_plain_suite_has_no_intermediate(pair: PairFactory) -> None:
    net = pair(**ike("aes_gcm256-sha384-ecp384"))
    net.initiate(net.a, "gw")
    assert net.wire[0].msg.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is None
    net.run()
    assert ExchangeType.IKE_INTERMEDIATE not in [e for e, _ in exchanges(net)]
    agree(net)


def is_intermediate(p: Packet, response: bool) -> bool:
    m = p.msg
    return m.exchange == ExchangeType.IKE_INTERMEDIATE and m.response == response


def run_until(net: Net, stop: Any) -> None:
    """Deliver in order until the first packet on the wire matches `stop` (left on the wire)."""
    while net.wire and not stop(net.wire[0]):
        net.step()


TWO_ROUNDS = "aes_gcm256-sha384-ecp384;addke1=ml_kem_768;addke2=ml_kem_1024"


@pytest.mark.parametrize("response", [False, True], ids=["request-lost", "response-lost"])
@pytest.mark.parametrize("value", ["aes_gcm256-sha384-ecp256;addke1=ml_kem_768", TWO_ROUNDS,
                                   "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"])
def test_intermediate_message_lost(pair: PairFactory, value: str, response: bool) -> None:
    """A lost IKE_INTERMEDIATE request is retransmitted; a lost response makes the initiator retransmit
    its request, which the responder (already under the new keys) answers from its cache."""
    net = pair(**ike(value))
    net.initiate(net.a, "gw")
    run_until(net, lambda p: is_intermediate(p, response))
    lost = [p for p in list(net.wire) if is_intermediate(p, response) and p.msg.message_id == 1]
    assert lost
    for p in lost:
        net.wire.remove(p)
    assert not net.wire
    net.advance(5.0)  # the initiator's retransmission timer (4 s)
    net.run()
    agree(net)
    retransmits = [x for x in net.a.logs if x.event == "retransmit"]
    assert len(retransmits) == 1
    if response:
        assert any(x.event == "retransmit-response" for x in net.b.logs)


def test_intermediate_request_duplicated_and_fragments_reordered(pair: PairFactory) -> None:
    """ML-KEM-1024's encapsulation key needs two RFC 7383 fragments: they arrive in reverse order, and
    the whole request comes twice; the second copy gets the cached answer, whose late copy the
    initiator ignores."""
    net = pair(**ike(TWO_ROUNDS))
    net.initiate(net.a, "gw")
    run_until(net, lambda p: is_intermediate(p, False) and p.msg.message_id == 2)
    frags = [p for p in net.wire if is_intermediate(p, False)]
    assert len(frags) == 2 and len(net.wire) == 2
    net.wire = list(reversed(frags)) + list(reversed(frags))
    net.run()
    agree(net)
    assert sum(x.event == "retransmit-response" for x in net.b.logs) == 1
    assert any(x.event == "stale-response" for x in net.a.logs)


def test_intermediate_response_reordered_fragments(pair: PairFactory) -> None:
    net = pair(**ike("aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"))
    net.initiate(net.a, "gw")
    run_until(net, lambda p: is_intermediate(p, True))
    frags = [p for p in net.wire if is_intermediate(p, True)]
    net.wire = list(reversed(frags)) + [p for p in net.wire if p not in frags]
    net.run()
    agree(net)


def test_tampered_intermediate_fails_auth(pair: PairFactory) -> None:
    """An IKE_INTERMEDIATE request changed by someone holding its SK keys (which come from unauthenticated
    key exchanges alone) still opens, but IntAuth differs and both AUTH payloads fail (RFC 9242 3.3.2)."""
    from fipsike.ike.encrypted import SkCrypto
    from fipsike.ike.message import Message
    from fipsike.ike.payloads import Notify

    net = pair(**ike("aes_gcm256-sha384-ecp256;addke1=ml_kem_768"))
    net.initiate(net.a, "gw")
    run_until(net, lambda p: is_intermediate(p, False))
    req = net.wire.pop(0)
    assert not net.wire
    rsa = next(iter(net.b.engine.ike_sas()))
    assert rsa.intermediate is not None
    crypto = SkCrypto(net.b.engine.router, rsa.intermediate.sk_keys(), initiator=None)
    m = crypto.open(req.data)
    forged = Message(m.spi_i, m.spi_r, m.exchange, m.message_id, True, False,
                     (*m.payloads, Notify.status(40001, b"x")))
    net.wire.append(Packet(SkCrypto(net.b.engine.router, rsa.intermediate.sk_keys(), initiator=True).seal(forged),
                           req.src, req.dst))
    net.run()
    assert not net.a.established() and not net.b.established()
    assert net.b.of(IkeSaFailed) and net.a.of(IkeSaFailed)
    assert any("AUTHENTICATION_FAILED" in str(x.message) for x in net.b.logs + net.a.logs)


def test_intauth_is_in_the_signed_octets(pair: PairFactory) -> None:
    """Without IntAuth in AUTH both sides would still agree; with one bit of it changed they must not."""
    net = pair(**ike("aes_gcm256-sha384-ecp256;addke1=ml_kem_768"))
    net.initiate(net.a, "gw")
    run_until(net, lambda p: p.msg.exchange == ExchangeType.IKE_AUTH)
    rsa = next(iter(net.b.engine.ike_sas()))
    assert rsa.intermediate is not None and rsa.intermediate.done
    ia = rsa.intermediate.int_auth
    ia.initiator = bytes([ia.initiator[0] ^ 1]) + ia.initiator[1:]
    net.run()
    assert not net.b.established() and net.b.of(IkeSaFailed)


def test_ike_auth_before_intermediate_refused(pair: PairFactory) -> None:
    """A responder that negotiated an additional key exchange refuses IKE_AUTH before it."""
    from fipsike.ike.exchanges import ike_sa_init

    net = pair(**ike("aes_gcm256-sha384-ecp256;addke1=ml_kem_768"))
    net.initiate(net.a, "gw")
    net.step()  # IKE_SA_INIT request
    # the initiator "forgets" the IKE_INTERMEDIATE round it was to run
    orig = ike_sa_init._start_intermediate
    try:
        ike_sa_init._start_intermediate = lambda ctx, sa, chosen: None  # type: ignore[assignment]
        net.step()  # IKE_SA_INIT response: the initiator goes to IKE_AUTH at once
    finally:
        ike_sa_init._start_intermediate = orig
    assert net.wire[0].msg.exchange == ExchangeType.IKE_AUTH
    net.run()
    assert not net.b.established() and net.b.of(IkeSaFailed)
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["IKE_AUTH before the additional key exchanges"]


OPTIONAL = "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024+none"
REQUIRED = "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"
PLAIN = "aes_gcm256-sha384-ecp384"


@pytest.mark.parametrize("moon,sun,hybrid", [
    (OPTIONAL, PLAIN, False), (PLAIN, OPTIONAL, False), (OPTIONAL, OPTIONAL, True),
    (OPTIONAL, REQUIRED, True), (REQUIRED, OPTIONAL, True)])
def test_optional_hybrid(pair: PairFactory, moon: str, sun: str, hybrid: bool) -> None:
    """`addke1=ml_kem_1024+none` makes the hybrid optional: a plain peer gets a plain SA."""
    net = pair(moon_kw=ike(moon), sun_kw=ike(sun))
    net.initiate(net.a, "gw")
    net.run()
    agree(net)
    ran = ExchangeType.IKE_INTERMEDIATE in [e for e, _ in exchanges(net)]
    assert ran == hybrid


@pytest.mark.parametrize("moon,sun", [(REQUIRED, PLAIN), (PLAIN, REQUIRED)])
def test_required_hybrid_against_plain_peer(pair: PairFactory, moon: str, sun: str) -> None:
    """A connection that requires the hybrid gets NO_PROPOSAL_CHOSEN from, or gives it to, a plain peer."""
    net = pair(moon_kw=ike(moon), sun_kw=ike(sun))
    net.initiate(net.a, "gw")
    net.run()
    assert not net.a.established() and not net.b.established()
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    resp = [p.msg for p in net.delivered if p.msg.response]
    assert [n.notify_type for n in resp[0].notifies()] == [NotifyType.NO_PROPOSAL_CHOSEN]


def _legacy_offer(value: str) -> Any:
    """What a responder without RFC 9370 can take of our offer: proposals with no ADDKE transform
    (it rejects any with a transform type it does not know, RFC 7296 3.3.6)."""
    from fipsike.ike.proposals import ADDKE_TYPES, offer_order

    specs = offer_order(ike(value)["ike_proposals"])
    return [s for s in specs if not any(t.type in ADDKE_TYPES for t in s.transforms)]


def test_optional_offer_carries_a_plain_proposal() -> None:
    """For a peer without RFC 9370 the optional hybrid adds a plain copy of the proposal, last;
    the required one does not."""
    plain = _legacy_offer(OPTIONAL)
    assert len(plain) == 1 and str(plain[0].transforms) == str(ike(PLAIN)["ike_proposals"][0].transforms)
    assert _legacy_offer(REQUIRED) == []


def test_peer_without_intermediate_support_gets_no_addke(pair: PairFactory) -> None:
    """ADDKE transforms offered without INTERMEDIATE_EXCHANGE_SUPPORTED are answered NONE (optional) or
    refused (required): the responder selects additional key exchanges only with an announcing peer."""
    from fipsike.ike.config import Connection

    orig = Connection.announces_intermediate
    net = pair(moon_kw=ike(OPTIONAL), sun_kw=ike(OPTIONAL))
    try:
        Connection.announces_intermediate = property(lambda self: False)  # type: ignore[method-assign,assignment]
        net.initiate(net.a, "gw")
    finally:
        Connection.announces_intermediate = orig  # type: ignore[method-assign]
    assert net.wire[0].msg.notify(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED) is None
    net.run()
    agree(net)
    assert ExchangeType.IKE_INTERMEDIATE not in [e for e, _ in exchanges(net)]


def _esp(value: str) -> Any:
    from fipsike.ike.proposals import from_libreswan as fl

    return fl(value, Protocol.ESP, FIPS, pfs_groups=())


HYBRID_ESP = "aes_gcm256;ecp384;addke1=ml_kem_1024"


def up_hybrid(pair: PairFactory, esp: str = HYBRID_ESP, ike_value: str = REQUIRED) -> Net:
    net = pair(**ike(ike_value))
    for side in (net.a, net.b):
        conn = side.engine.connections["gw"]
        conn.children[0].esp_proposals = _esp(esp)
    net.initiate(net.a, "gw")
    net.run()
    agree(net)
    return net


def followups(net: Net) -> list[int]:
    """Message IDs of the IKE_FOLLOWUP_KE requests delivered (fragments counted once)."""
    return sorted({p.msg.message_id for p in net.delivered
                   if p.msg.exchange == ExchangeType.IKE_FOLLOWUP_KE and not p.msg.response})


@pytest.mark.parametrize("moon_initiates", [True, False], ids=["moon-rekeys", "sun-rekeys"])
@pytest.mark.parametrize("esp", [HYBRID_ESP, "aes_gcm256;ecp256;addke1=ml_kem_768;addke2=ml_kem_1024"])
def test_child_rekey_with_followup_ke(pair: PairFactory, esp: str, moon_initiates: bool) -> None:
    """A Child SA rekey with additional key exchanges: CREATE_CHILD_SA, then one IKE_FOLLOWUP_KE per
    ADDKE (RFC 9370 2.2.4); both sides install the same new keys, and they differ from the old ones."""
    net = up_hybrid(pair, esp)
    i = net.a if moon_initiates else net.b
    before = esp_pairs(net)[0]
    (spi,) = i.kernel
    n_addke = esp.count("addke")
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.run()
    assert len(followups(net)) == n_addke
    agree(net)
    assert esp_pairs(net)[0].isdisjoint(before)
    new = next(iter(i.engine.ike_sas())).children
    (child,) = new.values()
    assert child.suite.ke is not None and child.spi_in != spi
    assert len(child.suite.additional) == n_addke and "+ML_KEM_1024" in str(child.suite)


def test_new_child_with_followup_ke(pair: PairFactory) -> None:
    net = up_hybrid(pair)
    conn = net.a.engine.connections["gw"]
    import dataclasses

    extra = dataclasses.replace(conn.children[0], name="extra")
    for side in (net.a, net.b):
        c = side.engine.connections["gw"]
        c.children = (*c.children, dataclasses.replace(c.children[0], name="extra"))
    del extra
    net.take(net.a, net.a.engine.initiate("gw", net.now, child="extra"))
    net.run()
    assert len(followups(net)) == 1
    agree(net, children=2)


@pytest.mark.parametrize("moon_initiates", [True, False], ids=["moon-rekeys", "sun-rekeys"])
def test_ike_rekey_with_followup_ke(pair: PairFactory, moon_initiates: bool) -> None:
    """An IKE SA rekey with ML-KEM-1024 in IKE_FOLLOWUP_KE; the new IKE SA works (a Child SA rekey over it
    gives matching keys) and its keys are not the old ones."""
    from fipsike.ike.actions import IkeSaRekeyed

    net = up_hybrid(pair, "aes_gcm256")
    i = net.a if moon_initiates else net.b
    old = i.the_ike_sa()
    net.take(i, i.engine.rekey_ike(old.name, net.now))
    net.run()
    assert len(followups(net)) == 1
    new_i, new_r = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert new_i.name == new_r.name != old.name
    assert [e.new_ike_sa for e in i.of(IkeSaRekeyed)] == [(new_i if moon_initiates else new_r).name]
    (spi,) = i.kernel
    net.take(i, i.engine.rekey_child(spi, net.now))
    net.run()
    agree(net)


def test_followup_lost_and_retransmitted(pair: PairFactory) -> None:
    net = up_hybrid(pair)
    (spi,) = net.a.kernel
    net.take(net.a, net.a.engine.rekey_child(spi, net.now))
    run_until(net, lambda p: p.msg.exchange == ExchangeType.IKE_FOLLOWUP_KE and p.msg.response)
    net.wire.clear()  # the IKE_FOLLOWUP_KE response is lost
    net.advance(5.0)
    net.run()
    agree(net)
    assert any(x.event == "retransmit-response" for x in net.b.logs)


def test_followup_unknown_link_is_state_not_found(pair: PairFactory) -> None:
    """An IKE_FOLLOWUP_KE whose link the responder holds no state for gets STATE_NOT_FOUND; the rekey
    fails and the old Child SA stays."""
    net = up_hybrid(pair)
    (spi,) = net.a.kernel
    net.take(net.a, net.a.engine.rekey_child(spi, net.now))
    run_until(net, lambda p: p.msg.exchange == ExchangeType.IKE_FOLLOWUP_KE)
    rsa = net.b.the_ike_sa()
    assert rsa.followup is not None
    rsa.followup = None  # the responder forgot (its wait ran out)
    net.run()
    resp = [p for p in net.delivered if p.msg.exchange == ExchangeType.IKE_FOLLOWUP_KE and p.msg.response]
    assert resp
    assert spi in net.a.kernel and len(net.a.kernel) == 1
    assert any("STATE_NOT_FOUND" in x.message for x in net.a.logs)


@pytest.mark.parametrize("sun_intermediate", [True, False])
def test_intermediate_yes_without_addke(pair: PairFactory, sun_intermediate: bool) -> None:
    """intermediate=yes and no ADDKE: when both announce it, the initiator runs one empty IKE_INTERMEDIATE
    exchange, authenticated in AUTH like any other (RFC 9242 3.3.2); a peer without it gets none."""
    net = pair(moon_kw={**ike(PLAIN), "intermediate": True}, sun_kw={**ike(PLAIN), "intermediate": sun_intermediate})
    net.initiate(net.a, "gw")
    net.run()
    agree(net)
    ran = [e for e, _ in exchanges(net)].count(ExchangeType.IKE_INTERMEDIATE)
    assert ran == (2 if sun_intermediate else 0)
    assert "+" not in str(net.a.the_ike_sa().suite)


def test_empty_intermediate_is_bound_by_intauth(pair: PairFactory) -> None:
    net = pair(moon_kw={**ike(PLAIN), "intermediate": True}, sun_kw={**ike(PLAIN), "intermediate": True})
    net.initiate(net.a, "gw")
    run_until(net, lambda p: p.msg.exchange == ExchangeType.IKE_AUTH)
    rsa = next(iter(net.b.engine.ike_sas()))
    assert rsa.intermediate is not None and rsa.intermediate.int_auth.responder_messages == 1
    ia = rsa.intermediate.int_auth
    ia.responder = bytes([ia.responder[0] ^ 1]) + ia.responder[1:]
    net.run()
    assert not net.a.established() and not net.b.established()
