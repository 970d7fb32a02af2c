"""Certificate and Certificate Request payloads (RFC 7296 3.6, 3.7)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8
from fipsike.ike.registry import CertEncoding, PayloadType

SHA1_SIZE = 20  # CERTREQ for X.509: concatenated SHA-1 hashes of CA public keys (RFC 7296 3.7)


@dataclass(frozen=True, slots=True)
class Certificate(Payload):
    """CERT: encoding and data (for X509_CERT_SIGNATURE, one DER certificate)."""

    encoding: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.CERT

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 1:
            raise InvalidSyntax("CERT payload without an encoding")
        return cls(buf[off], buf[off + 1:end])

    def body(self) -> bytes:
        return bytes((u8(self.encoding, "certificate encoding"),)) + self.data


@dataclass(frozen=True, slots=True)
class CertificateRequest(Payload):
    """CERTREQ: encoding and Certification Authority data."""

    encoding: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.CERTREQ

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 1:
            raise InvalidSyntax("CERTREQ payload without an encoding")
        return cls(buf[off], buf[off + 1:end])

    def body(self) -> bytes:
        return bytes((u8(self.encoding, "certificate encoding"),)) + self.data

    @property
    def authorities(self) -> tuple[bytes, ...]:
        """The SHA-1 key hashes of the trusted CAs, for X509_CERT_SIGNATURE; INVALID_SYNTAX if ragged."""
        if self.encoding != CertEncoding.X509_CERT_SIGNATURE:
            return ()
        if len(self.data) % SHA1_SIZE != 0:
            raise InvalidSyntax("CERTREQ authority list is not a multiple of 20 octets")
        return tuple(self.data[i:i + SHA1_SIZE] for i in range(0, len(self.data), SHA1_SIZE))
