"""Configuration payload (RFC 7296 3.15)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import PayloadType

_ATTR = struct.Struct(">HH")  # R|Attribute Type, Length


@dataclass(frozen=True, slots=True)
class ConfigurationAttribute:
    """One CP attribute: 15-bit type and value octets (empty in a CFG_REQUEST)."""

    type: int
    value: bytes = b""

    def serialize(self) -> bytes:
        if not 0 <= self.type <= 0x7FFF:
            raise ValueError(f"CP attribute type {self.type} does not fit in 15 bits")
        return _ATTR.pack(self.type, u16(len(self.value), "CP attribute length")) + self.value


@dataclass(frozen=True, slots=True)
class Configuration(Payload):
    """CP: CFG Type and attributes."""

    cfg_type: int
    attributes: tuple[ConfigurationAttribute, ...] = ()

    TYPE: ClassVar[int] = PayloadType.CP

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("CP payload shorter than its fixed part")
        cfg_type = buf[off]
        p = off + 4
        attrs: list[ConfigurationAttribute] = []
        while p < end:
            if end - p < 4:
                raise InvalidSyntax("CP attribute truncated")
            atype, length = _ATTR.unpack_from(buf, p)
            if length > end - p - 4:
                raise InvalidSyntax(f"CP attribute length {length} outside its payload")
            # RFC 7296 3.15.1: the R bit is reserved, ignored on receipt
            attrs.append(ConfigurationAttribute(atype & 0x7FFF, buf[p + 4:p + 4 + length]))
            p += 4 + length
        return cls(cfg_type, tuple(attrs))

    def body(self) -> bytes:
        return bytes((u8(self.cfg_type, "CFG type"), 0, 0, 0)) + b"".join(a.serialize() for a in self.attributes)
