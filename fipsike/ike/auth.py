"""The AUTH payload: what is signed (RFC 7296 2.15) and how (RFC 7427, RFC 4754, RFC 7619).

Signing and verification go through the Router (policy applied there; a key on
a PKCS#11 token signs on the token). The RFC 7427 AlgorithmIdentifier encodings
come from certs.algorithm_identifier.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certs import algorithm_identifier as algorithm_identifier_table
from certs.signature_hash import NoAcceptableSignatureScheme, choose_scheme
from fipsike.ike.registry import AuthMethod
from providers.algorithms import HashAlg, Prf, SignatureScheme
from providers.api import IkeRouter
from providers.errors import PolicyViolation, ProviderError
from providers.handles import PrivateKey, SecretKey
from providers.policy import Policy

# RFC 7427 section 7 / IANA "IKEv2 Hash Algorithms": the SIGNATURE_HASH_ALGORITHMS values
HASH_IDS: dict[HashAlg, int] = {HashAlg.SHA1: 1, HashAlg.SHA256: 2, HashAlg.SHA384: 3, HashAlg.SHA512: 4}
HASH_BY_ID = {v: k for k, v in HASH_IDS.items()}


class AuthError(Exception):
    """Answer AUTHENTICATION_FAILED (RFC 7296 2.21.2)."""


@functools.cache
def algorithm_identifier(scheme: SignatureScheme) -> bytes:
    """DER AlgorithmIdentifier for the RFC 7427 AUTH data (certs' table; cached: pyasn1 is slow)."""
    der: bytes = algorithm_identifier_table.encode(scheme)
    return der


_DECODED: dict[bytes, SignatureScheme] = {}


def parse_algorithm_identifier(der: bytes) -> SignatureScheme:
    got = _DECODED.get(der)
    if got is not None:
        return got
    try:
        scheme = algorithm_identifier_table.decode(der)
    except ValueError as e:
        raise AuthError(f"AUTH AlgorithmIdentifier refused: {e}") from None
    if len(_DECODED) < 64:
        _DECODED[der] = scheme
    return scheme


def rest_of_id_payload(id_type: int, id_data: bytes) -> bytes:
    """The ID payload body after the generic header: type, three reserved octets, data (RFC 7296 2.15)."""
    return bytes([id_type, 0, 0, 0]) + id_data


def signed_octets(router: IkeRouter, prf: Prf, sk_p: SecretKey, real_message: bytes, peer_nonce: bytes,
                  id_type: int, id_data: bytes) -> bytes:
    """<Initiator|Responder>SignedOctets = RealMessage | Nonce(peer)Data | prf(SK_p, RestOfIDPayload)."""
    mac: bytes = router.prf(prf, sk_p, rest_of_id_payload(id_type, id_data))
    return real_message + peer_nonce + mac


def key_kind(public_key: Any) -> tuple[str, int]:
    """('rsa', bits) or ('ec', curve bits) of a cryptography public key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec", public_key.curve.key_size
    return "other", 0


_ECDSA_LEGACY = {256: (AuthMethod.ECDSA_SHA256_P256, SignatureScheme.ECDSA_SHA256),
                 384: (AuthMethod.ECDSA_SHA384_P384, SignatureScheme.ECDSA_SHA384),
                 521: (AuthMethod.ECDSA_SHA512_P521, SignatureScheme.ECDSA_SHA512)}


def choose_signature(private_key: PrivateKey, peer_hashes: Iterable[HashAlg], legacy: bool,
                     policy: Policy) -> tuple[AuthMethod, SignatureScheme]:
    """Our AUTH method and scheme for this key, given the peer's SIGNATURE_HASH_ALGORITHMS.

    RFC 7427 (method 14) when the peer announced hashes: the scheme is certs.signature_hash's
    choice (the curve's own hash first, else the strongest announced one the policy allows;
    RSA-PSS for RSA). Otherwise, or when configured "legacy", an EC key takes its RFC 4754
    method. RSA-PKCS1-SHA1 (method 1) is never generated: SHA-1 signatures are refused by the
    policy (SP 800-131A r2 9).
    """
    public_key = private_key.public_key()
    kind, bits = key_kind(public_key)
    hashes = [h for h in peer_hashes if h is not HashAlg.SHA1]
    if kind == "ec":
        if legacy or not hashes:
            if bits not in _ECDSA_LEGACY:
                raise AuthError(f"no legacy ECDSA method for a {bits}-bit curve")
            return _ECDSA_LEGACY[bits]
    elif kind == "rsa":
        if not hashes:
            # a peer without RFC 7427 can only take method 1 (SHA-1), which we never sign with;
            # send RFC 7427 anyway with SHA-256 (every RFC 7427 peer must accept it)
            hashes = [HashAlg.SHA256]
    else:
        raise AuthError("unsupported private key type")
    try:
        return AuthMethod.DIGITAL_SIGNATURE, choose_scheme(public_key, hashes, policy)
    except NoAcceptableSignatureScheme as e:
        raise AuthError(str(e)) from None


@dataclass(frozen=True)
class AuthPayload:
    method: int
    data: bytes


def make_signature_auth(router: IkeRouter, key: PrivateKey, method: AuthMethod, scheme: SignatureScheme,
                        octets: bytes) -> AuthPayload:
    if method == AuthMethod.DIGITAL_SIGNATURE:
        algid = algorithm_identifier(scheme)
        sig = router.sign(key, scheme, octets)
        return AuthPayload(int(method), bytes([len(algid)]) + algid + sig)
    # RFC 4754: ECDSA, r || s each the size of the group order
    return AuthPayload(int(method), router.sign(key, scheme, octets, raw=True))


def verify_signature_auth(router: IkeRouter, public_key: Any, auth: AuthPayload, octets: bytes) -> SignatureScheme:
    """Raises AuthError unless the AUTH payload is a valid signature by public_key over octets."""
    kind, bits = key_kind(public_key)
    raw = False
    if auth.method == AuthMethod.DIGITAL_SIGNATURE:
        if not auth.data:
            raise AuthError("empty AUTH data")
        n = auth.data[0]
        if len(auth.data) < 1 + n:
            raise AuthError("AUTH AlgorithmIdentifier runs past the payload")
        scheme = parse_algorithm_identifier(auth.data[1:1 + n])
        sig = auth.data[1 + n:]
    elif auth.method in (AuthMethod.ECDSA_SHA256_P256, AuthMethod.ECDSA_SHA384_P384,
                         AuthMethod.ECDSA_SHA512_P521):
        m, scheme = _ECDSA_LEGACY.get(bits, (None, SignatureScheme.ECDSA_SHA256))
        if kind != "ec" or m != auth.method:
            raise AuthError(f"AUTH method {auth.method} does not fit the certificate's key")
        sig, raw = auth.data, True
    elif auth.method == AuthMethod.RSA_DIGITAL_SIGNATURE:
        if kind != "rsa":
            raise AuthError("RSA AUTH method with a non-RSA certificate")
        scheme, sig = SignatureScheme.RSA_PKCS1_SHA1, auth.data
    else:
        raise AuthError(f"AUTH method {auth.method} is not a signature method")
    if scheme.family.startswith("rsa") != (kind == "rsa"):
        raise AuthError(f"{scheme.name} does not fit the certificate's key")
    try:
        ok = router.verify(public_key, scheme, octets, sig, raw=raw)
    except PolicyViolation as e:
        raise AuthError(f"signature refused by policy: {e}") from None
    except ProviderError as e:
        raise AuthError(f"signature check failed: {type(e).__name__}") from None
    if not ok:
        raise AuthError(f"{scheme.name} signature does not verify")
    return scheme


def null_auth(router: IkeRouter, prf: Prf, sk_p: SecretKey, octets: bytes) -> bytes:
    """RFC 7619 2.1: NULL auth is the shared-key MIC computed with SK_pi / SK_pr as the key:
    prf(prf(SK_p, "Key Pad for IKEv2"), SignedOctets) (RFC 7296 2.15). The inner prf output is a
    key, so the router computes both steps and never hands it out."""
    return bytes(router.shared_key_auth(prf, sk_p, octets))


def null_auth_verifies(router: IkeRouter, prf: Prf, sk_p: SecretKey, octets: bytes, received: bytes) -> bool:
    """Constant-time check of a peer's NULL AUTH value (a MAC: a timing leak would be a forgery oracle)."""
    return bool(router.verify_shared_key_auth(prf, sk_p, octets, received))


def psk_auth(router: IkeRouter, prf: Prf, psk: SecretKey, octets: bytes) -> bytes:
    """RFC 7296 2.15 SHARED_KEY_MIC: prf(prf(PSK, "Key Pad for IKEv2"), SignedOctets), in the provider."""
    return bytes(router.shared_key_auth(prf, psk, octets))


def psk_auth_verifies(router: IkeRouter, prf: Prf, psk: SecretKey, octets: bytes, received: bytes) -> bool:
    """Constant-time check of the peer's SHARED_KEY_MIC AUTH value."""
    return bool(router.verify_shared_key_auth(prf, psk, octets, received))
