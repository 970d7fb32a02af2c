"""Algorithm identifiers of the provider API.

Values of the IKEv2 transform IDs are those of the IANA "Internet Key Exchange
Version 2 (IKEv2) Parameters" registry (RFC 7296 section 3.3.2 and later RFCs);
the codec in fipsike/ike maps wire numbers to these without a table of its own.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class HashAlg(enum.Enum):
    SHA1 = "sha1"  # only for verifying legacy signatures in the default profile
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @property
    def digest_size(self) -> int:
        return {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64}[self.value]


class Prf(enum.IntEnum):
    """IKEv2 Transform Type 2 (PRF) IDs."""

    PRF_HMAC_MD5 = 1
    PRF_HMAC_SHA1 = 2
    PRF_AES128_XCBC = 4
    PRF_HMAC_SHA2_256 = 5
    PRF_HMAC_SHA2_384 = 6
    PRF_HMAC_SHA2_512 = 7
    PRF_AES128_CMAC = 8

    @property
    def hash(self) -> HashAlg:
        return _PRF_HASH[self]

    @property
    def key_size(self) -> int:
        """Preferred key size = output size (RFC 7296 section 2.13)."""
        return self.hash.digest_size


class Integrity(enum.IntEnum):
    """IKEv2 Transform Type 3 (Integrity Algorithm) IDs."""

    NONE = 0
    AUTH_HMAC_MD5_96 = 1
    AUTH_HMAC_SHA1_96 = 2
    AUTH_AES_XCBC_96 = 5
    AUTH_HMAC_SHA2_256_128 = 12
    AUTH_HMAC_SHA2_384_192 = 13
    AUTH_HMAC_SHA2_512_256 = 14

    @property
    def hash(self) -> HashAlg:
        return _INTEG_HASH[self]

    @property
    def key_size(self) -> int:
        return self.hash.digest_size

    @property
    def icv_size(self) -> int:
        return _INTEG_ICV[self]


class Encryption(enum.IntEnum):
    """IKEv2 Transform Type 1 (Encryption Algorithm) IDs."""

    ENCR_DES = 2
    ENCR_3DES = 3
    ENCR_NULL = 11
    ENCR_AES_CBC = 12
    ENCR_AES_CTR = 13
    ENCR_AES_CCM_8 = 14
    ENCR_AES_CCM_12 = 15
    ENCR_AES_CCM_16 = 16
    ENCR_AES_GCM_8 = 18
    ENCR_AES_GCM_12 = 19
    ENCR_AES_GCM_16 = 20
    ENCR_CHACHA20_POLY1305 = 28

    @property
    def is_aead(self) -> bool:
        return self in _AEAD_ICV

    @property
    def icv_size(self) -> int:
        """ICV length in octets for AEAD transforms (RFC 5282, RFC 4106, RFC 7634)."""
        return _AEAD_ICV[self]

    @property
    def salt_size(self) -> int:
        """Octets of keying material taken as salt after the key (RFC 4106 8.1, RFC 7634 2)."""
        return 4 if self in _AEAD_ICV else 0

    @property
    def block_size(self) -> int:
        return 8 if self in (Encryption.ENCR_3DES, Encryption.ENCR_DES) else 16


class KeyExchange(enum.IntEnum):
    """IKEv2 Transform Type 4 (Key Exchange Method) IDs."""

    NONE = 0
    MODP_768 = 1
    MODP_1024 = 2
    MODP_1536 = 5
    MODP_2048 = 14
    MODP_3072 = 15
    MODP_4096 = 16
    MODP_6144 = 17
    MODP_8192 = 18
    ECP_256 = 19
    ECP_384 = 20
    ECP_521 = 21
    MODP_1024_160_POS = 22
    MODP_2048_224_POS = 23
    MODP_2048_256_POS = 24
    CURVE25519 = 31
    CURVE448 = 32
    ML_KEM_512 = 35
    ML_KEM_768 = 36
    ML_KEM_1024 = 37

    @property
    def is_kem(self) -> bool:
        return self in (KeyExchange.ML_KEM_512, KeyExchange.ML_KEM_768, KeyExchange.ML_KEM_1024)


class SignatureScheme(enum.Enum):
    """A signature algorithm with its hash and padding, as RFC 7427 names them."""

    RSA_PKCS1_SHA1 = "sha1WithRSAEncryption"
    RSA_PKCS1_SHA256 = "sha256WithRSAEncryption"
    RSA_PKCS1_SHA384 = "sha384WithRSAEncryption"
    RSA_PKCS1_SHA512 = "sha512WithRSAEncryption"
    RSA_PSS_SHA256 = "rsassa-pss-sha256"
    RSA_PSS_SHA384 = "rsassa-pss-sha384"
    RSA_PSS_SHA512 = "rsassa-pss-sha512"
    ECDSA_SHA1 = "ecdsa-with-SHA1"
    ECDSA_SHA256 = "ecdsa-with-SHA256"
    ECDSA_SHA384 = "ecdsa-with-SHA384"
    ECDSA_SHA512 = "ecdsa-with-SHA512"

    @property
    def hash(self) -> HashAlg:
        return _SIG_HASH[self]

    @property
    def family(self) -> str:
        """'rsa-pkcs1', 'rsa-pss' or 'ecdsa'."""
        return _SIG_FAMILY[self]


@dataclass(frozen=True)
class KeySpec:
    """What key pair to generate: ('rsa', bits) or ('ec', curve name secp256r1/secp384r1/secp521r1)."""

    kind: str
    size: int = 0
    curve: str = ""

    def __str__(self) -> str:
        if self.kind == "rsa":
            return f"RSA-{self.size}"
        if self.kind == "ec":
            return f"ECDSA-{self.curve}"
        # any other key type (refused by every profile): `curve` carries its display name
        return f"{self.curve}-{self.size}" if self.size else self.curve


_PRF_HASH = {
    Prf.PRF_HMAC_SHA1: HashAlg.SHA1,
    Prf.PRF_HMAC_SHA2_256: HashAlg.SHA256,
    Prf.PRF_HMAC_SHA2_384: HashAlg.SHA384,
    Prf.PRF_HMAC_SHA2_512: HashAlg.SHA512,
}
_INTEG_HASH = {
    Integrity.AUTH_HMAC_SHA1_96: HashAlg.SHA1,
    Integrity.AUTH_HMAC_SHA2_256_128: HashAlg.SHA256,
    Integrity.AUTH_HMAC_SHA2_384_192: HashAlg.SHA384,
    Integrity.AUTH_HMAC_SHA2_512_256: HashAlg.SHA512,
}
_AEAD_ICV = {
    Encryption.ENCR_AES_GCM_8: 8,
    Encryption.ENCR_AES_GCM_12: 12,
    Encryption.ENCR_AES_GCM_16: 16,
    Encryption.ENCR_AES_CCM_8: 8,
    Encryption.ENCR_AES_CCM_12: 12,
    Encryption.ENCR_AES_CCM_16: 16,
    Encryption.ENCR_CHACHA20_POLY1305: 16,
}
_INTEG_ICV = {
    Integrity.AUTH_HMAC_SHA2_256_128: 16,
    Integrity.AUTH_HMAC_SHA2_384_192: 24,
    Integrity.AUTH_HMAC_SHA2_512_256: 32,
    Integrity.AUTH_HMAC_SHA1_96: 12,
    Integrity.AUTH_HMAC_MD5_96: 12,
    Integrity.AUTH_AES_XCBC_96: 12,
}
# computed once: the hash and family are read on every signature
_SIG_HASH = {s: HashAlg(s.name.rsplit("_", 1)[1].lower()) for s in SignatureScheme}
_SIG_FAMILY = {
    s: "rsa-pss" if s.name.startswith("RSA_PSS") else "rsa-pkcs1" if s.name.startswith("RSA_PKCS1") else "ecdsa"
    for s in SignatureScheme
}
