"""The signature AlgorithmIdentifier of the Digital Signature AUTH method
(RFC 7427 section 3), and the same table for X.509 signatureAlgorithm fields.

Encoding is strict DER (X.690 11.5: a DEFAULT value is never encoded). RFC 7427
Appendix A.4.3 prints RSASSA-PSS with SHA-256 with the trailerField written out
(`... a3 03 02 01 01`, 72 octets); DER omits it (67 octets, RFC 4055 section 3.1
rSASSA-PSS-SHA256-Identifier), and so do strongSwan and libreswan on the wire.
We send DER and accept both (see tests/certs/test_algorithm_identifier.py).

OIDs: RFC 8017 Appendix C (PKCS #1), RFC 4055 section 2.1 and 3.1 (SHA-2 hashes,
id-mgf1, id-RSASSA-PSS), RFC 5758 section 3.2 (ecdsa-with-SHA2).
"""

from __future__ import annotations

import functools

from pyasn1.codec.der import decoder as der_decoder
from pyasn1.codec.der import encoder as der_encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc4055, rfc5280

from providers.algorithms import HashAlg, SignatureScheme


class UnsupportedAlgorithmIdentifier(ValueError):
    """An AlgorithmIdentifier we do not (or may not) use for IKE signatures."""


_HASH_OID = {
    HashAlg.SHA1: "1.3.14.3.2.26",
    HashAlg.SHA256: "2.16.840.1.101.3.4.2.1",
    HashAlg.SHA384: "2.16.840.1.101.3.4.2.2",
    HashAlg.SHA512: "2.16.840.1.101.3.4.2.3",
}
_OID_HASH = {v: k for k, v in _HASH_OID.items()}

# PKCS #1 v1.5 (parameters NULL, RFC 8017 A.2.4) and ECDSA (parameters absent, RFC 5758 3.2).
_PKCS1_OID = {
    SignatureScheme.RSA_PKCS1_SHA1: "1.2.840.113549.1.1.5",
    SignatureScheme.RSA_PKCS1_SHA256: "1.2.840.113549.1.1.11",
    SignatureScheme.RSA_PKCS1_SHA384: "1.2.840.113549.1.1.12",
    SignatureScheme.RSA_PKCS1_SHA512: "1.2.840.113549.1.1.13",
}
_ECDSA_OID = {
    SignatureScheme.ECDSA_SHA1: "1.2.840.10045.4.1",
    SignatureScheme.ECDSA_SHA256: "1.2.840.10045.4.3.2",
    SignatureScheme.ECDSA_SHA384: "1.2.840.10045.4.3.3",
    SignatureScheme.ECDSA_SHA512: "1.2.840.10045.4.3.4",
}
_PSS = {
    SignatureScheme.RSA_PSS_SHA256: HashAlg.SHA256,
    SignatureScheme.RSA_PSS_SHA384: HashAlg.SHA384,
    SignatureScheme.RSA_PSS_SHA512: HashAlg.SHA512,
}
RSASSA_PSS_OID = "1.2.840.113549.1.1.10"
MGF1_OID = "1.2.840.113549.1.1.8"
_OID_SCHEME = {oid: s for s, oid in (*_PKCS1_OID.items(), *_ECDSA_OID.items())}


def _hash_identifier(alg: HashAlg, tag: int | None = None) -> rfc5280.AlgorithmIdentifier:
    ai = rfc5280.AlgorithmIdentifier() if tag is None else rfc5280.AlgorithmIdentifier().subtype(
        explicitTag=rfc5280.tag.Tag(rfc5280.tag.tagClassContext, rfc5280.tag.tagFormatConstructed, tag))
    ai["algorithm"] = univ.ObjectIdentifier(_HASH_OID[alg])
    # RFC 4055 2.1: SHA-2 identifiers are generated with NULL parameters
    ai["parameters"] = univ.Null("")
    return ai


def _pss_params_der(alg: HashAlg) -> bytes:
    """RSASSA-PSS-params (RFC 4055 3.1): hash, MGF1 with the same hash, salt = hash length."""
    params = rfc4055.RSASSA_PSS_params()
    params["hashAlgorithm"]["algorithm"] = univ.ObjectIdentifier(_HASH_OID[alg])
    params["hashAlgorithm"]["parameters"] = univ.Null("")
    params["maskGenAlgorithm"]["algorithm"] = univ.ObjectIdentifier(MGF1_OID)
    params["maskGenAlgorithm"]["parameters"] = der_encoder.encode(_hash_identifier(alg))
    params["saltLength"] = alg.digest_size
    return bytes(der_encoder.encode(params))


@functools.cache
def encode(scheme: SignatureScheme) -> bytes:
    """The DER AlgorithmIdentifier for a signature scheme."""
    ai = rfc5280.AlgorithmIdentifier()
    if scheme in _PKCS1_OID:
        ai["algorithm"] = univ.ObjectIdentifier(_PKCS1_OID[scheme])
        ai["parameters"] = univ.Null("")
    elif scheme in _ECDSA_OID:
        ai["algorithm"] = univ.ObjectIdentifier(_ECDSA_OID[scheme])
    else:
        ai["algorithm"] = univ.ObjectIdentifier(RSASSA_PSS_OID)
        ai["parameters"] = _pss_params_der(_PSS[scheme])
    return bytes(der_encoder.encode(ai))


@functools.lru_cache(maxsize=64)  # pyasn1 is slow; the same few blobs recur
def decode(der: bytes) -> SignatureScheme:
    """The signature scheme named by a DER AlgorithmIdentifier; raises
    UnsupportedAlgorithmIdentifier for anything outside the table (including PSS
    with a salt other than the hash length or an MGF hash other than the hash)."""
    try:
        ai, rest = der_decoder.decode(der, asn1Spec=rfc5280.AlgorithmIdentifier())
    except PyAsn1Error as e:
        raise UnsupportedAlgorithmIdentifier("malformed AlgorithmIdentifier") from e
    if rest:
        raise UnsupportedAlgorithmIdentifier("trailing data after the AlgorithmIdentifier")
    oid = str(ai["algorithm"])
    has_params = ai["parameters"].isValue
    params = bytes(ai["parameters"]) if has_params else b""
    if oid in _OID_SCHEME:
        scheme = _OID_SCHEME[oid]
        if scheme in _PKCS1_OID:
            # RFC 8017 A.2.4 says NULL; RFC 4055 5 asks receivers to accept absent too.
            if has_params and params != b"\x05\x00":
                raise UnsupportedAlgorithmIdentifier(f"{scheme.value}: parameters must be NULL")
        elif has_params:
            raise UnsupportedAlgorithmIdentifier(f"{scheme.value}: parameters must be absent (RFC 5758 3.2)")
        return scheme
    if oid == RSASSA_PSS_OID:
        if not has_params:
            raise UnsupportedAlgorithmIdentifier("RSASSA-PSS without parameters (SHA-1 defaults) is not used")
        try:
            return _decode_pss(params)
        except PyAsn1Error as e:  # e.g. absent fields (SHA-1 defaults) pyasn1 leaves as schema objects
            raise UnsupportedAlgorithmIdentifier("RSASSA-PSS parameters with SHA-1 defaults are not used") from e
    raise UnsupportedAlgorithmIdentifier(f"signature algorithm {oid} is not supported")


def _decode_pss(params_der: bytes) -> SignatureScheme:
    try:
        params, rest = der_decoder.decode(params_der, asn1Spec=rfc4055.RSASSA_PSS_params())
    except PyAsn1Error as e:
        raise UnsupportedAlgorithmIdentifier("malformed RSASSA-PSS parameters") from e
    if rest:
        raise UnsupportedAlgorithmIdentifier("trailing data after the RSASSA-PSS parameters")
    hash_alg = _hash_of(params["hashAlgorithm"])
    mgf = params["maskGenAlgorithm"]
    if str(mgf["algorithm"]) != MGF1_OID:
        raise UnsupportedAlgorithmIdentifier("RSASSA-PSS with a mask generation function other than MGF1")
    try:
        mgf_hash_ai, _ = der_decoder.decode(bytes(mgf["parameters"]), asn1Spec=rfc5280.AlgorithmIdentifier())
    except PyAsn1Error as e:
        raise UnsupportedAlgorithmIdentifier("malformed MGF1 parameters") from e
    if _hash_of(mgf_hash_ai) is not hash_alg:
        raise UnsupportedAlgorithmIdentifier("RSASSA-PSS with an MGF1 hash other than the message hash")
    if int(params["saltLength"]) != hash_alg.digest_size:
        raise UnsupportedAlgorithmIdentifier(
            f"RSASSA-PSS salt length {int(params['saltLength'])} != hash length {hash_alg.digest_size}")
    if int(params["trailerField"]) != 1:
        raise UnsupportedAlgorithmIdentifier("RSASSA-PSS trailerField must be 1 (RFC 8017 A.2.3)")
    for scheme, alg in _PSS.items():
        if alg is hash_alg:
            return scheme
    raise UnsupportedAlgorithmIdentifier(f"RSASSA-PSS with {hash_alg.value} is not supported")


def _hash_of(ai: rfc5280.AlgorithmIdentifier) -> HashAlg:
    oid = str(ai["algorithm"])
    if oid not in _OID_HASH:
        raise UnsupportedAlgorithmIdentifier(f"hash algorithm {oid} is not supported")
    # RFC 4055 2.1: parameters NULL or absent, both accepted
    if ai["parameters"].isValue and bytes(ai["parameters"]) != b"\x05\x00":
        raise UnsupportedAlgorithmIdentifier("hash AlgorithmIdentifier parameters must be NULL or absent")
    return _OID_HASH[oid]


def table() -> dict[SignatureScheme, bytes]:
    """Every scheme with its DER AlgorithmIdentifier (for documentation and tests)."""
    return {s: encode(s) for s in SignatureScheme}
