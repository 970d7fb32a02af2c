"""Every IKEv2 payload, one module per payload family (RFC 7296 3.3-3.16, RFC 7383 2.5).

`PAYLOAD_CLASSES` maps a payload type number to the class that parses it; a type
missing here is unknown to us and kept opaque (`UnknownPayload`) unless critical.
"""

from __future__ import annotations

from fipsike.ike.payloads.auth import Authentication
from fipsike.ike.payloads.base import GENERIC_HEADER, GENERIC_HEADER_SIZE, Payload, UnknownPayload
from fipsike.ike.payloads.certificate import Certificate, CertificateRequest
from fipsike.ike.payloads.configuration import Configuration, ConfigurationAttribute
from fipsike.ike.payloads.delete import Delete
from fipsike.ike.payloads.eap import Eap
from fipsike.ike.payloads.encrypted import Encrypted, EncryptedFragment
from fipsike.ike.payloads.identification import (
    Identification,
    IdentificationInitiator,
    IdentificationResponder,
)
from fipsike.ike.payloads.ke import KeyExchangePayload
from fipsike.ike.payloads.nonce import Nonce
from fipsike.ike.payloads.notify import Notify
from fipsike.ike.payloads.sa import Proposal, SecurityAssociation, Transform, TransformAttribute
from fipsike.ike.payloads.traffic_selector import (
    RawTrafficSelector,
    TrafficSelector,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
    TrafficSelectors,
)
from fipsike.ike.payloads.vendor import VendorId

PAYLOAD_CLASSES: dict[int, type[Payload]] = {
    cls.TYPE: cls
    for cls in (
        SecurityAssociation, KeyExchangePayload, IdentificationInitiator, IdentificationResponder, Certificate,
        CertificateRequest, Authentication, Nonce, Notify, Delete, VendorId, TrafficSelectorInitiator,
        TrafficSelectorResponder, Encrypted, Configuration, Eap, EncryptedFragment,
    )
}

__all__ = [
    "GENERIC_HEADER",
    "GENERIC_HEADER_SIZE",
    "PAYLOAD_CLASSES",
    "Authentication",
    "Certificate",
    "CertificateRequest",
    "Configuration",
    "ConfigurationAttribute",
    "Delete",
    "Eap",
    "Encrypted",
    "EncryptedFragment",
    "Identification",
    "IdentificationInitiator",
    "IdentificationResponder",
    "KeyExchangePayload",
    "Nonce",
    "Notify",
    "Payload",
    "Proposal",
    "RawTrafficSelector",
    "SecurityAssociation",
    "TrafficSelector",
    "TrafficSelectorInitiator",
    "TrafficSelectorResponder",
    "TrafficSelectors",
    "Transform",
    "TransformAttribute",
    "UnknownPayload",
    "VendorId",
]
