"""Key suites for SK tests, built through the real router."""

from __future__ import annotations

from fipsike.ike.encrypted import SkKeys
from providers.algorithms import Encryption, Integrity
from providers.api import Provider

SUITES = [
    (Encryption.ENCR_AES_GCM_16, 256, Integrity.NONE),
    (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE),
    (Encryption.ENCR_AES_CBC, 256, Integrity.AUTH_HMAC_SHA2_256_128),
    (Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_512_256),
]
SUITE_IDS = [f"{e.name}-{b}-{i.name}" for e, b, i in SUITES]


def make_keys(router: Provider, encr: Encryption, bits: int, integ: Integrity) -> SkKeys:
    n = bits // 8 + encr.salt_size
    ei, er = router.generate_secret(n, "SK_ei"), router.generate_secret(n, "SK_er")
    if encr.is_aead:
        return SkKeys(encr, bits, integ, ei, er)
    ai = router.generate_secret(integ.key_size, "SK_ai")
    ar = router.generate_secret(integ.key_size, "SK_ar")
    return SkKeys(encr, bits, integ, ei, er, ai, ar)
