"""Known-answer tests (cryptographic algorithm self-tests, FIPS 140-3 IG 10.3.A) and pairwise
consistency tests, all through the provider API: the same Router path the IKE engine uses.

Every vector lives in kat_vectors.json beside this file, each with its `source`. Secret outputs
(SKEYSEED, KEYMAT, g^ir, ML-KEM shared secrets) never leave providers/ as bytes: a derived key is
compared with the expected value by importing the expected value as a second key and checking
that both give the same HMAC-SHA2-256 over a fixed challenge (and have the same length). HMAC
itself is KAT-tested first, so an equal MAC means an equal key.

A test returns nothing on success and raises SelfTestFailure (a message naming the step, never a
value) on a wrong answer; a provider error propagates and the runner records it as a failure.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from providers.algorithms import Encryption, HashAlg, Integrity, KeyExchange, KeySpec, Prf, SignatureScheme
from providers.errors import AuthenticationTagInvalid, ProviderError
from providers.handles import SecretKey

VECTORS_FILE = "kat_vectors.json"
_COMPARE_PRF = Prf.PRF_HMAC_SHA2_256
_CHALLENGE = b"fipsike self-test: compare a derived key with its known answer"


class SelfTestFailure(Exception):
    """A self-test computed a wrong answer (or a check that must refuse did not)."""


class NotSupportedHere(Exception):
    """The provider lacks an entry point this test needs; the runner records `not-run`."""


@dataclass(frozen=True)
class Kat:
    name: str  # unique, stable: reports and fault-injection tests name it
    algorithm: str
    source: str
    run: Callable[[Any, dict[str, Any]], None]
    vector_key: str  # where in the vectors file its data lives (dotted path)
    requires: tuple[tuple[str, Any], ...] = ()  # (policy kind, transform) it exercises, for disabling


@cache
def _packaged_vectors() -> str:
    return resources.files("compliance").joinpath(VECTORS_FILE).read_text(encoding="utf-8")


def load_vectors(path: Path | None = None) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8") if path is not None else _packaged_vectors()
    data: dict[str, Any] = json.loads(text)
    return data


def lookup(vectors: dict[str, Any], dotted: str) -> Any:
    node: Any = vectors
    for part in dotted.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _h(s: str) -> bytes:
    return bytes.fromhex(s)


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise SelfTestFailure(what)


def secret_matches(p: Any, key: SecretKey, expected: bytes) -> bool:
    """True when `key` holds `expected`, decided inside the provider (see module doc)."""
    if len(key) != len(expected):
        return False
    ref = p.import_secret(expected, "self-test expected value")
    try:
        return bool(p.prf(_COMPARE_PRF, key, _CHALLENGE) == p.prf(_COMPARE_PRF, ref, _CHALLENGE))
    finally:
        ref.wipe()


def secrets_equal(p: Any, a: SecretKey, b: SecretKey) -> bool:
    return len(a) == len(b) and bool(p.prf(_COMPARE_PRF, a, _CHALLENGE) == p.prf(_COMPARE_PRF, b, _CHALLENGE))


# --- hashes and HMAC --------------------------------------------------------------------------------
def _sha2(alg: HashAlg) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        _expect(p.digest(alg, _h(v["message"])) == _h(v[alg.value]), f"{alg.name} digest")
    return run


_HMAC_PRF = {HashAlg.SHA256: Prf.PRF_HMAC_SHA2_256, HashAlg.SHA384: Prf.PRF_HMAC_SHA2_384,
             HashAlg.SHA512: Prf.PRF_HMAC_SHA2_512}
_HMAC_INTEG = {HashAlg.SHA256: Integrity.AUTH_HMAC_SHA2_256_128, HashAlg.SHA384: Integrity.AUTH_HMAC_SHA2_384_192,
               HashAlg.SHA512: Integrity.AUTH_HMAC_SHA2_512_256}


def _hmac(alg: HashAlg) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        key = p.import_secret(_h(v["key"]), "self-test HMAC key")
        data, mac = _h(v["data"]), _h(v[alg.value])
        try:
            _expect(p.prf(_HMAC_PRF[alg], key, data) == mac, f"HMAC-{alg.name} as PRF")
            integ = _HMAC_INTEG[alg]
            icv = p.integrity_icv(integ, key, data)
            _expect(icv == mac[: integ.icv_size], f"{integ.name} ICV (RFC 4868 truncation)")
            p.integrity_verify(integ, key, data, icv)
            bad = bytes([icv[0] ^ 1]) + icv[1:]
            try:
                p.integrity_verify(integ, key, data, bad)
            except AuthenticationTagInvalid:
                pass
            else:
                raise SelfTestFailure(f"{integ.name} accepted a wrong ICV")
        finally:
            key.wipe()
    return run


# --- AES ------------------------------------------------------------------------------------------
def _gcm(direction: str) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        alg = Encryption.ENCR_AES_GCM_16
        key = p.import_secret(_h(v["key"]) + _h(v["salt"]), "self-test AES-GCM key")
        iv, pt, aad, ct = _h(v["iv"]), _h(v["plaintext"]), _h(v["aad"]), _h(v["ciphertext"]) + _h(v["tag"])
        try:
            if direction == "encrypt":
                _expect(p.aead_seal(alg, key, iv, pt, aad) == ct, "AES-GCM seal")
            else:
                _expect(p.aead_open(alg, key, iv, ct, aad) == pt, "AES-GCM open")
                bad = ct[:-1] + bytes([ct[-1] ^ 1])
                try:
                    p.aead_open(alg, key, iv, bad, aad)
                except AuthenticationTagInvalid:
                    pass
                else:
                    raise SelfTestFailure("AES-GCM accepted a wrong tag")
        finally:
            key.wipe()
    return run


def _cbc(direction: str) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        alg = Encryption.ENCR_AES_CBC
        key = p.import_secret(_h(v["key"]), "self-test AES-CBC key")
        iv, pt, ct = _h(v["iv"]), _h(v["plaintext"]), _h(v["ciphertext"])
        try:
            if direction == "encrypt":
                _expect(p.cbc_encrypt(alg, key, iv, pt) == ct, "AES-CBC encrypt")
            else:
                _expect(p.cbc_decrypt(alg, key, iv, ct) == pt, "AES-CBC decrypt")
        finally:
            key.wipe()
    return run


# --- the IKEv2 KDF (RFC 7296 2.13, 2.14, 2.17, 2.18; SP 800-135r1 5.1) ------------------------------
_ACVP_PRF = {"SHA2-256": Prf.PRF_HMAC_SHA2_256, "SHA2-384": Prf.PRF_HMAC_SHA2_384,
             "SHA2-512": Prf.PRF_HMAC_SHA2_512}


def _kdf(step: str) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        prf = _ACVP_PRF[v["hash"]]
        ni, nr, spii, spir = _h(v["ni"]), _h(v["nr"]), _h(v["spii"]), _h(v["spir"])
        hl = prf.hash.digest_size
        gir = p.import_secret(_h(v["gir"]), "self-test g^ir")
        gir_new = p.import_secret(_h(v["gir_new"]), "self-test g^ir (new)")
        held: list[SecretKey] = [gir, gir_new]
        try:
            skeyseed = p.skeyseed(prf, ni, nr, gir)
            held.append(skeyseed)
            if step == "skeyseed":
                _expect(secret_matches(p, skeyseed, _h(v["skeyseed"])), "SKEYSEED")
                return
            dkm = _h(v["dkm"])
            sk_d, rest = p.prf_plus(prf, skeyseed, ni + nr + spii + spir, [("SK_d", hl), ("rest", len(dkm) - hl)])
            held += [sk_d, rest]
            if step == "prf+":
                _expect(secret_matches(p, sk_d, dkm[:hl]) and secret_matches(p, rest, dkm[hl:]),
                        "prf+ (SK_d || SK_ai... keying material)")
                return
            if step == "child":
                (keymat,) = p.prf_plus(prf, sk_d, ni + nr, [("KEYMAT", len(_h(v["dkm_child"])))])
                held.append(keymat)
                _expect(secret_matches(p, keymat, _h(v["dkm_child"])), "child SA KEYMAT")
                return
            if step == "child-dh":
                (keymat,) = p.prf_plus(prf, sk_d, ni + nr, [("KEYMAT", len(_h(v["dkm_child_dh"])))],
                                       secret_prefix=gir_new)
                held.append(keymat)
                _expect(secret_matches(p, keymat, _h(v["dkm_child_dh"])), "child SA KEYMAT with PFS")
                return
            if step == "rekey":
                new = p.rekey_skeyseed(prf, sk_d, gir_new, ni, nr)
                held.append(new)
                _expect(secret_matches(p, new, _h(v["skeyseed_rekey"])), "rekey SKEYSEED")
                return
            raise ValueError(step)
        finally:
            for k in held:
                k.wipe()
    return run


# --- key exchange -------------------------------------------------------------------------------
def _import_share(p: Any, group: KeyExchange, private: bytes) -> Any:
    fn = getattr(p, "ke_import_private", None)
    if not callable(fn):
        raise NotSupportedHere("the provider has no ke_import_private(group, private_bytes) for a KE KAT")
    return fn(group, private)


def _dh(group: KeyExchange) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        share = _import_share(p, group, _h(v["private_i"]))
        try:
            _expect(share.public == _h(v["public_i"]), f"{group.name} public value g^i")
            shared = p.ke_derive(share, _h(v["public_r"]))
        finally:
            share.wipe()
        try:
            _expect(secret_matches(p, shared, _h(v["shared"])), f"{group.name} shared secret g^ir")
        finally:
            shared.wipe()
    return run


def _mlkem(p: Any, v: dict[str, Any]) -> None:
    group = KeyExchange.ML_KEM_768
    seed = _h(v["seed"])
    share = _import_share(p, group, seed)
    _expect(share.public == _h(v["pk"]), "ML-KEM-768 encapsulation key from seed (d || z)")
    for ct_name, ss_name, what in (("ct", "ss", "decapsulation"), ("ct_n", "ss_n", "implicit rejection")):
        share = _import_share(p, group, seed)
        ss = p.ke_derive(share, _h(v[ct_name]))
        try:
            _expect(secret_matches(p, ss, _h(v[ss_name])), f"ML-KEM-768 {what}")
        finally:
            ss.wipe()
            share.wipe()
    # Encapsulation draws its own randomness (cryptography takes no m), so it is checked by a
    # round trip against the known key pair (FIPS 203 section 7.2 then 7.3).
    ct, ss_enc = p.ke_encapsulate(group, _h(v["pk"]))
    share = _import_share(p, group, seed)
    ss_dec = p.ke_derive(share, ct)
    try:
        _expect(secrets_equal(p, ss_enc, ss_dec), "ML-KEM-768 encapsulation round trip")
    finally:
        ss_enc.wipe()
        ss_dec.wipe()
        share.wipe()


# --- signatures -----------------------------------------------------------------------------------
def _import_fixed_key(p: Any, der_b64: str, label: str) -> Any:
    # parsed inside the boundary (Router.import_pkcs8): the gate and the key policy apply
    return p.import_pkcs8(base64.b64decode(der_b64), label=label)


def _sig_verify_known(scheme: SignatureScheme) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        pub = serialization.load_der_public_key(base64.b64decode(v["public_spki"]))
        msg, sig = _h(v["message"]), _h(v["signature"])
        _expect(p.verify(pub, scheme, msg, sig) is True, f"{scheme.name} verify of a known signature")
        bad = sig[:-1] + bytes([sig[-1] ^ 1])
        _expect(p.verify(pub, scheme, msg, bad) is False, f"{scheme.name} accepted a wrong signature")
    return run


def _sig_roundtrip(scheme: SignatureScheme, key_field: str) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, v: dict[str, Any]) -> None:
        key = _import_fixed_key(p, v[key_field], f"self-test {scheme.name}")
        msg = b"fipsike self-test message"
        sig = p.sign(key, scheme, msg)
        _expect(p.verify(key.public_key(), scheme, msg, sig) is True, f"{scheme.name} sign/verify round trip")
        _expect(p.verify(key.public_key(), scheme, msg + b"!", sig) is False,
                f"{scheme.name} verified a signature over another message")
    return run


def catalogue(vectors: dict[str, Any]) -> list[Kat]:
    """Every KAT, in the order they run (hashes and HMAC first: later comparisons rely on HMAC)."""
    def src(key: str) -> str:
        return str(lookup(vectors, key)["source"])

    kats: list[Kat] = []
    for alg in (HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512):
        kats.append(Kat(f"kat-sha2-{alg.digest_size * 8}", f"SHA2-{alg.digest_size * 8}", src("sha2"),
                        _sha2(alg), "sha2"))
    for alg in (HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512):
        kats.append(Kat(f"kat-hmac-sha2-{alg.digest_size * 8}", f"HMAC-SHA2-{alg.digest_size * 8}",
                        src("hmac"), _hmac(alg), "hmac"))
    for i, v in enumerate(vectors["aes_gcm"]):
        bits = len(v["key"]) * 4
        for d in ("encrypt", "decrypt"):
            kats.append(Kat(f"kat-aes-gcm-{bits}-{d}", f"AES-GCM-16 ({bits}-bit key) {d}", v["source"],
                            _gcm(d), f"aes_gcm.{i}"))
    for d in ("encrypt", "decrypt"):
        kats.append(Kat(f"kat-aes-cbc-256-{d}", f"AES-CBC (256-bit key) {d}", src("aes_cbc"), _cbc(d), "aes_cbc"))
    kdf_alg = f"IKEv2 KDF {vectors['ikev2_kdf']['hash']}"
    for step, what in (("skeyseed", "SKEYSEED"), ("prf+", "prf+"), ("child", "child KEYMAT"),
                       ("child-dh", "child KEYMAT (PFS)"), ("rekey", "rekey SKEYSEED")):
        kats.append(Kat(f"kat-ikev2-kdf-{step}", f"{kdf_alg} {what}", src("ikev2_kdf"), _kdf(step), "ikev2_kdf"))
    for group in (KeyExchange.ECP_256, KeyExchange.ECP_384):
        kats.append(Kat(f"kat-ecdh-{group.name.lower().replace('_', '-')}", f"ECDH {group.name}",
                        src(f"ecdh.{group.name}"), _dh(group), f"ecdh.{group.name}", (("key-exchange", group),)))
    kats.append(Kat("kat-modp-3072", "DH MODP_3072 (group 15)", src("modp_3072"), _dh(KeyExchange.MODP_3072),
                    "modp_3072", (("key-exchange", KeyExchange.MODP_3072),)))
    kats.append(Kat("kat-ml-kem-768", "ML-KEM-768 decapsulation + encapsulation", src("ml_kem_768"), _mlkem,
                    "ml_kem_768", (("key-exchange", KeyExchange.ML_KEM_768),)))
    kats.append(Kat("kat-rsa-pss-sha256-verify", "RSASSA-PSS SHA2-256 verify (2048)", src("rsa_pss"),
                    _sig_verify_known(SignatureScheme.RSA_PSS_SHA256), "rsa_pss"))
    kats.append(Kat("kat-rsa-pss-sha256-sign", "RSASSA-PSS SHA2-256 sign/verify (2048)",
                    str(vectors["rsa_pss"]["private_source"]),
                    _sig_roundtrip(SignatureScheme.RSA_PSS_SHA256, "private_pkcs8"), "rsa_pss"))
    for curve, scheme in (("P-256", SignatureScheme.ECDSA_SHA256), ("P-384", SignatureScheme.ECDSA_SHA384)):
        kats.append(Kat(f"kat-ecdsa-{curve.lower()}-verify", f"ECDSA {curve} {scheme.hash.name} verify",
                        src(f"ecdsa.{curve}"), _sig_verify_known(scheme), f"ecdsa.{curve}"))
        kats.append(Kat(f"kat-ecdsa-{curve.lower()}-sign", f"ECDSA {curve} {scheme.hash.name} sign/verify",
                        src(f"ecdsa.{curve}"), _sig_roundtrip(scheme, "private_pkcs8"), f"ecdsa.{curve}"))
    return kats


# --- pairwise consistency (FIPS 140-3 IG 10.3.A; SP 800-56A r3 5.6.2.1.4) ----------------------------
PCT_MESSAGE = b"fipsike pairwise consistency test"


def signature_pct(p: Any, key: Any) -> None:
    """Sign with the private half, verify with the public half; raises SelfTestFailure."""
    scheme = SignatureScheme.RSA_PSS_SHA256 if key.spec.kind == "rsa" else SignatureScheme.ECDSA_SHA256
    try:
        sig = p.sign(key, scheme, PCT_MESSAGE)
    except ProviderError as exc:
        raise SelfTestFailure(f"pairwise consistency: signing with {key.spec} failed ({type(exc).__name__})") \
            from None
    _expect(p.verify(key.public_key(), scheme, PCT_MESSAGE, sig) is True,
            f"pairwise consistency: {key.spec} signature did not verify")


def keypair_pct(spec: KeySpec) -> Callable[[Any, dict[str, Any]], None]:
    def run(p: Any, _v: dict[str, Any]) -> None:
        key = p.generate_keypair(spec, label=f"fipsike-pct-{spec}")
        signature_pct(p, key)
    return run


def ke_pct(group: KeyExchange) -> Callable[[Any, dict[str, Any]], None]:
    """Two fresh shares must agree (both directions) - the ephemeral-key consistency check."""
    def run(p: Any, _v: dict[str, Any]) -> None:
        a = p.ke_generate(group)
        if group.is_kem:
            ct, s1 = p.ke_encapsulate(group, a.public)
            s2 = p.ke_derive(a, ct)
        else:
            b = p.ke_generate(group)
            s1 = p.ke_derive(a, b.public)
            s2 = p.ke_derive(b, a.public)
            b.wipe()
        a.wipe()
        try:
            _expect(secrets_equal(p, s1, s2), f"{group.name} key pair consistency")
        finally:
            s1.wipe()
            s2.wipe()
    return run


def pct_catalogue() -> list[Kat]:
    src = "pairwise consistency test on a freshly generated key (FIPS 140-3 IG 10.3.A)"
    out = [Kat(f"pct-{s}".lower(), f"PCT {s}", src, keypair_pct(s), "")
           for s in (KeySpec("rsa", 2048), KeySpec("ec", 256, "secp256r1"))]
    ke_src = "ephemeral key pair consistency (SP 800-56A r3 section 5.6.2.1.4)"
    out += [Kat(f"pct-ke-{g.name.lower().replace('_', '-')}", f"PCT {g.name}", ke_src, ke_pct(g), "",
                (("key-exchange", g),))
            for g in (KeyExchange.ECP_256, KeyExchange.ECP_384, KeyExchange.MODP_3072, KeyExchange.ML_KEM_768)]
    return out
