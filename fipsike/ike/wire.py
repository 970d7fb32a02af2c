"""The engine's adapter to the wire codec: proposals and traffic selectors between
the codec's payload classes and the engine's model, and SK protection of messages."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.encrypted import SkCrypto, SkKeys, inner_message
from fipsike.ike.fragmentation import Reassembler, fragment_datagram_limit
from fipsike.ike.intauth import reassembled_intauth_data, received_intauth_data
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    EncryptedFragment,
    Payload,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
)
from fipsike.ike.payloads import Proposal as WireProposal
from fipsike.ike.payloads import Transform as WireTransform
from fipsike.ike.proposals import Proposal, Transform, TransformType
from fipsike.ike.registry import ExchangeType, ProtocolId
from fipsike.ike.ts import _ip
from providers.algorithms import Integrity
from providers.api import IkeRouter

if TYPE_CHECKING:
    from fipsike.ike.sa import IkeSa


def to_wire_sa(proposals: Sequence[Proposal]) -> SecurityAssociation:
    return SecurityAssociation(tuple(
        WireProposal(p.number, int(p.protocol), p.spi, _to_wire_transforms(p.transforms)) for p in proposals))


@functools.lru_cache(maxsize=1024)
def _to_wire_transforms(transforms: tuple[Transform, ...]) -> tuple[WireTransform, ...]:
    """The codec's transforms for ours (remembered: a configuration has a handful; both are immutable)."""
    return tuple(WireTransform.make(int(t.type), int(t.id), t.key_bits) for t in transforms)


def from_wire_sa(sa: SecurityAssociation) -> list[Proposal]:
    out: list[Proposal] = []
    for p in sa.proposals:
        try:
            proto = ProtocolId(p.protocol)
        except ValueError:
            continue
        ts: list[Transform] = []
        for t in p.transforms:
            try:
                ttype = TransformType(t.type)
            except ValueError:
                continue  # an unknown transform type: this proposal cannot be chosen as a whole
            ts.append(Transform(ttype, int(t.id), t.key_length))
        out.append(Proposal(p.number, proto, p.spi, tuple(ts)))
    return out


class Prepared(Payload):
    """An outgoing payload whose body is serialized once: our recurring answers (the IKE SA
    payload of IKE_SA_INIT, Child SA selectors) are immutable, so their octets are too. Only for
    sending: the codec reads payload_type, critical and body(), which this answers as `payload`."""

    __slots__ = ("payload", "octets")

    def __init__(self, payload: Payload) -> None:
        self.payload = payload
        self.octets = payload.body()

    @property
    def payload_type(self) -> int:
        return self.payload.payload_type

    @property
    def critical(self) -> bool:
        return self.payload.critical

    def body(self) -> bytes:
        return self.octets

    @classmethod
    def parse_body(cls, buf: bytes, off: int, end: int) -> Prepared:
        # received octets are parsed as the payload they are; a Prepared is only ever sent
        raise TypeError("Prepared payloads are send-only")

    def __repr__(self) -> str:
        return f"Prepared({self.payload!r})"


def ts_payloads(tsi: tuple[TrafficSelectorSpec, ...], tsr: tuple[TrafficSelectorSpec, ...]) -> list[Payload]:
    """[TSi, TSr] for these selectors, serialized once per pair of selector tuples."""
    return list(_ts_payloads(tsi, tsr))


@functools.lru_cache(maxsize=1024)
def _ts_payloads(tsi: tuple[TrafficSelectorSpec, ...],
                 tsr: tuple[TrafficSelectorSpec, ...]) -> tuple[Payload, Payload]:
    return (Prepared(TrafficSelectorInitiator(to_wire_ts(tsi))), Prepared(TrafficSelectorResponder(to_wire_ts(tsr))))


def to_wire_ts(specs: Sequence[TrafficSelectorSpec]) -> tuple[TrafficSelector, ...]:
    return _to_wire_ts(tuple(specs))


@functools.lru_cache(maxsize=1024)
def _to_wire_ts(specs: tuple[TrafficSelectorSpec, ...]) -> tuple[TrafficSelector, ...]:
    return tuple(TrafficSelector(s.protocol, s.start_port, s.end_port, _ip(s.start), _ip(s.end)) for s in specs)


def from_wire_ts(selectors: Sequence[Any]) -> tuple[TrafficSelectorSpec, ...]:
    """The engine's selectors from the payload's (remembered: peers repeat their selectors)."""
    return _from_wire_ts(tuple(selectors))


@functools.lru_cache(maxsize=1024)
def _from_wire_ts(selectors: tuple[Any, ...]) -> tuple[TrafficSelectorSpec, ...]:
    out: list[TrafficSelectorSpec] = []
    for s in selectors:
        if isinstance(s, TrafficSelector):
            out.append(TrafficSelectorSpec(str(s.start_address), str(s.end_address), s.ip_protocol,
                                           s.start_port, s.end_port))
    return tuple(out)


# --- SK protection ------------------------------------------------------------------------

FRAGMENT_MTU = 1280  # path MTU assumed for RFC 7383 fragments (strongSwan's default fragment size)


class Protection:
    """An IKE SA's SK sealer/opener plus its fragment reassembly."""

    __slots__ = ("crypto", "reassembler", "limit")

    def __init__(self, crypto: SkCrypto, limit: int) -> None:
        self.crypto = crypto
        self.reassembler = Reassembler()
        self.limit = limit


def setup_protection(router: IkeRouter, sa: IkeSa) -> None:
    """Build the codec's SK state for an IKE SA whose keys and suite are set."""
    s, k = sa.suite, sa.keys
    assert s is not None and k is not None
    keys = SkKeys(s.encr, s.encr_key_bits, s.integ or Integrity.NONE, k.sk_ei, k.sk_er, k.sk_ai, k.sk_ar)
    ipv6 = ":" in sa.remote[0]
    limit = fragment_datagram_limit(FRAGMENT_MTU, ipv6=ipv6, nat_t=sa.remote[1] == 4500)
    sa.codec = Protection(SkCrypto(router, keys, sa.initiator), limit)


def protect(router: IkeRouter, sa: IkeSa, msg: Message) -> list[bytes]:
    prot = sa.codec
    assert prot is not None
    if sa.peer_fragmentation and msg.exchange != ExchangeType.IKE_SA_INIT:
        return prot.crypto.seal_fragments(msg, prot.limit)
    return [prot.crypto.seal(msg)]


def unprotect_intermediate(sa: IkeSa, msg: Message, data: bytes) -> tuple[Message, bytes] | None:
    """unprotect() for an IKE_INTERMEDIATE message, also giving its IntAuth A | P (RFC 9242 3.3.2),
    from the octets as decrypted (a fragmented message as if received whole). Raises CodecError."""
    prot = sa.codec
    assert prot is not None
    if isinstance(msg.encrypted, EncryptedFragment):
        ordered = prot.reassembler.add_fragment(prot.crypto.open_fragment(data))
        if ordered is None:
            return None
        return inner_message(ordered), reassembled_intauth_data(ordered)
    opened, inner = prot.crypto.open_plaintext(data)
    return opened, received_intauth_data(data, inner)


def unprotect(router: IkeRouter, sa: IkeSa, msg: Message, data: bytes) -> Message | None:
    """The decrypted message, or None while fragments are still missing. Raises CodecError."""
    prot = sa.codec
    assert prot is not None
    if isinstance(msg.encrypted, EncryptedFragment):
        return prot.reassembler.add(prot.crypto.open_fragment(data))
    return prot.crypto.open_message(msg, data)  # `msg` is Message.parse(data): not parsed again
