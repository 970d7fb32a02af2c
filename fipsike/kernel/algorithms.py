"""IKEv2 transform IDs -> Linux crypto API names for ESP SAs (XFRMA_ALG_* attributes).

Which algorithms are allowed is the provider policy's decision, made in the
engine before an SA gets here; this table only names them for the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from fipsike.kernel.types import KernelError
from providers.algorithms import Encryption, Integrity


@dataclass(frozen=True)
class KernelCipher:
    name: str
    aead: bool
    icv_bits: int = 0  # AEAD only


# RFC 4106 (GCM ESP: key || 4-octet salt), RFC 3602 (CBC), RFC 3686 (CTR: key || 4-octet nonce),
# RFC 7634 (ChaCha20-Poly1305: key || 4-octet salt).
_ENCRYPTION: dict[Encryption, KernelCipher] = {
    Encryption.ENCR_AES_GCM_8: KernelCipher("rfc4106(gcm(aes))", True, 64),
    Encryption.ENCR_AES_GCM_12: KernelCipher("rfc4106(gcm(aes))", True, 96),
    Encryption.ENCR_AES_GCM_16: KernelCipher("rfc4106(gcm(aes))", True, 128),
    Encryption.ENCR_CHACHA20_POLY1305: KernelCipher("rfc7539esp(chacha20,poly1305)", True, 128),
    Encryption.ENCR_AES_CBC: KernelCipher("cbc(aes)", False),
    Encryption.ENCR_AES_CTR: KernelCipher("rfc3686(ctr(aes))", False),
    Encryption.ENCR_3DES: KernelCipher("cbc(des3_ede)", False),
    Encryption.ENCR_NULL: KernelCipher("ecb(cipher_null)", False),
}

# RFC 4868 (HMAC-SHA-256-128 etc.), RFC 2404 (HMAC-SHA1-96), RFC 3566 (AES-XCBC-MAC-96).
_INTEGRITY: dict[Integrity, tuple[str, int]] = {
    Integrity.AUTH_HMAC_SHA2_256_128: ("hmac(sha256)", 128),
    Integrity.AUTH_HMAC_SHA2_384_192: ("hmac(sha384)", 192),
    Integrity.AUTH_HMAC_SHA2_512_256: ("hmac(sha512)", 256),
    Integrity.AUTH_HMAC_SHA1_96: ("hmac(sha1)", 96),
    Integrity.AUTH_AES_XCBC_96: ("xcbc(aes)", 96),
}


def kernel_cipher(alg: Encryption) -> KernelCipher:
    try:
        return _ENCRYPTION[alg]
    except KeyError:
        raise KernelError("install SA", "EOPNOTSUPP", f"no kernel name for {alg.name}") from None


def kernel_integrity(alg: Integrity) -> tuple[str, int]:
    """(kernel name, truncation bits)."""
    try:
        return _INTEGRITY[alg]
    except KeyError:
        raise KernelError("install SA", "EOPNOTSUPP", f"no kernel name for {alg.name}") from None

