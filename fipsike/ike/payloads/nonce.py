"""Nonce payload (RFC 7296 3.9)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload
from fipsike.ike.registry import PayloadType

# RFC 7296 3.9: "The size of the Nonce Data MUST be between 16 and 256 octets, inclusive."
MIN_NONCE = 16
MAX_NONCE = 256


@dataclass(frozen=True, slots=True)
class Nonce(Payload):
    """Ni / Nr."""

    data: bytes

    TYPE: ClassVar[int] = PayloadType.NONCE

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if not (MIN_NONCE <= end - off <= MAX_NONCE):
            raise InvalidSyntax(f"nonce of {end - off} octets is not 16-256")
        return cls(buf[off:end])

    def body(self) -> bytes:
        if not MIN_NONCE <= len(self.data) <= MAX_NONCE:
            raise ValueError(f"nonce of {len(self.data)} octets is not 16-256")
        return self.data
