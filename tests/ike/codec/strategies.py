"""Hypothesis strategies for IKE payloads and messages (well-formed by construction)."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Configuration,
    ConfigurationAttribute,
    Delete,
    Eap,
    Encrypted,
    EncryptedFragment,
    IdentificationInitiator,
    IdentificationResponder,
    KeyExchangePayload,
    Nonce,
    Notify,
    Payload,
    Proposal,
    RawTrafficSelector,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
    Transform,
    TransformAttribute,
    UnknownPayload,
    VendorId,
)
from fipsike.ike.registry import NotifyType, PayloadType, ProtocolId

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
small = st.binary(max_size=40)

attribute = st.one_of(
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), u16),
    st.builds(TransformAttribute, st.integers(0, 0x7FFF), small),
)
transform = st.builds(Transform, st.integers(1, 12), u16, st.lists(attribute, max_size=2).map(tuple))


@st.composite
def security_association(draw: st.DrawFn) -> SecurityAssociation:
    n = draw(st.integers(1, 4))
    props = tuple(
        Proposal(i + 1, draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([b"", b"\x01\x02\x03\x04", b"s" * 8])),
                 tuple(draw(st.lists(transform, min_size=1, max_size=6))))
        for i in range(n))
    return SecurityAssociation(props)


_TYPED_NOTIFIES = {
    NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.REKEY_SA, NotifyType.USE_TRANSPORT_MODE,
    NotifyType.INITIAL_CONTACT, NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
    NotifyType.COOKIE, NotifyType.INVALID_KE_PAYLOAD, NotifyType.SIGNATURE_HASH_ALGORITHMS,
}
notify = st.one_of(
    st.builds(Notify, u16.filter(lambda t: t not in _TYPED_NOTIFIES), small, st.sampled_from([0, 1, 3]),
              st.sampled_from([b"", b"abcd", b"12345678"])),
    st.builds(Notify.nat_detection, st.sampled_from([NotifyType.NAT_DETECTION_SOURCE_IP,
                                                     NotifyType.NAT_DETECTION_DESTINATION_IP]),
              st.binary(min_size=20, max_size=20)),
    st.builds(Notify.cookie, st.binary(min_size=1, max_size=64)),
    st.builds(Notify.invalid_ke_payload, u16),
    st.builds(Notify.signature_hash_algorithms, st.lists(u16, max_size=5)),
    st.builds(Notify.rekey_sa, st.sampled_from([ProtocolId.ESP, ProtocolId.AH]), st.binary(min_size=4, max_size=4)),
    st.just(Notify.fragmentation_supported()), st.just(Notify.use_transport_mode()),
    st.just(Notify.initial_contact()),
)

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
selector = st.one_of(
    st.builds(TrafficSelector, u8, u16, u16, ipv4, ipv4),
    st.builds(TrafficSelector, u8, u16, u16, ipv6, ipv6),
    st.builds(RawTrafficSelector, st.integers(9, 255), u8, small),
)
selectors = st.lists(selector, max_size=4).map(tuple)

delete = st.one_of(
    st.just(Delete(ProtocolId.IKE)),
    st.builds(Delete, st.sampled_from([ProtocolId.ESP, ProtocolId.AH]),
              st.lists(st.binary(min_size=4, max_size=4), min_size=1, max_size=5).map(tuple)),
)

plain_payload: st.SearchStrategy[Payload] = st.one_of(
    security_association(),
    st.builds(KeyExchangePayload, u16, st.binary(max_size=100)),
    st.builds(IdentificationInitiator, u8, small),
    st.builds(IdentificationResponder, u8, small),
    st.builds(Certificate, u8, st.binary(max_size=300)),
    st.builds(CertificateRequest, u8, small),
    st.builds(Authentication, u8, small),
    st.builds(Nonce, st.binary(min_size=16, max_size=256)),
    notify,
    delete,
    st.builds(VendorId, small),
    st.builds(TrafficSelectorInitiator, selectors),
    st.builds(TrafficSelectorResponder, selectors),
    st.builds(Configuration, u8, st.lists(st.builds(ConfigurationAttribute, st.integers(0, 0x7FFF), small),
                                          max_size=4).map(tuple)),
    st.builds(Eap, small),
    # unknown, non-critical payload types (not in PAYLOAD_CLASSES), including assigned-but-unimplemented ones
    st.builds(UnknownPayload, st.sampled_from([1, 32, 49, 50, 51, 52, 54, 100, 255]), small),
)

encrypted_tail = st.one_of(
    st.builds(Encrypted, st.sampled_from([0] + [int(t) for t in PayloadType if t]), st.binary(max_size=64)),
    st.integers(1, 20).flatmap(lambda total: st.builds(
        EncryptedFragment, st.just(0), st.integers(1, total), st.just(total), st.binary(max_size=64))),
    st.builds(EncryptedFragment, st.sampled_from([33, 35, 41]), st.just(1), st.integers(1, 9), small),
)


@st.composite
def message(draw: st.DrawFn, encrypted: bool | None = None) -> Message:
    payloads = draw(st.lists(plain_payload, max_size=8))
    if encrypted is None:
        encrypted = draw(st.booleans())
    if encrypted:
        payloads.append(draw(encrypted_tail))
    return Message(draw(st.binary(min_size=8, max_size=8)), draw(st.binary(min_size=8, max_size=8)),
                   draw(st.sampled_from([34, 35, 36, 37, 43, 200])), draw(st.integers(0, 2**32 - 1)),
                   draw(st.booleans()), draw(st.booleans()), tuple(payloads), draw(st.booleans()))


inner_message = message(encrypted=False)
