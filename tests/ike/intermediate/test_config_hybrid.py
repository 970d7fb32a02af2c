"""libreswan 5 syntax for the hybrid: `ike=...;addkeN=...` and `intermediate=yes` reach the engine's
Connection (ADDKE transforms in its IKE proposals, INTERMEDIATE_EXCHANGE_SUPPORTED announced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.modes import FipsMode
from fipsike.config import ConfigError
from fipsike.ike.proposals import ADDKE_TYPES, TransformType, offer_order
from providers.algorithms import KeyExchange
from tests.config.test_keywords import BASE, _load


def test_addke_in_ike_reaches_the_connection(tmp_path: Path) -> None:
    spec = _load(tmp_path, BASE + "\tike=aes_gcm256-sha384-ecp384;addke1=ml_kem_1024;addke2=ml_kem_768+none\n",
                 FipsMode.POLICY).conn("a")
    c = spec.connection
    (p,) = c.ike_proposals
    addke = [(t.type, t.id) for t in p.transforms if t.type in ADDKE_TYPES]
    assert addke == [(TransformType.ADDKE1, int(KeyExchange.ML_KEM_1024)),
                     (TransformType.ADDKE2, int(KeyExchange.ML_KEM_768)), (TransformType.ADDKE2, 0)]
    assert c.announces_intermediate and not c.intermediate
    assert not p.additional_optional() and len(offer_order(c.ike_proposals)) == 1  # ADDKE1 is required


def test_intermediate_yes(tmp_path: Path) -> None:
    c = _load(tmp_path, BASE + "\tintermediate=yes\n\tike=aes_gcm256-sha384-ecp384\n").conn("a").connection
    assert c.intermediate and c.announces_intermediate
    c = _load(tmp_path, BASE + "\tike=aes_gcm256-sha384-ecp384\n").conn("a").connection
    assert not c.intermediate and not c.announces_intermediate


def test_optional_hybrid_offers_a_plain_copy(tmp_path: Path) -> None:
    c = _load(tmp_path, BASE + "\tike=aes_gcm256-sha384-ecp384;addke1=ml_kem_1024+none\n").conn("a").connection
    offer = offer_order(c.ike_proposals)
    assert len(offer) == 2 and offer[0] == c.ike_proposals[0]
    assert not any(t.type in ADDKE_TYPES for t in offer[1].transforms)


@pytest.mark.parametrize("value", ["aes_gcm256-sha384-ecp384;addke1=modp1024",
                                   "aes_gcm256-sha384-ecp384;addke8=ml_kem_768"])
def test_refused_addke(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError):
        _load(tmp_path, BASE + f"\tike={value}\n", FipsMode.POLICY)
