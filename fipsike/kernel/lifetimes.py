"""SA lifetimes from the providers' usage-limit table (providers/limits.py).

The same table that meters IKE keys in the router sets each ESP SA's hard
byte/packet limits in the kernel; the admin's `ipsec-max-bytes` /
`ipsec-max-packets` can only lower them. Soft limits sit at the table's soft
fraction (90 %): the kernel's soft EXPIRE tells the engine to rekey, the hard
EXPIRE means the kernel already removed the SA.
"""

from __future__ import annotations

from typing import Any, Protocol

from fipsike.kernel.types import Lifetime
from providers.algorithms import Encryption
from providers.limits import XFRM_INF, KernelLifetime, soft_of

# RFC 4303 section 3.3.3: without ESN the 32-bit sequence number must not cycle,
# so an SA sends at most 2^32 - 1 packets whatever the cipher allows.
MAX_PACKETS_WITHOUT_ESN = 2**32 - 1


class LimitTable(Protocol):
    """providers.limits.UsageLimits (router.limits)."""

    def kernel_lifetime(self, alg: Encryption, admin_max_bytes: int | None = ...,
                        admin_max_packets: int | None = ..., strict: bool = ...) -> KernelLifetime: ...


def _none_if_inf(value: int) -> int | None:
    return None if value >= XFRM_INF else value


def sa_lifetime(limits: LimitTable, encryption: Encryption, *, esn: bool = False,
                admin_max_bytes: int | None = None, admin_max_packets: int | None = None,
                soft_seconds: int | None = None, hard_seconds: int | None = None) -> Lifetime:
    """The Lifetime for one ESP SA of `encryption`: cipher limit, lowered by the admin and by RFC 4303."""
    lt = limits.kernel_lifetime(encryption, admin_max_bytes, admin_max_packets)
    hard_packets, soft_packets = lt.hard_packets, lt.soft_packets
    source = lt.source
    if not esn and hard_packets > MAX_PACKETS_WITHOUT_ESN:
        hard_packets = MAX_PACKETS_WITHOUT_ESN
        soft_packets = soft_of(hard_packets)
        source = f"{source}; RFC 4303 3.3.3 (32-bit sequence numbers)"
    return Lifetime(
        soft_bytes=_none_if_inf(lt.soft_bytes), hard_bytes=_none_if_inf(lt.hard_bytes),
        soft_packets=_none_if_inf(soft_packets), hard_packets=_none_if_inf(hard_packets),
        soft_seconds=soft_seconds, hard_seconds=hard_seconds, source=source)


def describe(lifetime: Lifetime) -> dict[str, Any]:
    return {
        "soft_bytes": lifetime.soft_bytes, "hard_bytes": lifetime.hard_bytes,
        "soft_packets": lifetime.soft_packets, "hard_packets": lifetime.hard_packets,
        "soft_seconds": lifetime.soft_seconds, "hard_seconds": lifetime.hard_seconds,
        "source": lifetime.source,
    }
