"""A minimal DER TLV reader (X.690 section 8.1), for the few places where we
need the raw bytes of one element (the signatureAlgorithm of a Certificate or
CertificateList, the subjectPublicKey BIT STRING of an SPKI) without decoding
the whole structure with pyasn1.
"""

from __future__ import annotations

from dataclasses import dataclass


class DerError(ValueError):
    """Malformed DER."""


@dataclass(frozen=True)
class Tlv:
    tag: int
    start: int  # offset of the tag octet
    content_start: int
    end: int  # one past the last content octet

    def raw(self, data: bytes) -> bytes:
        return data[self.start:self.end]

    def content(self, data: bytes) -> bytes:
        return data[self.content_start:self.end]


def read_tlv(data: bytes, offset: int = 0, limit: int | None = None) -> Tlv:
    """One TLV at `offset`; only low-tag-number form and definite lengths (DER)."""
    end_limit = len(data) if limit is None else limit
    if offset + 2 > end_limit:
        raise DerError("truncated DER header")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("high tag numbers are not used here")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > end_limit:
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise DerError("non-minimal DER length")
        pos += count
    if pos + length > end_limit:
        raise DerError("DER element runs past its container")
    return Tlv(tag, offset, pos, pos + length)


def children(data: bytes, parent: Tlv) -> list[Tlv]:
    """The elements inside a constructed TLV."""
    out: list[Tlv] = []
    pos = parent.content_start
    while pos < parent.end:
        tlv = read_tlv(data, pos, parent.end)
        out.append(tlv)
        pos = tlv.end
    return out


def signed_parts(der: bytes) -> tuple[bytes, bytes]:
    """(tbs DER, signatureAlgorithm DER) of a SIGNED{} structure (RFC 5280 4.1, 5.1):
    SEQUENCE { tbs, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }."""
    outer = read_tlv(der)
    if outer.tag != 0x30 or outer.end != len(der):
        raise DerError("not a single DER SEQUENCE")
    parts = children(der, outer)
    if len(parts) != 3 or parts[1].tag != 0x30 or parts[2].tag != 0x03:
        raise DerError("not a signed structure")
    return parts[0].raw(der), parts[1].raw(der)


def spki_public_key_bits(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING value (without the unused-bits octet) of a
    SubjectPublicKeyInfo, the input of the key identifier methods (RFC 5280 4.2.1.2, RFC 7093 2)."""
    outer = read_tlv(spki_der)
    parts = children(spki_der, outer)
    if outer.tag != 0x30 or len(parts) != 2 or parts[1].tag != 0x03:
        raise DerError("not a SubjectPublicKeyInfo")
    bits = parts[1].content(spki_der)
    if not bits or bits[0] != 0:
        raise DerError("subjectPublicKey has unused bits")
    return bits[1:]
