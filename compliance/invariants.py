"""Policy invariants of FIPS mode, as checks over a small configuration object.

The daemon's configuration parser (fipsike/config, later) fills an InvariantConfig from its conns;
until then the built-in defaults are checked. Each invariant names its source.

- no passthrough (bypass/clear) shunts: NIAP PP-Module for VPN Gateways / MOD_VPNGW and the
  PP-Module for VPN Client (FCS_IPSEC_EXT.1.3 "DISCARD by default") - here: none at all in FIPS mode.
- IKE SA lifetime <= 24 h and Child SA lifetime <= 8 h: NIAP PP-Module for VPN Gateways
  FCS_IPSEC_EXT.1.7 and 1.8 (IKEv2 SA 24 hours, Child SA 8 hours).
- a hard kernel SA limit installed for every configured cipher, never above the cipher's usage
  limit (SP 800-38D 8.3 for AES-GCM; providers.limits for the table).
- RSA keys >= 2048 bits (SP 800-131A r2 section 3; FIPS 186-5).
- no key logging can be enabled: no configuration switch for it, and a key handle's repr shows no
  key material (checked with a planted canary).
- every configured proposal is allowed by the fips profile (providers.policy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compliance.proposals import ProposalSyntaxError, check_against_profile, parse_proposals
from providers.algorithms import Encryption, KeySpec
from providers.errors import PolicyViolation
from providers.limits import XFRM_INF, LifetimeAboveLimit, kernel_lifetime

MAX_IKE_SA_LIFETIME_S = 24 * 3600  # FCS_IPSEC_EXT.1.7
MAX_CHILD_SA_LIFETIME_S = 8 * 3600  # FCS_IPSEC_EXT.1.8


@dataclass(frozen=True)
class ConnLimits:
    """What one connection (conn) contributes to the invariants."""

    name: str
    ike_lifetime_s: int = 3 * 3600
    child_lifetime_s: int = 3600
    ike: str = "ike=aes_gcm256-sha2_384;dh20"
    esp: str = "esp=aes_gcm256"
    child_max_bytes: int | None = None  # admin's lifetime in bytes (None: the cipher's limit)
    child_max_packets: int | None = None
    shunt: str = ""  # "", or a libreswan policy type such as "passthrough" / "clear" / "drop"


@dataclass(frozen=True)
class InvariantConfig:
    conns: tuple[ConnLimits, ...] = (ConnLimits("default"),)
    key_specs: tuple[KeySpec, ...] = ()  # long-term keys in use (from certificates / the token)
    passthrough_policies: tuple[str, ...] = ()  # policies/clear, clear-or-private groups with members
    key_logging: bool = False  # any switch that would write key material to a log


@dataclass(frozen=True)
class InvariantResult:
    name: str
    ok: bool
    detail: str
    source: str
    findings: tuple[str, ...] = field(default_factory=tuple)


_PASSTHROUGH = ("passthrough", "pass", "clear", "bypass")


def _no_passthrough(cfg: InvariantConfig, _r: Any) -> list[str]:
    bad = [f"conn {c.name}: type={c.shunt}" for c in cfg.conns if c.shunt.lower() in _PASSTHROUGH]
    bad += [f"policy group {p} has members" for p in cfg.passthrough_policies]
    return bad


def _ike_lifetime(cfg: InvariantConfig, _r: Any) -> list[str]:
    return [f"conn {c.name}: ikelifetime {c.ike_lifetime_s} s > {MAX_IKE_SA_LIFETIME_S} s"
            for c in cfg.conns if not 0 < c.ike_lifetime_s <= MAX_IKE_SA_LIFETIME_S]


def _child_lifetime(cfg: InvariantConfig, _r: Any) -> list[str]:
    return [f"conn {c.name}: salifetime {c.child_lifetime_s} s > {MAX_CHILD_SA_LIFETIME_S} s"
            for c in cfg.conns if not 0 < c.child_lifetime_s <= MAX_CHILD_SA_LIFETIME_S]


def _hard_limits(cfg: InvariantConfig, _r: Any) -> list[str]:
    out: list[str] = []
    for c in cfg.conns:
        try:
            ciphers = {ci.alg for p in parse_proposals(c.esp, "esp") for ci in p.ciphers}
        except ProposalSyntaxError as exc:
            out.append(f"conn {c.name}: esp: {exc}")
            continue
        for alg in sorted(ciphers):
            try:
                lt = kernel_lifetime(Encryption(alg), c.child_max_bytes, c.child_max_packets, strict=True)
            except LifetimeAboveLimit as exc:
                out.append(f"conn {c.name}: {alg.name}: {exc}")
                continue
            if lt.hard_bytes == XFRM_INF and lt.hard_packets == XFRM_INF:
                out.append(f"conn {c.name}: {alg.name}: no hard byte or packet limit would be installed")
    return out


def _rsa_min(cfg: InvariantConfig, router: Any) -> list[str]:
    out = [f"key {s}: RSA modulus below 2048 bits" for s in cfg.key_specs if s.kind == "rsa" and s.size < 2048]
    try:
        router.policy.check_key(KeySpec("rsa", 1024))
        out.append("the active policy accepts an RSA-1024 key")
    except PolicyViolation:
        pass
    return out


def _no_key_logging(cfg: InvariantConfig, router: Any) -> list[str]:
    out = ["key logging is enabled in the configuration"] if cfg.key_logging else []
    canary = bytes.fromhex("c0ffee00deadbeef5ca1ab1e0ddba11c")
    key = router.import_secret(canary, "canary")
    try:
        for text in (repr(key), str(key), f"{key}"):
            if canary.hex() in text.lower() or canary.hex().upper() in text or str(canary) in text:
                out.append("a key handle's text form shows key material")
                break
    finally:
        key.wipe()
    return out


def _proposals_fips(cfg: InvariantConfig, _r: Any) -> list[str]:
    out: list[str] = []
    for c in cfg.conns:
        for value in (c.ike, c.esp):
            try:
                verdicts = check_against_profile(value, "fips")
            except ProposalSyntaxError as exc:
                out.append(f"conn {c.name}: {value}: {exc}")
                continue
            for v in verdicts:
                out += [f"conn {c.name}: {v.proposal.text}: {r.reason}" for r in v.refusals]
    return out


INVARIANTS: tuple[tuple[str, str, Callable[[InvariantConfig, Any], list[str]]], ...] = (
    ("no-passthrough-shunts", "NIAP MOD_VPNGW FCS_IPSEC_EXT.1.3 (discard by default)", _no_passthrough),
    ("ike-sa-lifetime-max-24h", "NIAP MOD_VPNGW FCS_IPSEC_EXT.1.7", _ike_lifetime),
    ("child-sa-lifetime-max-8h", "NIAP MOD_VPNGW FCS_IPSEC_EXT.1.8", _child_lifetime),
    ("hard-limits-per-cipher", "NIST SP 800-38D 8.3; providers.limits", _hard_limits),
    ("rsa-min-2048", "NIST SP 800-131A r2 section 3; FIPS 186-5", _rsa_min),
    ("no-key-logging", "FIPS 140-3 7.9 (SSP output); fipsike ARCHITECTURE rules", _no_key_logging),
    ("proposals-fips-approved", "providers.policy fips profile", _proposals_fips),
)


def check_invariants(cfg: InvariantConfig, router: Any) -> list[InvariantResult]:
    results: list[InvariantResult] = []
    for name, source, fn in INVARIANTS:
        findings = fn(cfg, router)
        detail = "holds" if not findings else "; ".join(findings[:3]) + (" ..." if len(findings) > 3 else "")
        results.append(InvariantResult(name, not findings, detail, source, tuple(findings)))
    return results
