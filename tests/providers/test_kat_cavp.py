"""Known-answer tests from NIST CAVP files (cryptography-vectors) through the provider API.

Each family runs on the OpenSSL provider directly and through a Router (the policy's
refusals are asserted in test_policy.py). Filters are stated where they apply: the API
speaks the IKE/ESP forms (96-bit GCM nonce = 4-octet salt || 8-octet IV, ICV 8/12/16).
"""

from __future__ import annotations

from collections import Counter

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from providers import (
    AuthenticationTagInvalid,
    Encryption,
    HashAlg,
    InvalidInput,
    InvalidKeyShare,
    KeyExchange,
    Prf,
    Router,
    SignatureScheme,
)
from providers.openssl import OpenSSLProvider
from tests.providers.vectors import cavp, h

GCM_BY_TAG = {128: Encryption.ENCR_AES_GCM_16, 96: Encryption.ENCR_AES_GCM_12, 64: Encryption.ENCR_AES_GCM_8}


def gcm_cases(kind: str, bits: int) -> list[dict[str, str]]:
    """CAVP GCM records usable by ESP: 96-bit IV, tag 128/96/64 (RFC 4106 ICVs); others filtered out."""
    name = f"ciphers/AES/GCM/gcm{'EncryptExtIV' if kind == 'encrypt' else 'Decrypt'}{bits}.rsp"
    return [r for r in cavp(name) if r["ivlen"] == "96" and int(r["taglen"]) in GCM_BY_TAG]


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_aes_gcm_cavp_encrypt(bits: int, router_default: Router) -> None:
    p = OpenSSLProvider()
    cases = gcm_cases("encrypt", bits)
    assert len(cases) >= 1000
    for r in cases:
        alg = GCM_BY_TAG[int(r["taglen"])]
        iv = h(r["iv"])
        key = p.import_secret(h(r["key"]) + iv[:4], "kat")
        out = p.aead_seal(alg, key, iv[4:], h(r["pt"]), h(r["aad"]))
        assert out == h(r["ct"]) + h(r["tag"]), r["count"]
        assert p.aead_open(alg, key, iv[4:], out, h(r["aad"])) == h(r["pt"])
    # the same through the router where the default profile allows the key size (not AES-192)
    if bits != 192:
        for r in cases[:200]:
            alg = GCM_BY_TAG[int(r["taglen"])]
            iv = h(r["iv"])
            key = router_default.import_secret(h(r["key"]) + iv[:4], "kat")
            assert router_default.aead_seal(alg, key, iv[4:], h(r["pt"]), h(r["aad"])) == h(r["ct"]) + h(r["tag"])


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_aes_gcm_cavp_decrypt_rejects_every_fail(bits: int) -> None:
    p = OpenSSLProvider()
    outcomes: Counter[str] = Counter()
    for r in gcm_cases("decrypt", bits):
        alg = GCM_BY_TAG[int(r["taglen"])]
        iv = h(r["iv"])
        key = p.import_secret(h(r["key"]) + iv[:4], "kat")
        sealed = h(r["ct"]) + h(r["tag"])
        if "fail" in r:
            with pytest.raises(AuthenticationTagInvalid):
                p.aead_open(alg, key, iv[4:], sealed, h(r["aad"]))
            outcomes["fail"] += 1
        else:
            assert p.aead_open(alg, key, iv[4:], sealed, h(r["aad"])) == h(r["pt"])
            outcomes["pass"] += 1
    assert outcomes["fail"] > 100 and outcomes["pass"] > 100


@pytest.mark.parametrize("bits", [128, 192, 256])
@pytest.mark.parametrize("family", ["GFSbox", "KeySbox", "VarKey", "VarTxt", "MMT"])
def test_aes_cbc_cavp(bits: int, family: str, router_fips: Router) -> None:
    p = OpenSSLProvider()
    records = list(cavp(f"ciphers/AES/CBC/CBC{family}{bits}.rsp"))
    assert records
    for r in records:
        pt, ct, iv = h(r["plaintext"]), h(r["ciphertext"]), h(r["iv"])
        for prov in (p, router_fips):
            key = prov.import_secret(h(r["key"]), "kat")
            if r["direction"] == "encrypt":
                assert prov.cbc_encrypt(Encryption.ENCR_AES_CBC, key, iv, pt) == ct
            else:
                assert prov.cbc_decrypt(Encryption.ENCR_AES_CBC, key, iv, ct) == pt


HMAC_FILES = {HashAlg.SHA256: "sha256", HashAlg.SHA384: "sha384", HashAlg.SHA512: "sha512"}
PRF_OF = {HashAlg.SHA256: Prf.PRF_HMAC_SHA2_256, HashAlg.SHA384: Prf.PRF_HMAC_SHA2_384,
          HashAlg.SHA512: Prf.PRF_HMAC_SHA2_512}


@pytest.mark.parametrize("alg", list(HMAC_FILES))
def test_hmac_rfc4231(alg: HashAlg, router_fips: Router) -> None:
    """RFC 4231 test cases 1-4, 6, 7 (case 5, truncation, is not in the file)."""
    records = list(cavp(f"HMAC/rfc-4231-{HMAC_FILES[alg]}.txt"))
    assert len(records) == 6
    for r in records:
        for prov in (OpenSSLProvider(), router_fips):
            key = prov.import_secret(h(r["key"]), "kat")
            assert prov.prf(PRF_OF[alg], key, h(r["msg"])) == h(r["md"])


# --- signatures: CAVP SigVer (verify vectors) -------------------------------------------------
_HASH_NAMES = {"SHA256": HashAlg.SHA256, "SHA384": HashAlg.SHA384, "SHA512": HashAlg.SHA512,
               "SHA1": HashAlg.SHA1}


def _rsa_records(path: str) -> list[tuple[int, dict[str, str]]]:
    """(n, record) pairs: n is given once per [mod] section and applies to the records after it."""
    out = []
    n = 0
    for r in cavp(path):
        if "n" in r:
            n = int(r["n"], 16)
        if "shaalg" in r and "s" in r:
            out.append((n, r))
    return out


@pytest.mark.parametrize("family,path", [
    ("rsa-pss", "asymmetric/RSA/FIPS_186-2/SigVerPSS_186-3.rsp"),
    ("rsa-pkcs1", "asymmetric/RSA/FIPS_186-2/SigVer15_186-3.rsp"),
])
def test_rsa_sigver_cavp(family: str, path: str, router_default: Router) -> None:
    """Every P verifies and every F (message, e, signature, EM format changed) is refused.
    Filtered: SHA-224 (no SHA-224 scheme in IKEv2's RFC 7427 set here)."""
    p = OpenSSLProvider()
    seen: Counter[str] = Counter()
    for n, r in _rsa_records(path):
        alg = _HASH_NAMES.get(r["shaalg"])
        name = f"RSA_{'PSS' if family == 'rsa-pss' else 'PKCS1'}_{alg.name if alg else ''}"
        if alg is None or name not in SignatureScheme.__members__:
            continue  # SHA-224, and PSS with SHA-1 (no such scheme in the API)
        scheme = SignatureScheme[name]
        pub = rsa.RSAPublicNumbers(int(r["e"], 16), n).public_key()
        salt = len(h(r["saltval"])) if family == "rsa-pss" else None
        expected = r["result"].startswith("P")
        ok = p.verify(pub, scheme, h(r["msg"]), h(r["s"]), salt_length=salt)
        assert ok is expected, (r["shaalg"], n.bit_length())
        if n.bit_length() >= 2048 and alg is not HashAlg.SHA1 and (salt is None or salt <= alg.digest_size):
            assert router_default.verify(pub, scheme, h(r["msg"]), h(r["s"]), salt_length=salt) is expected
        seen["P" if expected else "F"] += 1
    assert seen["P"] >= 45 and seen["F"] >= 200


_CURVES = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}


def test_ecdsa_sigver_cavp(router_fips: Router) -> None:
    """FIPS 186-3 SigVer: P verifies; F (message, R, S, Q changed) is refused, DER and raw r||s.
    Filtered: P-192/P-224, K-/B- curves and SHA-224 (not approved for IKE here)."""
    p = OpenSSLProvider()
    seen: Counter[str] = Counter()
    for r in cavp("asymmetric/ECDSA/FIPS_186-3/SigVer.rsp"):
        curve_name, hash_name = r["section"].split(",")
        alg = _HASH_NAMES.get(hash_name.replace("-", ""))
        if curve_name not in _CURVES or alg is None:
            continue
        curve = _CURVES[curve_name]
        try:
            pub = ec.EllipticCurvePublicNumbers(int(r["qx"], 16), int(r["qy"], 16), curve).public_key()
        except ValueError:
            assert r["result"].startswith("F")  # "Q changed" may leave the curve: refused at import
            seen["F"] += 1
            continue
        scheme = SignatureScheme[f"ECDSA_{alg.name}"]
        n = (curve.key_size + 7) // 8
        raw = int(r["r"], 16).to_bytes(n, "big") + int(r["s"], 16).to_bytes(n, "big")
        expected = r["result"].startswith("P")
        assert p.verify(pub, scheme, h(r["msg"]), raw, raw=True) is expected
        if alg is not HashAlg.SHA1:
            assert router_fips.verify(pub, scheme, h(r["msg"]), raw, raw=True) is expected
        seen["P" if expected else "F"] += 1
    assert seen["P"] >= 30 and seen["F"] >= 120


# --- ECDH: CAVP KAS ECC (ZZ only) ----------------------------------------------------------
_KAS_GROUPS = {"EC": KeyExchange.ECP_256, "ED": KeyExchange.ECP_384, "EE": KeyExchange.ECP_521}


@pytest.mark.parametrize("role", ["init", "resp"])
def test_ecdh_kas_ecc_cavp(role: str) -> None:
    """KAS ECC static unified, ZZ only: the IUT's private key d and the CAVS public key give Z.
    P: our public value and Z match. F: the CAVS point is off the curve (refused), the IUT's
    key or d changed (our public value differs), or Z changed (our Z differs).
    Filtered: EA/EB (P-192, P-224)."""
    p = OpenSSLProvider()
    seen: Counter[str] = Counter()
    for r in cavp(f"asymmetric/ECDH/KASValidityTest_ECCStaticUnified_NOKC_ZZOnly_{role}.fax"):
        group = _KAS_GROUPS.get(r["section"].split(" ")[0])
        if group is None:
            continue
        n = {KeyExchange.ECP_256: 32, KeyExchange.ECP_384: 48, KeyExchange.ECP_521: 66}[group]
        try:
            share = p.ke_import_private(group, h(r["dsiut"]))
        except InvalidInput:
            assert r["result"].startswith("F (7"), r["result"]  # d changed to an invalid private key
            seen["rejected"] += 1
            continue
        ours_public = share.public == int(r["qsiutx"], 16).to_bytes(n, "big") + int(r["qsiuty"], 16).to_bytes(n, "big")
        peer = int(r["qscavsx"], 16).to_bytes(n, "big") + int(r["qscavsy"], 16).to_bytes(n, "big")
        reason = r["result"]
        try:
            z = p.ke_derive(share, peer)._bytes()
        except InvalidKeyShare:
            assert reason.startswith("F (1") or reason.startswith("F (2"), reason
            seen["rejected"] += 1
            continue
        z_ok = z == h(r["z"]).rjust(n, b"\x00")
        if reason.startswith("P"):
            assert ours_public and z_ok, reason
            seen["P"] += 1
        else:
            assert not (ours_public and z_ok), reason
            seen["F"] += 1
    assert seen == {"P": 54, "rejected": 14, "F": 22}
