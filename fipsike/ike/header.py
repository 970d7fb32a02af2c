"""The IKE header (RFC 7296 3.1)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fipsike.ike.errors import InvalidMajorVersion, InvalidSyntax, MessageTooLarge

HEADER = struct.Struct(">8s8sBBBBII")  # SPIi, SPIr, Next Payload, MjVer|MnVer, Exchange, Flags, Message ID, Length
HEADER_SIZE = 28

# RFC 7296 3.1 flags: bits other than these are reserved, sent as zero and ignored on receipt.
FLAG_INITIATOR = 0x08
FLAG_VERSION = 0x10
FLAG_RESPONSE = 0x20

IKE_MAJOR_VERSION = 2
# RFC 7296 leaves the cap to the implementation; a UDP datagram cannot carry more than this.
MAX_MESSAGE_SIZE = 65535
NON_ESP_MARKER = b"\x00\x00\x00\x00"  # RFC 3948 2.2: prefixes IKE on port 4500


@dataclass(frozen=True, slots=True)
class IkeHeader:
    """The fixed header. `length` is the whole message's length as the header states it."""

    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange: int
    message_id: int
    length: int
    initiator: bool = False
    response: bool = False
    version_flag: bool = False
    major_version: int = IKE_MAJOR_VERSION
    minor_version: int = 0

    @property
    def flags(self) -> int:
        return ((FLAG_INITIATOR if self.initiator else 0) | (FLAG_RESPONSE if self.response else 0)
                | (FLAG_VERSION if self.version_flag else 0))

    @classmethod
    def parse(cls, data: bytes, max_size: int = MAX_MESSAGE_SIZE) -> IkeHeader:
        """Parse and check the header of datagram `data` (the whole IKE message, no non-ESP marker):
        version 2, Length equal to the datagram, under the size cap."""
        if len(data) < HEADER_SIZE:
            raise InvalidSyntax(f"message of {len(data)} octets is shorter than the IKE header")
        spi_i, spi_r, nxt, ver, exch, flags, mid, length = HEADER.unpack_from(data, 0)
        if ver >> 4 != IKE_MAJOR_VERSION:
            raise InvalidMajorVersion(ver >> 4)
        if length > max_size or len(data) > max_size:
            raise MessageTooLarge(f"message of {max(length, len(data))} octets is over the {max_size}-octet cap")
        if length != len(data):
            raise InvalidSyntax(f"header Length {length} differs from the datagram's {len(data)} octets")
        return cls(spi_i, spi_r, nxt, exch, mid, length, bool(flags & FLAG_INITIATOR), bool(flags & FLAG_RESPONSE),
                   bool(flags & FLAG_VERSION), ver >> 4, ver & 0x0F)

    def serialize(self) -> bytes:
        if len(self.spi_i) != 8 or len(self.spi_r) != 8:
            raise ValueError("IKE SPIs are 8 octets")
        return HEADER.pack(self.spi_i, self.spi_r, self.next_payload, (self.major_version << 4) | self.minor_version,
                           self.exchange, self.flags, self.message_id, self.length)


def ike_from_nat_t(payload: bytes) -> bytes | None:
    """The IKE message in a UDP/4500 payload (after the non-ESP marker), or None for ESP in UDP
    or a NAT keepalive, which are not IKE's (RFC 3948 2.2, 2.3)."""
    if len(payload) > 4 and payload[:4] == NON_ESP_MARKER:
        return payload[4:]
    return None
