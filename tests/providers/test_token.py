"""The PKCS#11 provider on a real SoftHSM2 token (fixture in tests/conftest.py)."""

from __future__ import annotations

import datetime
import os
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, Mechanism

from providers import (
    AuthenticationTagInvalid,
    Encryption,
    HashAlg,
    Integrity,
    KeyNotFound,
    KeySpec,
    PinUnavailable,
    Pkcs11Config,
    PolicyViolation,
    Prf,
    Router,
    SignatureScheme,
    UnsupportedOperation,
    open_router,
)
from providers.pkcs11.provider import Pkcs11Provider, TokenSecretKey, token_session
from tests.providers.vectors import cavp, h

pytestmark = pytest.mark.softhsm

SCHEMES_RSA = [SignatureScheme.RSA_PSS_SHA256, SignatureScheme.RSA_PSS_SHA384, SignatureScheme.RSA_PSS_SHA512,
               SignatureScheme.RSA_PKCS1_SHA256, SignatureScheme.RSA_PKCS1_SHA384, SignatureScheme.RSA_PKCS1_SHA512]
SCHEMES_EC = [SignatureScheme.ECDSA_SHA256, SignatureScheme.ECDSA_SHA384, SignatureScheme.ECDSA_SHA512]


def test_one_login_shared(pkcs11_config: Pkcs11Config, router_hsm: Router) -> None:
    again = open_router("default", pkcs11=pkcs11_config)
    assert router_hsm.pkcs11 is not None and again.pkcs11 is not None
    assert router_hsm.pkcs11._ts is again.pkcs11._ts is token_session(pkcs11_config)
    # the reason for the cache: a second login in the same process is refused by PKCS#11
    with pytest.raises(pkcs11.exceptions.UserAlreadyLoggedIn):
        token_session(pkcs11_config).token.open(user_pin=pkcs11_config.read_pin())


def test_info_and_mechanisms(hsm_provider: Pkcs11Provider) -> None:
    info = hsm_provider.info()
    assert info.name == "pkcs11:fipsike-test" and "SoftHSM" in info.version
    assert "ECDSA" in info.mechanisms and "SHA256_RSA_PKCS_PSS" in info.mechanisms


def test_missing_mechanism_named(hsm_provider: Pkcs11Provider) -> None:
    assert not hsm_provider.has(Mechanism.ECDSA_SHA256)  # SoftHSM2 2.6 has raw CKM_ECDSA only
    with pytest.raises(UnsupportedOperation, match="ECDSA_SHA256"):
        hsm_provider.require(Mechanism.ECDSA_SHA256, "test")
    with pytest.raises(UnsupportedOperation, match="CKM_IKE_PRF_DERIVE"):
        hsm_provider.skeyseed(Prf.PRF_HMAC_SHA2_256, b"n", b"m", hsm_provider.generate_secret(32, "g^ir"))


@pytest.mark.parametrize("spec,schemes", [
    (KeySpec("rsa", 2048), SCHEMES_RSA),
    (KeySpec("ec", 256, "secp256r1"), SCHEMES_EC),
    (KeySpec("ec", 384, "secp384r1"), SCHEMES_EC),
    (KeySpec("ec", 521, "secp521r1"), SCHEMES_EC),
], ids=lambda v: str(v) if isinstance(v, KeySpec) else "")
def test_generate_on_token_and_sign(spec: KeySpec, schemes: list[SignatureScheme], router_hsm: Router) -> None:
    key = router_hsm.generate_keypair(spec, label=f"gen-{spec}", key_id=os.urandom(8), to_token=True)
    assert key.owner == "pkcs11:fipsike-test" and key.spec == spec
    for scheme in schemes:
        sig = router_hsm.sign(key, scheme, b"message")
        assert router_hsm.verify(key.public_key(), scheme, b"message", sig) is True
        assert router_hsm.verify(key.public_key(), scheme, b"messagf", sig) is False
    if spec.kind == "ec":
        raw = router_hsm.sign(key, SignatureScheme.ECDSA_SHA256, b"m", raw=True)
        assert len(raw) == 2 * ((spec.size + 7) // 8)
        assert router_hsm.verify(key.public_key(), SignatureScheme.ECDSA_SHA256, b"m", raw, raw=True)
    _assert_unreadable(key._impl)


def _assert_unreadable(obj: Any) -> None:
    assert obj[Attribute.SENSITIVE] is True and obj[Attribute.EXTRACTABLE] is False
    secret_attr = Attribute.PRIVATE_EXPONENT if obj[Attribute.KEY_TYPE] == pkcs11.KeyType.RSA else Attribute.VALUE
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        obj[secret_attr]
    with pytest.raises(pkcs11.exceptions.AttributeReadOnly):
        obj[Attribute.EXTRACTABLE] = True


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_import_then_find(kind: str, router_hsm: Router) -> None:
    private: Any = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP384R1())
    key_id = os.urandom(6)
    label = f"imported-{kind}-{key_id.hex()}"
    key = router_hsm.import_private_key(private, label=label, key_id=key_id, to_token=True)
    assert key.owner == "pkcs11:fipsike-test" and key.key_id == key_id
    _assert_unreadable(key._impl)
    pct = "".join(f"%{b:02x}" for b in key_id)
    for ref in (f"pkcs11:token=fipsike-test;id={pct};type=private", f"pkcs11:object={label}", label):
        found = router_hsm.load_private_key(ref)
        assert found.key_id == key_id and found.label == label
        scheme = SignatureScheme.RSA_PSS_SHA256 if kind == "rsa" else SignatureScheme.ECDSA_SHA384
        assert router_hsm.verify(private.public_key(), scheme, b"x", router_hsm.sign(found, scheme, b"x"))
    by_public = router_hsm.find_private_key(private.public_key())
    assert by_public.key_id == key_id


def test_lookup_refusals(router_hsm: Router) -> None:
    with pytest.raises(KeyNotFound):
        router_hsm.load_private_key("pkcs11:object=no-such-key")
    with pytest.raises(KeyNotFound):
        router_hsm.load_private_key("pkcs11:token=another-token;object=x")
    with pytest.raises(KeyNotFound, match="module-path"):
        router_hsm.load_private_key("pkcs11:object=x?module-path=/tmp/evil.so")
    with pytest.raises(KeyNotFound, match="vendor"):
        router_hsm.load_private_key("pkcs11:object=x;x-magic=1")
    with pytest.raises(KeyNotFound):
        router_hsm.find_private_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(UnsupportedOperation):
        open_router("fips").load_private_key("pkcs11:object=x")


def test_token_refuses_small_rsa_by_policy(router_hsm: Router) -> None:
    with pytest.raises(PolicyViolation):
        router_hsm.import_private_key(rsa.generate_private_key(65537, 1024), to_token=True)


def test_pin_sources(tmp_path: Any) -> None:
    with pytest.raises(PinUnavailable):
        Pkcs11Config(token_label="x", pin_file=str(tmp_path / "missing")).read_pin()
    with pytest.raises(PinUnavailable):
        Pkcs11Config(token_label="x", pin_env="FIPSIKE_TEST_NO_SUCH_PIN").read_pin()
    os.environ["FIPSIKE_TEST_PIN"] = "4321"
    try:
        assert Pkcs11Config(token_label="x", pin_env="FIPSIKE_TEST_PIN").read_pin() == "4321"
    finally:
        del os.environ["FIPSIKE_TEST_PIN"]
    with pytest.raises(ValueError):
        Pkcs11Config(token_label="x")


def test_unknown_token(pkcs11_config: Pkcs11Config) -> None:
    cfg = Pkcs11Config(module_path=pkcs11_config.module_path, token_label="no-such-token",
                       pin_file=pkcs11_config.pin_file)
    with pytest.raises(KeyNotFound):
        open_router("fips", pkcs11=cfg)


# --- certificates signed by a token key -----------------------------------------------------
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.mark.parametrize("spec,pss", [(KeySpec("ec", 256, "secp256r1"), False), (KeySpec("rsa", 2048), True),
                                      (KeySpec("rsa", 2048), False)], ids=str)
def test_issue_certificate_and_crl_with_token_key(spec: KeySpec, pss: bool, router_hsm: Router) -> None:
    key = router_hsm.generate_keypair(spec, label="ca", key_id=os.urandom(4), to_token=True)
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name("token CA")).issuer_name(_name("token CA"))
               .public_key(key.public_key()).serial_number(7).not_valid_before(now)
               .not_valid_after(now + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    cert = router_hsm.issue_certificate(builder, key, HashAlg.SHA256, rsa_pss=pss)
    cert.verify_directly_issued_by(cert)  # raises if the spliced signature is wrong
    crl_builder = (x509.CertificateRevocationListBuilder().issuer_name(_name("token CA")).last_update(now)
                   .next_update(now + datetime.timedelta(days=1)))
    crl = router_hsm.sign_crl(crl_builder, key, HashAlg.SHA384, rsa_pss=pss)
    assert crl.is_signature_valid(key.public_key())
    with pytest.raises(PolicyViolation):
        router_hsm.issue_certificate(builder, key, HashAlg.SHA1)


# --- symmetric known answers on the token ---------------------------------------------------------
GCM_BY_TAG = {128: Encryption.ENCR_AES_GCM_16, 96: Encryption.ENCR_AES_GCM_12, 64: Encryption.ENCR_AES_GCM_8}


@pytest.mark.parametrize("bits", [128, 256])
def test_token_aes_gcm_cavp(bits: int, hsm_provider: Pkcs11Provider) -> None:
    """CAVP GCM on the token, 96-bit IVs and ESP tag sizes; every FAIL record must be refused."""
    cases = [r for r in cavp(f"ciphers/AES/GCM/gcmDecrypt{bits}.rsp")
             if r["ivlen"] == "96" and int(r["taglen"]) in GCM_BY_TAG][:150]
    fails = 0
    for r in cases:
        alg = GCM_BY_TAG[int(r["taglen"])]
        iv = h(r["iv"])
        key = hsm_provider.import_aead_secret(h(r["key"]) + iv[:4], "kat")
        assert isinstance(key, TokenSecretKey)
        sealed = h(r["ct"]) + h(r["tag"])
        if "fail" in r:
            with pytest.raises(AuthenticationTagInvalid):
                hsm_provider.aead_open(alg, key, iv[4:], sealed, h(r["aad"]))
            fails += 1
        else:
            assert hsm_provider.aead_open(alg, key, iv[4:], sealed, h(r["aad"])) == h(r["pt"])
            assert hsm_provider.aead_seal(alg, key, iv[4:], h(r["pt"]), h(r["aad"])) == sealed
        key.wipe()
    assert fails > 10


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_token_aes_cbc_cavp(bits: int, hsm_provider: Pkcs11Provider) -> None:
    for r in cavp(f"ciphers/AES/CBC/CBCMMT{bits}.rsp"):
        key = hsm_provider.import_secret(h(r["key"]), "kat", key_type="aes")
        pt, ct, iv = h(r["plaintext"]), h(r["ciphertext"]), h(r["iv"])
        if r["direction"] == "encrypt":
            assert hsm_provider.cbc_encrypt(Encryption.ENCR_AES_CBC, key, iv, pt) == ct
        else:
            assert hsm_provider.cbc_decrypt(Encryption.ENCR_AES_CBC, key, iv, ct) == pt
        key.wipe()


@pytest.mark.parametrize("alg,name", [(HashAlg.SHA256, "sha256"), (HashAlg.SHA384, "sha384"),
                                      (HashAlg.SHA512, "sha512")])
def test_token_hmac_rfc4231(alg: HashAlg, name: str, hsm_provider: Pkcs11Provider) -> None:
    """SoftHSM2 refuses HMAC keys shorter than the hash (CKR_KEY_SIZE_RANGE): those RFC 4231
    cases (2: 4-octet key, and the 20/25-octet keys under SHA-384/512) are filtered out."""
    prf = {HashAlg.SHA256: Prf.PRF_HMAC_SHA2_256, HashAlg.SHA384: Prf.PRF_HMAC_SHA2_384,
           HashAlg.SHA512: Prf.PRF_HMAC_SHA2_512}[alg]
    used = 0
    for r in cavp(f"HMAC/rfc-4231-{name}.txt"):
        if len(h(r["key"])) < alg.digest_size:
            continue
        key = hsm_provider.import_secret(h(r["key"]), "kat")
        assert hsm_provider.prf(prf, key, h(r["msg"])) == h(r["md"])
        key.wipe()
        used += 1
    assert used >= 2
    k = hsm_provider.import_secret(b"\x0b" * 32, "SK_ai")
    icv = hsm_provider.integrity_icv(Integrity.AUTH_HMAC_SHA2_256_128, k, b"data")
    hsm_provider.integrity_verify(Integrity.AUTH_HMAC_SHA2_256_128, k, b"data", icv)
    with pytest.raises(AuthenticationTagInvalid):
        hsm_provider.integrity_verify(Integrity.AUTH_HMAC_SHA2_256_128, k, b"datb", icv)


def test_token_secrets_stay_on_token(hsm_provider: Pkcs11Provider, router_hsm: Router) -> None:
    key = hsm_provider.generate_secret(32, "SK_d")
    assert key._object[Attribute.SENSITIVE] is True
    with pytest.raises(UnsupportedOperation):
        key._bytes()
    with pytest.raises(UnsupportedOperation):
        router_hsm.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"", b"")
    assert "len=32" in repr(key)
    key.wipe()
    assert key.wiped


def test_token_provider_is_a_provider(hsm_provider: Pkcs11Provider) -> None:
    from providers import Provider

    assert isinstance(hsm_provider, Provider)
    assert len(hsm_provider.random(32)) == 32
    assert hsm_provider.digest(HashAlg.SHA256, b"abc").hex().startswith("ba7816bf")  # FIPS 180-4 example


def test_token_rsa_pkcs1_siggen_cavp(router_hsm: Router, hsm_provider: Pkcs11Provider) -> None:
    """CAVP SigGen15 (RSASSA-PKCS1-v1_5 is deterministic): the CAVP key goes onto the token and
    the token's signatures must equal the file's, byte for byte; the OpenSSL provider too.
    Filtered: moduli below 2048 (policy) and SHA-1/SHA-224 (not signing schemes here)."""
    from cryptography.hazmat.primitives.asymmetric.rsa import (
        RSAPrivateNumbers,
        RSAPublicNumbers,
        rsa_crt_dmp1,
        rsa_crt_dmq1,
        rsa_crt_iqmp,
        rsa_recover_prime_factors,
    )

    n = e = d = 0
    keys: dict[int, Any] = {}
    checked = 0
    for r in cavp("asymmetric/RSA/FIPS_186-2/SigGen15_186-2.txt"):
        if "n" in r:
            n = int(r["n"], 16)
        if "e" in r and "d" in r:
            e, d = int(r["e"], 16), int(r["d"], 16)
        alg = {"SHA256": "SHA256", "SHA384": "SHA384", "SHA512": "SHA512"}.get(r.get("shaalg", ""))
        if n.bit_length() < 2048 or alg is None:
            continue
        if n not in keys:
            p, q = rsa_recover_prime_factors(n, e, d)
            private = RSAPrivateNumbers(p, q, d, rsa_crt_dmp1(d, p), rsa_crt_dmq1(d, q), rsa_crt_iqmp(p, q),
                                        RSAPublicNumbers(e, n)).private_key()
            keys[n] = (router_hsm.import_private_key(private, label="cavp-siggen", key_id=os.urandom(4),
                                                     to_token=True),
                       router_hsm.import_private_key(private))
        token_key, soft_key = keys[n]
        scheme = SignatureScheme[f"RSA_PKCS1_{alg}"]
        assert router_hsm.sign(token_key, scheme, h(r["msg"])) == h(r["s"])
        assert router_hsm.sign(soft_key, scheme, h(r["msg"])) == h(r["s"])
        checked += 1
    for token_key, _ in keys.values():
        hsm_provider.destroy_key(token_key)
    assert len(keys) == 3 and checked >= 45  # 2048, 3072, 4096
