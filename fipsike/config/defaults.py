"""libreswan 5.x's defaults for an omitted `ike=` / `esp=`, filtered by our allowlist.

libreswan (lib/libswan/ike_info.c and esp_info.c, 5.x) keeps one default list for FIPS mode and one
for the rest. FIPS IKE: AES_GCM_16_256, AES_GCM_16_128, then AES_CBC_256, AES_CBC_128; PRF SHA2_512 then
SHA2_256; groups DH19, DH20, DH21, MODP4096, MODP3072, MODP2048, MODP8192. The non-FIPS list adds
CHACHA20_POLY1305 and DH31 (Curve25519). ESP: AES_GCM_16 256/128, then AES_CBC 256/128 with
HMAC-SHA2-512/256 integrity; non-FIPS adds CHACHA20_POLY1305.

We write them in libreswan's own grammar and run them through the one parser (compliance.proposals),
then drop every transform the active providers.policy profile refuses (and a proposal left without
a cipher, PRF or group). Where we differ from libreswan (docs/config.md lists these too):
- the groups are offered in libreswan's order, so an initiator's KE payload is DH19 (ECP-256);
- the `default` profile allows everything in the non-FIPS list, so nothing is filtered today; in the
  `fips` profile every FIPS-list transform is approved, so nothing is filtered either. The filter is
  there so that a narrower allowlist can never be bypassed by a default.
"""

from __future__ import annotations

import dataclasses

from compliance.proposals import Proposal, parse_proposals, policy_check
from providers.policy import Policy

_GROUPS_FIPS = "dh19+dh20+dh21+modp4096+modp3072+modp2048+modp8192"
_GROUPS_ALL = "dh19+dh20+dh21+dh31+modp4096+modp3072+modp2048+modp8192"

IKE_DEFAULT = {
    "fips": f"aes_gcm_16_256+aes_gcm_16_128-sha2_512+sha2_256-{_GROUPS_FIPS},"
            f"aes_cbc_256+aes_cbc_128-sha2_512+sha2_256-{_GROUPS_FIPS}",
    "default": f"aes_gcm_16_256+aes_gcm_16_128+chacha20_poly1305-sha2_512+sha2_256-{_GROUPS_ALL},"
               f"aes_cbc_256+aes_cbc_128-sha2_512+sha2_256-{_GROUPS_ALL}",
}
ESP_DEFAULT = {
    "fips": "aes_gcm_16_256+aes_gcm_16_128,aes_cbc_256+aes_cbc_128-sha2_512+sha2_256",
    "default": "aes_gcm_16_256+aes_gcm_16_128+chacha20_poly1305,aes_cbc_256+aes_cbc_128-sha2_512+sha2_256",
}


def filtered(proposals: list[Proposal], policy: Policy) -> list[Proposal]:
    """Each proposal with the transforms the profile refuses taken out; emptied proposals dropped."""
    check = policy_check(policy)
    out: list[Proposal] = []
    for p in proposals:
        q = dataclasses.replace(
            p,
            ciphers=tuple(c for c in p.ciphers if check("encryption", c.alg, c.key_bits) is None),
            prfs=tuple(x for x in p.prfs if check("prf", x, 0) is None),
            integrity=tuple(x for x in p.integrity if x.name == "NONE" or check("integrity", x, 0) is None),
            ke=tuple(x for x in p.ke if x.name == "NONE" or check("ke", x, 0) is None))
        if q.ciphers and (p.protocol != "ike" or (q.prfs and q.ke)) and (not p.integrity or q.integrity):
            out.append(q)
    return out


def default_proposals(protocol: str, policy: Policy) -> tuple[str, list[Proposal]]:
    """(the libreswan text, the filtered proposals) for an omitted ike= ("ike") or esp= ("esp")."""
    profile = "fips" if policy.profile == "fips" else "default"
    text = (IKE_DEFAULT if protocol == "ike" else ESP_DEFAULT)[profile]
    return text, filtered(parse_proposals(text, protocol), policy)
