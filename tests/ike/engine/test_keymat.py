"""Key derivation (RFC 7296 2.13, 2.14, 2.17, 2.18) against an independent computation with the
standard library's HMAC: SKEYSEED, the SK_* split with its sizes, KEYMAT order, rekey SKEYSEED."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fipsike.ike.keymat import derive_child_keys, derive_ike_keys, derive_rekeyed_ike_keys
from providers import Encryption, Integrity, Prf, open_router

NI, NR = bytes(range(32)), bytes(range(100, 132))
SPI_I, SPI_R = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")
SHARED = bytes.fromhex("aa" * 32)


def prf_plus(h: str, key: bytes, seed: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(key, t + seed + bytes([i]), h).digest()
        out += t
        i += 1
    return out[:n]


def mac_with(router, prf, key) -> bytes:  # type: ignore[no-untyped-def]
    return bytes(router.prf(prf, key, b"probe"))


@pytest.mark.parametrize(("prf", "h"), [(Prf.PRF_HMAC_SHA2_256, "sha256"), (Prf.PRF_HMAC_SHA2_384, "sha384"),
                                        (Prf.PRF_HMAC_SHA2_512, "sha512")])
def test_ike_keys_aead(prf: Prf, h: str) -> None:
    r = open_router("fips")
    shared = r.import_secret(SHARED, "g^ir")
    keys = derive_ike_keys(r, prf, Encryption.ENCR_AES_GCM_16, 256, None, NI, NR, shared, SPI_I, SPI_R)
    skeyseed = hmac.new(NI + NR, SHARED, h).digest()
    pk = hashlib.new(h).digest_size
    stream = prf_plus(h, skeyseed, NI + NR + SPI_I + SPI_R, pk + 2 * 36 + 2 * pk)
    sk_d, sk_ei, sk_er = stream[:pk], stream[pk:pk + 36], stream[pk + 36:pk + 72]
    sk_pi, sk_pr = stream[pk + 72:2 * pk + 72], stream[2 * pk + 72:]
    assert keys.sk_ai is None and keys.sk_ar is None  # AEAD: no integrity keys (RFC 5282 7)
    assert [len(k) for k in (keys.sk_d, keys.sk_ei, keys.sk_er, keys.sk_pi, keys.sk_pr)] == [pk, 36, 36, pk, pk]
    for mine, want in ((keys.sk_d, sk_d), (keys.sk_pi, sk_pi), (keys.sk_pr, sk_pr)):
        assert mac_with(r, prf, mine) == hmac.new(want, b"probe", h).digest()
    # SK_ei = key(32) || salt(4): seal through the router, compare with AES-GCM on the expected key
    iv = bytes(8)
    for mine, want in ((keys.sk_ei, sk_ei), (keys.sk_er, sk_er)):
        got = r.aead_seal(Encryption.ENCR_AES_GCM_16, mine, iv, b"plain", b"aad")
        assert got == AESGCM(want[:32]).encrypt(want[32:] + iv, b"plain", b"aad")


def test_ike_keys_cbc_hmac_sizes() -> None:
    r = open_router("fips")
    shared = r.import_secret(SHARED, "g^ir")
    keys = derive_ike_keys(r, Prf.PRF_HMAC_SHA2_256, Encryption.ENCR_AES_CBC, 128,
                           Integrity.AUTH_HMAC_SHA2_512_256, NI, NR, shared, SPI_I, SPI_R)
    assert [len(k) for k in (keys.sk_d, keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er, keys.sk_pi,
                             keys.sk_pr)] == [32, 64, 64, 16, 16, 32, 32]  # type: ignore[arg-type]
    skeyseed = hmac.new(NI + NR, SHARED, "sha256").digest()
    stream = prf_plus("sha256", skeyseed, NI + NR + SPI_I + SPI_R, 32 + 128 + 32 + 64)
    sk_ai = stream[32:96]
    icv = r.integrity_icv(Integrity.AUTH_HMAC_SHA2_512_256, keys.sk_ai, b"data")
    assert icv == hmac.new(sk_ai, b"data", "sha512").digest()[:32]


@pytest.mark.parametrize("pfs", [False, True])
def test_child_keymat_order(pfs: bool) -> None:
    """KEYMAT = prf+(SK_d, [g^ir |] Ni | Nr): i->r encryption, i->r integrity, r->i encryption, r->i integrity."""
    r = open_router("fips")
    sk_d_bytes = bytes(range(48))
    sk_d = r.import_secret(sk_d_bytes, "SK_d")
    g = r.import_secret(SHARED, "g^ir") if pfs else None
    ck = derive_child_keys(r, Prf.PRF_HMAC_SHA2_384, sk_d, Encryption.ENCR_AES_CBC, 256,
                           Integrity.AUTH_HMAC_SHA2_256_128, NI, NR, g)
    stream = prf_plus("sha384", sk_d_bytes, (SHARED if pfs else b"") + NI + NR, 2 * (32 + 32))
    assert r.release_esp_key(ck.encr_i, "test") == stream[0:32]
    assert r.release_esp_key(ck.integ_i, "test") == stream[32:64]  # type: ignore[arg-type]
    assert r.release_esp_key(ck.encr_r, "test") == stream[64:96]
    assert r.release_esp_key(ck.integ_r, "test") == stream[96:128]  # type: ignore[arg-type]


def test_child_keymat_aead_salt() -> None:
    r = open_router("fips")
    sk_d = r.import_secret(bytes(32), "SK_d")
    ck = derive_child_keys(r, Prf.PRF_HMAC_SHA2_256, sk_d, Encryption.ENCR_AES_GCM_16, 128, None, NI, NR)
    assert ck.integ_i is None and len(ck.encr_i) == 16 + 4 and len(ck.encr_r) == 20
    stream = prf_plus("sha256", bytes(32), NI + NR, 40)
    assert r.release_esp_key(ck.encr_r, "test") == stream[20:40]


def test_rekey_skeyseed() -> None:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr), with the old SA's PRF (RFC 7296 2.18)."""
    r = open_router("fips")
    old_d = bytes(range(48))
    keys = derive_rekeyed_ike_keys(r, Prf.PRF_HMAC_SHA2_384, r.import_secret(old_d, "SK_d"), Prf.PRF_HMAC_SHA2_256,
                                   Encryption.ENCR_AES_GCM_16, 128, None, r.import_secret(SHARED, "g^ir"),
                                   NI, NR, SPI_I, SPI_R)
    skeyseed = hmac.new(old_d, SHARED + NI + NR, "sha384").digest()
    stream = prf_plus("sha256", skeyseed, NI + NR + SPI_I + SPI_R, 32)
    assert mac_with(r, Prf.PRF_HMAC_SHA2_256, keys.sk_d) == hmac.new(stream, b"probe", "sha256").digest()


def test_keys_never_printed() -> None:
    """No derived key (nor SKEYSEED, nor g^ir) shows in the repr or str of the keys or of any handle,
    in hex, upper-case hex, base64 or as a bytes literal. The expected SK_* are computed independently
    and checked to be the real ones first, so their absence from the text means something."""
    import base64

    r = open_router("fips")
    shared = r.import_secret(SHARED, "g^ir")
    keys = derive_ike_keys(r, Prf.PRF_HMAC_SHA2_256, Encryption.ENCR_AES_GCM_16, 128, None, NI, NR, shared,
                           SPI_I, SPI_R)
    skeyseed = hmac.new(NI + NR, SHARED, "sha256").digest()
    stream = prf_plus("sha256", skeyseed, NI + NR + SPI_I + SPI_R, 32 + 2 * 20 + 2 * 32)
    sk_d, sk_ei, sk_er, sk_pi, sk_pr = stream[:32], stream[32:52], stream[52:72], stream[72:104], stream[104:]
    for mine, want in ((keys.sk_d, sk_d), (keys.sk_pi, sk_pi), (keys.sk_pr, sk_pr)):
        assert mac_with(r, Prf.PRF_HMAC_SHA2_256, mine) == hmac.new(want, b"probe", "sha256").digest()
    for mine, want in ((keys.sk_ei, sk_ei), (keys.sk_er, sk_er)):
        sealed = r.aead_seal(Encryption.ENCR_AES_GCM_16, mine, bytes(8), b"plain", b"aad")
        assert sealed == AESGCM(want[:16]).encrypt(want[16:] + bytes(8), b"plain", b"aad")
    handles = (keys.sk_d, keys.sk_ei, keys.sk_er, keys.sk_pi, keys.sk_pr, shared)
    texts = [repr(keys), str(keys), *(repr(h) for h in handles), *(str(h) for h in handles)]
    assert "SecretKey(" in texts[0]
    for secret in (sk_d, sk_ei, sk_er, sk_pi, sk_pr, skeyseed, SHARED):
        forms = (secret.hex(), secret.hex().upper(), base64.b64encode(secret).decode(), repr(secret)[2:-1])
        for text in texts:
            for form in forms:
                assert form[:12] not in text, (text, form[:12])
