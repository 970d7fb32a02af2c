"""The IKEv2 KDF (RFC 7296 2.13-2.18; SP 800-135r1 5.1) against NIST ACVP vectors.

tests/data/ikev2-kdf-acvp.json: NIST ACVP kdf-components/ikev2 sample vectors, from the
repository lightship-duck/ACVP-Demo-Server (gen-val/json-files/kdf-components-ikev2-1.0/
internalProjection.json); see tests/data/ikev2-kdf-acvp.README.md.

The provider API takes octet strings (IKEv2 carries nonces, g^ir and keys as whole octets,
RFC 7296 2.10 and 2.14). ACVP groups with a length that is not a multiple of 8 bits (tgId 9:
dhLength 1557, tgId 12: dhLength 461, tgId 13: nRespLength 334) are bit strings no IKEv2
exchange can produce, so `byte_aligned_groups()` leaves them out, and the test asserts
exactly which groups were exercised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from providers import PolicyViolation, Prf, Router

DATA = Path(__file__).resolve().parent.parent / "data" / "ikev2-kdf-acvp.json"
PRFS = {"SHA-1": Prf.PRF_HMAC_SHA1, "SHA2-256": Prf.PRF_HMAC_SHA2_256, "SHA2-384": Prf.PRF_HMAC_SHA2_384,
        "SHA2-512": Prf.PRF_HMAC_SHA2_512}
LENGTH_FIELDS = ("dhLength", "nInitLength", "nRespLength", "derivedKeyingMaterialLength",
                 "derivedKeyingMaterialChildLength")


def byte_aligned_groups() -> list[dict[str, Any]]:
    groups = json.loads(DATA.read_text(encoding="utf-8"))["testGroups"]
    return [g for g in groups if all(g[f] % 8 == 0 for f in LENGTH_FIELDS)]


def test_filter_keeps_exactly_the_byte_aligned_groups() -> None:
    assert [g["tgId"] for g in byte_aligned_groups()] == [2, 11]
    assert sum(len(g["tests"]) for g in byte_aligned_groups()) >= 2


def _b(value: str) -> bytes:
    return bytes.fromhex(value)


@pytest.mark.parametrize("group", byte_aligned_groups(), ids=lambda g: f"tg{g['tgId']}-{g['hashAlg']}")
def test_ikev2_kdf_acvp(group: dict[str, Any], router_default: Router, router_fips: Router) -> None:
    prf = PRFS[group["hashAlg"]]
    hl = prf.hash.digest_size
    routers = [router_default] + ([router_fips] if prf is not Prf.PRF_HMAC_SHA1 else [])
    for r in routers:
        for t in group["tests"]:
            ni, nr = _b(t["nInit"]), _b(t["nResp"])
            spi = _b(t["spiInit"]) + _b(t["spiResp"])
            gir = r.import_secret(_b(t["gir"]), "g^ir")
            gir_new = r.import_secret(_b(t["girNew"]), "g^ir")

            skeyseed = r.skeyseed(prf, ni, nr, gir)
            assert skeyseed._bytes() == _b(t["sKeySeed"])

            dkm_len = group["derivedKeyingMaterialLength"] // 8
            (dkm,) = r.prf_plus(prf, skeyseed, ni + nr + spi, [("DKM", dkm_len)])
            assert dkm._bytes() == _b(t["derivedKeyingMaterial"])

            sk_d, _rest = r.prf_plus(prf, skeyseed, ni + nr + spi, [("SK_d", hl), ("rest", dkm_len - hl)])
            child_len = group["derivedKeyingMaterialChildLength"] // 8
            (child,) = r.prf_plus(prf, sk_d, ni + nr, [("KEYMAT", child_len)])
            assert child._bytes() == _b(t["derivedKeyingMaterialChild"])
            (child_dh,) = r.prf_plus(prf, sk_d, ni + nr, [("KEYMAT", child_len)], secret_prefix=gir_new)
            assert child_dh._bytes() == _b(t["derivedKeyingMaterialDh"])

            rekey = r.rekey_skeyseed(prf, sk_d, gir_new, ni, nr)
            assert rekey._bytes() == _b(t["sKeySeedReKey"])


def test_sha1_prf_refused_in_fips(router_fips: Router) -> None:
    g = next(g for g in byte_aligned_groups() if g["hashAlg"] == "SHA-1")
    t = g["tests"][0]
    gir = router_fips.import_secret(_b(t["gir"]), "g^ir")
    with pytest.raises(PolicyViolation) as err:
        router_fips.skeyseed(Prf.PRF_HMAC_SHA1, _b(t["nInit"]), _b(t["nResp"]), gir)
    assert err.value.algorithm == "PRF_HMAC_SHA1" and err.value.profile == "fips"


def test_prf_plus_refuses_more_than_255_blocks(router_fips: Router) -> None:
    from providers import InvalidInput

    key = router_fips.import_secret(b"k" * 32, "SK_d")
    assert len(router_fips.prf_plus(Prf.PRF_HMAC_SHA2_256, key, b"s", [("x", 255 * 32)])[0]) == 255 * 32
    with pytest.raises(InvalidInput):
        router_fips.prf_plus(Prf.PRF_HMAC_SHA2_256, key, b"s", [("x", 255 * 32 + 1)])
