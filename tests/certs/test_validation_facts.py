"""The parsed-facts cache of certs.validation remembers parsing only, never a verdict:
time, signatures and policy are judged on every validation (the engine's speed work)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.testpki import P256, TestPki
from certs.validation import PathValidator, Reason, load_der_certificate
from tests.certs.conftest import NOW


@pytest.fixture(scope="module")
def small_pki(fips_router: Any) -> tuple[TestPki, Any, Any, Any]:
    pki = TestPki(fips_router, NOW)
    root = pki.root("Facts Root", P256)
    # same subject DN and key size, another key: a different certificate with the same names
    impostor = pki.root("Facts Root", P256)
    ee = pki.end_entity("facts.test", root, P256)
    return pki, root, impostor, ee


def test_time_is_judged_every_time(fips_router: Any, small_pki: tuple[TestPki, Any, Any, Any]) -> None:
    _, root, _, ee = small_pki
    v = PathValidator(fips_router, [root.cert])
    der = ee.cert.public_bytes(Encoding.DER)
    assert v.validate(load_der_certificate(der), NOW).ok
    late = v.validate(load_der_certificate(der), NOW + timedelta(days=400))
    assert late.reason is Reason.EXPIRED
    assert v.validate(load_der_certificate(der), NOW).ok


def test_signature_is_judged_every_time(fips_router: Any, small_pki: tuple[TestPki, Any, Any, Any]) -> None:
    """An end entity that validated under its root does not validate under a same-named root with
    another key, though every parsed fact of the end entity is already cached."""
    _, root, impostor, ee = small_pki
    assert PathValidator(fips_router, [root.cert]).validate(ee.cert, NOW).ok
    verdict = PathValidator(fips_router, [impostor.cert]).validate(ee.cert, NOW)
    assert not verdict.ok
    assert verdict.reason in (Reason.BAD_SIGNATURE, Reason.ISSUER_NOT_FOUND)


def test_policy_is_judged_every_time(fips_router: Any, default_router: Any, pki: Any) -> None:
    """A SHA-1 signed chain the default profile verifies and the fips profile refuses: the fips
    validator refuses it after the default one accepted it (its signed parts cached), and back."""
    root = x509.load_pem_x509_certificates(pki.files["sha1-root"].read_bytes())[0]
    ee = x509.load_pem_x509_certificates(pki.files["sha1-ee"].read_bytes())[0]
    assert PathValidator(default_router, [root]).validate(ee, NOW).ok
    refused = PathValidator(fips_router, [root]).validate(ee, NOW)
    assert refused.reason is Reason.SIGNATURE_ALGORITHM_NOT_ALLOWED
    assert PathValidator(default_router, [root]).validate(ee, NOW).ok


def test_anchor_set_changes_are_seen(fips_router: Any, small_pki: tuple[TestPki, Any, Any, Any]) -> None:
    _, root, impostor, ee = small_pki
    v = PathValidator(fips_router, [root.cert])
    assert v.validate(ee.cert, NOW).ok
    v.anchors = [impostor.cert]
    assert not v.validate(ee.cert, NOW).ok
    v.anchors = [impostor.cert]
    v.intermediates = [root.cert]  # the same certificates, now only as an intermediate: no anchor
    assert not v.validate(ee.cert, NOW).ok


def test_load_der_certificate_interns_and_refuses_garbage(small_pki: tuple[TestPki, Any, Any, Any]) -> None:
    _, _, _, ee = small_pki
    der = ee.cert.public_bytes(Encoding.DER)
    first = load_der_certificate(der)
    assert load_der_certificate(bytes(der)) is first
    assert first == ee.cert
    with pytest.raises(ValueError):
        load_der_certificate(b"\x30\x03\x02\x01\x01")
