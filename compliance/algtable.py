"""The algorithm-table self-test: the Router does what providers.policy says, transform by transform.

Every transform the active profile allows must run through the Router (it resolves to an
implementation), and every transform it refuses must be refused by the Router with PolicyViolation
(not merely absent from a table). In the `fips` profile the transforms RFC 8247 / RFC 8221 and
SP 800-131A r2 rule out must be among the refused ones, whatever the table says.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from providers.algorithms import Encryption, Integrity, KeyExchange, KeySpec, Prf
from providers.errors import PolicyViolation, ProviderError
from providers.policy import Policy

# Must be refused in the fips profile (the brief's list, with the reason a reviewer will ask for).
FIPS_MUST_REFUSE: tuple[tuple[str, Any, str], ...] = (
    ("integrity", Integrity.AUTH_HMAC_MD5_96, "MD5 (RFC 8221 section 6 MUST NOT)"),
    ("prf", Prf.PRF_HMAC_MD5, "MD5 PRF (RFC 8247 section 2.3 MUST NOT)"),
    ("prf", Prf.PRF_HMAC_SHA1, "SHA-1 PRF (project allowlist: SHA-2 only)"),
    ("encryption", Encryption.ENCR_3DES, "3DES (SP 800-131A r2: TDEA encryption disallowed)"),
    ("encryption", Encryption.ENCR_DES, "DES (RFC 8221 MUST NOT)"),
    ("encryption", Encryption.ENCR_CHACHA20_POLY1305, "ChaCha20-Poly1305 (not NIST approved)"),
    ("key-exchange", KeyExchange.CURVE25519, "X25519 (not in SP 800-56A r3)"),
    ("key-exchange", KeyExchange.MODP_1024, "MODP-1024 (< 112-bit security, SP 800-131A r2)"),
    ("key-exchange", KeyExchange.MODP_1536, "MODP-1536 (< 112-bit security, SP 800-131A r2)"),
    ("integrity", Integrity.AUTH_AES_XCBC_96, "AES-XCBC (not an SP 800-38B mode)"),
    ("prf", Prf.PRF_AES128_XCBC, "AES-XCBC PRF (SP 800-135: HMAC only)"),
    ("key", KeySpec("rsa", 1024), "RSA-1024 (SP 800-131A r2: >= 2048 bits)"),
)

_DEFAULT_BITS: dict[Any, int] = {
    Encryption.ENCR_3DES: 192, Encryption.ENCR_DES: 64, Encryption.ENCR_CHACHA20_POLY1305: 256}


@dataclass(frozen=True)
class RowCheck:
    kind: str
    name: str
    expected: str  # "allowed" or "refused"
    observed: str  # "allowed", "refused" or "error: <type>"

    @property
    def ok(self) -> bool:
        return self.expected == self.observed


def _exercise(router: Any, kind: str, alg: Any, bits: int) -> None:
    """One small real operation with `alg` through the router."""
    if kind == "encryption":
        assert isinstance(alg, Encryption)
        salt = alg.salt_size
        key = router.import_secret(b"\x5a" * (bits // 8 + salt), "algorithm-table probe")
        try:
            if alg.is_aead:
                router.aead_seal(alg, key, b"\x00" * 8, b"probe", b"")
            else:
                router.cbc_encrypt(alg, key, b"\x00" * alg.block_size, b"\x00" * alg.block_size)
        finally:
            key.wipe()
    elif kind in ("integrity", "prf"):
        key = router.import_secret(b"\x5a" * 32, "algorithm-table probe")
        try:
            if kind == "integrity":
                router.integrity_icv(alg, key, b"probe")
            else:
                router.prf(alg, key, b"probe")
        finally:
            key.wipe()
    elif kind == "key-exchange":
        router.ke_generate(alg).wipe()
    elif kind == "key":
        router.generate_keypair(alg, label="algorithm-table probe")
    else:
        raise ValueError(kind)


def _observe(router: Any, kind: str, alg: Any, bits: int) -> str:
    try:
        _exercise(router, kind, alg, bits)
    except PolicyViolation:
        return "refused"
    except (ProviderError, ValueError) as exc:
        return f"error: {type(exc).__name__}"
    except Exception as exc:  # noqa: BLE001 - a library fault is a finding of this test, not a crash
        return f"error: {type(exc).__name__}"
    return "allowed"


_TABLES: tuple[tuple[str, type[enum.Enum]], ...] = (
    ("encryption", Encryption), ("integrity", Integrity), ("prf", Prf), ("key-exchange", KeyExchange))


def probe_allowed(router: Any) -> list[tuple[str, Any, str]]:
    """(kind, transform, observed) for every transform the router's profile allows."""
    policy: Policy = router.policy
    out: list[tuple[str, Any, str]] = []
    for kind, enum_type in _TABLES:
        for alg in enum_type:
            entry = policy.entry(kind, alg)
            if alg.name == "NONE" or entry is None or not entry.allowed(policy.profile):
                continue
            sizes = entry.key_bits if kind == "encryption" and entry.key_bits else (0,)
            observed = [_observe(router, kind, alg, bits) for bits in sizes]
            out.append((kind, alg, next((o for o in observed if o != "allowed"), "allowed")))
    return out


def check_table(router: Any) -> list[RowCheck]:
    """Every row of the policy tables for encryption, integrity, PRF and key exchange (a transform
    the availability probe disabled is expected to be refused)."""
    policy: Policy = router.policy
    disabled: dict[tuple[str, Any], str] = getattr(policy, "disabled", {})
    rows: list[RowCheck] = []
    for kind, enum_type in _TABLES:
        for alg in enum_type:
            if alg.name == "NONE":
                continue
            entry = policy.entry(kind, alg)
            allowed = entry is not None and entry.allowed(policy.profile) and (kind, alg) not in disabled
            sizes = (entry.key_bits if entry is not None and entry.key_bits else
                     (_DEFAULT_BITS.get(alg, 128),)) if kind == "encryption" else (0,)
            for bits in sizes:
                label = f"{alg.name}/{bits}" if bits else alg.name
                rows.append(RowCheck(kind, label, "allowed" if allowed else "refused",
                                     _observe(router, kind, alg, bits)))
    if policy.profile == "fips":
        for kind, alg, why in FIPS_MUST_REFUSE:
            bits = _DEFAULT_BITS.get(alg, 128) if kind == "encryption" else 0
            rows.append(RowCheck(kind, f"{why}", "refused", _observe(router, kind, alg, bits)))
    return rows
