"""Pre-shared keys in the module (RFC 7296 2.15): imported as handles, the AUTH value computed by the
provider that holds the key, checked in constant time, the FIPS length floor applied at use, and
the secret never in a repr, an exception or the audit log."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from providers import Prf, ProviderError, open_router
from providers.errors import InvalidInput, ModuleNotOperational, PolicyViolation, UnsupportedOperation
from providers.openssl import OpenSSLProvider
from providers.policy import psk_min_octets
from tests.providers.test_secrecy import assert_absent

CANARY_PSK = b"CANARY-psk-for-the-provider-tests-91f0e2d4c6b8a7"
HASHES = {Prf.PRF_HMAC_SHA2_256: hashes.SHA256, Prf.PRF_HMAC_SHA2_384: hashes.SHA384,
          Prf.PRF_HMAC_SHA2_512: hashes.SHA512}


def _prf(alg: Prf, key: bytes, data: bytes) -> bytes:
    m = chmac.HMAC(key, HASHES[alg]())
    m.update(data)
    return m.finalize()


@pytest.mark.parametrize("alg", list(HASHES))
def test_psk_auth_is_rfc7296_2_15_with_the_negotiated_prf(alg: Prf) -> None:
    r = open_router("fips")
    psk = r.import_psk(CANARY_PSK, "gw")
    octets = b"RealMessage1 | NonceRData | prf(SK_pi, IDi')"
    want = _prf(alg, _prf(alg, CANARY_PSK, b"Key Pad for IKEv2"), octets)
    assert r.shared_key_auth(alg, psk, octets) == want
    assert OpenSSLProvider().shared_key_auth(alg, psk, octets) == want  # the provider computes it itself
    assert r.verify_shared_key_auth(alg, psk, octets, want)
    for bad in (want[:-1] + bytes([want[-1] ^ 1]), want[:-1], b"", want + b"\x00"):
        assert not r.verify_shared_key_auth(alg, psk, octets, bad)


def test_the_handle_never_shows_the_secret_and_the_audit_log_names_only_length_and_label(
        caplog: pytest.LogCaptureFixture) -> None:
    r = open_router("fips")
    with caplog.at_level(logging.DEBUG):
        psk = r.import_psk(CANARY_PSK, "conn-gw")
    assert psk.kind == "PSK" and len(psk) == len(CANARY_PSK)
    assert_absent(repr(psk) + str(psk) + caplog.text, CANARY_PSK)
    assert "conn-gw" in caplog.text and str(len(CANARY_PSK)) in caplog.text
    with pytest.raises(TypeError):
        __import__("pickle").dumps(psk)
    # a PSK can never leave through the ESP exit
    with pytest.raises(PolicyViolation) as e:
        r.release_esp_key(psk, "xfrm")
    assert_absent(str(e.value), CANARY_PSK)
    psk.wipe()
    with pytest.raises(ProviderError) as w:
        r.shared_key_auth(Prf.PRF_HMAC_SHA2_256, psk, b"x")
    assert_absent(str(w.value), CANARY_PSK)


def test_fips_refuses_a_psk_below_half_the_prf_output_at_use() -> None:
    assert [psk_min_octets(p) for p in (Prf.PRF_HMAC_SHA2_256, Prf.PRF_HMAC_SHA2_384, Prf.PRF_HMAC_SHA2_512)] == \
        [16, 24, 32]
    fips, default = open_router("fips"), open_router("default")
    short = b"sixteen-octets!!"
    for alg, ok in ((Prf.PRF_HMAC_SHA2_256, True), (Prf.PRF_HMAC_SHA2_384, False), (Prf.PRF_HMAC_SHA2_512, False)):
        key = fips.import_psk(short, "short")
        if ok:
            assert fips.shared_key_auth(alg, key, b"x")
        else:
            with pytest.raises(PolicyViolation, match="16-octet PSK") as e:
                fips.shared_key_auth(alg, key, b"x")
            assert "sixteen" not in str(e.value)
        assert default.shared_key_auth(alg, default.import_psk(short, "short"), b"x")
    # SK_pi / SK_pr for NULL auth are not PSKs: the floor is for kind PSK only
    assert fips.shared_key_auth(Prf.PRF_HMAC_SHA2_512, fips.import_secret(b"k" * 16, "SK_pi"), b"x")
    with pytest.raises(InvalidInput):
        fips.import_psk(b"", "empty")


def test_the_gate_and_the_token_refuse() -> None:
    r = open_router("fips")
    psk = r.import_psk(CANARY_PSK, "gw")
    r.gate.fail("test")
    with pytest.raises(ModuleNotOperational):
        r.import_psk(CANARY_PSK, "gw")
    with pytest.raises(ModuleNotOperational):
        r.shared_key_auth(Prf.PRF_HMAC_SHA2_256, psk, b"x")
    # the PKCS#11 provider does not hold PSKs: its ops say so without touching a token
    from providers.pkcs11.provider import Pkcs11Provider

    token = Pkcs11Provider.__new__(Pkcs11Provider)
    with pytest.raises(UnsupportedOperation):
        token.import_psk(CANARY_PSK, "gw")
    with pytest.raises(UnsupportedOperation) as e:
        token.shared_key_auth(Prf.PRF_HMAC_SHA2_256, psk, b"x")
    assert_absent(str(e.value), CANARY_PSK)
