"""An IKE message: the header and its chain of payloads (RFC 7296 3.1, 3.2).

`Message.parse` checks every length against its container, honours the critical
bit and the size cap, and raises only `CodecError`s. An encrypted message parses
to a Message whose last payload is `Encrypted` (SK) or `EncryptedFragment` (SKF);
fipsike.ike.encrypted turns it into the Message of its inner payloads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from fipsike.ike.errors import InvalidSyntax, UnsupportedCriticalPayload
from fipsike.ike.header import HEADER_SIZE, MAX_MESSAGE_SIZE, IkeHeader
from fipsike.ike.payloads import (
    GENERIC_HEADER,
    PAYLOAD_CLASSES,
    Encrypted,
    EncryptedFragment,
    Notify,
    Payload,
    UnknownPayload,
)
from fipsike.ike.payloads.base import CRITICAL
from fipsike.ike.registry import ExchangeType, NotifyType, PayloadType, lookup

P = TypeVar("P", bound=Payload)

_SK = PayloadType.SK
_SKF = PayloadType.SKF
_ENCRYPTED_TYPES = (int(_SK), int(_SKF))
_GH = GENERIC_HEADER
_CLASSES = PAYLOAD_CLASSES


def parse_payloads(buf: bytes, off: int, end: int, first: int, *, inner: bool = False) -> list[Payload]:
    """Parse the payload chain in buf[off:end] starting with type `first`.

    SK/SKF must be the last payload (RFC 7296 3.14) and may not appear inside
    another (`inner=True`). Nothing may follow the last payload.
    """
    if type(buf) is not bytes:  # payload fields are slices of buf: make them bytes
        buf = bytes(buf)
    out: list[Payload] = []
    nxt = first
    while nxt:
        if end - off < 4:
            raise InvalidSyntax(f"payload {nxt} header truncated at offset {off}")
        ptype = nxt
        nxt, flags, length = _GH.unpack_from(buf, off)
        if length < 4 or length > end - off:
            raise InvalidSyntax(f"payload length {length} at offset {off} outside the message")
        pend = off + length
        cls = _CLASSES.get(ptype)
        if cls is None:
            if flags & CRITICAL:
                raise UnsupportedCriticalPayload(ptype)
            out.append(UnknownPayload(ptype, buf[off + 4:pend], False))
        elif ptype in _ENCRYPTED_TYPES:
            if inner:
                raise InvalidSyntax("encrypted payload inside an encrypted payload")
            if pend != end:
                raise InvalidSyntax("encrypted payload is not the last payload")
            out.append((Encrypted if ptype == _SK else EncryptedFragment).parse_sk(nxt, buf, off + 4, pend))
            return out
        else:
            out.append(cls.parse_body(buf, off + 4, pend))
        off = pend
    if off != end:
        raise InvalidSyntax(f"{end - off} octets after the last payload")
    return out


def serialize_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """(type of the first payload, the chained octets). An SK/SKF payload must come last."""
    parts: list[bytes] = []
    n = len(payloads)
    for i, p in enumerate(payloads):
        body = p.body()
        if type(p) is Encrypted or type(p) is EncryptedFragment:  # not isinstance(): an ABC check per payload
            if i != n - 1:
                raise ValueError("an encrypted payload must be the last payload")
            nxt = p.first_payload
        else:
            nxt = payloads[i + 1].payload_type if i + 1 < n else 0
        length = 4 + len(body)
        if length > 0xFFFF:
            raise ValueError(f"payload {p.payload_type} of {length} octets does not fit a Payload Length")
        parts.append(_GH.pack(nxt, CRITICAL if p.critical else 0, length))
        parts.append(body)
    return (payloads[0].payload_type if payloads else 0), b"".join(parts)


@dataclass(frozen=True, slots=True)
class Message:
    """One IKE message. Exchange is an ExchangeType when known, else its number."""

    spi_i: bytes
    spi_r: bytes
    exchange: int
    message_id: int
    initiator: bool
    response: bool
    payloads: tuple[Payload, ...] = ()
    version_flag: bool = False

    # --- codec -------------------------------------------------------------------
    @classmethod
    def parse(cls, data: bytes, *, max_size: int = MAX_MESSAGE_SIZE) -> Message:
        """Parse one IKE message (no non-ESP marker). Raises only CodecError subclasses."""
        if not isinstance(data, bytes):
            data = bytes(data)
        h = IkeHeader.parse(data, max_size)
        payloads = parse_payloads(data, HEADER_SIZE, h.length, h.next_payload)
        return cls(h.spi_i, h.spi_r, lookup(ExchangeType, h.exchange), h.message_id, h.initiator, h.response,
                   tuple(payloads), h.version_flag)

    def header(self, next_payload: int, length: int) -> IkeHeader:
        return IkeHeader(self.spi_i, self.spi_r, next_payload, int(self.exchange), self.message_id, length,
                         self.initiator, self.response, self.version_flag)

    def serialize(self) -> bytes:
        first, body = serialize_payloads(self.payloads)
        if self.message_id < 0 or self.message_id > 0xFFFFFFFF:
            raise ValueError("message ID does not fit 32 bits")
        return self.header(first, HEADER_SIZE + len(body)).serialize() + body

    # --- reading helpers -------------------------------------------------------------
    # Payload is an ABC, so isinstance() on a payload goes through ABCMeta.__instancecheck__ (about
    # 5% of a responder's CPU per SA, from these helpers alone). No payload class is a virtual
    # subclass (ABC.register): membership in the payload's MRO is the same answer, at tuple speed.
    def get(self, cls: type[P]) -> P | None:
        """The first payload of class `cls`, or None."""
        for p in self.payloads:
            if cls in type(p).__mro__:
                return p  # type: ignore[return-value]  # the MRO test is isinstance()
        return None

    def all(self, cls: type[P]) -> list[P]:
        return [p for p in self.payloads if cls in type(p).__mro__]  # type: ignore[misc]

    def notifies(self) -> Iterator[Notify]:
        return (p for p in self.payloads if type(p) is Notify)

    def notify(self, notify_type: NotifyType | int) -> Notify | None:
        """The first Notify of this type, or None."""
        for p in self.payloads:
            if type(p) is Notify and p.notify_type == notify_type:
                return p
        return None

    @property
    def encrypted(self) -> Encrypted | EncryptedFragment | None:
        last = self.payloads[-1] if self.payloads else None
        return last if isinstance(last, Encrypted | EncryptedFragment) else None

    def with_payloads(self, payloads: Sequence[Payload]) -> Message:
        return Message(self.spi_i, self.spi_r, self.exchange, self.message_id, self.initiator, self.response,
                       tuple(payloads), self.version_flag)
