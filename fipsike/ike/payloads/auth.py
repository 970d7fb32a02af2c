"""Authentication payload (RFC 7296 3.8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8
from fipsike.ike.registry import PayloadType


@dataclass(frozen=True, slots=True)
class Authentication(Payload):
    """AUTH: method and authentication data (for method 14, ASN.1 length | AlgorithmIdentifier | signature,
    RFC 7427 3; that inner layout belongs to the AUTH exchange code, not the codec)."""

    method: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.AUTH

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("AUTH payload shorter than its fixed part")
        return cls(buf[off], buf[off + 4:end])

    def body(self) -> bytes:
        return bytes((u8(self.method, "auth method"), 0, 0, 0)) + self.data
