"""SIGNATURE_HASH_ALGORITHMS (RFC 7427 section 4) and the choice of the
signature scheme for our key.

The notify data is a list of 2-octet hash algorithm identifiers from the IANA
"IKEv2 Hash Algorithms" registry. The peer sends the hashes it can verify; we
sign with a scheme whose hash is in that list and that the active profile
allows.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers.algorithms import HashAlg, SignatureScheme


class HashAlgorithmId(enum.IntEnum):
    """IANA IKEv2 Hash Algorithms (RFC 7427 section 7, RFC 8420)."""

    SHA1 = 1
    SHA2_256 = 2
    SHA2_384 = 3
    SHA2_512 = 4
    IDENTITY = 5

    @property
    def hash(self) -> HashAlg:
        return _ID_HASH[self]


_ID_HASH = {
    HashAlgorithmId.SHA1: HashAlg.SHA1,
    HashAlgorithmId.SHA2_256: HashAlg.SHA256,
    HashAlgorithmId.SHA2_384: HashAlg.SHA384,
    HashAlgorithmId.SHA2_512: HashAlg.SHA512,
}
HASH_ID = {v: k for k, v in _ID_HASH.items()}


class NoAcceptableSignatureScheme(ValueError):
    """No scheme for this key uses a hash the peer announced and the policy allows."""


def encode_notify(hashes: Iterable[HashAlgorithmId]) -> bytes:
    """Notification Data of SIGNATURE_HASH_ALGORITHMS (16384)."""
    return b"".join(struct.pack("!H", int(h)) for h in hashes)


def decode_notify(data: bytes) -> list[int]:
    """The announced identifiers, unknown ones kept as ints (they are ignored
    later, never an error: RFC 7427 section 4)."""
    if len(data) % 2:
        raise ValueError("SIGNATURE_HASH_ALGORITHMS data has an odd length")
    return [v for (v,) in struct.iter_unpack("!H", data)]


def announced_hashes(policy: Any) -> list[HashAlgorithmId]:
    """What we announce: every hash the policy (providers.Policy) lets us verify, SHA-2 first."""
    out = []
    for hid in (HashAlgorithmId.SHA2_256, HashAlgorithmId.SHA2_384, HashAlgorithmId.SHA2_512,
                HashAlgorithmId.SHA1):
        if any(policy.allows_signature(s, verify=True) for s in SignatureScheme if s.hash is hid.hash):
            out.append(hid)
    return out


def candidate_schemes(public_key: Any, rsa_padding: str = "pss") -> list[SignatureScheme]:
    """Schemes for this key, most preferred first.

    ECDSA: the hash that matches the curve first (FIPS 186-5 6.4 / RFC 5656 6.2.1
    pairing), then the others, strongest first. RSA: PSS (RFC 8247 3.2 SHOULD)
    with SHA-256, 384, 512; PKCS #1 v1.5 only when asked for (`rsa_padding="pkcs1"`).
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        by_curve = {"secp256r1": SignatureScheme.ECDSA_SHA256, "secp384r1": SignatureScheme.ECDSA_SHA384,
                    "secp521r1": SignatureScheme.ECDSA_SHA512}
        first = by_curve.get(public_key.curve.name)
        rest = [SignatureScheme.ECDSA_SHA512, SignatureScheme.ECDSA_SHA384, SignatureScheme.ECDSA_SHA256,
                SignatureScheme.ECDSA_SHA1]
        return ([first] if first else []) + [s for s in rest if s is not first]
    if isinstance(public_key, rsa.RSAPublicKey):
        if rsa_padding == "pkcs1":
            return [SignatureScheme.RSA_PKCS1_SHA256, SignatureScheme.RSA_PKCS1_SHA384,
                    SignatureScheme.RSA_PKCS1_SHA512, SignatureScheme.RSA_PKCS1_SHA1]
        return [SignatureScheme.RSA_PSS_SHA256, SignatureScheme.RSA_PSS_SHA384, SignatureScheme.RSA_PSS_SHA512]
    raise NoAcceptableSignatureScheme(f"no signature scheme for a {type(public_key).__name__}")


def _hash_ids(peer_hashes: Iterable[int | HashAlg]) -> list[HashAlgorithmId]:
    out = []
    for h in peer_hashes:
        if isinstance(h, HashAlg):
            out.append(HASH_ID[h])
        elif h in HashAlgorithmId._value2member_map_:
            out.append(HashAlgorithmId(h))
    return out


def choose_scheme(public_key: Any, peer_hashes: Iterable[int | HashAlg], policy: Any,
                  rsa_padding: str = "pss") -> SignatureScheme:
    """The scheme to sign AUTH with (RFC 7427 section 4): the first candidate whose
    hash the peer announced (IANA ids from the notify, or HashAlg) and the policy
    (providers.Policy: `allows_signature`) lets us generate."""
    ids = _hash_ids(peer_hashes)
    announced = {h.hash for h in ids if h is not HashAlgorithmId.IDENTITY}
    tried = []
    for scheme in candidate_schemes(public_key, rsa_padding):
        if scheme.hash in announced and policy.allows_signature(scheme):
            return scheme
        tried.append(scheme.value)
    raise NoAcceptableSignatureScheme(
        "no common signature hash: peer announced " + (", ".join(h.name for h in ids) or "none")
        + f"; our key can use {', '.join(tried)}")
