"""Negotiating additional key exchanges (RFC 9370 2.2.1) in fipsike.ike.proposals: ADDKE1..7 take
Transform Type 4's IDs, NONE makes one optional, a slot matches when its value is in the offer and in
the local proposal (NONE an ordinary value; a slot one side leaves out is NONE only), the policy judges
the method, and no method is chosen for two slots."""

from __future__ import annotations

import pytest

from fipsike.ike.proposals import (
    ADDKE_TYPES,
    NoProposalChosen,
    Proposal,
    ProposalSpec,
    Protocol,
    Transform,
    TransformType,
    additional_key_exchanges,
    parse_proposal,
    select,
    verify_choice,
)
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf
from providers.policy import Policy

FIPS = Policy("fips")
K768, K1024, NONE = KeyExchange.ML_KEM_768, KeyExchange.ML_KEM_1024, KeyExchange.NONE
BASE = parse_proposal("aes256gcm16-prfsha384-ecp384", Protocol.IKE)


def allowed(t: Transform) -> bool:
    """The fips policy, as the engine asks it (ADDKE types never reach it: proposals maps them to KE)."""
    assert t.type not in ADDKE_TYPES
    try:
        if t.type == TransformType.ENCR:
            return FIPS.allows_encryption(Encryption(t.id), t.key_bits or 0)
        if t.type == TransformType.PRF:
            return FIPS.allows_prf(Prf(t.id))
        if t.type == TransformType.INTEG:
            return FIPS.allows_integrity(Integrity(t.id))
        if t.type == TransformType.KE:
            return FIPS.allows_ke(KeyExchange(t.id))
    except ValueError:
        return False
    return t.type == TransformType.ESN


def choose(offered: list[Proposal], specs: list[ProposalSpec]) -> Proposal:
    """The responder's choice where the additional exchanges can run."""
    return select(offered, specs, allowed, Protocol.IKE, additional=True)


def offer(slots: dict[int, list[KeyExchange]], number: int = 1, spec: ProposalSpec = BASE) -> Proposal:
    return spec.with_additional_key_exchanges(slots).to_proposal(number, b"")


def local(slots: dict[int, list[KeyExchange]]) -> list[ProposalSpec]:
    return [BASE.with_additional_key_exchanges(slots)]


def addke(p: Proposal) -> dict[int, int]:
    return {ADDKE_TYPES.index(t.type) + 1: t.id for t in p.transforms if t.type in ADDKE_TYPES}


def test_required_hybrid_is_chosen() -> None:
    o = offer({1: [K1024]})
    chosen = choose([o], local({1: [K1024]}))
    assert addke(chosen) == {1: K1024}
    assert additional_key_exchanges(chosen) == (K1024,)
    assert verify_choice([chosen], [o], allowed) == chosen


def test_optional_hybrid_against_a_plain_responder_answers_none() -> None:
    """The initiator offers ADDKE1 = ML-KEM-768 or NONE; a responder configured without ADDKE picks NONE
    and says so (RFC 9370 2.2.1 example); no additional exchange runs."""
    o = offer({1: [K768, NONE]})
    chosen = choose([o], [BASE])
    assert addke(chosen) == {1: 0}
    assert additional_key_exchanges(chosen) == ()
    verify_choice([chosen], [o], allowed)


def test_plain_offer_against_required_hybrid_is_no_proposal_chosen() -> None:
    with pytest.raises(NoProposalChosen):
        choose([BASE.to_proposal(1, b"")], local({1: [K1024]}))


def test_plain_offer_against_optional_hybrid_gets_a_plain_sa() -> None:
    chosen = choose([BASE.to_proposal(1, b"")], local({1: [K1024, NONE]}))
    assert addke(chosen) == {}  # a slot the peer did not offer goes unsaid
    assert chosen.of_type(TransformType.KE) == [Transform(TransformType.KE, KeyExchange.ECP_384)]


def test_offer_order_decides_within_a_slot() -> None:
    chosen = choose([offer({1: [K768, K1024]})], local({1: [K1024, K768]}))
    assert addke(chosen) == {1: K768}


def test_no_method_twice_the_choice_backtracks() -> None:
    """ADDKE1 can only be ML-KEM-768; ADDKE2's first choice is also 768, so 1024 is taken there."""
    o = offer({1: [K768], 2: [K768, K1024]})
    chosen = choose([o], local({1: [K768, K1024], 2: [K768, K1024]}))
    assert addke(chosen) == {1: K768, 2: K1024}
    assert additional_key_exchanges(chosen) == (K768, K1024)
    with pytest.raises(NoProposalChosen):  # 768 in both slots is the only assignment: refused
        choose([offer({1: [K768], 2: [K768]})], local({1: [K768], 2: [K768]}))


def test_none_may_repeat_and_slots_keep_their_order() -> None:
    """RFC 9370 2.2.1's example shape: ADDKE2, ADDKE3 from two methods, ADDKE5 method-or-NONE."""
    o = offer({2: [K768, K1024], 3: [K768, K1024], 5: [KeyExchange.ECP_256, NONE], 6: [NONE]})
    chosen = choose([o], local({2: [K768, K1024], 3: [K768, K1024], 6: [NONE, K768]}))
    assert addke(chosen) == {2: K768, 3: K1024, 5: 0, 6: 0}
    assert additional_key_exchanges(chosen) == (K768, K1024)


def test_policy_judges_the_method_of_an_addke_slot() -> None:
    """MODP-1024 is refused by the fips policy: never chosen, in ADDKE as in KE."""
    with pytest.raises(NoProposalChosen):
        choose([offer({1: [KeyExchange.MODP_1024]})], local({1: [KeyExchange.MODP_1024]}))
    chosen = choose([offer({1: [KeyExchange.MODP_1024, K768]})], local({1: [KeyExchange.MODP_1024, K768]}))
    assert addke(chosen) == {1: K768}


def test_without_intermediate_exchange_only_none() -> None:
    """IKE_SA_INIT without INTERMEDIATE_EXCHANGE_SUPPORTED from both: no additional exchange can run."""
    chosen = select([offer({1: [K768, NONE]})], local({1: [K768, NONE]}), allowed, Protocol.IKE)
    assert additional_key_exchanges(chosen) == () and addke(chosen) == {1: 0}
    with pytest.raises(NoProposalChosen):
        select([offer({1: [K768]})], local({1: [K768]}), allowed, Protocol.IKE, additional=False)
    # additional=False is the default: a caller that cannot run the exchanges never agrees to them
    assert addke(choose([offer({1: [K768, NONE]})], local({1: [K768, NONE]}))) == {1: K768}


def test_next_proposal_when_the_first_cannot_meet_addke() -> None:
    first = offer({1: [K768]}, number=1)
    second = offer({1: [K1024]}, number=2)
    assert choose([first, second], local({1: [K1024]})).number == 2


def test_esp_proposals_take_addke_too() -> None:
    """ADDKE is optional in ESP (RFC 9370 2.2.1): CREATE_CHILD_SA negotiates it the same way."""
    esp = parse_proposal("aes256gcm16-ecp384", Protocol.ESP)
    o = esp.with_additional_key_exchanges({1: [K1024]}).to_proposal(1, b"\x01\x02\x03\x04")
    chosen = select([o], [esp.with_additional_key_exchanges({1: [K1024]})], allowed, Protocol.ESP,
                    additional=True)
    assert additional_key_exchanges(chosen) == (K1024,)
    assert chosen.spi == b"\x01\x02\x03\x04"


def test_initiator_checks_the_reply() -> None:
    o = offer({1: [K768, K1024], 2: [K768, K1024, NONE]})
    ok = Proposal(1, Protocol.IKE, b"", tuple(t for t in o.transforms if t.type not in ADDKE_TYPES)
                  + (Transform(TransformType.ADDKE1, K1024), Transform(TransformType.ADDKE2, 0)))
    assert verify_choice([ok], [o], allowed) == ok
    leaves_out_optional = Proposal(1, Protocol.IKE, b"", ok.transforms[:-1])
    verify_choice([leaves_out_optional], [o], allowed)  # ADDKE2 could be NONE: not performed
    leaves_out_required = Proposal(1, Protocol.IKE, b"", ok.transforms[:-2] + ok.transforms[-1:])
    with pytest.raises(NoProposalChosen, match="ADDKE1"):
        verify_choice([leaves_out_required], [o], allowed)
    twice = Proposal(1, Protocol.IKE, b"", ok.transforms[:-2] + (Transform(TransformType.ADDKE1, K768),
                                                                  Transform(TransformType.ADDKE2, K768)))
    with pytest.raises(NoProposalChosen, match="two ADDKE"):
        verify_choice([twice], [o], allowed)
    not_offered = Proposal(1, Protocol.IKE, b"", ok.transforms + (Transform(TransformType.ADDKE3, K768),))
    with pytest.raises(NoProposalChosen, match="did not offer"):
        verify_choice([not_offered], [o], allowed)


def test_with_additional_key_exchanges_refuses_slot_numbers_outside_1_to_7() -> None:
    with pytest.raises(ValueError, match="ADDKE8"):
        BASE.with_additional_key_exchanges({8: [K768]})
    assert [int(t) for t in ADDKE_TYPES] == list(range(6, 13))  # IANA Transform Types 6-12 (RFC 9370 3)
    assert [int(k) for k in (KeyExchange.ML_KEM_512, K768, K1024)] == [35, 36, 37]  # IANA Transform Type 4
