"""AUTH payload signatures (RFC 7427, RFC 4754, RFC 7296 3.8 method 1) under each profile."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from fipsike.ike.auth import AuthError, AuthPayload, algorithm_identifier, verify_signature_auth
from providers import SignatureScheme, open_router

OCTETS = b"signed octets" * 10


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def test_method_1_sha1_refused_by_fips_accepted_by_default(rsa_key: rsa.RSAPrivateKey) -> None:
    sig = rsa_key.sign(OCTETS, padding.PKCS1v15(), hashes.SHA1())
    auth = AuthPayload(1, sig)
    with pytest.raises(AuthError):
        verify_signature_auth(open_router("fips"), rsa_key.public_key(), auth, OCTETS)
    assert verify_signature_auth(open_router("default"), rsa_key.public_key(), auth, OCTETS) is \
        SignatureScheme.RSA_PKCS1_SHA1


def test_rfc7427_pkcs1_sha256_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    """strongSwan signs RSA with PKCS#1 v1.5 SHA-256 inside method 14 by default."""
    algid = algorithm_identifier(SignatureScheme.RSA_PKCS1_SHA256)
    sig = rsa_key.sign(OCTETS, padding.PKCS1v15(), hashes.SHA256())
    auth = AuthPayload(14, bytes([len(algid)]) + algid + sig)
    assert verify_signature_auth(open_router("fips"), rsa_key.public_key(), auth, OCTETS) is \
        SignatureScheme.RSA_PKCS1_SHA256
    bad = AuthPayload(14, bytes([len(algid)]) + algid + sig[:-1] + bytes([sig[-1] ^ 1]))
    with pytest.raises(AuthError):
        verify_signature_auth(open_router("fips"), rsa_key.public_key(), bad, OCTETS)


def test_rfc4754_raw_ecdsa() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    r, s = utils.decode_dss_signature(key.sign(OCTETS, ec.ECDSA(hashes.SHA384())))
    raw = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    assert verify_signature_auth(open_router("fips"), key.public_key(), AuthPayload(10, raw), OCTETS) is \
        SignatureScheme.ECDSA_SHA384
    with pytest.raises(AuthError):  # method 9 is P-256 only
        verify_signature_auth(open_router("fips"), key.public_key(), AuthPayload(9, raw), OCTETS)


def test_scheme_must_fit_the_key(rsa_key: rsa.RSAPrivateKey) -> None:
    algid = algorithm_identifier(SignatureScheme.ECDSA_SHA256)
    with pytest.raises(AuthError):
        verify_signature_auth(open_router("fips"), rsa_key.public_key(),
                              AuthPayload(14, bytes([len(algid)]) + algid + b"\x30\x00"), OCTETS)


def test_malformed_auth_data(rsa_key: rsa.RSAPrivateKey) -> None:
    for data in (b"", b"\x40abc", b"\x03\x30\x01\x00sig"):
        with pytest.raises(AuthError):
            verify_signature_auth(open_router("fips"), rsa_key.public_key(), AuthPayload(14, data), OCTETS)
