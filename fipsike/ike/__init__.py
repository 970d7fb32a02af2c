"""fipsike.ike: the IKEv2 protocol, sans-I/O (no sockets, no asyncio, no clock reads).

The wire codec (this file documents its public API; names below are stable)
============================================================================

registry      IANA enums: ExchangeType, PayloadType, ProtocolId, TransformType, Esn,
              TransformAttributeType, NotifyType (every error and status type), IdType,
              AuthMethod, CertEncoding, TsType, CfgType, ConfigAttributeType, HashAlgorithm,
              IpProtocol; transform IDs are providers.algorithms Encryption / Prf / Integrity /
              KeyExchange. `lookup(Enum, n)` -> member or the int; `payload_notation(type)` ->
              "SA", "Nonce", "N", ...; `transform_id_name(type, id)`; `transform_id_enum(type, id)`
              -> providers / registry enum member or int; `notify_is_error(n)`.

errors        CodecError (base; `.notify`: NotifyType to answer with, or None = drop silently;
              `.notify_data`), InvalidSyntax (INVALID_SYNTAX), InvalidMajorVersion,
              UnsupportedCriticalPayload (`.payload_type`), MessageTooLarge, IntegrityCheckFailed,
              DecryptionFailed, FragmentError, IvExhausted. The codec raises nothing else on bad input.

header        IkeHeader(spi_i, spi_r, next_payload, exchange, message_id, length, initiator,
              response, version_flag, major_version, minor_version); IkeHeader.parse(data) checks
              version, Length == len(data), MAX_MESSAGE_SIZE. HEADER_SIZE=28, NON_ESP_MARKER,
              ike_from_nat_t(udp_payload) -> IKE octets or None (ESP / keepalive).

payloads      Frozen dataclasses, each with TYPE, parse_body(buf, off, end) and body():
              SecurityAssociation(proposals) / Proposal(number, protocol, spi, transforms) /
                Transform(type, id, attributes) [Transform.make(type, id, key_length=None), .key_length]
                / TransformAttribute(type, value: int (TV) | bytes (TLV))
              KeyExchangePayload(group, data)
              IdentificationInitiator / IdentificationResponder (id_type, data); body() = RestOfIDPayload
              Certificate(encoding, data), CertificateRequest(encoding, data) [.authorities]
              Authentication(method, data)
              Nonce(data)                        16..256 octets
              Notify(notify_type, data=b"", protocol=0, spi=b"") [.type, .is_error,
                .accepted_group, .hash_algorithms; Notify.status(), .error(), .nat_detection(),
                .cookie(), .invalid_ke_payload(), .fragmentation_supported(),
                .signature_hash_algorithms(), .rekey_sa(), .use_transport_mode(), .initial_contact()]
              Delete(protocol, spis=())
              VendorId(data), Eap(data)
              TrafficSelectorInitiator / TrafficSelectorResponder (selectors) with
                TrafficSelector(ip_protocol, start_port, end_port, start_address, end_address)
                [ipaddress objects; .from_network("10.0.0.0/24"), .any(4|6)] or RawTrafficSelector
              Configuration(cfg_type, attributes) / ConfigurationAttribute(type, value)
              Encrypted(first_payload, data)                                 SK, opaque
              EncryptedFragment(first_payload, fragment_number, total_fragments, data)   SKF
              UnknownPayload(type_number, data, is_critical)   kept for unknown non-critical types

message       Message(spi_i, spi_r, exchange, message_id, initiator, response, payloads=(),
              version_flag=False): Message.parse(data) / .serialize(); .get(Cls), .all(Cls),
              .notify(NotifyType.X), .notifies(), .encrypted, .with_payloads(...).
              parse_payloads(buf, off, end, first) / serialize_payloads(payloads).

encrypted     SkKeys(encryption, key_length_bits, integrity, sk_ei, sk_er, sk_ai, sk_ar)  (AEAD keys are
              key||salt handles; integrity Integrity.NONE for AEAD). SkCrypto(router, keys,
              initiator=True|False|None): .seal(message) -> bytes (all payloads go inside SK),
              .open(data) -> Message (inner payloads; integrity checked before decryption),
              .seal_fragments(message, max_datagram) -> list[bytes] (one SK datagram if it fits, else SKF
              fragments), .open_fragment(data) -> OpenedFragment (verified, decrypted; repr hides plaintext).
              GCM IVs: a counter per sealing key, kept in the SA's SkKeys (`ivs`), from 1 (IvExhausted at
              2^64-1); CBC IVs: router.random.
              Opening raises IntegrityCheckFailed (drop), InvalidSyntax (authentic but malformed), ...;
              provider errors other than a bad tag (UsageLimitExceeded, PolicyViolation) pass through.

fragmentation RFC 7383: fragment_datagram_limit(mtu=None, ipv6=False, nat_t=False) -> max IKE message
              octets per fragment; Reassembler(max_fragments=64, max_size=65535, max_pending=4).add(opened_fragment
              ) -> Message | None (None until complete; FragmentError: that fragment is dropped, the held
              ones stay; MessageTooLarge: the partial message is dropped); .discard(message_id).

decode        datagrams(blob) (pcap / pcapng / hex lines; IP defragmentation; NAT-T), KeyTable.parse(csv,
              router) (Wireshark ikev2_decryption_table), Decoder(router, keys).decode(datagram) -> dict:
              the machinery of `fipsike decode`.
"""

from __future__ import annotations

from fipsike.ike.errors import (
    CodecError,
    DecryptionFailed,
    FragmentError,
    IntegrityCheckFailed,
    InvalidMajorVersion,
    InvalidSyntax,
    IvExhausted,
    MessageTooLarge,
    UnsupportedCriticalPayload,
)
from fipsike.ike.header import HEADER_SIZE, MAX_MESSAGE_SIZE, NON_ESP_MARKER, IkeHeader, ike_from_nat_t
from fipsike.ike.message import Message, parse_payloads, serialize_payloads

__all__ = [
    "HEADER_SIZE",
    "MAX_MESSAGE_SIZE",
    "NON_ESP_MARKER",
    "CodecError",
    "DecryptionFailed",
    "FragmentError",
    "IkeHeader",
    "IntegrityCheckFailed",
    "InvalidMajorVersion",
    "InvalidSyntax",
    "IvExhausted",
    "Message",
    "MessageTooLarge",
    "UnsupportedCriticalPayload",
    "ike_from_nat_t",
    "parse_payloads",
    "serialize_payloads",
]
