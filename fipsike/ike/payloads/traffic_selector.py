"""Traffic Selector payloads TSi and TSr (RFC 7296 3.13)."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.payloads.base import Payload, u8, u16
from fipsike.ike.registry import PayloadType, TsType

_TS_HEAD = struct.Struct(">BBHHH")  # TS Type, IP Protocol ID, Selector Length, Start Port, End Port
_RAW_HEAD = struct.Struct(">BBH")  # TS Type, (type-specific octet), Selector Length
IPV4_TS_LENGTH = 16  # RFC 7296 3.13.1
IPV6_TS_LENGTH = 40

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class TrafficSelector:
    """One TS_IPV4_ADDR_RANGE / TS_IPV6_ADDR_RANGE selector: protocol (0 = any), port range, address range."""

    ip_protocol: int
    start_port: int
    end_port: int
    start_address: IpAddress
    end_address: IpAddress

    @property
    def ts_type(self) -> TsType:
        return TsType.TS_IPV4_ADDR_RANGE if self.start_address.version == 4 else TsType.TS_IPV6_ADDR_RANGE

    @classmethod
    def any(cls, version: int = 4) -> TrafficSelector:
        if version == 4:
            return cls(0, 0, 0xFFFF, ipaddress.IPv4Address(0), ipaddress.IPv4Address(2**32 - 1))
        return cls(0, 0, 0xFFFF, ipaddress.IPv6Address(0), ipaddress.IPv6Address(2**128 - 1))

    @classmethod
    def from_network(cls, network: str, ip_protocol: int = 0, start_port: int = 0,
                     end_port: int = 0xFFFF) -> TrafficSelector:
        net = ipaddress.ip_network(network, strict=False)
        return cls(ip_protocol, start_port, end_port, net.network_address, net.broadcast_address)

    def serialize(self) -> bytes:
        if self.start_address.version != self.end_address.version:
            raise ValueError("traffic selector mixes IPv4 and IPv6")
        length = IPV4_TS_LENGTH if self.start_address.version == 4 else IPV6_TS_LENGTH
        return _TS_HEAD.pack(self.ts_type, u8(self.ip_protocol, "IP protocol"), length,
                             u16(self.start_port, "port"), u16(self.end_port, "port")) \
            + self.start_address.packed + self.end_address.packed


@dataclass(frozen=True, slots=True)
class RawTrafficSelector:
    """A selector of a type we do not interpret (TS_FC_ADDR_RANGE, TS_SECLABEL, ...), kept as octets."""

    ts_type: int
    second_octet: int
    data: bytes

    def serialize(self) -> bytes:
        return _RAW_HEAD.pack(u8(self.ts_type, "TS type"), u8(self.second_octet, "TS octet"),
                              u16(4 + len(self.data), "selector length")) + self.data


AnySelector = TrafficSelector | RawTrafficSelector

# Selectors repeat (a peer proposes the same ones on every connect) and are immutable, so the
# parser interns them by their octets, as sa.py does transforms. Bounded.
_SELECTOR_CACHE: dict[bytes, TrafficSelector] = {}
_SELECTOR_CACHE_MAX = 1024


def _selector(buf: bytes, p: int, length: int, cls: type[IpAddress]) -> TrafficSelector:
    """The address-range selector at buf[p:p+length] (its type and length already checked)."""
    key = buf[p:p + length]
    ts = _SELECTOR_CACHE.get(key)
    if ts is None:
        _, proto, _, sport, eport = _TS_HEAD.unpack_from(buf, p)
        half = (length - 8) // 2
        ts = TrafficSelector(proto, sport, eport, cls(buf[p + 8:p + 8 + half]), cls(buf[p + 8 + half:p + length]))
        if len(_SELECTOR_CACHE) < _SELECTOR_CACHE_MAX:
            _SELECTOR_CACHE[key] = ts
    return ts


@dataclass(frozen=True, slots=True)
class TrafficSelectors(Payload):
    """The common body of TSi and TSr: Number of TSs, RESERVED, selectors."""

    selectors: tuple[AnySelector, ...]

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        if end - off < 4:
            raise InvalidSyntax("TS payload shorter than its fixed part")
        count = buf[off]
        p = off + 4
        out: list[AnySelector] = []
        for _ in range(count):
            if end - p < 4:
                raise InvalidSyntax("traffic selector truncated")
            ts_type, proto, length = _RAW_HEAD.unpack_from(buf, p)
            if not (4 <= length <= end - p):
                raise InvalidSyntax(f"traffic selector length {length} outside its payload")
            if ts_type == TsType.TS_IPV4_ADDR_RANGE:
                if length != IPV4_TS_LENGTH:
                    raise InvalidSyntax(f"IPv4 traffic selector of length {length}, not 16")
                out.append(_selector(buf, p, length, ipaddress.IPv4Address))
            elif ts_type == TsType.TS_IPV6_ADDR_RANGE:
                if length != IPV6_TS_LENGTH:
                    raise InvalidSyntax(f"IPv6 traffic selector of length {length}, not 40")
                out.append(_selector(buf, p, length, ipaddress.IPv6Address))
            else:
                out.append(RawTrafficSelector(ts_type, proto, buf[p + 4:p + length]))
            p += length
        if p != end:
            raise InvalidSyntax("data after the last traffic selector")
        return cls(tuple(out))

    def body(self) -> bytes:
        return bytes((u8(len(self.selectors), "TS count"), 0, 0, 0)) + b"".join(s.serialize() for s in self.selectors)


@dataclass(frozen=True, slots=True)
class TrafficSelectorInitiator(TrafficSelectors):
    """TSi."""

    TYPE: ClassVar[int] = PayloadType.TSi


@dataclass(frozen=True, slots=True)
class TrafficSelectorResponder(TrafficSelectors):
    """TSr."""

    TYPE: ClassVar[int] = PayloadType.TSr
