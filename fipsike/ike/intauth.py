"""IntAuth: the IKE_INTERMEDIATE messages authenticated in IKE_AUTH (RFC 9242 3.3.2).

    InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI | IntAuth
    ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR | IntAuth
    IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID

    IntAuth_i1 = prf(SK_pi1,              IntAuth_i1_A [| IntAuth_i1_P])
    IntAuth_in = prf(SK_pin, IntAuth_in-1 | IntAuth_in_A [| IntAuth_in_P])   (and _r with SK_pr)

SK_p[i/r]n is the key current when the n-th IKE_INTERMEDIATE exchange is protected, i.e. before any
key update that exchange brings (RFC 9242 3.3.1, and its example in appendix A). The _A chunk runs
from the first octet of the IKE header (no non-ESP marker) to the last octet of the Encrypted
payload's generic header; the _P chunk is the inner payloads in plaintext. In both, the IKE header's
Length and the Encrypted payload's Payload Length are "adjusted": they count neither the IV, the
padding, the Pad Length nor the ICV. A fragmented message counts as its unfragmented form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fipsike.ike.encrypted import SK_HEADER_SIZE, OpenedFragment
from fipsike.ike.errors import CodecError, InvalidSyntax
from fipsike.ike.header import HEADER_SIZE, IkeHeader
from fipsike.ike.keymat import IkeKeys
from fipsike.ike.message import Message, serialize_payloads
from fipsike.ike.payloads import GENERIC_HEADER, Encrypted
from fipsike.ike.registry import PayloadType
from providers.algorithms import Prf
from providers.api import IkeRouter

_LENGTH_AT = 24  # the IKE header's Length field (RFC 7296 3.1)
IKE_AUTH_MID_SIZE = 4


class IntAuthError(InvalidSyntax):
    """The octets do not make an IKE_INTERMEDIATE message, or the chains are incomplete."""


def intauth_data(prefix: bytes, inner: bytes) -> bytes:
    """IntAuth_[i/r]n_A | IntAuth_[i/r]n_P of one message.

    `prefix`: the message's octets from the IKE header to the Encrypted payload's generic header
    inclusive, any clear payloads between; `inner`: the inner payloads in plaintext. The two length
    fields are rewritten to their adjusted values; every other octet is taken as it is.
    """
    if len(prefix) < HEADER_SIZE + SK_HEADER_SIZE:
        raise IntAuthError(f"{len(prefix)} octets cannot hold an IKE header and an Encrypted payload header")
    sk_length = SK_HEADER_SIZE + len(inner)
    if sk_length > 0xFFFF:
        raise IntAuthError(f"inner payloads of {len(inner)} octets do not fit one Encrypted payload")
    a = bytearray(prefix)
    a[_LENGTH_AT:_LENGTH_AT + 4] = (len(prefix) + len(inner)).to_bytes(4, "big")  # Adjusted Length
    a[-2:] = sk_length.to_bytes(2, "big")  # Adjusted Payload Length
    return bytes(a) + inner


def _whole_message_data(header: IkeHeader, first_payload: int, inner: bytes) -> bytes:
    # the message as one SK payload and nothing else: how fipsike seals, and how RFC 9242 3.3.2 counts
    # a fragmented message ("as if it were received unfragmented"; RFC 7383 2.5 fragments only SK)
    prefix = header.serialize() + GENERIC_HEADER.pack(first_payload, 0, 0)
    return intauth_data(prefix, inner)


def sent_intauth_data(message: Message) -> bytes:
    """A | P of a message we send: SkCrypto.seal / seal_fragments put every payload of `message`
    inside one SK, so this is computed before fragmentation, from the same serialization."""
    first, inner = serialize_payloads(message.payloads)
    return _whole_message_data(message.header(PayloadType.SK, 0), first, inner)


def received_intauth_data(datagram: bytes, inner: bytes) -> bytes:
    """A | P of a message received whole (one SK payload): its own octets up to the SK header, and the
    decrypted inner octets (SkCrypto.open_plaintext gives both)."""
    try:
        outer = Message.parse(datagram)
    except CodecError as e:
        raise IntAuthError(f"not an IKE message: {e}") from None
    sk = outer.encrypted
    if not isinstance(sk, Encrypted):
        raise IntAuthError("an IKE_INTERMEDIATE message without an Encrypted (SK) payload")
    return intauth_data(datagram[:len(datagram) - len(sk.data)], inner)


def reassembled_intauth_data(fragments: Sequence[OpenedFragment]) -> bytes:
    """A | P of a message received in fragments (complete, in order), as if received unfragmented."""
    if not fragments or [f.fragment_number for f in fragments] != list(range(1, fragments[0].total_fragments + 1)):
        raise IntAuthError("fragments are not a complete, ordered set")
    f1 = fragments[0]
    header = IkeHeader(f1.spi_i, f1.spi_r, PayloadType.SK, f1.exchange, f1.message_id, 0, f1.initiator, f1.response)
    return _whole_message_data(header, f1.first_payload, b"".join(f.plaintext for f in fragments))


@dataclass
class IntAuth:
    """The running IntAuth_iN and IntAuth_rN of one IKE SA (public values: prf outputs that go into
    the AUTH octets, like MACedIDForI)."""

    prf: Prf
    initiator: bytes = b""  # IntAuth_in
    responder: bytes = b""  # IntAuth_rn
    initiator_messages: int = 0
    responder_messages: int = 0

    def add(self, router: IkeRouter, keys: IkeKeys, data: bytes, sent_by_initiator: bool) -> None:
        """Chain one IKE_INTERMEDIATE message's A | P in, under the keys that protected it."""
        if sent_by_initiator:
            self.initiator = router.prf(self.prf, keys.sk_pi, self.initiator + data)
            self.initiator_messages += 1
        else:
            self.responder = router.prf(self.prf, keys.sk_pr, self.responder + data)
            self.responder_messages += 1

    @property
    def used(self) -> bool:
        return bool(self.initiator_messages or self.responder_messages)

    def octets(self, ike_auth_mid: int) -> bytes:
        """IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID, to append to both signed octets.

        `ike_auth_mid`: the Message ID of the first IKE_AUTH request, four octets big-endian. Empty
        when no IKE_INTERMEDIATE exchange took place, so the AUTH octets stay RFC 7296's.
        """
        if not self.used:
            return b""
        if self.initiator_messages != self.responder_messages:
            raise IntAuthError(f"{self.initiator_messages} IKE_INTERMEDIATE requests but "
                               f"{self.responder_messages} responses authenticated")
        if not 0 <= ike_auth_mid <= 0xFFFFFFFF:
            raise IntAuthError(f"message ID {ike_auth_mid} does not fit 32 bits")
        return self.initiator + self.responder + ike_auth_mid.to_bytes(IKE_AUTH_MID_SIZE, "big")

    def __repr__(self) -> str:
        return f"IntAuth({self.prf.name}, {self.initiator_messages}/{self.responder_messages} messages)"
