"""Usage limits: meters trip exactly at the numbers; kernel lifetimes come from the same table."""

from __future__ import annotations

import os

import pytest

from providers import (
    Encryption,
    LifetimeAboveLimit,
    Meter,
    Router,
    UsageLimitExceeded,
    UsageLimits,
    kernel_lifetime,
    open_router,
)
from providers.limits import LIMITS, XFRM_INF, CipherLimit, soft_of


def test_table_values_and_sources() -> None:
    assert LIMITS["aes-gcm"].hard == 2**32 and "SP 800-38D section 8.3" in LIMITS["aes-gcm"].source
    assert LIMITS["3des-cbc"].hard == 2**20 and "SP 800-67r2" in LIMITS["3des-cbc"].source
    assert LIMITS["aes-cbc"].hard == 2**35 and LIMITS["aes-cbc"].counter == "blocks"
    assert all(lim.source for lim in LIMITS.values())
    assert soft_of(2**64 - 1) < 2**64 - 1


def test_meter_trips_exactly() -> None:
    fired: list[Meter] = []
    m = Meter(CipherLimit("aes-gcm", "invocations", 10, 16, "test"), on_soft=fired.append)
    assert m.soft == 9
    for _ in range(8):
        m.charge()
    assert not m.rekey_needed and not fired
    m.charge()  # the 9th use reaches the soft threshold (90 %)
    assert m.rekey_needed and fired == [m]
    m.charge()  # the 10th use is the last one allowed
    assert m.used == 10 and fired == [m]  # the callback fires once
    with pytest.raises(UsageLimitExceeded) as err:
        m.charge()  # the 11th would cross the hard limit: refused, count unchanged
    assert m.used == 10 and err.value.limit == 10 and err.value.counter == "invocations"


def test_meter_refuses_a_charge_that_would_cross() -> None:
    m = Meter(CipherLimit("aes-cbc", "blocks", 100, 16, "test"))
    m.charge(99)
    with pytest.raises(UsageLimitExceeded):
        m.charge(2)
    m.charge(1)
    assert m.remaining == 0


def _tiny(family: str, hard: int, fired: list[Meter] | None = None) -> Router:
    limits = UsageLimits(on_soft=(fired.append if fired is not None else None)).with_limit(family, hard)
    return open_router("fips", limits=limits)


def test_router_meters_aead_seal_per_key() -> None:
    fired: list[Meter] = []
    r = _tiny("aes-gcm", 20, fired)
    key = r.import_secret(os.urandom(20), "SK_ei")
    other = r.import_secret(os.urandom(20), "SK_er")
    alg = Encryption.ENCR_AES_GCM_16
    for i in range(18):
        ct = r.aead_seal(alg, key, i.to_bytes(8, "big"), b"p", b"")
        assert r.aead_open(alg, key, i.to_bytes(8, "big"), ct, b"") == b"p"  # opens are not charged
    assert r.usage(key) is not None and r.usage(key).used == 18 and fired == [r.usage(key)]
    assert r.usage(key).kind == "SK_ei"
    r.aead_seal(alg, key, b"\0" * 8, b"p", b"")
    r.aead_seal(alg, key, b"\0" * 8, b"p", b"")
    with pytest.raises(UsageLimitExceeded):
        r.aead_seal(alg, key, b"\0" * 8, b"p", b"")
    assert r.usage(key).used == 20
    r.aead_seal(alg, other, b"\0" * 8, b"p", b"")  # another key has its own meter
    assert r.usage(other).used == 1


def test_router_meters_truncated_gcm_too() -> None:
    r = _tiny("aes-gcm", 3)
    key = r.import_secret(os.urandom(36), "SK_ei")
    for _ in range(3):
        r.aead_seal(Encryption.ENCR_AES_GCM_12, key, b"\0" * 8, b"p", b"")
    with pytest.raises(UsageLimitExceeded):
        r.aead_seal(Encryption.ENCR_AES_GCM_12, key, b"\0" * 8, b"p", b"")


def test_router_meters_cbc_blocks() -> None:
    r = _tiny("aes-cbc", 10)
    key = r.import_secret(os.urandom(16), "SK_ei")
    r.cbc_encrypt(Encryption.ENCR_AES_CBC, key, b"\0" * 16, b"\0" * 16 * 9)
    assert r.usage(key).rekey_needed
    with pytest.raises(UsageLimitExceeded):
        r.cbc_encrypt(Encryption.ENCR_AES_CBC, key, b"\0" * 16, b"\0" * 32)
    r.cbc_encrypt(Encryption.ENCR_AES_CBC, key, b"\0" * 16, b"\0" * 16)
    with pytest.raises(UsageLimitExceeded):
        r.cbc_encrypt(Encryption.ENCR_AES_CBC, key, b"\0" * 16, b"\0" * 16)
    assert r.cbc_decrypt(Encryption.ENCR_AES_CBC, key, b"\0" * 16, b"\0" * 16)  # decrypt not charged


def test_one_key_one_cipher() -> None:
    from providers import InvalidInput

    r = open_router("default")
    key = r.import_secret(os.urandom(36), "SK_ei")  # fits both AES-256-GCM and ChaCha20-Poly1305
    r.aead_seal(Encryption.ENCR_AES_GCM_16, key, b"\0" * 8, b"", b"")
    with pytest.raises(InvalidInput):
        r.aead_seal(Encryption.ENCR_CHACHA20_POLY1305, key, b"\0" * 8, b"", b"")


def test_kernel_lifetime_from_table() -> None:
    gcm = kernel_lifetime(Encryption.ENCR_AES_GCM_16)
    assert gcm.hard_packets == 2**32 and gcm.soft_packets == soft_of(2**32) and gcm.hard_bytes == XFRM_INF
    assert gcm.soft_bytes == XFRM_INF and "SP 800-38D" in gcm.source
    cbc = kernel_lifetime(Encryption.ENCR_AES_CBC)
    assert cbc.hard_bytes == 2**35 * 16 and cbc.hard_packets == XFRM_INF


def test_kernel_lifetime_admin_can_only_lower() -> None:
    low = kernel_lifetime(Encryption.ENCR_AES_GCM_16, admin_max_bytes=10_000_000, admin_max_packets=1000)
    assert (low.hard_bytes, low.hard_packets, low.soft_packets, low.soft_bytes) == (10_000_000, 1000, 900, 9_000_000)
    assert not low.clamped
    high = kernel_lifetime(Encryption.ENCR_AES_GCM_16, admin_max_packets=2**40)
    assert high.hard_packets == 2**32 and high.clamped
    with pytest.raises(LifetimeAboveLimit):
        kernel_lifetime(Encryption.ENCR_AES_GCM_16, admin_max_packets=2**40, strict=True)
    with pytest.raises(LifetimeAboveLimit):
        kernel_lifetime(Encryption.ENCR_AES_CBC, admin_max_bytes=2**40, strict=True)
    with pytest.raises(LifetimeAboveLimit):
        kernel_lifetime(Encryption.ENCR_AES_CBC, admin_max_bytes=0)


def test_router_limits_kernel_lifetime_uses_its_table() -> None:
    r = _tiny("aes-gcm", 1000)
    assert r.limits.kernel_lifetime(Encryption.ENCR_AES_GCM_16).hard_packets == 1000
    assert r.limits.table()[0]["hard"] == 1000
