"""libreswan proposal strings against the fips and default profiles (providers.policy)."""

from __future__ import annotations

import pytest

from compliance.proposals import (
    ADDKE_TRANSFORM_TYPE,
    AdditionalKeyExchange,
    ProposalRefused,
    ProposalSyntaxError,
    check_against_profile,
    parse_proposals,
    transforms,
)
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


# --- libreswan 5 additional key exchanges: ';addkeN=' (ipsec.conf(5) "Proposals"; RFC 9370) -------------
def test_addke_examples_parse_to_rfc_9370_transform_types() -> None:
    (p,) = parse_proposals("ike=aes_gcm256-sha2_384-ecp384;addke1=ml_kem_1024")
    assert p.ke == (KeyExchange.ECP_384,)
    assert p.addke == (AdditionalKeyExchange(1, (KeyExchange.ML_KEM_1024,)),)
    assert p.addke[0].transform_type == 6 and int(p.addke[0].methods[0]) == 37 and not p.addke[0].optional
    # the libreswan 5.x test configs' form: gaps between slots are allowed (RFC 9370 section 2.2)
    (p,) = parse_proposals("ike=aes128-sha2-dh31;addke2=ml_kem_768;addke4=modp2048;addke6=ml_kem_1024")
    assert p.ke == (KeyExchange.CURVE25519,)
    assert [(a.slot, a.transform_type, a.methods) for a in p.addke] == [
        (2, 7, (KeyExchange.ML_KEM_768,)), (4, 9, (KeyExchange.MODP_2048,)), (6, 11, (KeyExchange.ML_KEM_1024,))]
    assert p.additional(4) == AdditionalKeyExchange(4, (KeyExchange.MODP_2048,)) and p.additional(1) is None
    assert [int(a.methods[0]) for a in p.addke] == [36, 14, 37]


def test_addke_none_makes_it_optional_and_order_is_by_slot() -> None:
    (p,) = parse_proposals("ike=aes;dh20;addke3=mlkem768+none;addke1=none")
    assert [str(a) for a in p.addke] == ["ADDKE1=NONE", "ADDKE3=ML_KEM_768+NONE"]
    assert [a.optional for a in p.addke] == [True, True] and int(p.addke[0].methods[0]) == 0
    assert ADDKE_TRANSFORM_TYPE == {1: 6, 2: 7, 3: 8, 4: 9, 5: 10, 6: 11, 7: 12}
    # ESP (CREATE_CHILD_SA, RFC 9370 section 2.2.4) takes them too; several proposals each keep their own
    a, b = parse_proposals("esp=aes_gcm256;dh20;addke1=ml_kem_1024,aes_gcm128;dh19")
    assert a.additional(1) is not None and b.addke == ()
    (p,) = parse_proposals("ike=aes_gcm256-sha2_384;dh20")  # unchanged: no ADDKE, the default is empty
    assert p.addke == ()


def test_addke_under_the_profiles() -> None:
    fips_ok = "ike=aes_gcm256-sha2_384;dh20;addke1=ml_kem_1024;addke2=ml_kem_768+none"
    assert all(v.allowed for v in check_against_profile(fips_ok, "fips"))
    assert parse_proposals(fips_ok, profile="fips")[0].additional(2) is not None
    (v,) = check_against_profile("ike=aes_gcm256-sha2_384;dh20;addke1=ml_kem_768+x25519", "fips")
    assert [r.transform for r in v.refusals] == ["ADDKE1=CURVE25519"]
    (v,) = check_against_profile("ike=aes_gcm256-sha2_384;dh20;addke1=ml_kem_768+x25519", "default")
    assert v.allowed
    # the engine's entry point (fipsike.ike.proposals.from_libreswan) sees the same refusals
    assert transforms(parse_proposals("ike=aes;dh20;addke1=ml_kem_768+none")) >= {KeyExchange.ML_KEM_768,
                                                                                 KeyExchange.NONE}


@pytest.mark.parametrize(("line", "profile", "token", "column"), [
    ("ike=aes_gcm256-sha2_384;dh20;addke1=ml_kem_512", "fips", "ml_kem_512", 37),  # not in this module
    ("ike=aes_gcm256-sha2_384;dh20;addke1=ml_kem_768+x25519", "fips", "x25519", 48),
    ("ike=aes_gcm256-sha2_384;dh20;addke2=modp1536", "fips", "modp1536", 37),
    ("ike=aes_gcm256-sha2_384;dh20;addke1=modp1024", "default", "modp1024", 37),
    ("ike=aes-sha1;dh20;addke1=ml_kem_768", "fips", "PRF_HMAC_SHA1", 0),
])
def test_refused_addke_is_the_parsers_typed_error(line: str, profile: str, token: str, column: int) -> None:
    with pytest.raises(ProposalRefused) as info:
        parse_proposals(line, profile=profile)
    assert isinstance(info.value, ProposalSyntaxError)
    assert info.value.token == token and token in str(info.value) and f"{profile} profile" in str(info.value)
    assert info.value.column == column
    if column:
        assert line[column - 1:].startswith(token)
    parse_proposals(line)  # without a profile it is only syntax, and the syntax is fine


@pytest.mark.parametrize(("line", "column", "words"), [
    ("ike=aes;dh20;addke8=ml_kem_768", 14, "'addke8'"),
    ("ike=aes;dh20;addke0=ml_kem_768", 14, "'addke0'"),
    ("ike=aes;dh20;addke1=ml_kem_768;addke1=none", 32, "'addke1' given twice"),
    ("ike=aes;dh20;addke1=foo", 21, "'foo'"),
    ("ike=aes;dh20;addke1=ml_kem_768+sha2", 32, "'sha2'"),
    ("ike=aes;dh20;addke1=", 14, "'addke1=' names no key exchange"),
    ("ike=aes;dh20;addke1=ml_kem_768+", 32, "empty"),
    ("ike=aes;dh20;prf=sha2", 14, "';prf='"),
    ("ike=aes;dh20;kem=dh20", 14, "';kem='"),
    ("ike=aes;dh20;dh21", 14, "'dh21' a second time"),
    ("ike=aes;addke1=ml_kem_768;dh21", 27, "'dh21' after 'addkeN='"),
    ("ike=aes256gcm16-sha384-ecp384;addke1=ml_kem_1024", 5, "'aes256gcm16'"),  # strongSwan's spelling
])
def test_bad_addke_syntax_names_the_token(line: str, column: int, words: str) -> None:
    with pytest.raises(ProposalSyntaxError) as info:
        parse_proposals(line)
    assert words in str(info.value)
    assert info.value.column == column
    assert not isinstance(info.value, ProposalRefused)
