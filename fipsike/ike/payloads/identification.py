"""Identification payloads IDi and IDr (RFC 7296 3.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8
from fipsike.ike.registry import PayloadType


@dataclass(frozen=True, slots=True)
class Identification(Payload):
    """ID Type and Identification Data. `body()` is RestOfIDPayload, the octets the AUTH
    computation signs (RFC 7296 2.15: ID Type | RESERVED | Identification Data)."""

    id_type: int
    data: bytes

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("ID payload shorter than its fixed part")
        return cls(buf[off], buf[off + 4:end])

    def body(self) -> bytes:
        return bytes((u8(self.id_type, "ID type"), 0, 0, 0)) + self.data


@dataclass(frozen=True, slots=True)
class IdentificationInitiator(Identification):
    """IDi."""

    TYPE: ClassVar[int] = PayloadType.IDi


@dataclass(frozen=True, slots=True)
class IdentificationResponder(Identification):
    """IDr."""

    TYPE: ClassVar[int] = PayloadType.IDr
