"""Per-cipher usage limits, the meters that enforce them, and kernel SA lifetimes.

One table (`LIMITS`) says how much one key of each cipher may process and where
that number comes from. The Router meters every AEAD and CBC call against it
(a `Meter` on the key handle) and refuses the call that would cross the hard
limit (`UsageLimitExceeded`); at the soft threshold it raises the meter's
"rekey needed" flag and calls its callback once, so the IKE engine rekeys in
time. The kernel does the same for ESP with the byte/packet lifetimes that
`kernel_lifetime()` derives from the same table; an administrator may lower
them, never raise them.

Why these numbers:
- AES-GCM: at most 2^32 invocations of the authenticated encryption function
  per key (SP 800-38D section 8.3). For ESP one packet is one invocation.
- AES-CBC: SP 800-38A sets no limit, so we take the birthday bound. CBC's
  IND-CPA advantage is about sigma^2 / 2^128 for sigma blocks (Bellare, Desai,
  Jokipii, Rogaway, FOCS 1997); keeping it below 2^-57, the target of
  draft-irtf-cfrg-aead-limits section 3, gives sigma <= 2^35.5. We use 2^35
  blocks (512 GiB) per key.
- 3DES: 2^20 64-bit blocks per key bundle (SP 800-67r2 section 3.3). Kept for
  completeness; no profile allows 3DES.
- ChaCha20-Poly1305: the 64-bit explicit IV is a counter (RFC 7634 section 2),
  so 2^64 - 1 invocations.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from providers.algorithms import Encryption
from providers.errors import ProviderError, UsageLimitExceeded

XFRM_INF: Final = 2**64 - 1  # "no limit" in struct xfrm_lifetime_cfg (linux/xfrm.h)
SOFT_FRACTION: Final = 0.9  # rekey at 90 % of the hard limit (kernel soft lifetime, meter flag)


class LifetimeAboveLimit(ProviderError):
    """An administrator asked for a lifetime above the cipher's usage limit."""


@dataclass(frozen=True)
class CipherLimit:
    """How much one key of `family` may process, counted in `counter` units."""

    family: str  # "aes-gcm", "aes-cbc", "3des-cbc", "chacha20-poly1305"
    counter: str  # "invocations" or "blocks"
    hard: int
    block_size: int  # octets per block (for converting blocks to bytes)
    source: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "counter": self.counter, "hard": self.hard,
                "soft": soft_of(self.hard), "block_size": self.block_size, "source": self.source,
                "note": self.note}


LIMITS: Final[dict[str, CipherLimit]] = {
    "aes-gcm": CipherLimit(
        "aes-gcm", "invocations", 2**32, 16, "NIST SP 800-38D section 8.3",
        "total invocations of the authenticated encryption function per key"),
    "aes-cbc": CipherLimit(
        "aes-cbc", "blocks", 2**35, 16,
        "birthday bound sigma^2/2^128 <= 2^-57 (Bellare et al. 1997; draft-irtf-cfrg-aead-limits section 3)",
        "SP 800-38A gives no limit; 2^35 blocks = 512 GiB per key"),
    "3des-cbc": CipherLimit(
        "3des-cbc", "blocks", 2**20, 8, "NIST SP 800-67r2 section 3.3",
        "2^20 64-bit blocks per key bundle; refused by every profile"),
    "chacha20-poly1305": CipherLimit(
        "chacha20-poly1305", "invocations", 2**64 - 1, 64, "RFC 7634 section 2 (64-bit IV counter)"),
}

FAMILY: Final[dict[Encryption, str]] = {
    Encryption.ENCR_AES_GCM_8: "aes-gcm",
    Encryption.ENCR_AES_GCM_12: "aes-gcm",
    Encryption.ENCR_AES_GCM_16: "aes-gcm",
    Encryption.ENCR_AES_CBC: "aes-cbc",
    Encryption.ENCR_3DES: "3des-cbc",
    Encryption.ENCR_CHACHA20_POLY1305: "chacha20-poly1305",
}


def soft_of(hard: int, fraction: float = SOFT_FRACTION) -> int:
    # integer arithmetic: float rounding at 2^64 would land above the hard limit
    return hard * round(fraction * 1000) // 1000


def table() -> list[dict[str, Any]]:
    return [lim.as_dict() for lim in LIMITS.values()]


class Meter:
    """Counts one key's use against its cipher's limit.

    `charge(n)` adds n units (invocations or blocks). It raises
    UsageLimitExceeded before the count would pass `hard`, leaving the count
    unchanged: the operation must not run. Reaching `soft` sets
    `rekey_needed` and calls `on_soft` once.

    The Router's hot path does not call charge(): `lease(ctx)` hands the key's
    cached context a budget of uses that ends one short of `soft`, the hot path
    counts it down, and `used` adds the consumed part of the lease. When the
    budget runs out the call takes the checked path, which settles the lease
    (`sync`) and charges normally, so the soft and hard limits trip at the same
    numbers as without the lease.
    """

    __slots__ = ("limit", "_used", "soft", "hard", "rekey_needed", "on_soft", "algorithm", "kind", "bound",
                 "_lock", "_lease_ctx", "_granted")

    def __init__(self, limit: CipherLimit, algorithm: str = "", on_soft: Callable[[Meter], None] | None = None,
                 soft_fraction: float = SOFT_FRACTION) -> None:
        self.limit = limit
        self.algorithm = algorithm or limit.family
        self.hard = limit.hard
        self.soft = soft_of(limit.hard, soft_fraction)
        self._used = 0
        self.rekey_needed = False
        self.on_soft = on_soft
        self.kind = ""  # the key's kind (e.g. "SK_ei"), for the rekey callback; never material
        self.bound: Any = None  # set by the Router: which policy admitted this key
        self._lock = threading.Lock()
        self._lease_ctx: Any = None
        self._granted = 0

    @property
    def used(self) -> int:
        ctx = self._lease_ctx
        return self._used + (self._granted - ctx.budget if ctx is not None else 0)

    def sync(self) -> None:
        """Settle an outstanding lease into the count and drop the context reference."""
        ctx = self._lease_ctx
        if ctx is not None:
            self._used += self._granted - ctx.budget
            ctx.budget = 0
            self._lease_ctx = None
            self._granted = 0

    def lease(self, ctx: Any) -> None:
        """Give ctx.budget = the uses left before the soft threshold (none once it is reached)."""
        with self._lock:
            self.sync()
            allowance = max(0, self.soft - self._used - 1)
            ctx.budget = allowance
            self._granted = allowance
            self._lease_ctx = ctx if allowance else None

    def charge(self, n: int = 1) -> None:
        with self._lock:
            self.sync()
            used = self._used + n
            if used > self.hard:
                raise UsageLimitExceeded(self.algorithm, self.limit.counter, self.hard, self.limit.source)
            self._used = used
            fire = used >= self.soft and not self.rekey_needed
            if fire:
                self.rekey_needed = True
        if fire and self.on_soft is not None:
            self.on_soft(self)

    @property
    def remaining(self) -> int:
        return self.hard - self.used

    def __repr__(self) -> str:
        return (f"Meter({self.algorithm}, {self.used}/{self.hard} {self.limit.counter}, "
                f"rekey_needed={self.rekey_needed})")


class UsageLimits:
    """The active table (tests pass one with tiny limits) and the meter factory."""

    def __init__(self, limits: dict[str, CipherLimit] | None = None, soft_fraction: float = SOFT_FRACTION,
                 on_soft: Callable[[Meter], None] | None = None) -> None:
        self.limits = dict(LIMITS if limits is None else limits)
        self.soft_fraction = soft_fraction
        self.on_soft = on_soft

    def for_cipher(self, alg: Encryption) -> CipherLimit:
        try:
            return self.limits[FAMILY[alg]]
        except KeyError:
            raise UsageLimitExceeded(getattr(alg, "name", str(alg)), "uses", 0, "no usage limit known") from None

    def meter(self, alg: Encryption) -> Meter:
        return Meter(self.for_cipher(alg), FAMILY[alg], self.on_soft, self.soft_fraction)

    def with_limit(self, family: str, hard: int) -> UsageLimits:
        """A copy with one family's hard limit replaced (tests, lowering by policy)."""
        limits = dict(self.limits)
        limits[family] = replace(limits[family], hard=hard)
        return UsageLimits(limits, self.soft_fraction, self.on_soft)

    def table(self) -> list[dict[str, Any]]:
        return [lim.as_dict() for lim in self.limits.values()]

    def kernel_lifetime(self, alg: Encryption, admin_max_bytes: int | None = None,
                        admin_max_packets: int | None = None, strict: bool = False) -> KernelLifetime:
        return kernel_lifetime(alg, admin_max_bytes, admin_max_packets, strict=strict, limits=self.limits,
                               soft_fraction=self.soft_fraction)


@dataclass(frozen=True)
class KernelLifetime:
    """XFRM SA byte/packet lifetimes (struct xfrm_lifetime_cfg); XFRM_INF = none."""

    soft_bytes: int
    hard_bytes: int
    soft_packets: int
    hard_packets: int
    source: str
    clamped: bool = False  # an admin value above the cipher limit was lowered to it


def _per_packet_blocks_bytes(lim: CipherLimit) -> tuple[int, int]:
    """(hard bytes, hard packets) for a cipher limit."""
    if lim.counter == "invocations":
        # one ESP packet = one invocation; bytes are not what wears out the key
        return XFRM_INF, min(lim.hard, XFRM_INF)
    return min(lim.hard * lim.block_size, XFRM_INF), XFRM_INF


def kernel_lifetime(alg: Encryption, admin_max_bytes: int | None = None, admin_max_packets: int | None = None,
                    *, strict: bool = False, limits: dict[str, CipherLimit] | None = None,
                    soft_fraction: float = SOFT_FRACTION) -> KernelLifetime:
    """The kernel SA lifetimes for `alg`: the cipher's limit, lowered by the admin's if given.

    An admin value above the cipher's limit is clamped (or, with strict=True,
    refused with LifetimeAboveLimit, for config checks with file and line).
    """
    table_ = LIMITS if limits is None else limits
    try:
        lim = table_[FAMILY[alg]]
    except KeyError:
        raise LifetimeAboveLimit(f"no usage limit known for {getattr(alg, 'name', alg)}") from None
    hard_bytes, hard_packets = _per_packet_blocks_bytes(lim)
    clamped = False
    for what, admin, cap in (("bytes", admin_max_bytes, hard_bytes), ("packets", admin_max_packets, hard_packets)):
        if admin is None:
            continue
        if admin <= 0:
            raise LifetimeAboveLimit(f"{what} lifetime must be positive, got {admin}")
        if admin > cap:
            if strict:
                raise LifetimeAboveLimit(
                    f"{what} lifetime {admin} exceeds the {lim.family} limit of {cap} ({lim.source})")
            clamped = True
    if admin_max_bytes is not None:
        hard_bytes = min(hard_bytes, admin_max_bytes)
    if admin_max_packets is not None:
        hard_packets = min(hard_packets, admin_max_packets)

    def soft(hard: int) -> int:
        return XFRM_INF if hard == XFRM_INF else max(1, soft_of(hard, soft_fraction))

    return KernelLifetime(soft(hard_bytes), hard_bytes, soft(hard_packets), hard_packets, lim.source, clamped)
