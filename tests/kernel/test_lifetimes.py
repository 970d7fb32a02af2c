"""SA lifetimes come from the providers' usage-limit table; the admin can lower, never raise."""

from __future__ import annotations

from fipsike.kernel.lifetimes import MAX_PACKETS_WITHOUT_ESN, sa_lifetime
from providers import Encryption, UsageLimits, open_router


def test_gcm_packets_limited_by_sp800_38d_and_rfc4303() -> None:
    limits = open_router("fips").limits
    esn = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16, esn=True)
    assert esn.hard_packets == 2**32 and esn.hard_bytes is None
    assert esn.soft_packets is not None and esn.soft_packets < esn.hard_packets
    assert "800-38D" in esn.source
    plain = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16)
    assert plain.hard_packets == MAX_PACKETS_WITHOUT_ESN and "RFC 4303" in plain.source


def test_cbc_limit_is_in_bytes() -> None:
    lt = sa_lifetime(UsageLimits(), Encryption.ENCR_AES_CBC, esn=True)
    assert lt.hard_bytes == 2**35 * 16 and lt.hard_packets is None


def test_admin_can_lower_but_not_raise() -> None:
    limits = UsageLimits()
    low = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16, admin_max_packets=1000, admin_max_bytes=10**6)
    assert (low.hard_packets, low.hard_bytes) == (1000, 10**6)
    assert low.soft_packets == 900 and low.soft_bytes == 900_000
    high = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16, esn=True, admin_max_packets=2**40)
    assert high.hard_packets == 2**32


def test_tiny_table_sets_tiny_lifetimes() -> None:
    limits = UsageLimits().with_limit("aes-gcm", 10)
    lt = sa_lifetime(limits, Encryption.ENCR_AES_GCM_16)
    assert (lt.soft_packets, lt.hard_packets) == (9, 10)
