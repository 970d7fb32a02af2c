"""The IANA "Internet Key Exchange Version 2 (IKEv2) Parameters" registries as enums.

Values are IANA facts; each member cites the RFC that assigned it. Transform IDs
of types 1-4 are the providers.algorithms enums (Encryption, Prf, Integrity,
KeyExchange) so the codec, the policy and the providers speak one vocabulary;
IDs the providers do not know stay plain ints on the wire and get an IANA name
from `transform_id_name` for display.

Decoding maps wire numbers to members with `lookup(Enum, value)`, which returns
the int itself for an unassigned value: an unknown number is data, not an error.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from providers.algorithms import Encryption, Integrity, KeyExchange, Prf

__all__ = [
    "AuthMethod",
    "CertEncoding",
    "CfgType",
    "ConfigAttributeType",
    "Encryption",
    "Esn",
    "ExchangeType",
    "HashAlgorithm",
    "IdType",
    "Integrity",
    "IpProtocol",
    "KeyExchange",
    "NotifyType",
    "PayloadType",
    "Prf",
    "ProtocolId",
    "TransformAttributeType",
    "TransformType",
    "TsType",
    "lookup",
    "payload_notation",
    "transform_id_name",
]

E = TypeVar("E", bound=enum.IntEnum)


def lookup(enum_cls: type[E], value: int) -> E | int:
    """The member for `value`, or `value` itself when IANA has not assigned it (or we do not know it)."""
    member = enum_cls._value2member_map_.get(value)
    return member if member is not None else value  # type: ignore[return-value]


class ExchangeType(enum.IntEnum):
    """IKEv2 Exchange Types (RFC 7296 3.1)."""

    IKE_SA_INIT = 34  # RFC 7296
    IKE_AUTH = 35  # RFC 7296
    CREATE_CHILD_SA = 36  # RFC 7296
    INFORMATIONAL = 37  # RFC 7296
    IKE_SESSION_RESUME = 38  # RFC 5723
    GSA_AUTH = 39  # RFC 9838 (G-IKEv2)
    GSA_REGISTRATION = 40  # RFC 9838
    GSA_REKEY = 41  # RFC 9838
    GSA_INBAND_REKEY = 42  # RFC 9838
    IKE_INTERMEDIATE = 43  # RFC 9242
    IKE_FOLLOWUP_KE = 44  # RFC 9370


class PayloadType(enum.IntEnum):
    """IKEv2 Payload Types (RFC 7296 3.2)."""

    NONE = 0  # RFC 7296: "No Next Payload"
    SA = 33  # RFC 7296 3.3 Security Association
    KE = 34  # RFC 7296 3.4 Key Exchange
    IDi = 35  # RFC 7296 3.5 Identification - Initiator
    IDr = 36  # RFC 7296 3.5 Identification - Responder
    CERT = 37  # RFC 7296 3.6 Certificate
    CERTREQ = 38  # RFC 7296 3.7 Certificate Request
    AUTH = 39  # RFC 7296 3.8 Authentication
    NONCE = 40  # RFC 7296 3.9 Nonce (Ni, Nr)
    NOTIFY = 41  # RFC 7296 3.10 Notify (N)
    DELETE = 42  # RFC 7296 3.11 Delete (D)
    VENDOR_ID = 43  # RFC 7296 3.12 Vendor ID (V)
    TSi = 44  # RFC 7296 3.13 Traffic Selector - Initiator
    TSr = 45  # RFC 7296 3.13 Traffic Selector - Responder
    SK = 46  # RFC 7296 3.14 Encrypted and Authenticated
    CP = 47  # RFC 7296 3.15 Configuration
    EAP = 48  # RFC 7296 3.16 Extensible Authentication
    GSPM = 49  # RFC 6467 Generic Secure Password Methods
    IDg = 50  # RFC 9838 Group Identification
    GSA = 51  # RFC 9838 Group Security Association
    KD = 52  # RFC 9838 Key Download
    SKF = 53  # RFC 7383 Encrypted and Authenticated Fragment
    PS = 54  # RFC 8019 Puzzle Solution


# RFC 7296 notation (section 1.2 / 3.2 table) used by `fipsike decode` and in logs.
_NOTATION = {
    PayloadType.NONCE: "Nonce",
    PayloadType.NOTIFY: "N",
    PayloadType.DELETE: "D",
    PayloadType.VENDOR_ID: "V",
}


def payload_notation(payload_type: int) -> str:
    """'SA', 'KE', 'IDi', 'Nonce', 'N', 'D', 'V', 'SKF', ... or 'PAYLOAD_<n>' for an unknown type."""
    member = PayloadType._value2member_map_.get(payload_type)
    if member is None:
        return f"PAYLOAD_{payload_type}"
    return _NOTATION.get(member, member.name)  # type: ignore[call-overload,no-any-return]


class ProtocolId(enum.IntEnum):
    """Security Protocol Identifiers (RFC 7296 3.3.1)."""

    IKE = 1  # RFC 7296
    AH = 2  # RFC 7296
    ESP = 3  # RFC 7296
    FC_ESP_HEADER = 4  # RFC 4595
    FC_CT_AUTHENTICATION = 5  # RFC 4595
    GIKE_UPDATE = 6  # RFC 9838


class TransformType(enum.IntEnum):
    """Transform Type Values (RFC 7296 3.3.2)."""

    ENCR = 1  # RFC 7296 Encryption Algorithm
    PRF = 2  # RFC 7296 Pseudorandom Function
    INTEG = 3  # RFC 7296 Integrity Algorithm
    KE = 4  # RFC 7296 "Diffie-Hellman Group", renamed Key Exchange Method by RFC 9370
    ESN = 5  # RFC 7296 Extended Sequence Numbers
    ADDKE1 = 6  # RFC 9370 Additional Key Exchange 1
    ADDKE2 = 7  # RFC 9370
    ADDKE3 = 8  # RFC 9370
    ADDKE4 = 9  # RFC 9370
    ADDKE5 = 10  # RFC 9370
    ADDKE6 = 11  # RFC 9370
    ADDKE7 = 12  # RFC 9370


class Esn(enum.IntEnum):
    """Transform Type 5 - Extended Sequence Numbers Transform IDs (RFC 7296 3.3.2)."""

    NO_ESN = 0  # RFC 7296
    ESN = 1  # RFC 7296


class TransformAttributeType(enum.IntEnum):
    """IKEv2 Transform Attribute Types (RFC 7296 3.3.5)."""

    KEY_LENGTH = 14  # RFC 7296: TV format, key length in bits


# Full IANA names of transform IDs, for display of IDs the providers do not model.
_ENCR_NAMES = {
    1: "ENCR_DES_IV64", 2: "ENCR_DES", 3: "ENCR_3DES", 4: "ENCR_RC5", 5: "ENCR_IDEA", 6: "ENCR_CAST",
    7: "ENCR_BLOWFISH", 8: "ENCR_3IDEA", 9: "ENCR_DES_IV32", 11: "ENCR_NULL", 12: "ENCR_AES_CBC",
    13: "ENCR_AES_CTR", 14: "ENCR_AES_CCM_8", 15: "ENCR_AES_CCM_12", 16: "ENCR_AES_CCM_16",
    18: "ENCR_AES_GCM_8", 19: "ENCR_AES_GCM_12", 20: "ENCR_AES_GCM_16", 21: "ENCR_NULL_AUTH_AES_GMAC",
    23: "ENCR_CAMELLIA_CBC", 24: "ENCR_CAMELLIA_CTR", 25: "ENCR_CAMELLIA_CCM_8",
    26: "ENCR_CAMELLIA_CCM_12", 27: "ENCR_CAMELLIA_CCM_16", 28: "ENCR_CHACHA20_POLY1305",
    29: "ENCR_AES_CCM_8_IIV", 30: "ENCR_AES_GCM_16_IIV", 31: "ENCR_CHACHA20_POLY1305_IIV",
    32: "ENCR_KUZNYECHIK_MGM_KTREE", 33: "ENCR_MAGMA_MGM_KTREE", 34: "ENCR_KUZNYECHIK_MGM_MAC_KTREE",
    35: "ENCR_MAGMA_MGM_MAC_KTREE",
}  # RFC 7296, RFC 5282, RFC 4106, RFC 5529, RFC 7634, RFC 8750, RFC 9227
_PRF_NAMES = {
    1: "PRF_HMAC_MD5", 2: "PRF_HMAC_SHA1", 3: "PRF_HMAC_TIGER", 4: "PRF_AES128_XCBC",
    5: "PRF_HMAC_SHA2_256", 6: "PRF_HMAC_SHA2_384", 7: "PRF_HMAC_SHA2_512", 8: "PRF_AES128_CMAC",
    9: "PRF_HMAC_STREEBOG_512",
}  # RFC 7296, RFC 4868, RFC 4615, RFC 9385
_INTEG_NAMES = {
    0: "NONE", 1: "AUTH_HMAC_MD5_96", 2: "AUTH_HMAC_SHA1_96", 3: "AUTH_DES_MAC", 4: "AUTH_KPDK_MD5",
    5: "AUTH_AES_XCBC_96", 6: "AUTH_HMAC_MD5_128", 7: "AUTH_HMAC_SHA1_160", 8: "AUTH_AES_CMAC_96",
    9: "AUTH_AES_128_GMAC", 10: "AUTH_AES_192_GMAC", 11: "AUTH_AES_256_GMAC",
    12: "AUTH_HMAC_SHA2_256_128", 13: "AUTH_HMAC_SHA2_384_192", 14: "AUTH_HMAC_SHA2_512_256",
}  # RFC 7296, RFC 4595, RFC 4494, RFC 4543, RFC 4868
_KE_NAMES = {
    0: "NONE", 1: "MODP_768", 2: "MODP_1024", 5: "MODP_1536", 14: "MODP_2048", 15: "MODP_3072",
    16: "MODP_4096", 17: "MODP_6144", 18: "MODP_8192", 19: "ECP_256", 20: "ECP_384", 21: "ECP_521",
    22: "MODP_1024_160_POS", 23: "MODP_2048_224_POS", 24: "MODP_2048_256_POS", 25: "ECP_192",
    26: "ECP_224", 27: "BRAINPOOLP224R1", 28: "BRAINPOOLP256R1", 29: "BRAINPOOLP384R1",
    30: "BRAINPOOLP512R1", 31: "CURVE25519", 32: "CURVE448", 33: "GOST3410_2012_256",
    34: "GOST3410_2012_512", 35: "ML_KEM_512", 36: "ML_KEM_768", 37: "ML_KEM_1024",
}  # RFC 7296, RFC 3526, RFC 5903, RFC 5114, RFC 6932, RFC 8031, RFC 9385, RFC 9370 / draft-ietf-ipsecme-ikev2-mlkem
_ESN_NAMES = {0: "NO_ESN", 1: "ESN"}

_TRANSFORM_NAMES: dict[int, dict[int, str]] = {1: _ENCR_NAMES, 2: _PRF_NAMES, 3: _INTEG_NAMES, 4: _KE_NAMES,
                                               5: _ESN_NAMES}
_TRANSFORM_ENUMS: dict[int, type[enum.IntEnum]] = {1: Encryption, 2: Prf, 3: Integrity, 4: KeyExchange, 5: Esn}


def transform_id_name(transform_type: int, transform_id: int) -> str:
    """The IANA name of a transform ID ('ENCR_AES_GCM_16', 'ECP_256', ...) or 'ID_<n>'."""
    # Additional Key Exchange types 6-12 take Key Exchange Method IDs (RFC 9370 2.2.1).
    table = _TRANSFORM_NAMES.get(4 if 6 <= transform_type <= 12 else transform_type, {})
    return table.get(transform_id, f"ID_{transform_id}")


def transform_id_enum(transform_type: int, transform_id: int) -> enum.IntEnum | int:
    """The providers / registry enum member for a transform ID, or the int when it has none."""
    cls = _TRANSFORM_ENUMS.get(4 if 6 <= transform_type <= 12 else transform_type)
    if cls is None:
        return transform_id
    return lookup(cls, transform_id)


class NotifyType(enum.IntEnum):
    """IKEv2 Notify Message Types (RFC 7296 3.10.1): errors 0-16383, status 16384-65535.

    Private use: errors 8192-16383, status 40960-65535 (RFC 7296 3.10.1).
    """

    # --- error types ---
    UNSUPPORTED_CRITICAL_PAYLOAD = 1  # RFC 7296
    INVALID_IKE_SPI = 4  # RFC 7296
    INVALID_MAJOR_VERSION = 5  # RFC 7296
    INVALID_SYNTAX = 7  # RFC 7296
    INVALID_MESSAGE_ID = 9  # RFC 7296
    INVALID_SPI = 11  # RFC 7296
    NO_PROPOSAL_CHOSEN = 14  # RFC 7296
    INVALID_KE_PAYLOAD = 17  # RFC 7296
    AUTHENTICATION_FAILED = 24  # RFC 7296
    SINGLE_PAIR_REQUIRED = 34  # RFC 7296
    NO_ADDITIONAL_SAS = 35  # RFC 7296
    INTERNAL_ADDRESS_FAILURE = 36  # RFC 7296
    FAILED_CP_REQUIRED = 37  # RFC 7296
    TS_UNACCEPTABLE = 38  # RFC 7296
    INVALID_SELECTORS = 39  # RFC 7296
    UNACCEPTABLE_ADDRESSES = 40  # RFC 4555
    UNEXPECTED_NAT_DETECTED = 41  # RFC 4555
    USE_ASSIGNED_HoA = 42  # RFC 5026
    TEMPORARY_FAILURE = 43  # RFC 7296
    CHILD_SA_NOT_FOUND = 44  # RFC 7296
    INVALID_GROUP_ID = 45  # RFC 9838
    AUTHORIZATION_FAILED = 46  # RFC 9838
    STATE_NOT_FOUND = 47  # RFC 9370 (IKE_FOLLOWUP_KE without state)
    # --- status types ---
    INITIAL_CONTACT = 16384  # RFC 7296
    SET_WINDOW_SIZE = 16385  # RFC 7296
    ADDITIONAL_TS_POSSIBLE = 16386  # RFC 7296
    IPCOMP_SUPPORTED = 16387  # RFC 7296
    NAT_DETECTION_SOURCE_IP = 16388  # RFC 7296
    NAT_DETECTION_DESTINATION_IP = 16389  # RFC 7296
    COOKIE = 16390  # RFC 7296
    USE_TRANSPORT_MODE = 16391  # RFC 7296
    HTTP_CERT_LOOKUP_SUPPORTED = 16392  # RFC 7296
    REKEY_SA = 16393  # RFC 7296
    ESP_TFC_PADDING_NOT_SUPPORTED = 16394  # RFC 7296
    NON_FIRST_FRAGMENTS_ALSO = 16395  # RFC 7296
    MOBIKE_SUPPORTED = 16396  # RFC 4555
    ADDITIONAL_IP4_ADDRESS = 16397  # RFC 4555
    ADDITIONAL_IP6_ADDRESS = 16398  # RFC 4555
    NO_ADDITIONAL_ADDRESSES = 16399  # RFC 4555
    UPDATE_SA_ADDRESSES = 16400  # RFC 4555
    COOKIE2 = 16401  # RFC 4555
    NO_NATS_ALLOWED = 16402  # RFC 4555
    AUTH_LIFETIME = 16403  # RFC 4478
    MULTIPLE_AUTH_SUPPORTED = 16404  # RFC 4739
    ANOTHER_AUTH_FOLLOWS = 16405  # RFC 4739
    REDIRECT_SUPPORTED = 16406  # RFC 5685
    REDIRECT = 16407  # RFC 5685
    REDIRECTED_FROM = 16408  # RFC 5685
    TICKET_LT_OPAQUE = 16409  # RFC 5723
    TICKET_REQUEST = 16410  # RFC 5723
    TICKET_ACK = 16411  # RFC 5723
    TICKET_NACK = 16412  # RFC 5723
    TICKET_OPAQUE = 16413  # RFC 5723
    LINK_ID = 16414  # RFC 5739
    USE_WESP_MODE = 16415  # RFC 5840
    ROHC_SUPPORTED = 16416  # RFC 5857
    EAP_ONLY_AUTHENTICATION = 16417  # RFC 5998
    CHILDLESS_IKEV2_SUPPORTED = 16418  # RFC 6023
    QUICK_CRASH_DETECTION = 16419  # RFC 6290
    IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420  # RFC 6311
    IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421  # RFC 6311
    IKEV2_MESSAGE_ID_SYNC = 16422  # RFC 6311
    IPSEC_REPLAY_COUNTER_SYNC = 16423  # RFC 6311
    SECURE_PASSWORD_METHODS = 16424  # RFC 6467
    PSK_PERSIST = 16425  # RFC 6631
    PSK_CONFIRM = 16426  # RFC 6631
    ERX_SUPPORTED = 16427  # RFC 6867
    IFOM_CAPABILITY = 16428  # 3GPP TS 24.303
    GROUP_SENDER = 16429  # RFC 9838
    SENDER_REQUEST_ID = 16429  # its earlier name (draft-yeung-g-ikev2), an alias
    IKEV2_FRAGMENTATION_SUPPORTED = 16430  # RFC 7383
    SIGNATURE_HASH_ALGORITHMS = 16431  # RFC 7427
    CLONE_IKE_SA_SUPPORTED = 16432  # RFC 7791
    CLONE_IKE_SA = 16433  # RFC 7791
    PUZZLE = 16434  # RFC 8019
    USE_PPK = 16435  # RFC 8784
    PPK_IDENTITY = 16436  # RFC 8784
    NO_PPK_AUTH = 16437  # RFC 8784
    INTERMEDIATE_EXCHANGE_SUPPORTED = 16438  # RFC 9242
    IP4_ALLOWED = 16439  # RFC 8983
    IP6_ALLOWED = 16440  # RFC 8983
    ADDITIONAL_KEY_EXCHANGE = 16441  # RFC 9370
    USE_AGGFRAG = 16442  # RFC 9347
    SUPPORTED_AUTH_METHODS = 16443  # RFC 9593
    SA_RESOURCE_INFO = 16444  # RFC 9611
    USE_PPK_INT = 16445  # draft-ietf-ipsecme-ikev2-qr-alt (IANA allocation)
    PPK_IDENTITY_KEY = 16446  # draft-ietf-ipsecme-ikev2-qr-alt (IANA allocation)

    @property
    def is_error(self) -> bool:
        return int(self) < 16384


def notify_is_error(notify_type: int) -> bool:
    """Types 0-16383 report errors (RFC 7296 3.10.1)."""
    return notify_type < 16384


class IdType(enum.IntEnum):
    """IKEv2 Identification Payload ID Types (RFC 7296 3.5)."""

    ID_IPV4_ADDR = 1  # RFC 7296
    ID_FQDN = 2  # RFC 7296
    ID_RFC822_ADDR = 3  # RFC 7296
    ID_IPV6_ADDR = 5  # RFC 7296
    ID_DER_ASN1_DN = 9  # RFC 7296
    ID_DER_ASN1_GN = 10  # RFC 7296
    ID_KEY_ID = 11  # RFC 7296
    ID_FC_NAME = 12  # RFC 4595
    ID_NULL = 13  # RFC 7619


class AuthMethod(enum.IntEnum):
    """IKEv2 Authentication Methods (RFC 7296 3.8)."""

    RSA_DIGITAL_SIGNATURE = 1  # RFC 7296
    SHARED_KEY_MIC = 2  # RFC 7296
    DSS_DIGITAL_SIGNATURE = 3  # RFC 7296
    ECDSA_SHA256_P256 = 9  # RFC 4754
    ECDSA_SHA384_P384 = 10  # RFC 4754
    ECDSA_SHA512_P521 = 11  # RFC 4754
    GENERIC_SECURE_PASSWORD = 12  # RFC 6467
    NULL_AUTH = 13  # RFC 7619
    DIGITAL_SIGNATURE = 14  # RFC 7427


class CertEncoding(enum.IntEnum):
    """IKEv2 Certificate Encodings (RFC 7296 3.6)."""

    PKCS7_WRAPPED_X509 = 1  # RFC 7296
    PGP = 2  # RFC 7296
    DNS_SIGNED_KEY = 3  # RFC 7296
    X509_CERT_SIGNATURE = 4  # RFC 7296
    KERBEROS_TOKEN = 6  # RFC 7296
    CRL = 7  # RFC 7296
    ARL = 8  # RFC 7296
    SPKI = 9  # RFC 7296
    X509_CERT_ATTRIBUTE = 10  # RFC 7296
    RAW_RSA_KEY = 11  # RFC 7296 (deprecated by RFC 7670)
    HASH_AND_URL_X509_CERT = 12  # RFC 7296
    HASH_AND_URL_X509_BUNDLE = 13  # RFC 7296
    OCSP_CONTENT = 14  # RFC 4806
    RAW_PUBLIC_KEY = 15  # RFC 7670


class TsType(enum.IntEnum):
    """IKEv2 Traffic Selector Types (RFC 7296 3.13.1)."""

    TS_IPV4_ADDR_RANGE = 7  # RFC 7296
    TS_IPV6_ADDR_RANGE = 8  # RFC 7296
    TS_FC_ADDR_RANGE = 9  # RFC 4595
    TS_SECLABEL = 10  # RFC 9478


class CfgType(enum.IntEnum):
    """IKEv2 Configuration Payload CFG Types (RFC 7296 3.15)."""

    CFG_REQUEST = 1  # RFC 7296
    CFG_REPLY = 2  # RFC 7296
    CFG_SET = 3  # RFC 7296
    CFG_ACK = 4  # RFC 7296


class ConfigAttributeType(enum.IntEnum):
    """IKEv2 Configuration Payload Attribute Types (RFC 7296 3.15.1)."""

    INTERNAL_IP4_ADDRESS = 1  # RFC 7296
    INTERNAL_IP4_NETMASK = 2  # RFC 7296
    INTERNAL_IP4_DNS = 3  # RFC 7296
    INTERNAL_IP4_NBNS = 4  # RFC 7296
    INTERNAL_IP4_DHCP = 6  # RFC 7296
    APPLICATION_VERSION = 7  # RFC 7296
    INTERNAL_IP6_ADDRESS = 8  # RFC 7296
    INTERNAL_IP6_DNS = 10  # RFC 7296
    INTERNAL_IP6_DHCP = 12  # RFC 7296
    INTERNAL_IP4_SUBNET = 13  # RFC 7296
    SUPPORTED_ATTRIBUTES = 14  # RFC 7296
    INTERNAL_IP6_SUBNET = 15  # RFC 7296
    MIP6_HOME_PREFIX = 16  # RFC 5026
    INTERNAL_IP6_LINK = 17  # RFC 5739
    INTERNAL_IP6_PREFIX = 18  # RFC 5739
    HOME_AGENT_ADDRESS = 19  # 3GPP TS 24.302
    P_CSCF_IP4_ADDRESS = 20  # RFC 7651
    P_CSCF_IP6_ADDRESS = 21  # RFC 7651
    FTT_KAT = 22  # 3GPP TS 24.302
    EXTERNAL_SOURCE_IP4_NAT_INFO = 23  # 3GPP TS 24.302
    TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24  # 3GPP TS 24.302
    INTERNAL_DNS_DOMAIN = 25  # RFC 8598
    INTERNAL_DNSSEC_TA = 26  # RFC 8598
    ENCDNS_IP4 = 27  # RFC 9464
    ENCDNS_IP6 = 28  # RFC 9464
    ENCDNS_DIGEST_INFO = 29  # RFC 9464


class HashAlgorithm(enum.IntEnum):
    """IKEv2 Hash Algorithms for SIGNATURE_HASH_ALGORITHMS (RFC 7427 3)."""

    SHA1 = 1  # RFC 7427
    SHA2_256 = 2  # RFC 7427
    SHA2_384 = 3  # RFC 7427
    SHA2_512 = 4  # RFC 7427
    IDENTITY = 5  # RFC 8420
    STREEBOG_256 = 6  # RFC 9385
    STREEBOG_512 = 7  # RFC 9385


class IpProtocol(enum.IntEnum):
    """The few IANA Assigned Internet Protocol Numbers a traffic selector commonly names (0 = any)."""

    ANY = 0  # RFC 7296 3.13.1: "zero means that the Protocol ID is not relevant"
    ICMP = 1
    TCP = 6
    UDP = 17
    IPV6_ICMP = 58
