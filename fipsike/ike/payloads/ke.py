"""Key Exchange payload (RFC 7296 3.4)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u16
from fipsike.ike.registry import PayloadType

_KE = struct.Struct(">HH")  # Key Exchange Method Num, RESERVED


@dataclass(frozen=True, slots=True)
class KeyExchangePayload(Payload):
    """KE: the method (group) number and the public value, as providers.api documents its form."""

    group: int
    data: bytes

    TYPE: ClassVar[int] = PayloadType.KE

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("KE payload shorter than its fixed part")
        (group, _) = _KE.unpack_from(buf, off)
        return cls(group, buf[off + 4:end])

    def body(self) -> bytes:
        return _KE.pack(u16(self.group, "KE group"), 0) + self.data
