"""Delete payload (RFC 7296 3.11)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import PayloadType, ProtocolId

_DELETE = struct.Struct(">BBH")  # Protocol ID, SPI Size, Num of SPIs


@dataclass(frozen=True, slots=True)
class Delete(Payload):
    """D: the protocol and the SPIs to delete. For the IKE SA itself: protocol IKE, no SPIs
    (RFC 7296 3.11: SPI Size 0, the SPIs are in the header)."""

    protocol: int
    spis: tuple[bytes, ...] = ()

    TYPE: ClassVar[int] = PayloadType.DELETE

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("Delete payload shorter than its fixed part")
        proto, spi_size, count = _DELETE.unpack_from(buf, off)
        if spi_size * count != end - off - 4:
            raise InvalidSyntax(f"Delete payload: {count} SPIs of {spi_size} octets do not fill {end - off - 4} octets")
        if proto == ProtocolId.IKE:
            if not (spi_size == 0 and count == 0):
                raise InvalidSyntax("Delete of the IKE SA carries SPIs")
        elif count:
            if spi_size == 0:
                raise InvalidSyntax("Delete payload with SPIs of size 0")
        p = off + 4
        return cls(proto, tuple(buf[p + i * spi_size:p + (i + 1) * spi_size] for i in range(count)))

    def body(self) -> bytes:
        size = len(self.spis[0]) if self.spis else (0 if self.protocol == ProtocolId.IKE else 4)
        if any(len(s) != size for s in self.spis):
            raise ValueError("Delete payload SPIs differ in size")
        return _DELETE.pack(u8(self.protocol, "protocol"), u8(size, "SPI size"),
                            u16(len(self.spis), "SPI count")) + b"".join(self.spis)
