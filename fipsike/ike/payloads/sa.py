"""Security Association payload: proposals, transforms, transform attributes (RFC 7296 3.3)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import PayloadType, ProtocolId, TransformAttributeType, TransformType

_PROPOSAL = struct.Struct(">BBHBBBB")  # Last Substruc, RESERVED, Length, Num, Protocol ID, SPI Size, #Transforms
_TRANSFORM = struct.Struct(">BBHBBH")  # Last Substruc, RESERVED, Length, Type, RESERVED, Transform ID
_ATTR = struct.Struct(">HH")  # AF|Attribute Type, Length or Value
_AF = 0x8000  # RFC 7296 3.3.5: Attribute Format bit, 1 = TV (16-bit value), 0 = TLV

MORE_PROPOSALS = 2  # RFC 7296 3.3.1 Last Substruc
MORE_TRANSFORMS = 3  # RFC 7296 3.3.2 Last Substruc


@dataclass(frozen=True, slots=True)
class TransformAttribute:
    """One transform attribute. `value` is an int for TV format, bytes for TLV (RFC 7296 3.3.5)."""

    type: int
    value: int | bytes

    def serialize(self) -> bytes:
        if isinstance(self.value, int):
            return _ATTR.pack(_AF | u16(self.type, "attribute type") & 0x7FFF, u16(self.value, "attribute value"))
        return _ATTR.pack(self.type & 0x7FFF, u16(len(self.value), "attribute length")) + self.value


@dataclass(frozen=True, slots=True)
class Transform:
    """Transform substructure: type, ID (providers/registry enum when known, else int), attributes."""

    type: int
    id: int
    attributes: tuple[TransformAttribute, ...] = ()

    @classmethod
    def make(cls, type: int, id: int, key_length: int | None = None) -> Transform:
        attrs = () if key_length is None else (TransformAttribute(TransformAttributeType.KEY_LENGTH, key_length),)
        return cls(type, id, attrs)

    @property
    def key_length(self) -> int | None:
        """The Key Length attribute in bits (RFC 7296 3.3.5), if present."""
        for attr in self.attributes:
            if attr.type == TransformAttributeType.KEY_LENGTH and isinstance(attr.value, int):
                return attr.value
        return None

    def serialize(self, last: bool) -> bytes:
        attrs = b"".join(a.serialize() for a in self.attributes)
        return _TRANSFORM.pack(0 if last else MORE_TRANSFORMS, 0, 8 + len(attrs), u8(self.type, "transform type"), 0,
                               u16(self.id, "transform id")) + attrs


@dataclass(frozen=True, slots=True)
class Proposal:
    """Proposal substructure (RFC 7296 3.3.1). `number` starts at 1 and counts up by one."""

    number: int
    protocol: int
    spi: bytes
    transforms: tuple[Transform, ...]

    def transforms_of(self, transform_type: TransformType | int) -> tuple[Transform, ...]:
        return tuple(t for t in self.transforms if t.type == transform_type)

    def serialize(self, last: bool) -> bytes:
        n = len(self.transforms)
        body = b"".join(t.serialize(i == n - 1) for i, t in enumerate(self.transforms))
        return _PROPOSAL.pack(0 if last else MORE_PROPOSALS, 0, 8 + len(self.spi) + len(body),
                              u8(self.number, "proposal number"), u8(self.protocol, "protocol id"),
                              u8(len(self.spi), "SPI size"), u8(n, "transform count")) + self.spi + body


# Transforms repeat endlessly (a handful of algorithms per deployment) and are immutable, so the
# parser interns them by their octets: most SA payloads then build no Transform at all. Bounded,
# so a peer sending novel transforms only ever fills it once.
_TRANSFORM_CACHE: dict[bytes, Transform] = {}
_TRANSFORM_CACHE_MAX = 1024
_SUBSTRUC = struct.Struct(">BBH")  # Last Substruc, RESERVED, Length


def _decode_transform(buf: bytes, off: int, tend: int) -> Transform:
    _, _, _, ttype, _, tid = _TRANSFORM.unpack_from(buf, off)
    attrs: list[TransformAttribute] = []
    a = off + 8
    while a < tend:
        if tend - a < 4:
            raise InvalidSyntax("transform attribute truncated")
        atype, val = _ATTR.unpack_from(buf, a)
        if atype & _AF:
            attrs.append(TransformAttribute(atype & 0x7FFF, val))
            a += 4
        else:
            if val > tend - a - 4:
                raise InvalidSyntax(f"transform attribute length {val} outside its transform")
            attrs.append(TransformAttribute(atype, buf[a + 4:a + 4 + val]))
            a += 4 + val
    return Transform(ttype, tid, tuple(attrs))


@dataclass(frozen=True, slots=True)
class SecurityAssociation(Payload):
    """SA payload (RFC 7296 3.3)."""

    proposals: tuple[Proposal, ...]

    TYPE: ClassVar[int] = PayloadType.SA

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        proposals: list[Proposal] = []
        last = MORE_PROPOSALS
        while off < end:
            if last != MORE_PROPOSALS:
                raise InvalidSyntax("data after the last proposal")
            if end - off < 8:
                raise InvalidSyntax("proposal substructure truncated")
            last, _, length, num, proto, spi_size, ntrans = _PROPOSAL.unpack_from(buf, off)
            if last not in (0, MORE_PROPOSALS):
                raise InvalidSyntax(f"proposal Last Substruc {last} is neither 0 nor 2")
            if not (8 + spi_size <= length <= end - off):
                raise InvalidSyntax(f"proposal length {length} outside its SA payload")
            # RFC 7296 3.3.1: an offer numbers its proposals 1, 2, ...; an answer carries the one
            # accepted proposal with the number it had in the offer, whatever that was
            if num != len(proposals) + 1 and (proposals or num == 0 or last == MORE_PROPOSALS):
                raise InvalidSyntax(f"proposal number {num} out of sequence")
            pend = off + length
            spi = buf[off + 8:off + 8 + spi_size]
            t = off + 8 + spi_size
            transforms: list[Transform] = []
            tlast = MORE_TRANSFORMS
            cache = _TRANSFORM_CACHE
            while t < pend:
                if tlast != MORE_TRANSFORMS:
                    raise InvalidSyntax("data after the last transform")
                if pend - t < 8:
                    raise InvalidSyntax("transform substructure truncated")
                tlast, _, tlen = _SUBSTRUC.unpack_from(buf, t)
                if tlast and tlast != MORE_TRANSFORMS:
                    raise InvalidSyntax(f"transform Last Substruc {tlast} is neither 0 nor 3")
                if tlen < 8 or tlen > pend - t:
                    raise InvalidSyntax(f"transform length {tlen} outside its proposal")
                tend = t + tlen
                key = buf[t + 4:tend]
                tr = cache.get(key)
                if tr is None:
                    tr = _decode_transform(buf, t, tend)
                    if len(cache) < _TRANSFORM_CACHE_MAX:
                        cache[key] = tr
                transforms.append(tr)
                t = tend
            if len(transforms) != ntrans:
                raise InvalidSyntax(f"proposal says {ntrans} transforms, carries {len(transforms)}")
            if tlast != 0:
                raise InvalidSyntax("last transform not marked last")
            proposals.append(Proposal(num, proto, spi, tuple(transforms)))
            off = pend
        if not (bool(proposals) and last == 0):
            raise InvalidSyntax("SA payload without a final proposal")
        return cls(tuple(proposals))

    def body(self) -> bytes:
        n = len(self.proposals)
        return b"".join(p.serialize(i == n - 1) for i, p in enumerate(self.proposals))


__all__ = ["Proposal", "ProtocolId", "SecurityAssociation", "Transform", "TransformAttribute"]
