"""IKEv2 key material: SKEYSEED, the SK_* split, Child SA KEYMAT (RFC 7296 2.13-2.18).

Every secret stays a provider SecretKey handle; this module only decides the
seeds, the order and the sizes, and the Router does the PRF work under its policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from providers.algorithms import Encryption, Integrity, Prf
from providers.api import IkeRouter
from providers.handles import SecretKey


def encr_keymat_size(encr: Encryption, key_bits: int) -> int:
    """Octets of keying material for one direction's cipher: the key, plus the salt for AEAD
    (RFC 5282 7.1 / RFC 4106 8.1: key || 4-octet salt)."""
    return key_bits // 8 + encr.salt_size


def integ_key_size(integ: Integrity | None) -> int:
    # AEAD transforms carry no integrity transform and so no SK_a / integrity KEYMAT (RFC 5282 7).
    if integ is None or integ is Integrity.NONE:
        return 0
    return integ.key_size


@dataclass
class IkeKeys:
    """The seven IKE SA keys (RFC 7296 2.14). sk_ai/sk_ar are None under an AEAD transform."""

    prf: Prf
    sk_d: SecretKey
    sk_ai: SecretKey | None
    sk_ar: SecretKey | None
    sk_ei: SecretKey
    sk_er: SecretKey
    sk_pi: SecretKey
    sk_pr: SecretKey

    def release_contexts(self) -> None:
        """The SK_e/SK_a keys' cached cipher contexts go while the SA is idle (rebuilt on the next exchange)."""
        for k in (self.sk_ei, self.sk_er, self.sk_ai, self.sk_ar):
            if k is not None:
                k.release_context()

    def wipe(self) -> None:
        for k in (self.sk_d, self.sk_ai, self.sk_ar, self.sk_ei, self.sk_er, self.sk_pi, self.sk_pr):
            if k is not None:
                k.wipe()


def _split_ike(router: IkeRouter, prf: Prf, skeyseed: SecretKey, ni: bytes, nr: bytes, spi_i: bytes,
               spi_r: bytes, encr: Encryption, encr_key_bits: int, integ: Integrity | None) -> IkeKeys:
    # {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
    # SK_d/SK_pi/SK_pr take the PRF's preferred key size (its output size, RFC 7296 2.13/2.14).
    pk = prf.key_size
    ak = integ_key_size(integ)
    ek = encr_keymat_size(encr, encr_key_bits)
    lengths: list[tuple[str, int]] = [("SK_d", pk)]
    if ak:
        lengths += [("SK_ai", ak), ("SK_ar", ak)]
    lengths += [("SK_ei", ek), ("SK_er", ek), ("SK_pi", pk), ("SK_pr", pk)]
    keys = router.prf_plus(prf, skeyseed, ni + nr + spi_i + spi_r, lengths)
    it = iter(keys)
    sk_d = next(it)
    sk_ai = next(it) if ak else None
    sk_ar = next(it) if ak else None
    sk_ei, sk_er, sk_pi, sk_pr = next(it), next(it), next(it), next(it)
    return IkeKeys(prf, sk_d, sk_ai, sk_ar, sk_ei, sk_er, sk_pi, sk_pr)


def derive_ike_keys(router: IkeRouter, prf: Prf, encr: Encryption, encr_key_bits: int,
                    integ: Integrity | None, ni: bytes, nr: bytes, shared: SecretKey, spi_i: bytes,
                    spi_r: bytes) -> IkeKeys:
    """IKE_SA_INIT: SKEYSEED = prf(Ni | Nr, g^ir), then the split (RFC 7296 2.14)."""
    skeyseed = router.skeyseed(prf, ni, nr, shared)
    try:
        return _split_ike(router, prf, skeyseed, ni, nr, spi_i, spi_r, encr, encr_key_bits, integ)
    finally:
        skeyseed.wipe()


def derive_rekeyed_ike_keys(router: IkeRouter, old_prf: Prf, old_sk_d: SecretKey, prf: Prf,
                            encr: Encryption, encr_key_bits: int, integ: Integrity | None,
                            shared: SecretKey, ni: bytes, nr: bytes, spi_i: bytes,
                            spi_r: bytes) -> IkeKeys:
    """IKE SA rekey: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 2.18).

    The SKEYSEED PRF is the old SA's (it is keyed with the old SK_d); the prf+ that splits it is the
    new SA's. Ni/Nr and SPIi/SPIr are those of the CREATE_CHILD_SA exchange and the new IKE SA.
    """
    skeyseed = router.rekey_skeyseed(old_prf, old_sk_d, shared, ni, nr)
    try:
        return _split_ike(router, prf, skeyseed, ni, nr, spi_i, spi_r, encr, encr_key_bits, integ)
    finally:
        skeyseed.wipe()


@dataclass
class ChildKeys:
    """ESP keys per direction (opaque handles): i->r is what the initiator sends with."""

    encr_i: SecretKey
    integ_i: SecretKey | None
    encr_r: SecretKey
    integ_r: SecretKey | None

    def wipe(self) -> None:
        for k in (self.encr_i, self.integ_i, self.encr_r, self.integ_r):
            if k is not None:
                k.wipe()


def derive_child_keys(router: IkeRouter, prf: Prf, sk_d: SecretKey, encr: Encryption, encr_key_bits: int,
                      integ: Integrity | None, ni: bytes, nr: bytes,
                      shared: SecretKey | None = None) -> ChildKeys:
    """KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) (RFC 7296 2.17).

    Taken in order: initiator-to-responder encryption key, its integrity key, then the
    responder-to-initiator pair. Ni/Nr are those of the exchange that made this Child SA.
    """
    ek = encr_keymat_size(encr, encr_key_bits)
    ak = integ_key_size(integ)
    lengths: list[tuple[str, int]] = [("ESP_ENCR_I", ek)]
    if ak:
        lengths.append(("ESP_INTEG_I", ak))
    lengths.append(("ESP_ENCR_R", ek))
    if ak:
        lengths.append(("ESP_INTEG_R", ak))
    keys = router.prf_plus(prf, sk_d, ni + nr, lengths, secret_prefix=shared)
    if ak:
        return ChildKeys(keys[0], keys[1], keys[2], keys[3])
    return ChildKeys(keys[0], None, keys[1], None)


# --- multiple key exchanges (RFC 9370) ---------------------------------------------------------

def derive_intermediate_keys(router: IkeRouter, keys: IkeKeys, encr: Encryption, encr_key_bits: int,
                             integ: Integrity | None, shared: SecretKey, ni: bytes, nr: bytes, spi_i: bytes,
                             spi_r: bytes) -> IkeKeys:
    """After the n-th IKE_INTERMEDIATE key exchange (RFC 9370 2.2.2):

        SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
        {SK_d(n) | SK_ai(n) | SK_ar(n) | SK_ei(n) | SK_er(n) | SK_pi(n) | SK_pr(n)}
                    = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)

    `keys` are the (n-1) keys (n = 1: those of IKE_SA_INIT); Ni, Nr, SPIi and SPIr are the IKE SA's
    own, from IKE_SA_INIT. It is the rekey formula of RFC 7296 2.18 with the IKE SA's one PRF.
    The caller wipes the (n-1) keys once nothing protected by them is outstanding.
    """
    return derive_rekeyed_ike_keys(router, keys.prf, keys.sk_d, keys.prf, encr, encr_key_bits, integ, shared,
                                   ni, nr, spi_i, spi_r)


def _followup_secret(router: IkeRouter, shared: SecretKey | None, ni: bytes, nr: bytes,
                     additional: Sequence[SecretKey]) -> SecretKey:
    """SK(0) | Ni | Nr | SK(1) | ... | SK(n) as one handle (RFC 9370 2.2.4)."""
    parts: list[SecretKey | bytes] = [shared] if shared is not None else []
    parts += [ni + nr, *additional]
    return router.join_secrets(parts, "SK(0) | Ni | Nr | SK(1..n)")


def derive_followup_child_keys(router: IkeRouter, prf: Prf, sk_d: SecretKey, encr: Encryption, encr_key_bits: int,
                               integ: Integrity | None, ni: bytes, nr: bytes, shared: SecretKey | None,
                               additional: Sequence[SecretKey]) -> ChildKeys:
    """Child SA made or rekeyed with additional key exchanges (CREATE_CHILD_SA, then IKE_FOLLOWUP_KE):

        KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))     (RFC 9370 2.2.4)

    SK(0), Ni and Nr are those of the CREATE_CHILD_SA exchange (SK(0) None: no KE payload in it),
    SK(1..n) those of the IKE_FOLLOWUP_KE exchanges in order. With no additional exchange this is
    RFC 7296 2.17 exactly. The KEYMAT split is derive_child_keys'.
    """
    if not additional:
        return derive_child_keys(router, prf, sk_d, encr, encr_key_bits, integ, ni, nr, shared)
    joined = _followup_secret(router, shared, ni, nr, additional)
    try:
        return derive_child_keys(router, prf, sk_d, encr, encr_key_bits, integ, b"", b"", joined)
    finally:
        joined.wipe()


def derive_followup_rekeyed_ike_keys(router: IkeRouter, old_prf: Prf, old_sk_d: SecretKey, prf: Prf,
                                     encr: Encryption, encr_key_bits: int, integ: Integrity | None,
                                     shared: SecretKey, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes,
                                     additional: Sequence[SecretKey]) -> IkeKeys:
    """IKE SA rekeyed with additional key exchanges:

        SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))  (RFC 9370 2.2.4)

    then the split of RFC 7296 2.14 with the new SA's PRF, nonces and SPIs, as derive_rekeyed_ike_keys.
    """
    if not additional:
        return derive_rekeyed_ike_keys(router, old_prf, old_sk_d, prf, encr, encr_key_bits, integ, shared,
                                       ni, nr, spi_i, spi_r)
    joined = _followup_secret(router, shared, ni, nr, additional)
    try:
        skeyseed = router.rekey_skeyseed(old_prf, old_sk_d, joined, b"", b"")
    finally:
        joined.wipe()
    try:
        return _split_ike(router, prf, skeyseed, ni, nr, spi_i, spi_r, encr, encr_key_bits, integ)
    finally:
        skeyseed.wipe()
