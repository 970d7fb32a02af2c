"""Handles never show material; wipe works; planted canary keys never reach an exception or a log."""

from __future__ import annotations

import base64
import logging
import os
import traceback
from collections.abc import Callable

import pytest

from providers import (
    Encryption,
    Integrity,
    KeyExchange,
    KeySpec,
    Pkcs11Config,
    Prf,
    ProviderError,
    Router,
    SecretKey,
    UsageLimits,
    WipedKey,
    open_router,
)
from providers.openssl import GcmContext
from providers.pkcs11.uri import parse_uri

CANARY_KEY = bytes.fromhex("c0ffee15deadbeef0badf00d5eedcafe") + b"\x11\x22\x33\x44"  # AES-128 || salt
CANARY_32 = b"\xa5" * 3 + b"CANARY-32-octets-of-secret!" + b"\x5a\x5a"
CANARY_PIN = "91827364"


def encodings(secret: bytes) -> list[str]:
    """Every way a secret could appear in text."""
    forms = [secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode(),
             base64.urlsafe_b64encode(secret).decode(), secret.decode("latin-1"), repr(secret)[2:-1]]
    # also any 12-octet window, so a truncated or partial dump is caught too
    for i in range(0, len(secret) - 12 + 1, 4):
        part = secret[i:i + 12]
        forms += [part.hex(), part.hex().upper(), part.decode("latin-1")]
    return forms


def assert_absent(text: str, *secrets: bytes) -> None:
    for secret in secrets:
        for form in encodings(secret):
            assert form not in text, f"secret leaked in: {text[:200]!r}"


def test_repr_and_str_never_show_material() -> None:
    r = open_router("fips")
    key = r.import_secret(CANARY_KEY, "SK_ei")
    r.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x", b"")  # builds the cached context
    priv = r.generate_keypair(KeySpec("ec", 256, "secp256r1"), label="lbl")
    share = r.ke_generate(KeyExchange.ECP_256)
    texts = [repr(key), str(key), repr(priv), str(priv), repr(share), str(share), repr(key.meter),
             repr(key._ctx), str(r), repr(r.gate)]
    assert isinstance(key._ctx, GcmContext)
    for t in texts:
        assert_absent(t, CANARY_KEY)
    assert "len=20" in repr(key) and "SK_ei" in str(key)
    scalar = priv._impl.private_numbers().private_value.to_bytes(32, "big")
    assert_absent(repr(priv) + str(priv), scalar)


def test_config_and_uri_never_show_pins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pin_file = tmp_path / "pin"
    pin_file.write_text(CANARY_PIN)
    cfg = Pkcs11Config(token_label="t", pin_file=str(pin_file))
    assert CANARY_PIN not in repr(cfg)
    uri = parse_uri(f"pkcs11:token=t;object=k?pin-value={CANARY_PIN}")
    assert uri.pin_value == CANARY_PIN
    assert CANARY_PIN not in repr(uri) and CANARY_PIN not in str(uri)


def test_handles_do_not_pickle() -> None:
    import pickle

    key = SecretKey(CANARY_KEY, "SK_ei", "openssl")
    with pytest.raises(TypeError):
        pickle.dumps(key)


def test_wipe() -> None:
    r = open_router("fips")
    key = r.import_secret(CANARY_KEY, "SK_ei")
    r.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x", b"")
    material = key._material
    key.wipe()
    assert key.wiped and key._ctx is None and "wiped" in repr(key)
    assert material is not None and bytes(material) == b"\0" * len(CANARY_KEY)  # zeroed in place
    with pytest.raises(WipedKey):
        r.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"x", b"")  # not even from the cache
    with pytest.raises(WipedKey):
        r.prf(Prf.PRF_HMAC_SHA2_256, key, b"x")
    share = r.ke_generate(KeyExchange.ECP_256)
    peer = r.ke_generate(KeyExchange.ECP_256)
    share.wipe()
    with pytest.raises(ProviderError):
        r.ke_derive(share, peer.public)


def _failures(r: Router) -> list[Callable[[], object]]:
    aead = r.import_secret(CANARY_KEY, "SK_ei")
    k32 = r.import_secret(CANARY_32, "SK_ai")
    small = UsageLimits().with_limit("aes-gcm", 1)
    tiny = open_router("fips", limits=small)
    tiny_key = tiny.import_secret(CANARY_KEY, "SK_ei")
    tiny.aead_seal(Encryption.ENCR_AES_GCM_16, tiny_key, b"\0" * 8, b"", b"")
    wiped = r.import_secret(CANARY_32, "SK_d")
    wiped.wipe()
    return [
        lambda: r.aead_seal(Encryption.ENCR_AES_GCM_16, aead, b"short", b"x", b""),  # bad IV
        lambda: r.aead_open(Encryption.ENCR_AES_GCM_16, aead, b"\0" * 8, b"\0" * 40, b""),  # bad tag
        lambda: r.aead_seal(Encryption.ENCR_AES_GCM_8, aead, b"\0" * 8, b"x", b""),  # policy
        lambda: r.aead_seal(Encryption.ENCR_AES_GCM_16, k32, b"\0" * 8, b"x", b""),  # policy: key size
        lambda: r.cbc_encrypt(Encryption.ENCR_AES_CBC, k32, b"\0" * 16, b"odd"),  # whole blocks
        lambda: r.cbc_encrypt(Encryption.ENCR_AES_CBC, aead, b"\0" * 16, b"\0" * 16),  # key size
        lambda: r.integrity_verify(Integrity.AUTH_HMAC_SHA2_256_128, k32, b"d", b"\0" * 16),
        lambda: r.integrity_icv(Integrity.AUTH_HMAC_SHA1_96, k32, b"d"),
        lambda: r.prf(Prf.PRF_HMAC_MD5, k32, b"d"),
        lambda: r.release_esp_key(k32, "test"),  # not an ESP key kind
        lambda: r.ke_derive(r.ke_generate(KeyExchange.ECP_256), CANARY_32 * 2),  # not on the curve
        lambda: tiny.aead_seal(Encryption.ENCR_AES_GCM_16, tiny_key, b"\0" * 8, b"", b""),  # limit
        lambda: r.prf(Prf.PRF_HMAC_SHA2_256, wiped, b"d"),
        lambda: r.prf_plus(Prf.PRF_HMAC_SHA2_256, k32, b"s", [("x", 10_000)]),
    ]


def test_canary_never_in_exceptions_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = open_router("fips")
    failures = _failures(r)
    for fail in failures:
        with pytest.raises(ProviderError) as err:
            fail()
        text = "".join(traceback.format_exception(err.value))
        assert_absent(text + repr(err.value.args) + str(vars(err.value)), CANARY_KEY, CANARY_32)
    # an audited release logs kind and length only
    esp = r.import_secret(CANARY_KEY, "ESP_ENCR_I")
    assert r.release_esp_key(esp, "xfrm add") == CANARY_KEY
    assert any(rec.name == "fipsike.audit" for rec in caplog.records)
    for rec in caplog.records:
        assert_absent(rec.getMessage() + repr(rec.args) + repr(vars(rec)), CANARY_KEY, CANARY_32)


def test_audit_record_content(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fipsike.audit")
    r = open_router("fips")
    esp = r.import_secret(os.urandom(36), "ESP_ENCR_R")
    r.release_esp_key(esp, "xfrm add 10.0.0.1->10.0.0.2 spi 0x1234")
    (rec,) = [x for x in caplog.records if x.name == "fipsike.audit"]
    assert rec.key_kind == "ESP_ENCR_R" and rec.key_octets == 36  # type: ignore[attr-defined]
    assert "ESP_ENCR_R" in rec.getMessage() and "36" in rec.getMessage()
