"""Which allowlisted transforms the active OpenSSL actually offers; the rest are disabled.

The policy tables say what is *approved*; the OpenSSL underneath decides what *exists*. The
OpenSSL 3.0 FIPS provider has no ML-KEM (added in OpenSSL 3.5), and OpenSSL 4 will not generate
keys in the 1024-bit MODP group. Such a transform must not be negotiated at all: the start-up
probes each allowed transform once (a tiny operation through the Router) and, when the library
cannot perform it, swaps in a RestrictedPolicy that refuses it with the reason. This is the
"degraded operation" of FIPS 140-3 / ISO 19790 section 7.11: the module keeps its other services,
the disabled ones are listed in the report and in `fipsike fipsstatus`. A wrong answer is never a
reason to disable: known-answer failures stay fatal.
"""

from __future__ import annotations

from typing import Any

from compliance.algtable import probe_allowed
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf
from providers.errors import PolicyViolation
from providers.policy import Policy

Disabled = dict[tuple[str, Any], str]


class RestrictedPolicy(Policy):
    """A profile minus the transforms this process cannot perform."""

    def __init__(self, profile: str, disabled: Disabled) -> None:
        super().__init__(profile)
        self.disabled: Disabled = dict(disabled)
        self._enc_ok = frozenset(x for x in self._enc_ok if ("encryption", x[0]) not in disabled)
        self._integ_ok = frozenset(a for a in self._integ_ok if ("integrity", a) not in disabled)
        self._prf_ok = frozenset(a for a in self._prf_ok if ("prf", a) not in disabled)
        self._ke_ok = frozenset(a for a in self._ke_ok if ("key-exchange", a) not in disabled)

    def __repr__(self) -> str:
        return f"RestrictedPolicy({self.profile!r}, disabled={sorted(a.name for _, a in self.disabled)})"

    def _why(self, kind: str, alg: Any) -> None:
        reason = self.disabled.get((kind, alg))
        if reason is not None:
            raise PolicyViolation(getattr(alg, "name", str(alg)), f"disabled in this process: {reason}",
                                  self.profile)

    def check_encryption(self, alg: Encryption, key_bits: int) -> None:
        self._why("encryption", alg)
        super().check_encryption(alg, key_bits)

    def check_integrity(self, alg: Integrity) -> None:
        self._why("integrity", alg)
        super().check_integrity(alg)

    def check_prf(self, alg: Prf) -> None:
        self._why("prf", alg)
        super().check_prf(alg)

    def check_ke(self, group: KeyExchange) -> None:
        self._why("key-exchange", group)
        super().check_ke(group)


def probe(router: Any) -> Disabled:
    """Allowed transforms the router could not perform, with the library's error type."""
    disabled: Disabled = {}
    fips = bool(router.openssl.info().fips)
    where = "the active OpenSSL FIPS provider" if fips else "the OpenSSL library in use"
    for kind, alg, observed in probe_allowed(router):
        if observed.startswith("error"):
            disabled[(kind, alg)] = f"not offered by {where} ({observed.removeprefix('error: ')})"
    return disabled


def restrict(router: Any) -> Disabled:
    """Probe, and put a RestrictedPolicy on the router if anything is missing (a re-run keeps what an
    earlier run disabled: those transforms are refused now, so the probe no longer sees them)."""
    earlier: Disabled = dict(getattr(router.policy, "disabled", {}))
    new = probe(router)
    if new:
        router.policy = RestrictedPolicy(router.policy.profile, earlier | new)
    return earlier | new
