"""FIPS checks at load (the `fips` policy profile), and the self-test's invariants over the result.

- every transform of every ike=/esp= (given or default) must be approved: an error names each one;
- lifetimes above 24 h (IKE SA) / 8 h (Child SA) are capped, with a warning (NIAP MOD_VPNGW
  FCS_IPSEC_EXT.1.7/1.8; fipsike.ike.config's FIPS ceilings);
- ipsec-max-bytes / ipsec-max-packets may only lower the cipher's usage limit (providers.limits):
  above it is an error, in every profile;
- a PSK shorter than half the key size of the strongest PRF the conn may negotiate is refused. This
  is libreswan's FIPS rule (crypt_prf_fips_key_size_min: FIPS 198-1 section 3 / SP 800-107 r1 section
  5.4.3, "at least L/2"; 16 bytes for SHA2-256, 24 for SHA2-384, 32 for SHA2-512), applied at load
  where libreswan applies it at authentication. SP 800-132 does not apply (the PSK is an HMAC key, not
  a password put through a PBKDF); SP 800-63B's 8-character memorized-secret floor is weaker and
  is not the rule here;
- authby=null only on opportunistic conns (right=%opportunisticgroup or %group); authby=rsa-sha1 refused;
- passthrough shunts: libreswan in FIPS mode ignores negotiationshunt=passthrough (uses hold/drop)
  and any failureshunt other than none, with "packets MUST be blocked in FIPS mode" (pluto's
  extract.c). fipsike does the same, with a warning; a type=passthrough conn and members in the
  clear / clear-or-private / private-or-clear groups are errors (the no-passthrough invariant).
"""

from __future__ import annotations

import dataclasses

from compliance.invariants import ConnLimits, InvariantConfig
from compliance.proposals import check_proposal, policy_check
from fipsike.config.conns import ConnSpec
from fipsike.config.errors import Diagnostic
from fipsike.config.policies import PASSTHROUGH_GROUPS, PolicyGroups
from fipsike.config.secrets import Secrets
from fipsike.ike.config import FIPS_MAX_CHILD_LIFETIME, FIPS_MAX_IKE_LIFETIME
from providers.algorithms import Encryption, Prf
from providers.limits import LifetimeAboveLimit, kernel_lifetime
from providers.policy import PSK_RULE, Policy, psk_min_octets

PSK_MIN_BYTES = {p: psk_min_octets(p) for p in (Prf.PRF_HMAC_SHA2_256, Prf.PRF_HMAC_SHA2_384,
                                                  Prf.PRF_HMAC_SHA2_512, Prf.PRF_HMAC_SHA1)}
FIPS_PSK_RULE = f"libreswan's FIPS rule: {PSK_RULE}"
# A PSK of fewer distinct octets than this ("aaaa...", "abab...") has far less entropy than its
# length suggests (SP 800-63B 5.1.1.2 asks verifiers to refuse repetitive secrets like these).
PSK_MIN_DISTINCT = 8


def check_conn(spec: ConnSpec, policy: Policy, secrets: Secrets | None,
               errors: list[Diagnostic], warnings: list[Diagnostic]) -> ConnSpec:
    """Errors and warnings for one conn; returns it with lifetimes capped and shunts overridden."""
    fips = policy.profile == "fips"
    name = spec.name
    check = policy_check(policy)
    for proto, parsed, default in (("ike", spec.ike_parsed, spec.ike_default),
                                   ("esp", spec.esp_parsed, spec.esp_default)):
        loc = spec.where(proto)
        for p in parsed:
            for r in check_proposal(p, check).refusals:
                src = f"default proposal {p.text!r}" if default else f"proposal {p.text!r}"
                errors.append(Diagnostic(loc, f"{src}: {r.transform}: {r.reason}", name, proto))
    # usage limits: lower only
    ciphers = sorted({c.alg for p in spec.esp_parsed for c in p.ciphers}, key=int)
    for alg in ciphers:
        try:
            kernel_lifetime(Encryption(alg), spec.ipsec_max_bytes, spec.ipsec_max_packets, strict=True)
        except LifetimeAboveLimit as exc:
            key = "ipsec-max-bytes" if "bytes" in str(exc) else "ipsec-max-packets"
            errors.append(Diagnostic(spec.where(key), f"{exc}: a usage limit can only be lowered", name, key))
    if "secret" in (spec.left.auth, spec.right.auth) and secrets is not None:
        _check_psk(spec, secrets, fips, errors, warnings)
    if not fips:
        return spec
    authby = spec.settings.get("authby")
    if authby is not None and "sha1" in authby.text.lower():
        errors.append(Diagnostic(authby.location, "SHA-1 signatures are not approved (SP 800-131A r2 section 9; "
                                 "RFC 8247 2.4)", name, authby.spelled))
    nulls = [s for s in ("left", "right") if getattr(spec, s).auth == "null"]
    if nulls and not spec.opportunistic:
        errors.append(Diagnostic(spec.where("authby"), "NULL authentication (RFC 7619) is allowed only on "
                                 "opportunistic conns (right=%opportunisticgroup) in FIPS mode", name, "authby"))
    if spec.type == "passthrough":
        errors.append(Diagnostic(spec.where("type"), "type=passthrough sends cleartext, which FIPS mode forbids "
                                 "(NIAP MOD_VPNGW FCS_IPSEC_EXT.1.3: discard by default)", name, "type"))
    changes: dict[str, object] = {}
    if spec.negotiationshunt == "passthrough":
        warnings.append(Diagnostic(spec.where("negotiationshunt"), "FIPS: negotiationshunt=passthrough ignored, "
                                   "using hold: packets MUST be blocked in FIPS mode (as libreswan does)",
                                   name, "negotiationshunt"))
        changes["negotiationshunt"] = "hold"
    if spec.failureshunt != "none":
        warnings.append(Diagnostic(spec.where("failureshunt"), f"FIPS: failureshunt={spec.failureshunt} ignored, "
                                   "using none: packets MUST be blocked in FIPS mode (as libreswan does)",
                                   name, "failureshunt"))
        changes["failureshunt"] = "none"
    conn = spec.connection
    if spec.ikelifetime > FIPS_MAX_IKE_LIFETIME:
        warnings.append(Diagnostic(spec.where("ikelifetime"), f"capped at {FIPS_MAX_IKE_LIFETIME:g} s (24 h) in "
                                   "FIPS mode (NIAP MOD_VPNGW FCS_IPSEC_EXT.1.7)", name, "ikelifetime"))
        changes["ikelifetime"] = FIPS_MAX_IKE_LIFETIME
    if spec.ipsec_lifetime > FIPS_MAX_CHILD_LIFETIME:
        warnings.append(Diagnostic(spec.where("ipsec-lifetime"), f"capped at {FIPS_MAX_CHILD_LIFETIME:g} s (8 h) in "
                                   "FIPS mode (NIAP MOD_VPNGW FCS_IPSEC_EXT.1.8)", name, "ipsec-lifetime"))
        changes["ipsec_lifetime"] = FIPS_MAX_CHILD_LIFETIME
    if "ikelifetime" in changes or "ipsec_lifetime" in changes:
        changes["connection"] = conn.capped(True)
    return dataclasses.replace(spec, **changes) if changes else spec  # type: ignore[arg-type]


def _check_psk(spec: ConnSpec, secrets: Secrets, fips: bool, errors: list[Diagnostic],
               warnings: list[Diagnostic]) -> None:
    c = spec.connection
    entry = secrets.psk_for(c.local_id, c.remote_id)
    if entry is None:
        errors.append(Diagnostic(spec.where("authby"), "authby=secret but ipsec.secrets has no PSK for "
                                 f"{c.local_id} / {c.remote_id}", spec.name, "authby"))
        return
    prfs = {p for prop in spec.ike_parsed for p in prop.prfs}
    need = max((PSK_MIN_BYTES.get(p, 32) for p in prfs), default=32)
    if len(entry.secret) < need:
        msg = (f"the PSK at {entry.location} is {len(entry.secret)} bytes; {need} are required for the PRFs "
               f"offered ({FIPS_PSK_RULE})")
        _fips_refusal(spec, msg, fips, errors, warnings)
    elif len(set(entry.secret.reveal())) < PSK_MIN_DISTINCT:
        _fips_refusal(spec, f"the PSK at {entry.location} has fewer than {PSK_MIN_DISTINCT} distinct characters: "
                      "too little entropy for its length (SP 800-63B 5.1.1.2: no repetitive secrets)",
                      fips, errors, warnings)


def _fips_refusal(spec: ConnSpec, msg: str, fips: bool, errors: list[Diagnostic],
                  warnings: list[Diagnostic]) -> None:
    if fips:
        errors.append(Diagnostic(spec.where("authby"), msg, spec.name, "authby"))
    else:
        warnings.append(Diagnostic(spec.where("authby"), msg + "; refused in FIPS mode", spec.name, "authby"))


def check_groups(groups: PolicyGroups, policy: Policy, errors: list[Diagnostic]) -> None:
    if policy.profile != "fips":
        return
    for g in PASSTHROUGH_GROUPS:
        for m in groups.groups.get(g, []):
            errors.append(Diagnostic(m.location, f"{m.network}: group {g} lets cleartext through, which FIPS "
                                     "mode forbids (NIAP MOD_VPNGW FCS_IPSEC_EXT.1.3)", "", g))


def invariant_config(conns: list[ConnSpec], groups: PolicyGroups | None) -> InvariantConfig:
    """compliance's InvariantConfig from the loaded conns: the self-test then checks this deployment."""
    limits = []
    for c in conns:
        shunt = c.type if c.type in ("passthrough",) else (
            "passthrough" if "passthrough" in (c.negotiationshunt, c.failureshunt) else "")
        limits.append(ConnLimits(
            c.name, ike_lifetime_s=int(c.ikelifetime), child_lifetime_s=int(c.ipsec_lifetime),
            ike="ike=" + c.ike, esp="esp=" + c.esp, child_max_bytes=c.ipsec_max_bytes,
            child_max_packets=c.ipsec_max_packets, shunt=shunt))
    passthrough = tuple(g for g in PASSTHROUGH_GROUPS if groups is not None and groups.groups.get(g))
    return InvariantConfig(conns=tuple(limits) or InvariantConfig().conns, passthrough_policies=passthrough)
