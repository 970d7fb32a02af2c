"""The generic payload header and the base of every payload (RFC 7296 3.2).

A payload class knows only its body (what follows the 4-octet generic header);
the chain of Next Payload fields is the message codec's business. Bodies are
parsed from (buf, offset, end) without copying the whole message, and every
length is checked against `end`, the end of this payload.
"""

from __future__ import annotations

import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax

GENERIC_HEADER = struct.Struct(">BBH")  # Next Payload, C|RESERVED, Payload Length
GENERIC_HEADER_SIZE = 4
CRITICAL = 0x80  # RFC 7296 3.2: the C bit is the top bit of the second octet


class Payload(ABC):
    """Base of every payload. Subclasses are frozen dataclasses with a `TYPE`."""

    __slots__ = ()
    TYPE: ClassVar[int]

    @classmethod
    @abstractmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        """Parse buf[off:end], the payload body after the generic header."""

    @abstractmethod
    def body(self) -> bytes:
        """The payload body (without the generic header)."""

    @property
    def payload_type(self) -> int:
        return self.TYPE

    @property
    def critical(self) -> bool:
        # RFC 7296 3.2: the sender sets C=0 for the payload types this document defines.
        return False


@dataclass(frozen=True, slots=True)
class UnknownPayload(Payload):
    """A payload type we do not implement, kept opaque. Only non-critical ones reach here:
    an unknown critical payload is refused with UNSUPPORTED_CRITICAL_PAYLOAD (RFC 7296 2.5)."""

    type_number: int
    data: bytes
    is_critical: bool = False

    TYPE: ClassVar[int] = -1

    @property
    def payload_type(self) -> int:
        return self.type_number

    @property
    def critical(self) -> bool:
        return self.is_critical

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        raise TypeError("UnknownPayload is built by the chain parser")

    def body(self) -> bytes:
        return self.data


def need(cond: bool, what: str) -> None:
    """Raise INVALID_SYNTAX with `what` unless `cond`."""
    if not cond:
        raise InvalidSyntax(what)


def u8(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} does not fit in 8 bits")
    return value


def u16(value: int, what: str) -> int:
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"{what} {value} does not fit in 16 bits")
    return value
