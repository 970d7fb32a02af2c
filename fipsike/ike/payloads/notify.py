"""Notify payload (RFC 7296 3.10) with typed data for the notifies the engine acts on.

Parsing checks the data of the typed notifies below and refuses a malformed one
with INVALID_SYNTAX; every other type keeps its data as octets.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import (
    HashAlgorithm,
    KeyExchange,
    NotifyType,
    PayloadType,
    ProtocolId,
    lookup,
    notify_is_error,
)

_NOTIFY = struct.Struct(">BBH")  # Protocol ID, SPI Size, Notify Message Type

NAT_DETECTION_SIZE = 20  # SHA-1 digest (RFC 7296 2.23)
COOKIE_MAX = 64  # RFC 7296 2.6: cookies are 1 to 64 octets

_EMPTY_DATA = frozenset({
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED,  # RFC 7383 2.3
    NotifyType.REKEY_SA,  # RFC 7296 3.10.1
    NotifyType.USE_TRANSPORT_MODE,  # RFC 7296 3.10.1
    NotifyType.INITIAL_CONTACT,  # RFC 7296 3.10.1
})
_NAT = frozenset({NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP})
_TYPED = frozenset(int(t) for t in _EMPTY_DATA | _NAT | {NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD,
                                                         NotifyType.SIGNATURE_HASH_ALGORITHMS})


def _check(ntype: int, proto: int, spi: bytes, data: bytes) -> None:
    if ntype in _EMPTY_DATA:
        if data:
            raise InvalidSyntax(f"{NotifyType(ntype).name} carries data")
        if ntype == NotifyType.REKEY_SA:
            # RFC 7296 1.3.3: the Protocol ID and SPI name the Child SA being rekeyed
            if not (proto in (ProtocolId.ESP, ProtocolId.AH) and len(spi) == 4):
                raise InvalidSyntax("REKEY_SA without an ESP/AH SPI")
    elif ntype in _NAT:
        if len(data) != NAT_DETECTION_SIZE:
            raise InvalidSyntax(f"NAT detection hash of {len(data)} octets, not 20")
    elif ntype == NotifyType.COOKIE:
        if not (1 <= len(data) <= COOKIE_MAX):
            raise InvalidSyntax(f"COOKIE of {len(data)} octets is not 1-64")
    elif ntype == NotifyType.INVALID_KE_PAYLOAD:
        if len(data) != 2:
            raise InvalidSyntax("INVALID_KE_PAYLOAD data is not a 2-octet group")
    elif ntype == NotifyType.SIGNATURE_HASH_ALGORITHMS:
        if len(data) % 2 != 0:
            raise InvalidSyntax("SIGNATURE_HASH_ALGORITHMS data has an odd length")


@dataclass(frozen=True, slots=True)
class Notify(Payload):
    """N: protocol, SPI (empty, or the Child SA's), type, data."""

    notify_type: int
    data: bytes = b""
    protocol: int = 0
    spi: bytes = b""

    TYPE: ClassVar[int] = PayloadType.NOTIFY

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("Notify payload shorter than its fixed part")
        proto, spi_size, ntype = _NOTIFY.unpack_from(buf, off)
        if spi_size > end - off - 4:
            raise InvalidSyntax(f"Notify SPI size {spi_size} outside the payload")
        p = off + 4 + spi_size
        spi = buf[off + 4:p]
        data = buf[p:end]
        if ntype in _TYPED:
            _check(ntype, proto, spi, data)
        return cls(ntype, data, proto, spi)

    def body(self) -> bytes:
        return _NOTIFY.pack(u8(self.protocol, "protocol"), u8(len(self.spi), "SPI size"),
                            u16(self.notify_type, "notify type")) + self.spi + self.data

    # --- reading ---------------------------------------------------------------
    @property
    def type(self) -> NotifyType | int:
        return lookup(NotifyType, self.notify_type)

    @property
    def is_error(self) -> bool:
        return notify_is_error(self.notify_type)

    @property
    def accepted_group(self) -> KeyExchange | int:
        """INVALID_KE_PAYLOAD: the group the responder wants (RFC 7296 1.2)."""
        if not (self.notify_type == NotifyType.INVALID_KE_PAYLOAD and len(self.data) == 2):
            raise InvalidSyntax("not INVALID_KE_PAYLOAD")
        return lookup(KeyExchange, int.from_bytes(self.data, "big"))

    @property
    def hash_algorithms(self) -> tuple[HashAlgorithm | int, ...]:
        """SIGNATURE_HASH_ALGORITHMS: the 2-octet hash IDs (RFC 7427 4)."""
        if self.notify_type != NotifyType.SIGNATURE_HASH_ALGORITHMS:
            raise InvalidSyntax("not SIGNATURE_HASH_ALGORITHMS")
        d = self.data
        return tuple(lookup(HashAlgorithm, (d[i] << 8) | d[i + 1]) for i in range(0, len(d) - 1, 2))

    # --- building --------------------------------------------------------------
    @classmethod
    def status(cls, notify_type: NotifyType | int, data: bytes = b"") -> Notify:
        n = cls(int(notify_type), data)
        _check(n.notify_type, 0, b"", data)
        return n

    @classmethod
    def error(cls, notify_type: NotifyType | int, data: bytes = b"", protocol: int = 0, spi: bytes = b"") -> Notify:
        return cls(int(notify_type), data, protocol, spi)

    @classmethod
    def nat_detection(cls, notify_type: NotifyType, digest: bytes) -> Notify:
        """NAT_DETECTION_SOURCE_IP / _DESTINATION_IP with SHA-1(SPIi | SPIr | IP | port) (RFC 7296 2.23)."""
        if notify_type not in _NAT or len(digest) != NAT_DETECTION_SIZE:
            raise ValueError("NAT detection notify needs a NAT_DETECTION_* type and a 20-octet digest")
        return cls(int(notify_type), digest)

    @classmethod
    def cookie(cls, value: bytes) -> Notify:
        if not 1 <= len(value) <= COOKIE_MAX:
            raise ValueError("a cookie is 1 to 64 octets (RFC 7296 2.6)")
        return cls(int(NotifyType.COOKIE), value)

    @classmethod
    def invalid_ke_payload(cls, group: KeyExchange | int) -> Notify:
        return cls(int(NotifyType.INVALID_KE_PAYLOAD), u16(int(group), "group").to_bytes(2, "big"))

    @classmethod
    def fragmentation_supported(cls) -> Notify:
        return cls(int(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED))

    @classmethod
    def signature_hash_algorithms(cls, algs: Iterable[HashAlgorithm | int]) -> Notify:
        return cls(int(NotifyType.SIGNATURE_HASH_ALGORITHMS),
                   b"".join(u16(int(a), "hash algorithm").to_bytes(2, "big") for a in algs))

    @classmethod
    def rekey_sa(cls, protocol: ProtocolId | int, spi: bytes) -> Notify:
        if protocol not in (ProtocolId.ESP, ProtocolId.AH) or len(spi) != 4:
            raise ValueError("REKEY_SA names an ESP or AH SA by its 4-octet SPI")
        return cls(int(NotifyType.REKEY_SA), b"", int(protocol), spi)

    @classmethod
    def use_transport_mode(cls) -> Notify:
        return cls(int(NotifyType.USE_TRANSPORT_MODE))

    @classmethod
    def initial_contact(cls) -> Notify:
        return cls(int(NotifyType.INITIAL_CONTACT))

    @classmethod
    def intermediate_exchange_supported(cls) -> Notify:
        """RFC 9242 3.1: in both IKE_SA_INIT messages; Protocol ID and SPI Size 0, no data."""
        return cls(int(NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED))

    @classmethod
    def additional_key_exchange(cls, link: bytes) -> Notify:
        """RFC 9370 2.2.4: links a CREATE_CHILD_SA to its IKE_FOLLOWUP_KE exchanges; Protocol ID and
        SPI Size 0, the responder's opaque link as data."""
        if not link:
            raise ValueError("ADDITIONAL_KEY_EXCHANGE carries a link")
        return cls(int(NotifyType.ADDITIONAL_KEY_EXCHANGE), link)
