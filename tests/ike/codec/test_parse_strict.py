"""Strict parsing: every length against its container, the critical bit, the size cap, typed errors."""

from __future__ import annotations

import struct

import pytest

from fipsike.ike.errors import (
    CodecError,
    InvalidMajorVersion,
    InvalidSyntax,
    MessageTooLarge,
    UnsupportedCriticalPayload,
)
from fipsike.ike.header import IkeHeader
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Delete,
    Encrypted,
    KeyExchangePayload,
    Nonce,
    Notify,
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorInitiator,
    Transform,
    UnknownPayload,
    VendorId,
)
from fipsike.ike.registry import (
    ExchangeType,
    HashAlgorithm,
    KeyExchange,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
    payload_notation,
    transform_id_name,
)

SPI_I, SPI_R = b"\x11" * 8, b"\x22" * 8


def raw_message(chain: bytes, first: int, *, version: int = 0x20, length: int | None = None,
                exchange: int = 34) -> bytes:
    total = 28 + len(chain) if length is None else length
    return struct.pack(">8s8sBBBBII", SPI_I, SPI_R, first, version, exchange, 0x08, 0, total) + chain


def gp(next_payload: int, body: bytes, critical: bool = False, length: int | None = None) -> bytes:
    return struct.pack(">BBH", next_payload, 0x80 if critical else 0, 4 + len(body) if length is None else length) \
        + body


def msg(*payloads: object) -> Message:
    return Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, 0, True, False, tuple(payloads))  # type: ignore[arg-type]


def test_header_fields_and_flags() -> None:
    m = Message(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, 7, False, True, (), version_flag=True)
    data = m.serialize()
    assert data[18] == 37 and data[19] == 0x30 and data[17] == 0x20 and len(data) == 28
    h = IkeHeader.parse(data)
    assert (h.initiator, h.response, h.version_flag, h.message_id, h.length) == (False, True, True, 7, 28)
    assert Message.parse(data) == m


def test_reserved_flag_bits_and_minor_version_are_ignored() -> None:
    data = bytearray(msg().serialize())
    data[19] |= 0x07 | 0xC0
    data[17] = 0x2F
    m = Message.parse(bytes(data))
    assert m.initiator and not m.response


@pytest.mark.parametrize("data", [b"", b"\x00" * 27])
def test_short_header(data: bytes) -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(data)


def test_ikev1_is_dropped_and_v3_is_answered() -> None:
    with pytest.raises(InvalidMajorVersion) as v1:
        Message.parse(raw_message(b"", 0, version=0x10))
    assert v1.value.notify is None
    with pytest.raises(InvalidMajorVersion) as v3:
        Message.parse(raw_message(b"", 0, version=0x30))
    assert v3.value.notify is NotifyType.INVALID_MAJOR_VERSION and v3.value.notify_data == b""


@pytest.mark.parametrize("delta", [-1, 1])
def test_header_length_must_equal_datagram(delta: int) -> None:
    body = gp(0, b"v" * 4)
    with pytest.raises(InvalidSyntax) as e:
        Message.parse(raw_message(body, PayloadType.VENDOR_ID, length=28 + len(body) + delta))
    assert e.value.notify is NotifyType.INVALID_SYNTAX


def test_message_size_cap() -> None:
    data = msg(VendorId(b"x" * 3000)).serialize()
    assert Message.parse(data, max_size=4000)
    with pytest.raises(MessageTooLarge) as e:
        Message.parse(data, max_size=2000)
    assert e.value.notify is None


@pytest.mark.parametrize("length", [0, 3, 9])
def test_payload_length_outside_message(length: int) -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, b"abcd", length=length), PayloadType.VENDOR_ID))


def test_truncated_generic_header_and_trailing_octets() -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(PayloadType.VENDOR_ID, b"ab") + b"\x00\x00", PayloadType.VENDOR_ID))
    with pytest.raises(InvalidSyntax, match="after the last payload"):
        Message.parse(raw_message(gp(0, b"ab") + b"junk", PayloadType.VENDOR_ID))


def test_unknown_critical_payload_is_refused_with_its_type() -> None:
    chain = gp(99, b"v") + gp(0, b"zz", critical=True)
    with pytest.raises(UnsupportedCriticalPayload) as e:
        Message.parse(raw_message(chain, PayloadType.VENDOR_ID))
    assert e.value.notify is NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD
    assert e.value.payload_type == 99 and e.value.notify_data == bytes([99])


def test_unknown_non_critical_payload_is_kept_and_skipped() -> None:
    chain = gp(99, b"v") + gp(PayloadType.NONCE, b"zz") + gp(0, b"n" * 16)
    m = Message.parse(raw_message(chain, PayloadType.VENDOR_ID))
    assert m.payloads == (VendorId(b"v"), UnknownPayload(99, b"zz"), Nonce(b"n" * 16))
    assert m.serialize() == raw_message(chain, PayloadType.VENDOR_ID)


def test_critical_bit_ignored_on_a_payload_we_understand() -> None:
    m = Message.parse(raw_message(gp(0, b"n" * 16, critical=True), PayloadType.NONCE))
    assert m.payloads == (Nonce(b"n" * 16),)


def test_assigned_but_unimplemented_critical_payload_is_refused() -> None:
    with pytest.raises(UnsupportedCriticalPayload):
        Message.parse(raw_message(gp(0, b"x", critical=True), PayloadType.PS))


def test_encrypted_payload_must_be_last() -> None:
    chain = gp(PayloadType.NONCE, b"x" * 20) + gp(0, b"n" * 16)
    with pytest.raises(InvalidSyntax, match="last"):
        Message.parse(raw_message(chain, PayloadType.SK))
    m = Message.parse(raw_message(gp(PayloadType.NONCE, b"x" * 20), PayloadType.SK))
    assert m.payloads == (Encrypted(PayloadType.NONCE, b"x" * 20),) and m.encrypted is m.payloads[0]


def test_fragment_numbers_checked() -> None:
    for number, total, first in ((0, 2, 0), (3, 2, 0), (2, 2, 35)):
        body = struct.pack(">HH", number, total) + b"x" * 20
        with pytest.raises(InvalidSyntax):
            Message.parse(raw_message(gp(first, body), PayloadType.SKF))


def _sa_body(*proposals: bytes) -> bytes:
    return b"".join(proposals)


def _proposal(last: int, num: int, transforms: list[bytes], declared: int | None = None) -> bytes:
    body = b"".join(transforms)
    return struct.pack(">BBHBBBB", last, 0, 8 + len(body), num, 1, 0,
                       len(transforms) if declared is None else declared) + body


def _transform(last: int, ttype: int, tid: int, attrs: bytes = b"") -> bytes:
    return struct.pack(">BBHBBH", last, 0, 8 + len(attrs), ttype, 0, tid) + attrs


def test_sa_parses_key_length_attribute() -> None:
    sa = _sa_body(_proposal(0, 1, [_transform(3, 1, 20, struct.pack(">HH", 0x800E, 256)), _transform(0, 4, 19)]))
    m = Message.parse(raw_message(gp(0, sa), PayloadType.SA))
    p = m.get(SecurityAssociation)
    assert p is not None
    assert p.proposals[0].transforms[0].key_length == 256
    assert p.proposals[0].transforms_of(TransformType.KE) == (Transform(4, 19),)


@pytest.mark.parametrize("sa", [
    # an offer's first proposal not number 1 (a lone one may be: an answer keeps its number)
    _sa_body(_proposal(2, 2, [_transform(0, 1, 20)]), _proposal(0, 3, [_transform(0, 1, 20)])),
    _sa_body(_proposal(0, 0, [_transform(0, 1, 20)])),  # number 0
    _sa_body(_proposal(2, 1, [_transform(0, 1, 20)]), _proposal(0, 3, [_transform(0, 1, 20)])),  # skips 2
    _sa_body(_proposal(0, 1, [_transform(0, 1, 20)], declared=2)),  # transform count
    _sa_body(_proposal(0, 1, [_transform(3, 1, 20)])),  # last transform marked "more"
    _sa_body(_proposal(2, 1, [_transform(0, 1, 20)])),  # last proposal marked "more"
    _sa_body(_proposal(5, 1, [_transform(0, 1, 20)])),  # bad Last Substruc
    _sa_body(_proposal(0, 1, [_transform(0, 1, 20, struct.pack(">HH", 0x000E, 10) + b"ab")])),  # TLV overrun
    _sa_body(_proposal(0, 1, [_transform(0, 1, 20, b"\x80")])),  # attribute truncated
    b"",  # no proposal
    b"\x00" * 7,  # truncated proposal
])
def test_sa_malformed(sa: bytes) -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, sa), PayloadType.SA))


@pytest.mark.parametrize(("ntype", "proto", "spi", "data"), [
    (NotifyType.NAT_DETECTION_SOURCE_IP, 0, b"", b"x" * 19),
    (NotifyType.NAT_DETECTION_DESTINATION_IP, 0, b"", b"x" * 21),
    (NotifyType.COOKIE, 0, b"", b""),
    (NotifyType.COOKIE, 0, b"", b"c" * 65),
    (NotifyType.INVALID_KE_PAYLOAD, 0, b"", b"\x00\x13\x00"),
    (NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, 0, b"", b"\x01"),
    (NotifyType.INITIAL_CONTACT, 0, b"", b"\x01"),
    (NotifyType.USE_TRANSPORT_MODE, 0, b"", b"\x01"),
    (NotifyType.REKEY_SA, 0, b"", b""),
    (NotifyType.REKEY_SA, 3, b"abc", b""),
    (NotifyType.SIGNATURE_HASH_ALGORITHMS, 0, b"", b"\x00\x02\x00"),
])
def test_typed_notify_data_checked(ntype: int, proto: int, spi: bytes, data: bytes) -> None:
    body = struct.pack(">BBH", proto, len(spi), ntype) + spi + data
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, body), PayloadType.NOTIFY))


def test_notify_spi_size_outside_payload() -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, struct.pack(">BBH", 3, 9, 16393) + b"abcd"), PayloadType.NOTIFY))


def test_typed_notify_accessors() -> None:
    m = Message.parse(msg(Notify.invalid_ke_payload(KeyExchange.ECP_384),
                          Notify.signature_hash_algorithms([HashAlgorithm.SHA2_256, 0x1234]),
                          Notify.rekey_sa(ProtocolId.ESP, b"\x01\x02\x03\x04"), Notify.cookie(b"c" * 8)).serialize())
    ke = m.notify(NotifyType.INVALID_KE_PAYLOAD)
    assert ke is not None and ke.accepted_group is KeyExchange.ECP_384 and ke.is_error
    sh = m.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    assert sh is not None and sh.hash_algorithms == (HashAlgorithm.SHA2_256, 0x1234) and not sh.is_error
    rk = m.notify(NotifyType.REKEY_SA)
    assert rk is not None and rk.protocol == ProtocolId.ESP and rk.spi == b"\x01\x02\x03\x04"
    assert m.notify(NotifyType.COOKIE) == Notify.cookie(b"c" * 8)
    assert len(list(m.notifies())) == 4 and m.notify(NotifyType.REDIRECT) is None
    with pytest.raises(ValueError):
        Notify.nat_detection(NotifyType.NAT_DETECTION_SOURCE_IP, b"short")
    with pytest.raises(ValueError):
        Notify.cookie(b"")


@pytest.mark.parametrize("body", [
    bytes((1, 0, 0, 0)) + struct.pack(">BBHHH", 7, 0, 17, 0, 65535) + b"\x00" * 9,  # IPv4 length 17
    bytes((1, 0, 0, 0)) + struct.pack(">BBHHH", 8, 0, 16, 0, 65535) + b"\x00" * 8,  # IPv6 length 16
    bytes((2, 0, 0, 0)) + struct.pack(">BBHHH", 7, 0, 16, 0, 65535) + b"\x00" * 8,  # claims two selectors
    bytes((1, 0, 0, 0)) + struct.pack(">BBHHH", 7, 0, 16, 0, 65535) + b"\x00" * 9,  # trailing octet
    bytes((1, 0, 0)),  # truncated fixed part
])
def test_traffic_selector_malformed(body: bytes) -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, body), PayloadType.TSi))


def test_traffic_selector_values() -> None:
    ts = TrafficSelector.from_network("10.1.0.0/16", ip_protocol=6, start_port=80, end_port=80)
    m = Message.parse(msg(TrafficSelectorInitiator((ts, TrafficSelector.any(6)))).serialize())
    got = m.get(TrafficSelectorInitiator)
    assert got is not None
    assert str(got.selectors[0].start_address) == "10.1.0.0"  # type: ignore[union-attr]
    assert str(got.selectors[0].end_address) == "10.1.255.255"  # type: ignore[union-attr]
    assert got.selectors[1].ts_type == 8


@pytest.mark.parametrize("body", [
    struct.pack(">BBH", 1, 8, 1) + b"x" * 8,  # IKE delete with an SPI
    struct.pack(">BBH", 3, 4, 2) + b"x" * 4,  # count/size mismatch
    struct.pack(">BBH", 3, 0, 2),  # SPIs of size 0
    struct.pack(">BB", 3, 4),  # truncated
])
def test_delete_malformed(body: bytes) -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, body), PayloadType.DELETE))


def test_delete_round_trip() -> None:
    d = Delete(ProtocolId.ESP, (b"aaaa", b"bbbb"))
    assert Message.parse(msg(d, Delete(ProtocolId.IKE)).serialize()).payloads == (d, Delete(ProtocolId.IKE))


def test_cp_attribute_overrun_and_nonce_bounds() -> None:
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, bytes((1, 0, 0, 0)) + struct.pack(">HH", 1, 8) + b"abc"), PayloadType.CP))
    for n in (15, 257):
        with pytest.raises(InvalidSyntax):
            Message.parse(raw_message(gp(0, b"n" * n), PayloadType.NONCE))
    with pytest.raises(ValueError):
        Nonce(b"short").body()


def test_ke_payload() -> None:
    ke = KeyExchangePayload(KeyExchange.ECP_256, b"p" * 64)
    assert Message.parse(msg(ke).serialize()).payloads == (ke,)
    with pytest.raises(InvalidSyntax):
        Message.parse(raw_message(gp(0, b"\x00\x13\x00"), PayloadType.KE))


def test_every_error_is_a_codec_error_with_a_notify_attribute() -> None:
    for cls in (InvalidSyntax, MessageTooLarge):
        assert issubclass(cls, CodecError)
    assert InvalidSyntax("x").notify is NotifyType.INVALID_SYNTAX


def test_proposal_with_spi_round_trip() -> None:
    sa = SecurityAssociation((Proposal(1, ProtocolId.ESP, b"\xde\xad\xbe\xef", (Transform.make(1, 20, 128),)),))
    assert Message.parse(msg(sa).serialize()).payloads == (sa,)


def test_names() -> None:
    assert payload_notation(PayloadType.NOTIFY) == "N" and payload_notation(PayloadType.NONCE) == "Nonce"
    assert payload_notation(PayloadType.IDi) == "IDi" and payload_notation(200) == "PAYLOAD_200"
    assert transform_id_name(1, 20) == "ENCR_AES_GCM_16" and transform_id_name(6, 36) == "ML_KEM_768"
    assert transform_id_name(1, 999) == "ID_999"


def test_serialize_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        msg(KeyExchangePayload(70000, b"")).serialize()
    with pytest.raises(ValueError):
        msg(Encrypted(35, b""), Nonce(b"n" * 16)).serialize()
    with pytest.raises(ValueError):
        Message(b"short", SPI_R, 34, 0, True, False).serialize()


def test_answer_keeps_the_number_of_the_accepted_proposal() -> None:
    """RFC 7296 3.3.1: an offer numbers its proposals 1, 2, ...; the answer carries the accepted one
    with its number from the offer (2 here). Two proposals out of sequence stay an error."""
    p = Proposal(2, ProtocolId.ESP, b"\xde\xad\xbe\xef", (Transform.make(1, 20, 128),))
    lone = SecurityAssociation((p,))
    assert Message.parse(msg(lone).serialize()).payloads == (lone,)
    two = SecurityAssociation((p, Proposal(3, ProtocolId.ESP, b"\x00\x00\x01\x00", p.transforms)))
    with pytest.raises(InvalidSyntax, match="out of sequence"):
        Message.parse(msg(two).serialize())
    zero = SecurityAssociation((Proposal(0, ProtocolId.ESP, b"\xde\xad\xbe\xef", p.transforms),))
    with pytest.raises(InvalidSyntax, match="out of sequence"):
        Message.parse(msg(zero).serialize())
