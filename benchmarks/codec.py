"""IKE codec throughput: parse and serialize rates for a typical IKE_SA_INIT request and an
IKE_AUTH request with a certificate chain (plain, and sealed/opened in SK with AES-GCM-256).

    python -m benchmarks.codec [--json] [--seconds S]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import platform
import time
from collections.abc import Callable

from fipsike.ike.encrypted import SkCrypto, SkKeys
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    IdentificationInitiator,
    IdentificationResponder,
    KeyExchangePayload,
    Nonce,
    Notify,
    Proposal,
    SecurityAssociation,
    TrafficSelector,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
    Transform,
)
from fipsike.ike.registry import (
    AuthMethod,
    CertEncoding,
    Esn,
    ExchangeType,
    HashAlgorithm,
    IdType,
    NotifyType,
    ProtocolId,
    TransformType,
)
from providers import open_router
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf

T = TransformType


def ike_sa_init_request() -> Message:
    """What a modern initiator sends: an AEAD and a CBC proposal, ECP-256 KE, NAT-D, fragmentation,
    RFC 7427 hash list, as strongSwan and libreswan do."""
    prfs = [Transform(T.PRF, p) for p in (Prf.PRF_HMAC_SHA2_256, Prf.PRF_HMAC_SHA2_384, Prf.PRF_HMAC_SHA2_512)]
    kes = [Transform(T.KE, g) for g in (KeyExchange.ECP_256, KeyExchange.ECP_384, KeyExchange.MODP_3072)]
    gcm = Proposal(1, ProtocolId.IKE, b"", (Transform.make(T.ENCR, Encryption.ENCR_AES_GCM_16, 256),
                                            Transform.make(T.ENCR, Encryption.ENCR_AES_GCM_16, 128), *prfs, *kes))
    cbc = Proposal(2, ProtocolId.IKE, b"", (Transform.make(T.ENCR, Encryption.ENCR_AES_CBC, 256),
                                            Transform(T.INTEG, Integrity.AUTH_HMAC_SHA2_256_128),
                                            Transform(T.INTEG, Integrity.AUTH_HMAC_SHA2_384_192), *prfs, *kes))
    return Message(bytes.fromhex("0123456789abcdef"), bytes(8), ExchangeType.IKE_SA_INIT, 0, True, False, (
        SecurityAssociation((gcm, cbc)),
        KeyExchangePayload(KeyExchange.ECP_256, bytes(range(64))),
        Nonce(bytes(range(32))),
        Notify.nat_detection(NotifyType.NAT_DETECTION_SOURCE_IP, b"s" * 20),
        Notify.nat_detection(NotifyType.NAT_DETECTION_DESTINATION_IP, b"d" * 20),
        Notify.fragmentation_supported(),
        Notify.signature_hash_algorithms([HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512]),
        Notify.status(NotifyType.REDIRECT_SUPPORTED),
    ))


def ike_auth_request() -> Message:
    """IKE_AUTH with an end-entity and an intermediate certificate (RSA-3072-sized), CERTREQ for two CAs,
    an RFC 7427 signature, one ESP proposal and the traffic selectors."""
    esp = Proposal(1, ProtocolId.ESP, b"\x11\x22\x33\x44", (Transform.make(T.ENCR, Encryption.ENCR_AES_GCM_16, 256),
                                                            Transform(T.ESN, Esn.NO_ESN)))
    ts_i = TrafficSelector(0, 0, 0xFFFF, ipaddress.IPv4Address("10.1.0.0"), ipaddress.IPv4Address("10.1.255.255"))
    ts_r = TrafficSelector(0, 0, 0xFFFF, ipaddress.IPv4Address("10.2.0.0"), ipaddress.IPv4Address("10.2.255.255"))
    return Message(bytes.fromhex("0123456789abcdef"), bytes.fromhex("fedcba9876543210"), ExchangeType.IKE_AUTH, 1,
                   True, False, (
                       IdentificationInitiator(IdType.ID_FQDN, b"moon.example.net"),
                       Certificate(CertEncoding.X509_CERT_SIGNATURE, bytes(1180)),
                       Certificate(CertEncoding.X509_CERT_SIGNATURE, bytes(1050)),
                       Notify.initial_contact(),
                       CertificateRequest(CertEncoding.X509_CERT_SIGNATURE, b"a" * 20 + b"b" * 20),
                       IdentificationResponder(IdType.ID_FQDN, b"sun.example.net"),
                       Authentication(AuthMethod.DIGITAL_SIGNATURE, bytes(16 + 384)),
                       SecurityAssociation((esp,)),
                       TrafficSelectorInitiator((ts_i,)),
                       TrafficSelectorResponder((ts_r,)),
                       Notify.status(NotifyType.MOBIKE_SUPPORTED),
                       Notify.status(NotifyType.ESP_TFC_PADDING_NOT_SUPPORTED),
                   ))


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Operations per second of this process's CPU time: one core's rate, unaffected by other
    processes competing for the machine."""
    for _ in range(200):  # warm up
        fn()
    n, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(500):
            fn()
        n += 500
        now = time.process_time()
        if now >= deadline:
            return n / (now - start)


def measure(seconds: float) -> dict[str, object]:
    init, auth = ike_sa_init_request(), ike_auth_request()
    init_b, auth_b = init.serialize(), auth.serialize()
    assert Message.parse(init_b) == init and Message.parse(auth_b) == auth
    router = open_router(profile="default")
    keys = SkKeys(Encryption.ENCR_AES_GCM_16, 256, Integrity.NONE, router.generate_secret(36, "SK_ei"),
                  router.generate_secret(36, "SK_er"))
    sealer, opener = SkCrypto(router, keys, initiator=True), SkCrypto(router, keys, initiator=False)
    sealed = sealer.seal(auth)
    assert opener.open(sealed) == auth
    return {
        "ike_sa_init_octets": len(init_b),
        "ike_auth_octets": len(auth_b),
        "ike_sa_init_parse_per_s": round(rate(lambda: Message.parse(init_b), seconds)),
        "ike_sa_init_serialize_per_s": round(rate(init.serialize, seconds)),
        "ike_auth_parse_per_s": round(rate(lambda: Message.parse(auth_b), seconds)),
        "ike_auth_serialize_per_s": round(rate(auth.serialize, seconds)),
        "ike_auth_sk_open_per_s": round(rate(lambda: opener.open(sealed), seconds)),
        "ike_auth_sk_seal_per_s": round(rate(lambda: sealer.seal(auth), seconds)),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--seconds", type=float, default=1.0, help="measuring time per figure")
    args = ap.parse_args()
    result = measure(args.seconds)
    if args.json:
        print(json.dumps(result))
        return 0
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value:>10,}" if isinstance(value, int) else f"{key:<{width}}  {value:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
