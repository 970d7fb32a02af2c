"""libreswan proposal strings against the fips and default profiles (providers.policy)."""

from __future__ import annotations

import pytest

from compliance.proposals import ProposalSyntaxError, check_against_profile, parse_proposals
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf

# (proposal line, allowed in fips, allowed in default)
TABLE = [
    ("ike=aes_gcm256-sha2_384;dh20", True, True),
    ("ike=aes_gcm128-sha2_256;dh19", True, True),
    ("ike=aes256-sha2_256-modp3072", True, True),
    ("ike=aes-sha2;dh19", True, True),
    ("ike=aes256-sha2_512;dh21", True, True),
    ("ike=aes_gcm256-sha2_512;mlkem768", True, True),
    ("ike=aes_gcm_b256-sha2_256;dh19", True, True),  # 12-octet ICV: SP 800-38D 5.2.1.2
    ("ike=aes_gcm_a256-sha2_256;dh19", False, True),  # 8-octet ICV
    ("ike=3des-sha1;modp1024", False, False),
    ("ike=aes-sha1;modp2048", False, True),
    ("ike=aes-sha2;modp1536", False, True),
    ("ike=aes-sha2;modp1024", False, False),  # OpenSSL 4 refuses 1024-bit DH keygen (providers.policy)
    ("ike=aes-md5;modp2048", False, False),
    ("ike=des-sha2;dh14", False, False),
    ("ike=chacha20_poly1305-sha2;dh31", False, True),
    ("ike=aes_gcm256-sha2;x25519", False, True),
    ("ike=aes-aes_xcbc;dh14", False, False),
    ("ike=aes-sha2;modp768", False, False),
    ("ike=aes-sha2;dh24", False, False),
    ("esp=aes_gcm128", True, True),
    ("esp=aes_gcm256-null", True, True),
    ("esp=aes256-sha2_512", True, True),
    ("esp=aes-sha2;dh19", True, True),
    ("esp=aes-sha1", False, True),
    ("esp=aes-null", False, False),  # CBC without integrity
    ("esp=3des-sha2", False, False),
    ("esp=aes_ccm", False, False),
    ("esp=chacha20_poly1305", False, True),
    ("ah=sha2_256", True, True),
    ("ah=md5", False, False),
]


@pytest.mark.parametrize(("line", "fips", "default"), TABLE)
def test_allow_deny_table(line: str, fips: bool, default: bool) -> None:
    for profile, expected in (("fips", fips), ("default", default)):
        verdicts = check_against_profile(line, profile)
        got = all(v.allowed for v in verdicts)
        assert got is expected, f"{line} under {profile}: {[r.reason for v in verdicts for r in v.refusals]}"
        if not expected:
            assert all(r.reason for v in verdicts for r in v.refusals)


def test_multiple_proposals_are_judged_one_by_one() -> None:
    verdicts = check_against_profile("ike=aes_gcm256-sha2_384;dh20,3des-sha1;modp1024, aes256-sha2_256-modp3072",
                                     "fips")
    assert [v.allowed for v in verdicts] == [True, False, True]
    refused = {r.transform for r in verdicts[1].refusals}
    assert {"ENCR_3DES", "PRF_HMAC_SHA1", "AUTH_HMAC_SHA1_96", "MODP_1024"} <= refused


def test_mapping_to_enums() -> None:
    (p,) = parse_proposals("ike=aes_gcm256-sha2_384;dh20")
    assert [(c.alg, c.key_bits) for c in p.ciphers] == [(Encryption.ENCR_AES_GCM_16, 256)]
    assert p.prfs == (Prf.PRF_HMAC_SHA2_384,) and p.integrity == () and p.ke == (KeyExchange.ECP_384,)
    (p,) = parse_proposals("ike=aes-sha2;dh19")
    assert [(c.alg, c.key_bits) for c in p.ciphers] == [(Encryption.ENCR_AES_CBC, 256), (Encryption.ENCR_AES_CBC, 128)]
    assert p.prfs == (Prf.PRF_HMAC_SHA2_256,) and p.integrity == (Integrity.AUTH_HMAC_SHA2_256_128,)
    (p,) = parse_proposals("aes256-sha2_256-modp3072", "ike")
    assert p.ke == (KeyExchange.MODP_3072,) and p.ciphers[0].key_bits == 256
    (p,) = parse_proposals("esp=aes_gcm128")
    assert p.protocol == "esp" and p.integrity == (Integrity.NONE,) and p.ke == ()
    (p,) = parse_proposals("esp=aes256-sha2_512+sha2_256;dh19+dh20")
    assert p.integrity == (Integrity.AUTH_HMAC_SHA2_512_256, Integrity.AUTH_HMAC_SHA2_256_128)
    assert p.ke == (KeyExchange.ECP_256, KeyExchange.ECP_384)
    (p,) = parse_proposals("phase2alg=aes_gcm_16_256")
    assert p.protocol == "esp" and p.ciphers[0].alg is Encryption.ENCR_AES_GCM_16


@pytest.mark.parametrize(("line", "column", "words"), [
    ("ike=foo-sha1", 5, "unknown encryption"),
    ("ike=aes-sha1;dh99", 14, "unknown key exchange"),
    ("ike=aes-sha1-dh14-x", 19, "too many"),
    ("esp=aes_gcm-sha1", 13, "AEAD"),
    ("ike=aes,,aes", 9, "empty"),
    ("ike=aes512-sha2", 5, "unknown encryption"),
    ("ike=aes_gcm-sha2;none", 18, "needs a key exchange"),
    ("ike=", 0, "empty"),
])
def test_bad_syntax_is_a_typed_error_with_a_column(line: str, column: int, words: str) -> None:
    with pytest.raises(ProposalSyntaxError) as info:
        parse_proposals(line)
    assert words in str(info.value)
    if column:
        assert info.value.column == column


def test_bare_value_needs_a_protocol() -> None:
    with pytest.raises(ProposalSyntaxError):
        parse_proposals("aes-sha2")
