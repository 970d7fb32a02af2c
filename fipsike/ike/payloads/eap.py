"""EAP payload (RFC 7296 3.16), carried opaque: fipsike authenticates with certificates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from fipsike.ike.payloads.base import Payload
from fipsike.ike.registry import PayloadType


@dataclass(frozen=True, slots=True)
class Eap(Payload):
    """EAP: the EAP message (RFC 3748 Code | Identifier | Length | Type | data) as octets."""

    data: bytes

    TYPE: ClassVar[int] = PayloadType.EAP

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Self:
        return cls(buf[off:end])

    def body(self) -> bytes:
        return self.data
