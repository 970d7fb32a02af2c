"""Encrypted payload SK (RFC 7296 3.14) and Encrypted Fragment payload SKF (RFC 7383 2.5), as octets.

These hold the protected body (IV | ciphertext | ICV) without interpreting it;
fipsike.ike.encrypted opens and seals them. Their generic header's Next Payload
is the type of the first inner payload (`first_payload`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import PayloadType

_SKF = struct.Struct(">HH")  # Fragment Number, Total Fragments


@dataclass(frozen=True, slots=True)
class Encrypted(Payload):
    """SK: must be the last payload of its message."""

    first_payload: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.SK

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        raise TypeError("SK is built by the chain parser, which knows its Next Payload")

    @classmethod
    def parse_sk(cls, first: int, buf: bytes, off: int, end: int) -> Self:
        return cls(first, buf[off:end])

    def body(self) -> bytes:
        u8(self.first_payload, "first payload")
        return self.data


@dataclass(frozen=True, slots=True)
class EncryptedFragment(Payload):
    """SKF: fragment number (from 1), total fragments, protected data. `first_payload` is
    non-zero only in fragment 1 (RFC 7383 2.5)."""

    first_payload: int
    fragment_number: int
    total_fragments: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.SKF

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        raise TypeError("SKF is built by the chain parser, which knows its Next Payload")

    @classmethod
    def parse_sk(cls, first: int, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("SKF payload shorter than its fixed part")
        number, total = _SKF.unpack_from(buf, off)
        # RFC 7383 2.6: Fragment Number 1..Total Fragments; Next Payload only in the first
        if not (1 <= number <= total):
            raise InvalidSyntax(f"fragment number {number} outside 1..{total}")
        if not (first == 0 or number == 1):
            raise InvalidSyntax("Next Payload set in a fragment other than the first")
        return cls(first, number, total, buf[off + 4:end])

    @property
    def header_tail(self) -> bytes:
        """Fragment Number | Total Fragments: part of the AAD / integrity-protected prefix."""
        return _SKF.pack(u16(self.fragment_number, "fragment number"), u16(self.total_fragments, "total"))

    def body(self) -> bytes:
        return self.header_tail + self.data
