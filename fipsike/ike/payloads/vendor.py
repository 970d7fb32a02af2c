"""Vendor ID payload (RFC 7296 3.12)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.payloads.base import Payload
from fipsike.ike.registry import PayloadType


@dataclass(frozen=True, slots=True)
class VendorId(Payload):
    """V: an opaque vendor identifier."""

    data: bytes

    TYPE: ClassVar[int] = PayloadType.VENDOR_ID

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        return cls(buf[off:end])

    def body(self) -> bytes:
        return self.data
