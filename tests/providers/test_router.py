"""The Router: gate, routing, key exchange validation, the audited exit, certificates."""

from __future__ import annotations

import datetime
import os
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from providers import (
    Encryption,
    Gate,
    HashAlg,
    InvalidKeyShare,
    KeyExchange,
    KeySpec,
    ModuleNotOperational,
    ModuleState,
    PolicyViolation,
    Prf,
    Provider,
    Router,
    SignatureScheme,
    open_router,
)
from providers.modp import PRIMES
from providers.openssl import OpenSSLProvider, jacobi
from tests.providers.vectors import cavp


def test_protocol_conformance(router_fips: Router) -> None:
    assert isinstance(router_fips, Provider)
    assert isinstance(OpenSSLProvider(), Provider)


def test_info(router_fips: Router) -> None:
    info = router_fips.info()
    assert info.detail["profile"] == "fips" and info.version.startswith("OpenSSL")
    assert isinstance(info.fips, bool)
    assert router_fips.infos()[0].name == "openssl"


def test_gate_states(router_fips: Router) -> None:
    gate = router_fips.gate
    assert gate.state is ModuleState.POWER_ON
    assert len(router_fips.random(16)) == 16  # allowed before the self-tests
    gate.begin_self_test()
    assert router_fips.digest(HashAlg.SHA256, b"abc")  # the self-tests need the primitives
    gate.operational()
    assert gate.state is ModuleState.OPERATIONAL
    key = router_fips.import_secret(os.urandom(20), "SK_ei")
    router_fips.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x", b"")  # warms the hot path
    gate.fail("KAT AES-GCM failed")
    calls = [
        lambda: router_fips.random(8),
        lambda: router_fips.digest(HashAlg.SHA256, b""),
        lambda: router_fips.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x", b""),  # even the hot path
        lambda: router_fips.aead_open(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x" * 17, b""),
        lambda: router_fips.prf(Prf.PRF_HMAC_SHA2_256, key, b""),
        lambda: router_fips.ke_generate(KeyExchange.ECP_256),
        lambda: router_fips.generate_keypair(KeySpec("ec", 256, "secp256r1")),
        lambda: router_fips.keyed_fingerprint(b"x"),
        lambda: router_fips.release_esp_key(key, "x"),
        lambda: router_fips.generate_secret(16, "x"),
        lambda: router_fips.cookie_secret(),
    ]
    for call in calls:
        with pytest.raises(ModuleNotOperational) as err:
            call()
        assert err.value.state == "ERROR" and "KAT AES-GCM" in err.value.reason
    with pytest.raises(ModuleNotOperational):
        gate.operational()  # ERROR is left only by running the self-tests again
    gate.begin_self_test("re-run")
    gate.operational()
    assert router_fips.random(4)


def test_gate_listeners_and_sharing() -> None:
    gate = Gate()
    seen: list[tuple[ModuleState, str]] = []
    gate.on_change(lambda s, r: seen.append((s, r)))
    a, b = open_router("fips", gate=gate), open_router("default", gate=gate)
    gate.fail("integrity")
    for r in (a, b):
        with pytest.raises(ModuleNotOperational):
            r.random(1)
    assert seen == [(ModuleState.ERROR, "integrity")]


def test_release_esp_key_only_for_child_sa_keys(router_fips: Router) -> None:
    for kind in ("ESP_ENCR_I", "ESP_INTEG_R", "AH_INTEG_I", "KEYMAT"):
        k = router_fips.import_secret(b"\x01" * 16, kind)
        assert router_fips.release_esp_key(k, "xfrm") == b"\x01" * 16
    for kind in ("SKEYSEED", "SK_d", "SK_ei", "g^ir", "cookie-secret"):
        with pytest.raises(PolicyViolation):
            router_fips.release_esp_key(router_fips.import_secret(b"\x01" * 16, kind), "xfrm")


def test_keyed_fingerprint(router_fips: Router, router_default: Router) -> None:
    fp = router_fips.keyed_fingerprint(b"key material")
    assert re.fullmatch(r"[0-9a-f]{16}", fp)
    assert fp == router_default.keyed_fingerprint(b"key material")  # per process, not per router
    assert fp != router_fips.keyed_fingerprint(b"key materiaL")
    assert fp != OpenSSLProvider().prf(Prf.PRF_HMAC_SHA2_256, OpenSSLProvider().import_secret(b"", "x"),
                                        b"key material")[:8].hex()


def test_prf_plus_split(router_fips: Router) -> None:
    key = router_fips.import_secret(b"k" * 32, "SKEYSEED")
    parts = router_fips.prf_plus(Prf.PRF_HMAC_SHA2_256, key, b"seed", [("SK_d", 32), ("SK_ai", 32), ("SK_ei", 20)])
    (whole,) = router_fips.prf_plus(Prf.PRF_HMAC_SHA2_256, key, b"seed", [("all", 84)])
    assert b"".join(p._bytes() for p in parts) == whole._bytes()
    assert [p.kind for p in parts] == ["SK_d", "SK_ai", "SK_ei"]


# --- key exchange -----------------------------------------------------------------------------
def test_modp_primes_match_rfc3526() -> None:
    records = list(cavp("asymmetric/DH/rfc3526.txt"))
    from_file = {int(r["p"], 16) for r in records}
    assert {PRIMES[g] for g in (5, 14, 15, 16, 17, 18)} == from_file
    for p in PRIMES.values():
        assert p % 8 == 7 and pow(2, (p - 1) // 2, p) == 1  # 2 generates the order-q subgroup


def test_jacobi_matches_euler_criterion() -> None:
    p = PRIMES[14]
    for y in (2, 3, 5, p - 2, p - 1, 12345678901234567890):
        assert (jacobi(y, p) == 1) == (pow(y, (p - 1) // 2, p) == 1)


@pytest.mark.parametrize("group", [KeyExchange.MODP_2048, KeyExchange.MODP_3072])
def test_modp_peer_validation(group: KeyExchange, router_fips: Router) -> None:
    p = PRIMES[group.value]
    n = (p.bit_length() + 7) // 8
    share = router_fips.ke_generate(group)
    assert len(share.public) == n
    for bad in (0, 1, p - 1, p, p + 1, p - 2):  # p - 2 is outside the prime-order subgroup
        with pytest.raises(InvalidKeyShare):
            router_fips.ke_derive(share, (bad % (1 << (8 * n))).to_bytes(n, "big"))
    with pytest.raises(InvalidKeyShare):
        router_fips.ke_derive(share, b"\x02" * (n - 1))


@pytest.mark.parametrize("group", [KeyExchange.ECP_256, KeyExchange.ECP_384, KeyExchange.ECP_521])
def test_ecp_peer_validation(group: KeyExchange, router_fips: Router) -> None:
    share = router_fips.ke_generate(group)
    peer = router_fips.ke_generate(group)
    bad = bytearray(peer.public)
    bad[-1] ^= 1  # y changed: off the curve
    for value in (bytes(bad), peer.public[:-1], b"\0" * len(peer.public)):
        with pytest.raises(InvalidKeyShare):
            router_fips.ke_derive(share, value)


def test_x25519_rfc7748_and_low_order(router_default: Router) -> None:
    # RFC 7748 section 6.1
    alice = router_default.ke_import_private(
        KeyExchange.CURVE25519, bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    assert alice.public == bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    shared = router_default.ke_derive(
        alice, bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"))
    assert shared._bytes() == bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    with pytest.raises(InvalidKeyShare):
        router_default.ke_derive(router_default.ke_generate(KeyExchange.CURVE25519), b"\0" * 32)


@pytest.mark.parametrize("group,ek,ct", [(KeyExchange.ML_KEM_768, 1184, 1088), (KeyExchange.ML_KEM_1024, 1568, 1568)])
def test_mlkem_lengths(group: KeyExchange, ek: int, ct: int, router_fips: Router) -> None:
    share = router_fips.ke_generate(group)
    assert len(share.public) == ek
    ciphertext, s1 = router_fips.ke_encapsulate(group, share.public)
    assert len(ciphertext) == ct and len(s1) == 32
    assert router_fips.ke_derive(share, ciphertext)._bytes() == s1._bytes()
    with pytest.raises(InvalidKeyShare):
        router_fips.ke_encapsulate(group, share.public[:-1])
    with pytest.raises(InvalidKeyShare):
        router_fips.ke_derive(share, ciphertext[:-1])
    with pytest.raises(InvalidKeyShare):
        router_fips.ke_encapsulate(group, b"\xff" * ek)  # coefficients >= q (FIPS 203 7.2 modulus check)


# --- signatures and certificates --------------------------------------------------------------------
def test_sign_routes_to_owner(router_fips: Router) -> None:
    key = router_fips.generate_keypair(KeySpec("ec", 256, "secp256r1"))
    assert key.owner == "openssl"
    sig = router_fips.sign(key, SignatureScheme.ECDSA_SHA256, b"m")
    assert router_fips.verify(key.public_key(), SignatureScheme.ECDSA_SHA256, b"m", sig)
    with pytest.raises(PolicyViolation):
        router_fips.sign(key, SignatureScheme.RSA_PSS_SHA256, b"m")  # scheme does not fit the key


def test_pss_salt_length_bounds(router_fips: Router) -> None:
    key = router_fips.generate_keypair(KeySpec("rsa", 2048))
    sig = router_fips.sign(key, SignatureScheme.RSA_PSS_SHA256, b"m")
    assert router_fips.verify(key.public_key(), SignatureScheme.RSA_PSS_SHA256, b"m", sig, salt_length=32)
    assert not router_fips.verify(key.public_key(), SignatureScheme.RSA_PSS_SHA256, b"m", sig, salt_length=20)
    with pytest.raises(PolicyViolation):
        router_fips.verify(key.public_key(), SignatureScheme.RSA_PSS_SHA256, b"m", sig, salt_length=33)


def test_issue_certificate_software_key(router_fips: Router) -> None:
    key = router_fips.generate_keypair(KeySpec("ec", 384, "secp384r1"))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "soft CA")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1)))
    cert = router_fips.issue_certificate(builder, key, HashAlg.SHA384)
    cert.verify_directly_issued_by(cert)
    assert cert.signature_hash_algorithm is not None and cert.signature_hash_algorithm.name == "sha384"


def test_a_key_cannot_be_relabelled_to_leave_as_an_esp_key(router_fips: Router) -> None:
    sk_d = router_fips.import_secret(b"\x02" * 32, "SK_d")
    with pytest.raises(AttributeError):
        sk_d.kind = "ESP_ENCR_I"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sk_d.owner = "pkcs11:x"  # type: ignore[misc]
    with pytest.raises(PolicyViolation):
        router_fips.release_esp_key(sk_d, "xfrm")


def test_shared_key_auth_matches_rfc7296_2_15(router_fips: Router) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as chmac

    def prf(k: bytes, d: bytes) -> bytes:
        h = chmac.HMAC(k, hashes.SHA256())
        h.update(d)
        return h.finalize()

    secret = b"\x07" * 32
    key = router_fips.import_secret(secret, "SK_pi")
    octets = b"message octets | Nr | prf(SK_pi, IDi')"
    expected = prf(prf(secret, b"Key Pad for IKEv2"), octets)
    assert router_fips.shared_key_auth(Prf.PRF_HMAC_SHA2_256, key, octets) == expected
    assert router_fips.verify_shared_key_auth(Prf.PRF_HMAC_SHA2_256, key, octets, expected)
    assert not router_fips.verify_shared_key_auth(Prf.PRF_HMAC_SHA2_256, key, octets, expected[:-1] + b"\x00")
    assert router_fips.equal(b"abc", b"abc") and not router_fips.equal(b"abc", b"abd")
