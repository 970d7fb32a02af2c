"""The approved-algorithm allowlist, per profile (`fips`, `default`).

Every algorithm fipsike can name has one row in `ENTRIES`, with the profiles
that allow it and the document that says so. The Router checks every call
against the active profile; a refusal is a `PolicyViolation`, never a silent
downgrade. Compliance renders `table()` for auditors.

Decisions worth knowing (each is also in the row's `note`):
- AES-GCM with a 12-octet ICV (96-bit tag) is allowed in `fips`: SP 800-38D
  5.2.1.2 lists 96 bits among the tag lengths usable without the extra
  constraints of its Appendix C; RFC 4106 defines it for ESP. The 8-octet ICV
  (64-bit tag) falls under Appendix C (bounds on packet length and on the number
  of failed decryptions per key) which this module does not enforce, so `fips`
  refuses it. RFC 8221 section 5 makes AES-GCM-16 the MUST.
- HMAC-SHA-1 stays approved for MACs in SP 800-131A r2 section 9, but `fips`
  here follows RFC 8247/8221's direction and the project's allowlist: SHA-2 only
  for integrity, PRF and signatures. SHA-1 as a plain digest (NAT_DETECTION,
  CERTREQ hashes: RFC 7296 2.23, 3.7) is allowed in both profiles: those hashes
  protect nothing cryptographically (SP 800-131A r2 section 9, "non-digital
  signature applications").
- `default` adds what real peers still send: X25519/X448, ChaCha20-Poly1305,
  HMAC-SHA1 PRF/integrity, MODP-1536, AES-GCM-8, SHA-1 signature
  *verification*. It still refuses DES, MD5, MODP-768/1024, groups 22-24 (RFC 8247
  2.4: MUST NOT / SHOULD NOT, small-subgroup risk) and RSA below 2048 bits.
- Algorithms this module does not implement (AES-CCM, AES-CTR, AES-XCBC/CMAC,
  ENCR_NULL, ML-KEM-512) are refused in both profiles with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers.algorithms import (
    Encryption,
    HashAlg,
    Integrity,
    KeyExchange,
    KeySpec,
    Prf,
    SignatureScheme,
)
from providers.errors import PolicyViolation

PROFILES: Final = ("fips", "default")

# References, spelled once.
SP800_131A = "NIST SP 800-131A r2"
SP800_56A = "NIST SP 800-56A r3"
SP800_56C = "NIST SP 800-56C r2"
SP800_38A = "NIST SP 800-38A"
SP800_38D = "NIST SP 800-38D"
SP800_67 = "NIST SP 800-67r2"
SP800_135 = "NIST SP 800-135r1 section 5.1"
FIPS186 = "FIPS 186-5"
FIPS198 = "FIPS 198-1"
FIPS180 = "FIPS 180-4"
FIPS203 = "FIPS 203"
RFC8221 = "RFC 8221"
RFC8247 = "RFC 8247"


@dataclass(frozen=True)
class PolicyEntry:
    """One algorithm and what each profile says about it."""

    name: str
    kind: str  # encryption, integrity, prf, key-exchange, signature, signature-verify, hash, key
    fips: bool
    default: bool
    reference: str
    note: str = ""
    key_bits: tuple[int, ...] = ()  # allowed key sizes for ciphers; empty = not applicable

    def allowed(self, profile: str) -> bool:
        return self.fips if profile == "fips" else self.default

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "allowed": {"fips": self.fips, "default": self.default},
            "key_bits": list(self.key_bits),
            "reference": self.reference,
            "note": self.note,
        }


_NOT_IMPL = "not implemented by this module"

_ENCRYPTION: dict[Encryption, PolicyEntry] = {
    Encryption.ENCR_AES_GCM_16: PolicyEntry(
        "ENCR_AES_GCM_16", "encryption", True, True,
        f"{SP800_38D}; {RFC8221} section 5 (MUST); {RFC8247} section 2.2; RFC 4106",
        "128-bit ICV; AES-128 and AES-256 (RFC 8221: AES-GCM-16 with 128/256-bit keys)",
        (128, 256)),
    Encryption.ENCR_AES_GCM_12: PolicyEntry(
        "ENCR_AES_GCM_12", "encryption", True, True,
        f"{SP800_38D} section 5.2.1.2 (96-bit tag); RFC 4106",
        "96-bit ICV: usable without SP 800-38D Appendix C constraints", (128, 256)),
    Encryption.ENCR_AES_GCM_8: PolicyEntry(
        "ENCR_AES_GCM_8", "encryption", False, True,
        f"{SP800_38D} section 5.2.1.2 and Appendix C; {RFC8221} section 5",
        "64-bit ICV needs Appendix C limits on packet size and failed decryptions", (128, 256)),
    Encryption.ENCR_AES_CBC: PolicyEntry(
        "ENCR_AES_CBC", "encryption", True, True,
        f"{SP800_38A} section 6.2; {RFC8221} section 5 (MUST); {RFC8247} section 2.2; RFC 3602",
        "with an HMAC-SHA2 integrity transform", (128, 192, 256)),
    Encryption.ENCR_CHACHA20_POLY1305: PolicyEntry(
        "ENCR_CHACHA20_POLY1305", "encryption", False, True,
        f"RFC 7634; {RFC8221} section 5 (SHOULD)", "not a NIST-approved cipher", (256,)),
    Encryption.ENCR_3DES: PolicyEntry(
        "ENCR_3DES", "encryption", False, False,
        f"{SP800_131A} section 2 (TDEA encryption disallowed after 2023); {RFC8221} (SHOULD NOT)",
        "64-bit block: Sweet32 birthday attacks"),
    Encryption.ENCR_DES: PolicyEntry(
        "ENCR_DES", "encryption", False, False, f"{RFC8221} section 5 (MUST NOT); FIPS 46-3 withdrawn",
        "56-bit key"),
    Encryption.ENCR_NULL: PolicyEntry(
        "ENCR_NULL", "encryption", False, False, f"{RFC8221} section 5; RFC 2410",
        "no confidentiality; " + _NOT_IMPL),
    Encryption.ENCR_AES_CTR: PolicyEntry(
        "ENCR_AES_CTR", "encryption", False, False, f"{SP800_38A}; RFC 3686", _NOT_IMPL),
    Encryption.ENCR_AES_CCM_8: PolicyEntry(
        "ENCR_AES_CCM_8", "encryption", False, False, "NIST SP 800-38C; RFC 4309", _NOT_IMPL),
    Encryption.ENCR_AES_CCM_12: PolicyEntry(
        "ENCR_AES_CCM_12", "encryption", False, False, "NIST SP 800-38C; RFC 4309", _NOT_IMPL),
    Encryption.ENCR_AES_CCM_16: PolicyEntry(
        "ENCR_AES_CCM_16", "encryption", False, False, "NIST SP 800-38C; RFC 4309", _NOT_IMPL),
}

_INTEGRITY: dict[Integrity, PolicyEntry] = {
    Integrity.AUTH_HMAC_SHA2_256_128: PolicyEntry(
        "AUTH_HMAC_SHA2_256_128", "integrity", True, True,
        f"{FIPS198}; {SP800_131A} section 9; {RFC8221} section 6 (MUST); RFC 4868"),
    Integrity.AUTH_HMAC_SHA2_384_192: PolicyEntry(
        "AUTH_HMAC_SHA2_384_192", "integrity", True, True, f"{FIPS198}; {SP800_131A} section 9; RFC 4868"),
    Integrity.AUTH_HMAC_SHA2_512_256: PolicyEntry(
        "AUTH_HMAC_SHA2_512_256", "integrity", True, True,
        f"{FIPS198}; {SP800_131A} section 9; {RFC8221} section 6 (SHOULD); RFC 4868"),
    Integrity.AUTH_HMAC_SHA1_96: PolicyEntry(
        "AUTH_HMAC_SHA1_96", "integrity", False, True,
        f"{RFC8221} section 6 (MUST-); {RFC8247} section 2.3", "SHA-1: legacy peers only"),
    Integrity.AUTH_HMAC_MD5_96: PolicyEntry(
        "AUTH_HMAC_MD5_96", "integrity", False, False, f"{RFC8221} section 6 (MUST NOT)", "MD5"),
    Integrity.AUTH_AES_XCBC_96: PolicyEntry(
        "AUTH_AES_XCBC_96", "integrity", False, False, "RFC 3566; not in NIST SP 800-38B", _NOT_IMPL),
    Integrity.NONE: PolicyEntry(
        "NONE", "integrity", True, True, f"{RFC8221} section 6",
        "only valid with an AEAD cipher (checked by the proposal logic)"),
}

# SKEYSEED = HMAC(Ni | Nr, g^ir) is the extraction step and prf+ the expansion step of
# SP 800-56C r2 section 5's two-step KDF; SP 800-135r1 5.1 approves the IKEv2 KDF as such.
_KDF = f"{SP800_135}; {SP800_56C} section 5 (HMAC extract, then expand); {FIPS198}"
_PRF: dict[Prf, PolicyEntry] = {
    Prf.PRF_HMAC_SHA2_256: PolicyEntry(
        "PRF_HMAC_SHA2_256", "prf", True, True, f"{_KDF}; {RFC8247} section 2.3 (MUST)"),
    Prf.PRF_HMAC_SHA2_384: PolicyEntry(
        "PRF_HMAC_SHA2_384", "prf", True, True, f"{_KDF}; {RFC8247} section 2.3"),
    Prf.PRF_HMAC_SHA2_512: PolicyEntry(
        "PRF_HMAC_SHA2_512", "prf", True, True, f"{_KDF}; {RFC8247} section 2.3 (SHOULD+)"),
    Prf.PRF_HMAC_SHA1: PolicyEntry(
        "PRF_HMAC_SHA1", "prf", False, True, f"{RFC8247} section 2.3 (MUST-)", "SHA-1: legacy peers only"),
    Prf.PRF_HMAC_MD5: PolicyEntry("PRF_HMAC_MD5", "prf", False, False, f"{RFC8247} section 2.3 (MUST NOT)"),
    Prf.PRF_AES128_XCBC: PolicyEntry(
        "PRF_AES128_XCBC", "prf", False, False, f"{SP800_135} (HMAC only); RFC 4434", _NOT_IMPL),
    Prf.PRF_AES128_CMAC: PolicyEntry(
        "PRF_AES128_CMAC", "prf", False, False, f"{SP800_135} (HMAC only); RFC 4615", _NOT_IMPL),
}

_MODP = f"{SP800_56A} section 5.5.1.1 and Appendix D (safe-prime groups); RFC 3526"
_ECP = f"{SP800_56A} Appendix D; {FIPS186}; RFC 5903"
_KE: dict[KeyExchange, PolicyEntry] = {
    KeyExchange.MODP_2048: PolicyEntry("MODP_2048", "key-exchange", True, True, f"{_MODP}; {RFC8247} (MUST)"),
    KeyExchange.MODP_3072: PolicyEntry("MODP_3072", "key-exchange", True, True, _MODP),
    KeyExchange.MODP_4096: PolicyEntry("MODP_4096", "key-exchange", True, True, _MODP),
    KeyExchange.MODP_6144: PolicyEntry("MODP_6144", "key-exchange", True, True, _MODP),
    KeyExchange.MODP_8192: PolicyEntry("MODP_8192", "key-exchange", True, True, _MODP),
    KeyExchange.ECP_256: PolicyEntry("ECP_256", "key-exchange", True, True, f"{_ECP}; {RFC8247} (SHOULD)"),
    KeyExchange.ECP_384: PolicyEntry("ECP_384", "key-exchange", True, True, _ECP),
    KeyExchange.ECP_521: PolicyEntry("ECP_521", "key-exchange", True, True, _ECP),
    KeyExchange.ML_KEM_768: PolicyEntry(
        "ML_KEM_768", "key-exchange", True, True, f"{FIPS203}; RFC 9370; draft-ietf-ipsecme-ikev2-mlkem"),
    KeyExchange.ML_KEM_1024: PolicyEntry(
        "ML_KEM_1024", "key-exchange", True, True, f"{FIPS203}; RFC 9370; draft-ietf-ipsecme-ikev2-mlkem"),
    KeyExchange.ML_KEM_512: PolicyEntry(
        "ML_KEM_512", "key-exchange", False, False, FIPS203, _NOT_IMPL + " (cryptography has no ML-KEM-512)"),
    KeyExchange.CURVE25519: PolicyEntry(
        "CURVE25519", "key-exchange", False, True, f"RFC 8031; {RFC8247} (SHOULD); not in {SP800_56A}"),
    KeyExchange.CURVE448: PolicyEntry(
        "CURVE448", "key-exchange", False, True, f"RFC 8031; not in {SP800_56A}"),
    KeyExchange.MODP_1536: PolicyEntry(
        "MODP_1536", "key-exchange", False, True, f"{SP800_131A} section 5 (< 112-bit security); {RFC8247}",
        "legacy peers only"),
    KeyExchange.MODP_1024: PolicyEntry(
        "MODP_1024", "key-exchange", False, False, f"{SP800_131A} section 5; {RFC8247} (SHOULD NOT)",
        "80-bit security; the OpenSSL underneath refuses key generation in it"),
    KeyExchange.MODP_768: PolicyEntry(
        "MODP_768", "key-exchange", False, False, f"{SP800_131A} section 5; {RFC8247} (MUST NOT)"),
    KeyExchange.MODP_1024_160_POS: PolicyEntry(
        "MODP_1024_160_POS", "key-exchange", False, False, f"{RFC8247} section 2.4 (MUST NOT)"),
    KeyExchange.MODP_2048_224_POS: PolicyEntry(
        "MODP_2048_224_POS", "key-exchange", False, False, f"{RFC8247} section 2.4 (SHOULD NOT); RFC 5114",
        "small-subgroup risk"),
    KeyExchange.MODP_2048_256_POS: PolicyEntry(
        "MODP_2048_256_POS", "key-exchange", False, False, f"{RFC8247} section 2.4 (SHOULD NOT); RFC 5114",
        "small-subgroup risk"),
    KeyExchange.NONE: PolicyEntry(
        "NONE", "key-exchange", True, True, "RFC 7296 section 3.3.2",
        "child SA without PFS (the keys still come from the IKE SA's KE)"),
}

_RSA_PSS = f"{FIPS186} section 5.4; RFC 8017; RFC 7427; {RFC8247} section 3"
_RSA_V15 = f"{FIPS186} section 5.4; RFC 8017; RFC 7427; {RFC8247} section 3"
_ECDSA = f"{FIPS186} section 6; RFC 7427; RFC 4754; {RFC8247} section 3"
_SHA1_SIG = f"{SP800_131A} section 9 (SHA-1 disallowed for signature generation)"
_SIG: dict[SignatureScheme, PolicyEntry] = {
    SignatureScheme.RSA_PSS_SHA256: PolicyEntry("RSA_PSS_SHA256", "signature", True, True, _RSA_PSS),
    SignatureScheme.RSA_PSS_SHA384: PolicyEntry("RSA_PSS_SHA384", "signature", True, True, _RSA_PSS),
    SignatureScheme.RSA_PSS_SHA512: PolicyEntry("RSA_PSS_SHA512", "signature", True, True, _RSA_PSS),
    SignatureScheme.RSA_PKCS1_SHA256: PolicyEntry("RSA_PKCS1_SHA256", "signature", True, True, _RSA_V15),
    SignatureScheme.RSA_PKCS1_SHA384: PolicyEntry("RSA_PKCS1_SHA384", "signature", True, True, _RSA_V15),
    SignatureScheme.RSA_PKCS1_SHA512: PolicyEntry("RSA_PKCS1_SHA512", "signature", True, True, _RSA_V15),
    SignatureScheme.ECDSA_SHA256: PolicyEntry("ECDSA_SHA256", "signature", True, True, _ECDSA),
    SignatureScheme.ECDSA_SHA384: PolicyEntry("ECDSA_SHA384", "signature", True, True, _ECDSA),
    SignatureScheme.ECDSA_SHA512: PolicyEntry("ECDSA_SHA512", "signature", True, True, _ECDSA),
    SignatureScheme.RSA_PKCS1_SHA1: PolicyEntry(
        "RSA_PKCS1_SHA1", "signature", False, False, _SHA1_SIG, "generation refused in both profiles"),
    SignatureScheme.ECDSA_SHA1: PolicyEntry(
        "ECDSA_SHA1", "signature", False, False, _SHA1_SIG, "generation refused in both profiles"),
}
# Verification of SHA-1 signatures: SP 800-131A r2 section 9 allows it for legacy use only;
# the default profile accepts it from old peers, fips does not.
_SIG_VERIFY: dict[SignatureScheme, PolicyEntry] = {
    s: PolicyEntry(e.name, "signature-verify", e.fips, e.default, e.reference) for s, e in _SIG.items()
}
_SIG_VERIFY[SignatureScheme.RSA_PKCS1_SHA1] = PolicyEntry(
    "RSA_PKCS1_SHA1", "signature-verify", False, True, f"{SP800_131A} section 9 (legacy use)",
    "verification of legacy peers' signatures only")
_SIG_VERIFY[SignatureScheme.ECDSA_SHA1] = PolicyEntry(
    "ECDSA_SHA1", "signature-verify", False, True, f"{SP800_131A} section 9 (legacy use)",
    "verification of legacy peers' signatures only")

_HASH: dict[HashAlg, PolicyEntry] = {
    HashAlg.SHA256: PolicyEntry("SHA256", "hash", True, True, FIPS180),
    HashAlg.SHA384: PolicyEntry("SHA384", "hash", True, True, FIPS180),
    HashAlg.SHA512: PolicyEntry("SHA512", "hash", True, True, FIPS180),
    HashAlg.SHA1: PolicyEntry(
        "SHA1", "hash", True, True,
        f"{FIPS180}; {SP800_131A} section 9 (non-signature uses); RFC 7296 sections 2.23 and 3.7",
        "plain digest only (NAT_DETECTION, CERTREQ): never for signatures, PRF or integrity here"),
}

_KEYS: dict[str, PolicyEntry] = {
    "rsa": PolicyEntry(
        "RSA", "key", True, True, f"{FIPS186} section 5.1; {SP800_131A} section 3 (>= 2048 bits)",
        "modulus >= 2048 bits", (2048, 3072, 4096)),
    "secp256r1": PolicyEntry("ECDSA P-256", "key", True, True, f"{FIPS186} section 6; NIST SP 800-186", "", (256,)),
    "secp384r1": PolicyEntry("ECDSA P-384", "key", True, True, f"{FIPS186} section 6; NIST SP 800-186", "", (384,)),
    "secp521r1": PolicyEntry("ECDSA P-521", "key", True, True, f"{FIPS186} section 6; NIST SP 800-186", "", (521,)),
}
_RSA_MIN_BITS: Final = 2048

ENTRIES: Final[list[PolicyEntry]] = [
    *_ENCRYPTION.values(), *_INTEGRITY.values(), *_PRF.values(), *_KE.values(),
    *_SIG.values(),
    *(e for s, e in _SIG_VERIFY.items() if e.allowed("default") != _SIG[s].allowed("default")),
    *_HASH.values(), *_KEYS.values(),
]


# Pre-shared keys (RFC 7296 2.15) are HMAC keys: at least half the PRF's output size in the fips
# profile (FIPS 198-1 section 3 / SP 800-107 r1 section 5.4.3, "at least L/2"; libreswan's
# crypt_prf_fips_key_size_min gives the same 16 / 24 / 32 octets for SHA2-256 / 384 / 512).
PSK_RULE = "a PSK of at least half the PRF's output size (FIPS 198-1 section 3; SP 800-107 r1 section 5.4.3)"


def psk_min_octets(alg: Prf) -> int:
    """The shortest PSK the fips profile takes with this PRF (32 for a PRF it does not know)."""
    try:
        return alg.hash.digest_size // 2
    except (KeyError, AttributeError):
        return 32


def table() -> list[dict[str, Any]]:
    """The whole allowlist as plain data (for the compliance report)."""
    return [e.as_dict() for e in ENTRIES]


class Policy:
    """The active profile. `check_*` raise PolicyViolation; `allows_*` answer True/False."""

    def __init__(self, profile: str = "fips") -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown policy profile {profile!r}; expected one of {', '.join(PROFILES)}")
        self.profile = profile
        fips = profile == "fips"
        self.fips = fips
        # (cipher, key octets) pairs allowed: the router's hot path is one set lookup.
        self._enc_ok: frozenset[tuple[Encryption, int]] = frozenset(
            (alg, bits // 8) for alg, e in _ENCRYPTION.items() if e.allowed(profile) for bits in e.key_bits)
        self._integ_ok = frozenset(a for a, e in _INTEGRITY.items() if e.allowed(profile))
        self._prf_ok = frozenset(a for a, e in _PRF.items() if e.allowed(profile))
        self._ke_ok = frozenset(a for a, e in _KE.items() if e.allowed(profile))
        self._sign_ok = frozenset(a for a, e in _SIG.items() if e.allowed(profile))
        self._verify_ok = frozenset(a for a, e in _SIG_VERIFY.items() if e.allowed(profile))
        self._hash_ok = frozenset(a for a, e in _HASH.items() if e.allowed(profile))

    def __repr__(self) -> str:
        return f"Policy({self.profile!r})"

    def _refuse(self, name: str, rule: str) -> PolicyViolation:
        return PolicyViolation(name, rule, self.profile)

    @staticmethod
    def entry(kind: str, alg: Any) -> PolicyEntry | None:
        tables: dict[str, dict[Any, PolicyEntry]] = {
            "encryption": dict(_ENCRYPTION), "integrity": dict(_INTEGRITY), "prf": dict(_PRF),
            "key-exchange": dict(_KE), "signature": dict(_SIG), "signature-verify": dict(_SIG_VERIFY),
            "hash": dict(_HASH), "key": dict(_KEYS),
        }
        return tables[kind].get(alg)

    @staticmethod
    def _rule(entry: PolicyEntry | None, fallback: str) -> str:
        if entry is None:
            return fallback
        return f"{entry.note + '; ' if entry.note else ''}see {entry.reference}"

    # --- encryption ----------------------------------------------------------
    def allows_encryption(self, alg: Encryption, key_bits: int) -> bool:
        return (alg, key_bits // 8) in self._enc_ok and key_bits % 8 == 0

    def check_encryption(self, alg: Encryption, key_bits: int) -> None:
        if (alg, key_bits // 8) in self._enc_ok and key_bits % 8 == 0:
            return
        e = _ENCRYPTION.get(alg)
        name = alg.name if isinstance(alg, Encryption) else str(alg)
        if e is not None and e.allowed(self.profile):
            raise self._refuse(f"{name} with a {key_bits}-bit key",
                               f"key sizes allowed: {', '.join(map(str, e.key_bits))} bits ({e.reference})")
        raise self._refuse(name, self._rule(e, "unknown encryption transform"))

    # --- integrity, PRF, hash ---------------------------------------------------
    def allows_integrity(self, alg: Integrity) -> bool:
        return alg in self._integ_ok

    def check_integrity(self, alg: Integrity) -> None:
        if alg not in self._integ_ok:
            raise self._refuse(getattr(alg, "name", str(alg)), self._rule(_INTEGRITY.get(alg), "unknown"))

    def allows_prf(self, alg: Prf) -> bool:
        return alg in self._prf_ok

    def check_prf(self, alg: Prf) -> None:
        if alg not in self._prf_ok:
            raise self._refuse(getattr(alg, "name", str(alg)), self._rule(_PRF.get(alg), "unknown PRF"))

    def allows_hash(self, alg: HashAlg) -> bool:
        return alg in self._hash_ok

    def check_hash(self, alg: HashAlg) -> None:
        """A plain digest (not for a signature: use check_signature)."""
        if alg not in self._hash_ok:
            raise self._refuse(getattr(alg, "name", str(alg)), self._rule(_HASH.get(alg), "unknown hash"))

    def check_signature_hash(self, alg: HashAlg) -> None:
        """A hash used to sign (certificates, CRLs): SHA-2 only in both profiles."""
        if alg is HashAlg.SHA1 or alg not in self._hash_ok:
            raise self._refuse(f"{getattr(alg, 'name', alg)} in a signature", _SHA1_SIG)

    # --- key exchange -------------------------------------------------------------
    def allows_ke(self, group: KeyExchange) -> bool:
        return group in self._ke_ok

    def check_ke(self, group: KeyExchange) -> None:
        if group not in self._ke_ok:
            raise self._refuse(getattr(group, "name", str(group)),
                               self._rule(_KE.get(group), "unknown key exchange method"))

    # --- signatures and keys ---------------------------------------------------------
    def allows_signature(self, scheme: SignatureScheme, verify: bool = False) -> bool:
        return scheme in (self._verify_ok if verify else self._sign_ok)

    def check_signature(self, scheme: SignatureScheme, verify: bool = False, key: Any = None) -> None:
        """`key` (a KeySpec or a cryptography key object) also gets its size checked."""
        ok = self._verify_ok if verify else self._sign_ok
        if scheme not in ok:
            table_ = _SIG_VERIFY if verify else _SIG
            what = f"{getattr(scheme, 'name', scheme)} {'verification' if verify else 'generation'}"
            raise self._refuse(what, self._rule(table_.get(scheme), "unknown signature scheme"))
        if key is not None:
            spec = key if isinstance(key, KeySpec) else key_spec_of(key)
            family = scheme.family
            if (spec.kind == "rsa") != family.startswith("rsa"):
                raise self._refuse(f"{scheme.name} with a {spec} key", "signature scheme does not match the key type")
            self.check_key(spec)

    def allows_key(self, spec: KeySpec) -> bool:
        try:
            self.check_key(spec)
        except PolicyViolation:
            return False
        return True

    def check_key(self, spec: KeySpec) -> None:
        if spec.kind == "rsa":
            if spec.size < _RSA_MIN_BITS:
                raise self._refuse(str(spec), f"RSA modulus below {_RSA_MIN_BITS} bits; see {_KEYS['rsa'].reference}")
            return
        if spec.kind == "ec":
            e = _KEYS.get(spec.curve)
            if e is None or not e.allowed(self.profile):
                raise self._refuse(str(spec), f"curve not approved; allowed: P-256, P-384, P-521 ({FIPS186})")
            return
        raise self._refuse(str(spec), "unknown key type; only RSA and ECDSA keys are supported")


def key_spec_of(key: Any) -> KeySpec:
    """The KeySpec of a `cryptography` public or private key object."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return KeySpec("rsa", key.key_size)
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return KeySpec("ec", key.curve.key_size, key.curve.name)
    from cryptography.hazmat.primitives.asymmetric import dsa, ed448, ed25519, x448, x25519

    named: tuple[tuple[Any, str, bool], ...] = (
        (ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey, "Ed25519", False),
        (ed448.Ed448PublicKey | ed448.Ed448PrivateKey, "Ed448", False),
        (x25519.X25519PublicKey | x25519.X25519PrivateKey, "X25519", False),
        (x448.X448PublicKey | x448.X448PrivateKey, "X448", False),
        (dsa.DSAPublicKey | dsa.DSAPrivateKey, "DSA", True),
    )
    for types, name, sized in named:
        if isinstance(key, types):
            return KeySpec(name.lower(), int(key.key_size) if sized else 0, name)
    name = type(key).__name__.lstrip("_").removesuffix("PublicKey").removesuffix("PrivateKey") or "unknown"
    return KeySpec(name.lower(), 0, name)
