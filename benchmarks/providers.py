"""Provider benchmark: each primitive through the Router next to the same operation done
straight on `cryptography` (and on python-pkcs11 for token signing), measured in the same run
with interleaved rounds.

    python -m benchmarks.providers          # table
    python -m benchmarks.providers --json   # {"ops_per_sec": {...}, "overhead": {...}, ...}

`overhead.aes_gcm_1k_seal` and `overhead.ecdsa_p256_sign` are router time / direct time - 1.
`aes_gcm_1k_seal_python_floor` is a bare Python function forwarding to the same C call, with no
checks: the share of the overhead any Python-level API pays.

Method (`paired()`): both sides get the same inputs and the same object reuse (the direct side
holds a pre-built AESGCM / key object, as the router's context does). Each round times one slice
of each side back to back, in ABBA order across rounds so neither side always runs first; the
overhead is the median of the per-round ratios (a busy machine slows both halves of a round
alike), the ops/s are the medians of the per-slice rates.

The token part runs on a throwaway SoftHSM2 token (skipped, with null results, when SoftHSM2
is not installed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from benchmarks import calibrate
from providers import Encryption, Integrity, KeyExchange, KeySpec, Pkcs11Config, Prf, SignatureScheme, open_router
from providers.openssl import openssl_version
from providers.pkcs11.config import SOFTHSM2_MODULE

Case = tuple[str, Callable[[], object], Callable[[], object]]


def software_cases() -> list[Case]:
    r = open_router("fips")
    data = os.urandom(1024)
    aad = os.urandom(8)
    iv8 = os.urandom(8)
    iv16 = os.urandom(16)

    gcm_material = os.urandom(20)
    gcm_key = r.import_secret(gcm_material, "SK_ei")
    gcm = AESGCM(gcm_material[:16])
    salt = gcm_material[16:]
    sealed = gcm.encrypt(salt + iv8, data, aad)
    gcm_open_key = r.import_secret(gcm_material, "SK_er")

    cbc_material = os.urandom(16)
    cbc_key = r.import_secret(cbc_material, "SK_ei")

    cbc_aes = algorithms.AES(cbc_material)  # pre-built, as the router's CbcContext holds it

    def cbc_direct() -> bytes:
        enc = Cipher(cbc_aes, modes.CBC(iv16)).encryptor()
        return enc.update(data) + enc.finalize()

    mac_material = os.urandom(32)
    mac_key = r.import_secret(mac_material, "SK_ai")

    mac_base = hmac.HMAC(mac_material, hashes.SHA256())  # keyed once, as the router's HmacContext

    def hmac_direct() -> bytes:
        m = mac_base.copy()
        m.update(data)
        return m.finalize()[:16]

    seed = os.urandom(80)
    prf_key = r.import_secret(os.urandom(32), "SKEYSEED")
    prf_material = os.urandom(32)
    split = [("SK_d", 32), ("SK_ai", 32), ("SK_ar", 32), ("SK_ei", 20), ("SK_er", 20), ("SK_pi", 32), ("SK_pr", 32)]

    p256 = r.generate_keypair(KeySpec("ec", 256, "secp256r1"))
    p256_raw = ec.generate_private_key(ec.SECP256R1())
    ecdsa_sha256, sha256 = ec.ECDSA(hashes.SHA256()), hashes.SHA256()  # pre-built, as the router's signer
    sig = p256_raw.sign(data, ecdsa_sha256)
    rsa_key = r.generate_keypair(KeySpec("rsa", 3072))
    rsa_raw = rsa.generate_private_key(65537, 3072)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

    ecp256 = KeyExchange.ECP_256

    def ecp_router() -> object:
        a, b = r.ke_generate(ecp256), r.ke_generate(ecp256)
        return r.ke_derive(a, b.public)

    def ecp_direct() -> object:
        a, b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        return a.exchange(ec.ECDH(), b.public_key())

    mlkem_pub = mlkem.MLKEM768PrivateKey.generate().public_key()
    mlkem_bytes = mlkem_pub.public_bytes_raw()

    # algorithm identifiers held in locals, as the engine holds them on its SA objects
    # (an Enum member lookup costs as much as the router's whole hot path)
    gcm16, cbc, hmac256 = Encryption.ENCR_AES_GCM_16, Encryption.ENCR_AES_CBC, Integrity.AUTH_HMAC_SHA2_256_128
    prf256, es256, pss256 = Prf.PRF_HMAC_SHA2_256, SignatureScheme.ECDSA_SHA256, SignatureScheme.RSA_PSS_SHA256
    mlkem768 = KeyExchange.ML_KEM_768
    def bare_python_wrapper(alg: object, key: object, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        # no checks at all: what any Python-level API costs over the C call (the floor)
        return gcm.encrypt(salt + iv, plaintext, aad)

    return [
        ("aes_gcm_1k_seal", lambda: r.aead_seal(gcm16, gcm_key, iv8, data, aad),
         lambda: gcm.encrypt(salt + iv8, data, aad)),
        ("aes_gcm_1k_seal_python_floor", lambda: bare_python_wrapper(gcm16, gcm_key, iv8, data, aad),
         lambda: gcm.encrypt(salt + iv8, data, aad)),
        ("aes_gcm_1k_open", lambda: r.aead_open(gcm16, gcm_open_key, iv8, sealed, aad),
         lambda: gcm.decrypt(salt + iv8, sealed, aad)),
        ("aes_cbc_1k_encrypt", lambda: r.cbc_encrypt(cbc, cbc_key, iv16, data), cbc_direct),
        ("hmac_sha256_128_1k", lambda: r.integrity_icv(hmac256, mac_key, data),
         hmac_direct),
        ("prf_plus_sk_split", lambda: r.prf_plus(prf256, prf_key, seed, split),
         lambda: HKDFExpand(hashes.SHA256(), 200, seed).derive(prf_material)),
        ("ecdsa_p256_sign", lambda: r.sign(p256, es256, data),
         lambda: p256_raw.sign(data, ecdsa_sha256)),
        ("ecdsa_p256_verify",
         lambda: r.verify(p256_raw.public_key(), es256, data, sig),
         lambda: p256_raw.public_key().verify(sig, data, ec.ECDSA(hashes.SHA256()))),
        ("rsa3072_pss_sign", lambda: r.sign(rsa_key, pss256, data),
         lambda: rsa_raw.sign(data, pss, sha256)),
        ("ecp256_key_exchange", ecp_router, ecp_direct),
        ("mlkem768_encapsulate", lambda: r.ke_encapsulate(mlkem768, mlkem_bytes),
         lambda: mlkem.MLKEM768PublicKey.from_public_bytes(mlkem_bytes).encapsulate()),
    ]


def token_cases(tmp: str) -> list[Case]:
    util = shutil.which("softhsm2-util")
    if util is None or not os.path.exists(SOFTHSM2_MODULE):
        return []
    os.makedirs(os.path.join(tmp, "tokens"))
    conf = os.path.join(tmp, "softhsm2.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(f"directories.tokendir = {tmp}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = conf
    subprocess.run([util, "--init-token", "--free", "--label", "fipsike-bench", "--so-pin", "12345678",
                    "--pin", "87654321"], check=True, capture_output=True)
    pin_file = os.path.join(tmp, "pin")
    with open(pin_file, "w", encoding="utf-8") as f:
        f.write("87654321")
    r = open_router("fips", pkcs11=Pkcs11Config(token_label="fipsike-bench", pin_file=pin_file))
    from pkcs11 import MGF, Mechanism
    from pkcs11.util.ec import encode_ecdsa_signature


    data = os.urandom(1024)
    es256, pss256 = SignatureScheme.ECDSA_SHA256, SignatureScheme.RSA_PSS_SHA256
    p256 = r.generate_keypair(KeySpec("ec", 256, "secp256r1"), label="bench-ec", to_token=True)
    rsa2k = r.generate_keypair(KeySpec("rsa", 2048), label="bench-rsa", to_token=True)
    ec_obj, rsa_obj = p256._impl, rsa2k._impl

    def ecdsa_direct() -> bytes:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        return bytes(encode_ecdsa_signature(ec_obj.sign(digest.finalize(), mechanism=Mechanism.ECDSA)))

    return [
        ("token_ecdsa_p256_sign", lambda: r.sign(p256, es256, data), ecdsa_direct),
        ("token_rsa2048_pss_sign", lambda: r.sign(rsa2k, pss256, data),
         lambda: rsa_obj.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS_PSS,
                              mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32))),
    ]


def _slice(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def paired(via_router: Callable[[], object], direct: Callable[[], object], rounds: int,
           slice_s: float = 0.005) -> dict[str, float]:
    """Seconds per call of each side (medians) and the median per-round ratio router/direct."""
    n_router, n_direct = calibrate(via_router, slice_s), calibrate(direct, slice_s)
    router_t: list[float] = []
    direct_t: list[float] = []
    ratios: list[float] = []
    for i in range(rounds):
        if i % 4 in (0, 3):  # ABBA: each side leads in half of the rounds
            r, d = _slice(via_router, n_router), _slice(direct, n_direct)
        else:
            d, r = _slice(direct, n_direct), _slice(via_router, n_router)
        router_t.append(r)
        direct_t.append(d)
        ratios.append(r / d)
    return {"router": statistics.median(router_t), "direct": statistics.median(direct_t),
            "ratio": statistics.median(ratios)}


def run(rounds: int) -> dict[str, Any]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="fipsike-bench-") as tmp:
        for name, via_router, direct in software_cases() + token_cases(tmp):
            t = paired(via_router, direct, rounds)
            results[name] = {"router": 1.0 / t["router"], "direct": 1.0 / t["direct"],
                             "overhead": t["ratio"] - 1.0}
    return {
        "openssl": openssl_version(),
        "method": f"median of {rounds} paired ABBA rounds",
        "ops_per_sec": {k: {"router": round(v["router"], 1), "direct": round(v["direct"], 1)}
                        for k, v in results.items()},
        "overhead": {k: round(v["overhead"], 4) for k, v in results.items()},
        "token": "softhsm2" if any(k.startswith("token_") for k in results) else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.providers", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=60, help="paired rounds per case (the median is kept)")
    args = parser.parse_args(argv)
    out = run(args.rounds)
    if args.json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return 0
    print(f"{'operation':<30}{'router ops/s':>14}{'direct ops/s':>14}{'overhead':>10}   ({out['openssl']})")
    for name, ops in out["ops_per_sec"].items():
        print(f"{name:<30}{ops['router']:>14,.0f}{ops['direct']:>14,.0f}{out['overhead'][name]:>10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
