"""The allowlist, table-driven: every algorithm of the API in both profiles, through a Router."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers import (
    Encryption,
    HashAlg,
    Integrity,
    KeyExchange,
    KeySpec,
    PolicyViolation,
    Prf,
    Router,
    SignatureScheme,
    open_router,
)
from providers import policy as pol

# (algorithm, fips, default): the project's decisions, written out so a change is a visible diff.
ENCRYPTION = [
    (Encryption.ENCR_AES_GCM_16, 128, True, True), (Encryption.ENCR_AES_GCM_16, 256, True, True),
    (Encryption.ENCR_AES_GCM_16, 192, False, False),
    (Encryption.ENCR_AES_GCM_12, 128, True, True), (Encryption.ENCR_AES_GCM_12, 256, True, True),
    (Encryption.ENCR_AES_GCM_8, 128, False, True), (Encryption.ENCR_AES_GCM_8, 256, False, True),
    (Encryption.ENCR_AES_CBC, 128, True, True), (Encryption.ENCR_AES_CBC, 192, True, True),
    (Encryption.ENCR_AES_CBC, 256, True, True),
    (Encryption.ENCR_CHACHA20_POLY1305, 256, False, True),
    (Encryption.ENCR_3DES, 192, False, False), (Encryption.ENCR_DES, 64, False, False),
    (Encryption.ENCR_NULL, 0, False, False), (Encryption.ENCR_AES_CTR, 128, False, False),
    (Encryption.ENCR_AES_CCM_8, 128, False, False), (Encryption.ENCR_AES_CCM_12, 128, False, False),
    (Encryption.ENCR_AES_CCM_16, 128, False, False),
]
INTEGRITY = [
    (Integrity.AUTH_HMAC_SHA2_256_128, True, True), (Integrity.AUTH_HMAC_SHA2_384_192, True, True),
    (Integrity.AUTH_HMAC_SHA2_512_256, True, True), (Integrity.AUTH_HMAC_SHA1_96, False, True),
    (Integrity.AUTH_HMAC_MD5_96, False, False), (Integrity.AUTH_AES_XCBC_96, False, False),
]
PRF = [
    (Prf.PRF_HMAC_SHA2_256, True, True), (Prf.PRF_HMAC_SHA2_384, True, True), (Prf.PRF_HMAC_SHA2_512, True, True),
    (Prf.PRF_HMAC_SHA1, False, True), (Prf.PRF_HMAC_MD5, False, False), (Prf.PRF_AES128_XCBC, False, False),
    (Prf.PRF_AES128_CMAC, False, False),
]
KE = [
    (KeyExchange.MODP_2048, True, True), (KeyExchange.MODP_3072, True, True), (KeyExchange.MODP_4096, True, True),
    (KeyExchange.MODP_6144, True, True), (KeyExchange.MODP_8192, True, True),
    (KeyExchange.ECP_256, True, True), (KeyExchange.ECP_384, True, True), (KeyExchange.ECP_521, True, True),
    (KeyExchange.ML_KEM_768, True, True), (KeyExchange.ML_KEM_1024, True, True),
    (KeyExchange.ML_KEM_512, False, False),
    (KeyExchange.CURVE25519, False, True), (KeyExchange.CURVE448, False, True),
    (KeyExchange.MODP_1536, False, True), (KeyExchange.MODP_1024, False, False), (KeyExchange.MODP_768, False, False),
    (KeyExchange.MODP_1024_160_POS, False, False), (KeyExchange.MODP_2048_224_POS, False, False),
    (KeyExchange.MODP_2048_256_POS, False, False),
]
# (scheme, sign fips, sign default, verify fips, verify default)
SIGNATURES = [(s, True, True, True, True) for s in SignatureScheme if s.hash is not HashAlg.SHA1] + [
    (SignatureScheme.RSA_PKCS1_SHA1, False, False, False, True),
    (SignatureScheme.ECDSA_SHA1, False, False, False, True),
]
HASHES = [(a, True, True) for a in HashAlg]  # SHA-1 stays for NAT_DETECTION/CERTREQ (RFC 7296 2.23, 3.7)


def _routers() -> dict[str, Router]:
    return {"fips": open_router("fips"), "default": open_router("default")}


def test_every_api_algorithm_has_a_row() -> None:
    assert {a for a, *_ in ENCRYPTION} == set(Encryption)
    assert {a for a, *_ in INTEGRITY} == set(Integrity) - {Integrity.NONE}
    assert {a for a, *_ in PRF} == set(Prf)
    assert {a for a, *_ in KE} == set(KeyExchange) - {KeyExchange.NONE}
    assert {s for s, *_ in SIGNATURES} == set(SignatureScheme)


PROFILES = ["fips", "default"]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("alg,bits,fips,default", ENCRYPTION, ids=lambda v: str(getattr(v, "name", v)))
def test_encryption(alg: Encryption, bits: int, fips: bool, default: bool, profile: str) -> None:
    allowed = fips if profile == "fips" else default
    r = open_router(profile)
    assert r.policy.allows_encryption(alg, bits) is allowed
    key = r.import_secret(os.urandom(bits // 8 + alg.salt_size), "ESP_ENCR_I")

    def call() -> bytes:
        if alg.is_aead:
            return r.aead_seal(alg, key, b"\0" * 8, b"x" * 16, b"")
        return r.cbc_encrypt(alg, key, b"\0" * alg.block_size, b"x" * 16)

    if allowed:
        assert call()
    else:
        with pytest.raises(PolicyViolation) as err:
            call()
        assert err.value.profile == profile and err.value.rule
        assert alg.name in err.value.algorithm


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("alg,fips,default", INTEGRITY, ids=lambda v: str(getattr(v, "name", v)))
def test_integrity(alg: Integrity, fips: bool, default: bool, profile: str) -> None:
    r = open_router(profile)
    key = r.import_secret(os.urandom(32), "SK_ai")
    if fips if profile == "fips" else default:
        icv = r.integrity_icv(alg, key, b"data")
        assert len(icv) == alg.icv_size
        r.integrity_verify(alg, key, b"data", icv)
    else:
        with pytest.raises(PolicyViolation):
            r.integrity_icv(alg, key, b"data")
        with pytest.raises(PolicyViolation):
            r.integrity_verify(alg, key, b"data", b"\0" * 12)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("alg,fips,default", PRF, ids=lambda v: str(getattr(v, "name", v)))
@pytest.mark.parametrize("call", ["prf", "skeyseed", "prf_plus", "rekey_skeyseed"])
def test_prf(alg: Prf, fips: bool, default: bool, profile: str, call: str) -> None:
    r = open_router(profile)
    key = r.import_secret(os.urandom(32), "SK_d")
    calls = {
        "prf": lambda: r.prf(alg, key, b"x"),
        "skeyseed": lambda: r.skeyseed(alg, b"n" * 16, b"m" * 16, key),
        "prf_plus": lambda: r.prf_plus(alg, key, b"s", [("a", 16)]),
        "rekey_skeyseed": lambda: r.rekey_skeyseed(alg, key, key, b"n", b"m"),
    }
    if fips if profile == "fips" else default:
        assert calls[call]()
    else:
        with pytest.raises(PolicyViolation):
            calls[call]()


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("group,fips,default", KE, ids=lambda v: str(getattr(v, "name", v)))
def test_key_exchange(group: KeyExchange, fips: bool, default: bool, profile: str) -> None:
    r = open_router(profile)
    if fips if profile == "fips" else default:
        a = r.ke_generate(group)
        if group.is_kem:
            ct, s1 = r.ke_encapsulate(group, a.public)
            s2 = r.ke_derive(a, ct)
        else:
            b = r.ke_generate(group)
            s1, s2 = r.ke_derive(a, b.public), r.ke_derive(b, a.public)
        assert s1._bytes() == s2._bytes() and len(s1) >= 32
    else:
        with pytest.raises(PolicyViolation):
            r.ke_generate(group)
        with pytest.raises(PolicyViolation):
            r.ke_encapsulate(group, b"\0" * 32)


def _key(r: Router, kind: str):  # type: ignore[no-untyped-def]
    spec = KeySpec("rsa", 2048) if kind == "rsa" else KeySpec("ec", 256, "secp256r1")
    return r.generate_keypair(spec)


@pytest.mark.parametrize("scheme,sf,sd,vf,vd", SIGNATURES, ids=lambda v: str(getattr(v, "name", v)))
def test_signatures(scheme: SignatureScheme, sf: bool, sd: bool, vf: bool, vd: bool) -> None:
    other = open_router("default")
    key = _key(other, "ec" if scheme.family == "ecdsa" else "rsa")
    reference_sig = other.openssl.sign(key, scheme, b"m")  # made below the policy: the verify side is under test
    for profile, sign_ok, verify_ok in (("fips", sf, vf), ("default", sd, vd)):
        r = _routers()[profile]
        if sign_ok:
            assert r.verify(key.public_key(), scheme, b"m", r.sign(key, scheme, b"m"))
        else:
            with pytest.raises(PolicyViolation):
                r.sign(key, scheme, b"m")
        if verify_ok:
            assert r.verify(key.public_key(), scheme, b"m", reference_sig) is True
        else:
            with pytest.raises(PolicyViolation):
                r.verify(key.public_key(), scheme, b"m", reference_sig)


@pytest.mark.parametrize("alg,fips,default", HASHES, ids=lambda v: str(getattr(v, "name", v)))
def test_digest(alg: HashAlg, fips: bool, default: bool) -> None:
    for profile in ("fips", "default"):
        assert len(_routers()[profile].digest(alg, b"abc")) == alg.digest_size


def test_rsa_below_2048_refused_everywhere() -> None:
    small = rsa.generate_private_key(65537, 1024)
    for profile, r in _routers().items():
        with pytest.raises(PolicyViolation) as err:
            r.import_private_key(small)
        assert "2048" in err.value.rule and err.value.profile == profile
        with pytest.raises(PolicyViolation):
            r.verify(small.public_key(), SignatureScheme.RSA_PSS_SHA256, b"m", b"\0" * 128)
        with pytest.raises(PolicyViolation):
            r.generate_keypair(KeySpec("rsa", 1024))


def test_unapproved_curve_refused() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    for r in _routers().values():
        with pytest.raises(PolicyViolation):
            r.verify(key.public_key(), SignatureScheme.ECDSA_SHA256, b"m", b"\x30\x00")


def test_signature_hash_for_certificates_is_sha2_only() -> None:
    for r in _routers().values():
        with pytest.raises(PolicyViolation):
            r.policy.check_signature_hash(HashAlg.SHA1)
        r.policy.check_signature_hash(HashAlg.SHA256)


def test_table_is_data_with_references() -> None:
    rows = pol.table()
    assert len(rows) == len(pol.ENTRIES) > 60
    names = {(r["kind"], r["name"]) for r in rows}
    assert ("encryption", "ENCR_AES_GCM_16") in names and ("key-exchange", "ML_KEM_768") in names
    assert ("signature-verify", "RSA_PKCS1_SHA1") in names
    for row in rows:
        assert row["reference"], row
        assert set(row["allowed"]) == {"fips", "default"}
        # nothing is allowed in fips that default refuses
        assert not (row["allowed"]["fips"] and not row["allowed"]["default"]), row
    refs = " ".join(r["reference"] for r in rows)
    for doc in ("SP 800-131A r2", "SP 800-56A r3", "SP 800-56C", "FIPS 186-5", "FIPS 203", "SP 800-38D",
                "RFC 8221", "RFC 8247"):
        assert doc in refs, doc


def test_unknown_profile() -> None:
    with pytest.raises(ValueError):
        open_router("lax")
