"""The Router's AEAD fast path keeps every check: gate, per-router policy admission, algorithm,
IV length and the SP 800-38D 8.3 meter (soft "rekey needed", hard limit refused BEFORE the call).

Probe for "before the cipher runs": a `str` plaintext makes the AES-GCM call itself fail with
TypeError; a refusal by the router surfaces as its own error instead, so the cipher never ran.
Each test first asserts the key is on the fast path (admitted context with a leased budget).
"""

from __future__ import annotations

import os

import pytest

from providers import (
    Encryption,
    Gate,
    InvalidInput,
    Meter,
    ModuleNotOperational,
    PolicyViolation,
    Router,
    SecretKey,
    UsageLimitExceeded,
    UsageLimits,
    WipedKey,
    open_router,
)

GCM16, GCM12 = Encryption.ENCR_AES_GCM_16, Encryption.ENCR_AES_GCM_12
IV = b"\x00" * 8


def _on_fast_path(r: Router, key: SecretKey) -> bool:
    ctx = key._ctx
    return ctx is not None and ctx.ticket is r._ticket and ctx.budget > 0


def _router(hard: int, fired: list[Meter] | None = None, gate: Gate | None = None) -> Router:
    limits = UsageLimits(on_soft=fired.append if fired is not None else None).with_limit("aes-gcm", hard)
    return open_router("fips", limits=limits, gate=gate)


def test_probe_reaches_the_cipher_when_nothing_refuses() -> None:
    r = _router(50)
    key = r.import_secret(os.urandom(20), "SK_ei")
    r.aead_seal(GCM16, key, IV, b"x", b"")
    assert _on_fast_path(r, key)
    with pytest.raises(TypeError):
        r.aead_seal(GCM16, key, IV, "not bytes", b"")  # type: ignore[arg-type]


def test_soft_and_hard_limits_on_the_fast_path() -> None:
    fired: list[Meter] = []
    r = _router(50, fired)  # soft threshold 45 (90 %)
    key = r.import_secret(os.urandom(20), "SK_ei")
    r.aead_seal(GCM16, key, IV, b"p", b"")
    assert _on_fast_path(r, key)
    meter = r.usage(key)
    assert meter is not None and meter.soft == 45
    for i in range(2, 45):
        ct = r.aead_seal(GCM16, key, i.to_bytes(8, "big"), b"p", b"a")
        assert r.aead_open(GCM16, key, i.to_bytes(8, "big"), ct, b"a") == b"p"
    assert meter.used == 44 and not meter.rekey_needed and not fired
    r.aead_seal(GCM16, key, IV, b"p", b"")  # the 45th seal reaches the soft threshold
    assert meter.used == 45 and meter.rekey_needed and fired == [meter]
    for _ in range(5):
        r.aead_seal(GCM16, key, IV, b"p", b"")
    assert meter.used == 50 and meter.remaining == 0 and fired == [meter]  # the callback fired once
    with pytest.raises(UsageLimitExceeded) as err:
        r.aead_seal(GCM16, key, IV, "not bytes", b"")
    assert err.value.limit == 50 and "SP 800-38D" in err.value.source
    with pytest.raises(UsageLimitExceeded):
        r.aead_seal(GCM16, key, IV, b"p", b"")
    assert meter.used == 50  # refused calls are not counted


def test_fast_path_count_is_exact_across_keys_and_reads() -> None:
    r = _router(10_000)
    keys = [r.import_secret(os.urandom(36), f"SK_e{i}") for i in range(3)]
    expected = [0, 0, 0]
    for n in range(900):
        i = (n * 7) % 3
        r.aead_seal(GCM16, keys[i], n.to_bytes(8, "big"), b"x" * (n % 40), b"")
        expected[i] += 1
        if n % 97 == 0:  # reading the meter settles nothing and loses nothing
            meter = r.usage(keys[i])
            assert meter is not None and meter.used == expected[i]
    assert [r.usage(k).used for k in keys] == expected  # type: ignore[union-attr]
    assert all(_on_fast_path(r, k) for k in keys)


def test_gate_error_refuses_an_admitted_key() -> None:
    gate = Gate()
    r = _router(1000, gate=gate)
    other = open_router("default", gate=gate)  # a second router on the same module gate
    key = r.import_secret(os.urandom(20), "SK_ei")
    key2 = other.import_secret(os.urandom(20), "SK_er")
    for _ in range(3):
        r.aead_seal(GCM16, key, IV, b"p", b"")
        other.aead_seal(GCM16, key2, IV, b"p", b"")
    assert _on_fast_path(r, key) and _on_fast_path(other, key2)
    gate.fail("KAT AES-GCM failed")
    for router, k in ((r, key), (other, key2)):
        with pytest.raises(ModuleNotOperational) as err:
            router.aead_seal(GCM16, k, IV, "not bytes", b"")  # type: ignore[arg-type]
        assert err.value.state == "ERROR"
        with pytest.raises(ModuleNotOperational):
            router.aead_open(GCM16, k, IV, b"\x00" * 17, b"")
        assert router.usage(k).used == 3  # type: ignore[union-attr]
    gate.begin_self_test("re-run")
    gate.operational()
    r.aead_seal(GCM16, key, IV, b"p", b"")
    assert r.usage(key).used == 4 and _on_fast_path(r, key)  # type: ignore[union-attr]


def test_admission_is_per_router_policy() -> None:
    lax, strict = open_router("default"), open_router("fips")
    chacha = lax.import_secret(os.urandom(36), "SK_ei")
    lax.aead_seal(Encryption.ENCR_CHACHA20_POLY1305, chacha, IV, b"p", b"")
    lax.aead_seal(Encryption.ENCR_CHACHA20_POLY1305, chacha, IV, b"p", b"")
    assert _on_fast_path(lax, chacha)
    with pytest.raises(PolicyViolation):  # admitted by `default` does not admit it under `fips`
        strict.aead_seal(Encryption.ENCR_CHACHA20_POLY1305, chacha, IV, "not bytes", b"")  # type: ignore[arg-type]
    gcm8 = lax.import_secret(os.urandom(20), "SK_ei")
    lax.aead_seal(Encryption.ENCR_AES_GCM_8, gcm8, IV, b"p", b"")
    with pytest.raises(PolicyViolation):  # 8-octet ICVs are `default` only
        strict.aead_seal(Encryption.ENCR_AES_GCM_8, gcm8, IV, b"p", b"")


def test_fast_path_checks_algorithm_and_iv_length() -> None:
    r = _router(1000)
    key = r.import_secret(os.urandom(20), "SK_ei")
    assert len(r.aead_seal(GCM16, key, IV, b"p" * 10, b"")) == 10 + 16
    assert _on_fast_path(r, key)
    assert len(r.aead_seal(GCM12, key, IV, b"p" * 10, b"")) == 10 + 12  # not the cached 16-octet ICV
    assert len(r.aead_seal(GCM16, key, IV, b"p" * 10, b"")) == 10 + 16
    before = r.usage(key).used  # type: ignore[union-attr]
    for bad in (b"\x00" * 7, b"\x00" * 12, b""):
        with pytest.raises(InvalidInput):
            r.aead_seal(GCM16, key, bad, b"p", b"")
    assert r.usage(key).used == before  # type: ignore[union-attr]


def test_wiped_key_leaves_the_fast_path() -> None:
    r = _router(1000)
    key = r.import_secret(os.urandom(20), "SK_ei")
    r.aead_seal(GCM16, key, IV, b"p", b"")
    r.aead_seal(GCM16, key, IV, b"p", b"")
    key.wipe()
    with pytest.raises(WipedKey):
        r.aead_seal(GCM16, key, IV, b"p", b"")
    assert r.usage(key).used == 2  # type: ignore[union-attr]


def test_released_context_keeps_the_count_and_the_limits() -> None:
    """An idle IKE SA drops its keys' contexts (release_context); the count leased to the dropped
    context is settled, the next use is admitted again, and the hard limit still holds across it."""
    fired: list[Meter] = []
    r = _router(20, fired)  # soft threshold 18
    key = r.import_secret(os.urandom(20), "SK_er")
    for i in range(10):
        ct = r.aead_seal(GCM16, key, i.to_bytes(8, "big"), b"p", b"a")
    assert _on_fast_path(r, key)
    key.release_context()
    assert key._ctx is None and not key.wiped
    meter = r.usage(key)
    assert meter is not None and meter.used == 10
    assert r.aead_open(GCM16, key, (9).to_bytes(8, "big"), ct, b"a") == b"p"  # rebuilt, same key
    for i in range(10, 20):
        r.aead_seal(GCM16, key, i.to_bytes(8, "big"), b"p", b"")
        if i == 14:
            key.release_context()
    assert meter.used == 20 and fired == [meter]
    with pytest.raises(UsageLimitExceeded):
        r.aead_seal(GCM16, key, IV, b"p", b"")
