"""Full IKEv2 handshakes between two engines in one process: IKE_SA_INIT + IKE_AUTH + the first
Child SA, ECDSA P-256 certificates, AES-GCM-256 / PRF-HMAC-SHA-384 / ECP-256.

Reports the CPU time one handshake costs each side (time.process_time around each engine call),
next to the floor: the raw primitive operations one side must do for one handshake, timed
straight through `cryptography` (ECDH keygen + derive, the HMAC-SHA-384 PRF calls of SKEYSEED,
the SK_* split, the two ID MACs and the KEYMAT, one ECDSA sign, two ECDSA verifies (the peer's
AUTH and its certificate), one AES-GCM open and one seal under the two new SK_e keys (key setup
included), four SHA-1 NAT hashes, the random SPI, nonce and Child SPI).

The "hybrid" figures are the same handshake with AES-GCM-256 / PRF-HMAC-SHA-384 / ECP-384 in
IKE_SA_INIT and ML-KEM-1024 as ADDKE1 in one IKE_INTERMEDIATE exchange (RFC 9242 / RFC 9370), against
the responder's primitives for it straight through `cryptography`: the classic floor on P-384, plus
ML-KEM-1024 encapsulation (encapsulation key parsed), IntAuth_i/IntAuth_r, SKEYSEED(1) and its SK_*
split, and the IKE_INTERMEDIATE request opened and its response sealed (two RFC 7383 fragments each,
under keys used for the first time).

The "uncached" figures turn the engine's validated-chain cache off (verdict_cache_ttl=0): every
handshake then validates the peer's chain afresh, as the floor assumes (its certificate verify).

    python -m benchmarks.handshake [-n N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certs.testpki import P256, TestPki
from fipsike.ike.actions import InstallChildSa, SendDatagram
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.engine import Engine
from fipsike.ike.proposals import ProposalSpec, Protocol, from_libreswan, parse_proposals
from fipsike.ike.ts import ts_from_cidr
from providers import open_router

IKE = "aes256gcm16-prfsha384-ecp256"
ESP = "aes256gcm16"
# the hybrid: libreswan 5's syntax for ECP-384 plus ML-KEM-1024 as ADDKE1 (RFC 9370)
HYBRID_IKE = "aes_gcm256-sha384-ecp384;addke1=ml_kem_1024"


def _proposals(hybrid: bool) -> tuple[ProposalSpec, ...]:
    if hybrid:
        return from_libreswan(HYBRID_IKE, Protocol.IKE)
    return parse_proposals([IKE], Protocol.IKE)


def _engines(pki: TestPki, ca: Any, moon: Any, sun: Any, ttl: float, hybrid: bool = False) -> tuple[Engine, Engine]:
    def conn(me: Any, local: str, remote: str, lid: str, rid: str, lnet: str, rnet: str) -> Connection:
        return Connection("gw", (local,), (remote,), local_id=lid, remote_id=rid, private_key=me.key,
                          certificate=me.cert, trust_anchors=(ca.cert,), dpd_delay=0, initial_contact=False,
                          ike_proposals=_proposals(hybrid),
                          children=(ChildConfig("net", (ts_from_cidr(lnet),), (ts_from_cidr(rnet),),
                                                parse_proposals([ESP], Protocol.ESP)),))
    moon_conn = conn(moon, "10.99.0.1", "10.99.0.2", "moon.test", "sun.test", "10.1.0.0/24", "10.2.0.0/24")
    sun_conn = conn(sun, "10.99.0.2", "10.99.0.1", "sun.test", "moon.test", "10.2.0.0/24", "10.1.0.0/24")
    a = Engine(open_router("fips"), [moon_conn], verdict_cache_ttl=ttl)
    b = Engine(open_router("fips"), [sun_conn], verdict_cache_ttl=ttl)
    return a, b


def engine_handshakes(n: int, ttl: float = 300.0, warmup: int = 20, between: Callable[[], float] | None = None,
                      hybrid: bool = False) -> tuple[list[float], list[float], list[float]]:
    """N handshakes between one pair of engines (a gateway serving a peer that comes back);
    each IKE SA is forgotten afterwards, outside the timed calls."""
    router = open_router("fips")
    pki = TestPki(router, datetime.now(UTC))
    ca = pki.root("Bench CA", P256)
    moon = pki.end_entity("moon.test", ca, P256, sans=("DNS:moon.test",))
    sun = pki.end_entity("sun.test", ca, P256, sans=("DNS:sun.test",))
    init_ms: list[float] = []
    resp_ms: list[float] = []
    floor: list[float] = []
    a, b = _engines(pki, ca, moon, sun, ttl, hybrid)
    for k in range(n + warmup):
        cpu = {"a": 0.0, "b": 0.0}
        t0 = time.process_time()
        out = a.initiate("gw", 0.0)
        cpu["a"] += time.process_time() - t0
        wire = [(x, "b") for x in out if isinstance(x, SendDatagram)]
        installed = 0
        while wire:
            d, to = wire.pop(0)
            eng = b if to == "b" else a
            t0 = time.process_time()
            res = eng.receive(d.data, d.src, d.dst, 0.0)
            cpu[to] += time.process_time() - t0
            other = "a" if to == "b" else "b"
            wire += [(x, other) for x in res if isinstance(x, SendDatagram)]
            installed += sum(isinstance(x, InstallChildSa) for x in res)
        assert installed == 2, "handshake did not complete"
        for eng in (a, b):
            for sa in eng.ike_sas():
                eng.drop_ike(sa, "benchmark")
            eng._flush()
        if k >= warmup:  # the first handshakes fill caches (imports, memos, the verdict cache)
            init_ms.append(cpu["a"] * 1000)
            resp_ms.append(cpu["b"] * 1000)
            if between is not None:  # the floor, interleaved: both see the same machine load
                floor.append(between())
    return init_ms, resp_ms, floor


def floor_op(hybrid: bool = False) -> Callable[[], float]:
    """One side's primitive operations for one handshake, straight through `cryptography`; the
    returned function runs them once and gives the CPU milliseconds. `hybrid`: the responder's for
    ECP-384 + ML-KEM-1024 in one IKE_INTERMEDIATE exchange."""
    ca = ec.generate_private_key(ec.SECP256R1())
    peer = ec.generate_private_key(ec.SECP256R1())
    own = ec.generate_private_key(ec.SECP256R1())
    msg = os.urandom(600)
    peer_sig = peer.sign(msg, ec.ECDSA(hashes.SHA256()))
    ca_sig = ca.sign(msg[:400], ec.ECDSA(hashes.SHA256()))
    curve: ec.EllipticCurve = ec.SECP384R1() if hybrid else ec.SECP256R1()
    peer_point = ec.generate_private_key(curve).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ek = mlkem.MLKEM1024PrivateKey.generate().public_key().public_bytes_raw()  # the initiator's KEi(1)
    frag = os.urandom(800)  # one of the two fragments of each IKE_INTERMEDIATE message
    k_i1, k_r1 = os.urandom(32), os.urandom(32)  # SK_ei(0) / SK_er(0): the IKE_INTERMEDIATE keys
    sealed_frag = AESGCM(k_i1).encrypt(nonce_ := os.urandom(12), frag, b"hdr")
    sk_e_peer, sk_e_own = os.urandom(32), os.urandom(32)  # SK_ei / SK_er: one per direction
    nonce = os.urandom(12)
    sealed_peer = AESGCM(sk_e_peer).encrypt(nonce, msg, b"hdr")

    def prf(k: bytes, data: bytes) -> bytes:
        h = hmac.HMAC(k, hashes.SHA384())
        h.update(data)
        return h.finalize()

    def once() -> float:
        t0 = time.process_time()
        mine = ec.generate_private_key(curve)
        mine.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        peer_pub = ec.EllipticCurvePublicKey.from_encoded_point(curve, peer_point)
        shared = mine.exchange(ec.ECDH(), peer_pub)
        skeyseed = prf(os.urandom(64), shared)
        t = b""
        for i in range(1, 6):  # SK_d|SK_ei|SK_er|SK_pi|SK_pr: 216 octets = 5 blocks of prf+
            t = prf(skeyseed, t + b"s" * 80 + bytes([i]))
        if hybrid:
            # IKE_INTERMEDIATE: KEi(1) in two fragments opened, ML-KEM-1024 encapsulation, KEr(1) in two
            # fragments sealed, IntAuth_i1 / IntAuth_r1, SKEYSEED(1) and its split
            aes_i, aes_r = AESGCM(k_i1), AESGCM(k_r1)
            aes_i.decrypt(nonce_, sealed_frag, b"hdr")
            aes_i.decrypt(nonce_, sealed_frag, b"hdr")
            shared1, ct = mlkem.MLKEM1024PublicKey.from_public_bytes(ek).encapsulate()
            aes_r.encrypt(nonce_, ct[:800], b"hdr")
            aes_r.encrypt(nonce_, ct[800:], b"hdr")
            prf(skeyseed, ek + b"h" * 40)
            prf(skeyseed, ct + b"h" * 40)
            skeyseed = prf(skeyseed, shared1 + b"n" * 64)
            for i in range(1, 6):
                t = prf(skeyseed, t + b"s" * 80 + bytes([i]))
        prf(skeyseed, b"id1")
        prf(skeyseed, b"id2")
        for i in range(1, 3):  # KEYMAT: 72 octets
            prf(skeyseed, b"n" * 64 + bytes([i]))
        own.sign(msg, ec.ECDSA(hashes.SHA256()))
        peer.public_key().verify(peer_sig, msg, ec.ECDSA(hashes.SHA256()))
        ca.public_key().verify(ca_sig, msg[:400], ec.ECDSA(hashes.SHA256()))
        # the IKE SA's keys are new: each direction's AES-GCM key is set up once, then used once
        AESGCM(sk_e_peer).decrypt(nonce, sealed_peer, b"hdr")
        AESGCM(sk_e_own).encrypt(nonce, msg, b"hdr")
        for _ in range(4):
            h = hashes.Hash(hashes.SHA1())
            h.update(b"x" * 22)
            h.finalize()
        os.urandom(8)  # our IKE SPI
        os.urandom(32)  # our nonce
        os.urandom(4)  # our Child SA's SPI
        return (time.process_time() - t0) * 1000

    return once


def floor_op_rsa() -> Callable[[], float]:
    """The responder's primitives for one handshake of aes256-sha256-modp3072 with RSA-3072 certificates,
    straight through `cryptography`: MODP-3072 (RFC 3526 group 15, the parameters as providers.openssl
    builds them) keygen + derive, the HMAC-SHA-256 PRF calls (SKEYSEED, seven prf+ blocks for SK_d, SK_ai,
    SK_ar, SK_ei, SK_er, SK_pi, SK_pr, the two ID MACs, the KEYMAT's four blocks for aes256-sha256 both
    ways), one RSA-PSS sign, two RSA-PSS verifies (the peer's AUTH and its certificate), the IKE_AUTH
    request checked (HMAC-SHA-256-128) and decrypted (AES-CBC-256) and the response encrypted and MACed,
    four SHA-1 NAT hashes, the random SPI, nonce and Child SPI."""
    import warnings

    from cryptography.hazmat.primitives.asymmetric import dh, padding, rsa
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    from providers.modp import GENERATOR, PRIMES

    p = PRIMES[15]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = dh.DHParameterNumbers(p, GENERATOR, (p - 1) // 2).parameters()
    peer_y = params.generate_private_key().public_key().public_numbers().y
    ca = rsa.generate_private_key(65537, 3072)
    peer = rsa.generate_private_key(65537, 3072)
    own = rsa.generate_private_key(65537, 3072)
    pss = padding.PSS(padding.MGF1(hashes.SHA256()), hashes.SHA256().digest_size)
    msg = os.urandom(1200)
    peer_sig = peer.sign(msg, pss, hashes.SHA256())
    ca_sig = ca.sign(msg[:900], pss, hashes.SHA256())
    k_peer, k_own, iv = os.urandom(32), os.urandom(32), os.urandom(16)
    enc = Cipher(algorithms.AES(k_peer), modes.CBC(iv)).encryptor()
    sealed = enc.update(msg) + enc.finalize()

    def prf(k: bytes, data: bytes) -> bytes:
        h = hmac.HMAC(k, hashes.SHA256())
        h.update(data)
        return h.finalize()

    def once() -> float:
        t0 = time.process_time()
        mine = params.generate_private_key()
        mine.public_key().public_numbers()
        shared = mine.exchange(dh.DHPublicNumbers(peer_y, params.parameter_numbers()).public_key())
        skeyseed = prf(os.urandom(64), shared)
        t = b""
        for i in range(1, 8):
            t = prf(skeyseed, t + b"s" * 80 + bytes([i]))
        prf(skeyseed, b"id1")
        prf(skeyseed, b"id2")
        for i in range(1, 5):
            prf(skeyseed, b"n" * 64 + bytes([i]))
        own.sign(msg, pss, hashes.SHA256())
        peer.public_key().verify(peer_sig, msg, pss, hashes.SHA256())
        ca.public_key().verify(ca_sig, msg[:900], pss, hashes.SHA256())
        prf(k_peer, sealed)  # the request's ICV, HMAC-SHA-256-128
        dec = Cipher(algorithms.AES(k_peer), modes.CBC(iv)).decryptor()
        dec.update(sealed) + dec.finalize()
        out = Cipher(algorithms.AES(k_own), modes.CBC(iv)).encryptor()
        prf(k_own, out.update(msg) + out.finalize())
        for _ in range(4):
            h = hashes.Hash(hashes.SHA1())
            h.update(b"x" * 22)
            h.finalize()
        os.urandom(8)
        os.urandom(32)
        os.urandom(4)
        return (time.process_time() - t0) * 1000

    return once


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=50, help="handshakes to run (default 50)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    init_ms, resp_ms, floors = engine_handshakes(args.n, between=floor_op())
    cold_i, cold_r, cold_floors = engine_handshakes(args.n, ttl=0.0, between=floor_op())
    hy_i, hy_r, hy_floors = engine_handshakes(args.n, between=floor_op(hybrid=True), hybrid=True)
    cold_floor = statistics.median(cold_floors)  # measured alongside too
    floor = statistics.median(floors)
    result = {
        "handshakes": args.n,
        "suite": f"{IKE} / esp {ESP} / ECDSA P-256 certificates",
        "initiator_cpu_ms": round(statistics.median(init_ms), 3),
        "responder_cpu_ms": round(statistics.median(resp_ms), 3),
        "floor_cpu_ms": round(floor, 3),  # one side's primitives
        "floor_handshake_cpu_ms": round(2 * floor, 3),  # both sides' (the sets are symmetric)
        # each handshake against the floor measured right after it (same machine load), median
        "responder_over_floor": round(statistics.median(r / f for r, f in zip(resp_ms, floors, strict=True)), 2),
        "responder_over_floor_uncached": round(
            statistics.median(r / f for r, f in zip(cold_r, cold_floors, strict=True)), 2),
        "floor_cpu_ms_uncached_run": round(cold_floor, 3),
        # every handshake validating the peer's chain afresh (verdict cache off)
        "initiator_cpu_ms_uncached": round(statistics.median(cold_i), 3),
        "responder_cpu_ms_uncached": round(statistics.median(cold_r), 3),
        # ECP-384 + ML-KEM-1024 (ADDKE1 in IKE_INTERMEDIATE); the floor is the responder's primitives
        "hybrid_suite": f"{HYBRID_IKE} / esp {ESP} / ECDSA P-256 certificates",
        "hybrid_initiator_cpu_ms": round(statistics.median(hy_i), 3),
        "hybrid_responder_cpu_ms": round(statistics.median(hy_r), 3),
        "hybrid_floor_cpu_ms": round(statistics.median(hy_floors), 3),
        "hybrid_responder_over_floor": round(
            statistics.median(r / f for r, f in zip(hy_r, hy_floors, strict=True)), 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:24} {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
