"""The RFC 7427 AlgorithmIdentifier table against the RFC's own bytes, and the
SIGNATURE_HASH_ALGORITHMS negotiation (RFC 7427 section 4)."""

from __future__ import annotations

from typing import Any

import pytest

from certs import algorithm_identifier as ai
from certs.signature_hash import (
    HashAlgorithmId,
    NoAcceptableSignatureScheme,
    announced_hashes,
    choose_scheme,
    decode_notify,
    encode_notify,
)
from certs.testpki import P256, P384, P521, RSA_3072
from providers import Policy
from providers.algorithms import HashAlg, SignatureScheme


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


# RFC 7427 Appendix A, verbatim: A.1.1-A.1.4 (PKCS #1 v1.5), A.3.1-A.3.4 (ECDSA).
RFC7427_EXACT = {
    SignatureScheme.RSA_PKCS1_SHA1: h("300d 0609 2a86 4886 f70d 0101 0505 00"),  # A.1.1
    SignatureScheme.RSA_PKCS1_SHA256: h("300d 0609 2a86 4886 f70d 0101 0b05 00"),  # A.1.2
    SignatureScheme.RSA_PKCS1_SHA384: h("300d 0609 2a86 4886 f70d 0101 0c05 00"),  # A.1.3
    SignatureScheme.RSA_PKCS1_SHA512: h("300d 0609 2a86 4886 f70d 0101 0d05 00"),  # A.1.4
    SignatureScheme.ECDSA_SHA1: h("3009 0607 2a86 48ce 3d04 01"),  # A.3.1
    SignatureScheme.ECDSA_SHA256: h("300a 0608 2a86 48ce 3d04 0302"),  # A.3.2
    SignatureScheme.ECDSA_SHA384: h("300a 0608 2a86 48ce 3d04 0303"),  # A.3.3
    SignatureScheme.ECDSA_SHA512: h("300a 0608 2a86 48ce 3d04 0304"),  # A.3.4
}
# RFC 7427 A.4.3 "RSASSA-PSS with SHA-256", 72 octets: it writes the DEFAULT trailerField
# (a3 03 02 01 01) out, which DER forbids (X.690 11.5).
RFC7427_A43_PSS_SHA256 = h("""
    3046 0609 2a86 4886 f70d 0101 0a30 39a0 0f30 0d06 0960 8648 0165 0304 0201 0500
    a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203
    0201 20a3 0302 0101""")
# The same parameters in DER (RFC 4055 section 3.1 / 5, rSASSA-PSS-SHA256-Identifier with salt 32),
# what we send: A.4.3 without the trailerField, outer lengths adjusted.
DER_PSS = {
    SignatureScheme.RSA_PSS_SHA256: h("""
        3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201 0500
        a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 20"""),
    SignatureScheme.RSA_PSS_SHA384: h("""
        3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0202 0500
        a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0202 0500 a203 0201 30"""),
    SignatureScheme.RSA_PSS_SHA512: h("""
        3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0203 0500
        a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0203 0500 a203 0201 40"""),
}


@pytest.mark.parametrize("scheme", list(RFC7427_EXACT), ids=lambda s: s.name)
def test_encode_matches_rfc7427_appendix_a(scheme: SignatureScheme) -> None:
    assert ai.encode(scheme) == RFC7427_EXACT[scheme]
    assert ai.decode(RFC7427_EXACT[scheme]) is scheme


@pytest.mark.parametrize("scheme", list(DER_PSS), ids=lambda s: s.name)
def test_pss_is_strict_der(scheme: SignatureScheme) -> None:
    assert ai.encode(scheme) == DER_PSS[scheme]
    assert ai.decode(DER_PSS[scheme]) is scheme


def test_rfc7427_a43_bytes_are_accepted_and_differ_from_der_only_by_the_default_trailer() -> None:
    assert len(RFC7427_A43_PSS_SHA256) == 72
    assert ai.decode(RFC7427_A43_PSS_SHA256) is SignatureScheme.RSA_PSS_SHA256
    ours = ai.encode(SignatureScheme.RSA_PSS_SHA256)
    assert RFC7427_A43_PSS_SHA256[-5:] == h("a3 03 02 01 01")
    assert ours[2:13] == RFC7427_A43_PSS_SHA256[2:13] and ours[15:] == RFC7427_A43_PSS_SHA256[15:-5]


def test_every_scheme_round_trips() -> None:
    for scheme, der in ai.table().items():
        assert ai.decode(der) is scheme


@pytest.mark.parametrize(("label", "der"), [
    ("pss without parameters (SHA-1 defaults)", h("300b 0609 2a86 4886 f70d 0101 0a")),
    ("pss with empty parameters (A.4.1)", h("300d 0609 2a86 4886 f70d 0101 0a30 00")),
    ("pss salt 20 with sha256", h("""3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201
        0500 a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0201 0500 a203 0201 14""")),
    ("pss mgf1 sha384 with sha256", h("""3041 0609 2a86 4886 f70d 0101 0a30 34a0 0f30 0d06 0960 8648 0165 0304 0201
        0500 a11c 301a 0609 2a86 4886 f70d 0101 0830 0d06 0960 8648 0165 0304 0202 0500 a203 0201 20""")),
    ("ecdsa with NULL parameters", h("300c 0608 2a86 48ce 3d04 0302 0500")),
    ("pkcs1 with an INTEGER parameter", h("300e 0609 2a86 4886 f70d 0101 0b02 0100")),
    ("md5WithRSAEncryption", h("300d 0609 2a86 4886 f70d 0101 0405 00")),
    ("ed25519", h("3005 0603 2b65 70")),
    ("truncated", h("300d 0609 2a86 4886")),
    ("trailing octets", h("300a 0608 2a86 48ce 3d04 0302 00")),
])
def test_refused_identifiers(label: str, der: bytes) -> None:
    with pytest.raises(ai.UnsupportedAlgorithmIdentifier):
        ai.decode(der)


def test_iana_hash_ids_and_notify_codec() -> None:
    assert [HashAlgorithmId.SHA1, HashAlgorithmId.SHA2_256, HashAlgorithmId.SHA2_384,
            HashAlgorithmId.SHA2_512] == [1, 2, 3, 4]
    data = encode_notify([HashAlgorithmId.SHA2_256, HashAlgorithmId.SHA2_512])
    assert data == h("0002 0004")
    assert decode_notify(h("0002 0004 0009")) == [2, 4, 9]  # unknown ids kept, ignored later
    with pytest.raises(ValueError):
        decode_notify(b"\x00\x02\x00")


def _key(router: Any, spec: Any) -> Any:
    return router.generate_keypair(spec).public_key()


@pytest.fixture(scope="module")
def keys(fips_router: Any) -> dict[str, Any]:
    return {"rsa": _key(fips_router, RSA_3072), "p256": _key(fips_router, P256), "p384": _key(fips_router, P384),
            "p521": _key(fips_router, P521)}


FIPS = Policy("fips")
DEFAULT = Policy("default")


# (key, peer's announced hash ids, expected scheme or None = no common scheme)
CHOICE_TABLE = [
    ("rsa", [1, 2, 3, 4], SignatureScheme.RSA_PSS_SHA256),
    ("rsa", [4, 3], SignatureScheme.RSA_PSS_SHA384),
    ("rsa", [4], SignatureScheme.RSA_PSS_SHA512),
    ("rsa", [1], None),  # SHA-1 only: never in fips
    ("p256", [2, 3, 4], SignatureScheme.ECDSA_SHA256),
    ("p384", [2, 3, 4], SignatureScheme.ECDSA_SHA384),
    ("p521", [2, 3, 4], SignatureScheme.ECDSA_SHA512),
    ("p384", [2], SignatureScheme.ECDSA_SHA256),  # falls back to what the peer can verify
    ("p256", [5, 1], None),  # Identity (RFC 8420) and SHA-1 only
    ("p256", [], None),
]


@pytest.mark.parametrize(("key", "peer", "expected"), CHOICE_TABLE)
def test_choose_scheme(keys: dict[str, Any], key: str, peer: list[int], expected: SignatureScheme | None) -> None:
    if expected is None:
        with pytest.raises(NoAcceptableSignatureScheme):
            choose_scheme(keys[key], peer, FIPS)
    else:
        assert choose_scheme(keys[key], peer, FIPS) is expected


def test_peer_hashes_as_hashalg(keys: dict[str, Any]) -> None:
    assert choose_scheme(keys["p384"], [HashAlg.SHA512, HashAlg.SHA384], FIPS) is SignatureScheme.ECDSA_SHA384


def test_choose_pkcs1_on_request_and_sha1_never_signed(keys: dict[str, Any]) -> None:
    assert choose_scheme(keys["rsa"], [2], FIPS, rsa_padding="pkcs1") is SignatureScheme.RSA_PKCS1_SHA256
    # SHA-1 signature generation is refused in both profiles (SP 800-131A r2 section 9)
    with pytest.raises(NoAcceptableSignatureScheme, match="peer announced SHA1"):
        choose_scheme(keys["p256"], [1], DEFAULT)


def test_announced_hashes_follow_the_profile() -> None:
    assert announced_hashes(FIPS) == [2, 3, 4]
    assert announced_hashes(DEFAULT) == [2, 3, 4, 1]  # SHA-1 verification: legacy peers, default only
