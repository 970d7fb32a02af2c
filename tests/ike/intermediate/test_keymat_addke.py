"""RFC 9370 key derivation against an independent computation with the standard library's HMAC:
SKEYSEED(n) after each IKE_INTERMEDIATE key exchange (2.2.2), and KEYMAT / SKEYSEED with every shared
secret of CREATE_CHILD_SA + IKE_FOLLOWUP_KE concatenated in order (2.2.4). Keys are compared by use
(a PRF or AEAD output under the derived handle), never exported."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fipsike.ike.keymat import (
    IkeKeys,
    derive_child_keys,
    derive_followup_child_keys,
    derive_followup_rekeyed_ike_keys,
    derive_ike_keys,
    derive_intermediate_keys,
    derive_rekeyed_ike_keys,
)
from providers import Encryption, Integrity, Prf, open_router
from providers.errors import UnsupportedOperation
from providers.handles import SecretKey
from providers.router import Router

NI, NR = bytes(range(32)), bytes(range(100, 132))
SPI_I, SPI_R = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")
G_IR = bytes.fromhex("aa" * 32)  # SK(0): IKE_SA_INIT / CREATE_CHILD_SA (EC)DH
SK1 = bytes.fromhex("b1" * 32)  # SK(1): an ML-KEM shared secret is 32 octets (FIPS 203)
SK2 = bytes.fromhex("c2" * 48)  # SK(2): e.g. an ECP-384 x coordinate
GCM = Encryption.ENCR_AES_GCM_16


def hm(h: str, key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, h).digest()


def prf_plus(h: str, key: bytes, seed: bytes, n: int) -> bytes:
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hm(h, key, t + seed + bytes([i]))
        out += t
        i += 1
    return out[:n]


def split(h: str, skeyseed: bytes) -> dict[str, bytes]:
    """RFC 7296 2.14 with AES-GCM-256 (36-octet SK_e, no SK_a)."""
    pk = hashlib.new(h).digest_size
    s = prf_plus(h, skeyseed, NI + NR + SPI_I + SPI_R, 3 * pk + 72)
    return {"d": s[:pk], "ei": s[pk:pk + 36], "er": s[pk + 36:pk + 72], "pi": s[pk + 72:2 * pk + 72],
            "pr": s[2 * pk + 72:]}


def assert_keys(r: Router, prf: Prf, h: str, keys: IkeKeys, want: dict[str, bytes]) -> None:
    for handle, name in ((keys.sk_d, "d"), (keys.sk_pi, "pi"), (keys.sk_pr, "pr")):
        assert r.prf(prf, handle, b"probe") == hm(h, want[name], b"probe"), name
    iv = bytes(8)
    for handle, name in ((keys.sk_ei, "ei"), (keys.sk_er, "er")):
        got = r.aead_seal(GCM, handle, iv, b"plain", b"aad")
        assert got == AESGCM(want[name][:32]).encrypt(want[name][32:] + iv, b"plain", b"aad"), name


def r_prf(r: Router, prf: Prf, key: SecretKey) -> bytes:
    return r.prf(prf, key, b"x")


@pytest.mark.parametrize(("prf", "h"), [(Prf.PRF_HMAC_SHA2_256, "sha256"), (Prf.PRF_HMAC_SHA2_384, "sha384")])
def test_skeyseed_n_chains_through_each_intermediate_exchange(router: Router, prf: Prf, h: str) -> None:
    """SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr), then prf+ over Ni | Nr | SPIi | SPIr (RFC 9370 2.2.2)."""
    keys0 = derive_ike_keys(router, prf, GCM, 256, None, NI, NR, router.import_secret(G_IR, "g^ir"), SPI_I, SPI_R)
    want0 = split(h, hm(h, NI + NR, G_IR))
    assert_keys(router, prf, h, keys0, want0)

    keys1 = derive_intermediate_keys(router, keys0, GCM, 256, None, router.import_secret(SK1, "g^ir"),
                                     NI, NR, SPI_I, SPI_R)
    want1 = split(h, hm(h, want0["d"], SK1 + NI + NR))
    assert_keys(router, prf, h, keys1, want1)

    keys2 = derive_intermediate_keys(router, keys1, GCM, 256, None, router.import_secret(SK2, "g^ir"),
                                     NI, NR, SPI_I, SPI_R)
    want2 = split(h, hm(h, want1["d"], SK2 + NI + NR))
    assert_keys(router, prf, h, keys2, want2)
    # each step changes every key: the (n-1) keys no longer protect anything
    assert r_prf(router, prf, keys2.sk_ei) != r_prf(router, prf, keys1.sk_ei)


def test_intermediate_keys_need_no_joiner() -> None:
    """2.2.2 is the RFC 7296 2.18 formula: the Router as it is does it."""
    r = open_router("fips")
    prf = Prf.PRF_HMAC_SHA2_256
    keys0 = derive_ike_keys(r, prf, GCM, 256, None, NI, NR, r.import_secret(G_IR, "g^ir"), SPI_I, SPI_R)
    keys1 = derive_intermediate_keys(r, keys0, GCM, 256, None, r.import_secret(SK1, "g^ir"), NI, NR, SPI_I, SPI_R)
    want0 = split("sha256", hm("sha256", NI + NR, G_IR))
    assert_keys(r, prf, "sha256", keys1, split("sha256", hm("sha256", want0["d"], SK1 + NI + NR)))


@pytest.mark.parametrize("integ", [None, Integrity.AUTH_HMAC_SHA2_256_128])
def test_child_keymat_with_followup_secrets(router: Router, integ: Integrity | None) -> None:
    """KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | SK(2)) (RFC 9370 2.2.4), in RFC 7296 2.17's order."""
    prf, h = Prf.PRF_HMAC_SHA2_256, "sha256"
    sk_d_bytes = bytes(range(200, 232))
    sk_d = router.import_secret(sk_d_bytes, "SK_d")
    encr = GCM if integ is None else Encryption.ENCR_AES_CBC
    got = derive_followup_child_keys(router, prf, sk_d, encr, 256, integ, NI, NR, router.import_secret(G_IR, "g^ir"),
                                     [router.import_secret(SK1, "g^ir"), router.import_secret(SK2, "g^ir")])
    ek = 36 if integ is None else 32
    ak = 0 if integ is None else 32
    stream = prf_plus(h, sk_d_bytes, G_IR + NI + NR + SK1 + SK2, 2 * (ek + ak))
    want_ei, want_ai = stream[:ek], stream[ek:ek + ak]
    want_er = stream[ek + ak:2 * ek + ak]
    released = router.release_esp_key(got.encr_i, "test"), router.release_esp_key(got.encr_r, "test")
    assert released == (want_ei, want_er)  # ESP keys are the kernel's: the one audited exit
    if integ is not None:
        assert got.integ_i is not None
        assert router.release_esp_key(got.integ_i, "test") == want_ai
    # the order matters: the secrets swapped give other keys
    swapped = derive_followup_child_keys(router, prf, sk_d, encr, 256, integ, NI, NR,
                                         router.import_secret(G_IR, "g^ir"),
                                         [router.import_secret(SK2, "g^ir"), router.import_secret(SK1, "g^ir")])
    assert router.release_esp_key(swapped.encr_i, "test") != want_ei


def test_child_keymat_without_sk0(router: Router) -> None:
    """No KE payload in CREATE_CHILD_SA: KEYMAT = prf+(SK_d, Ni | Nr | SK(1))."""
    sk_d_bytes = bytes(range(32))
    got = derive_followup_child_keys(router, Prf.PRF_HMAC_SHA2_256, router.import_secret(sk_d_bytes, "SK_d"), GCM,
                                     128, None, NI, NR, None, [router.import_secret(SK1, "g^ir")])
    want = prf_plus("sha256", sk_d_bytes, NI + NR + SK1, 20)
    assert router.release_esp_key(got.encr_i, "test") == want


def test_followup_without_additional_is_rfc7296(router: Router) -> None:
    sk_d = router.import_secret(bytes(range(32)), "SK_d")
    shared = router.import_secret(G_IR, "g^ir")
    a = derive_followup_child_keys(router, Prf.PRF_HMAC_SHA2_256, sk_d, GCM, 128, None, NI, NR, shared, [])
    b = derive_child_keys(router, Prf.PRF_HMAC_SHA2_256, sk_d, GCM, 128, None, NI, NR, shared)
    assert router.release_esp_key(a.encr_r, "t") == router.release_esp_key(b.encr_r, "t")
    # and needs no joiner
    plain = open_router("fips")
    derive_followup_child_keys(plain, Prf.PRF_HMAC_SHA2_256, plain.import_secret(bytes(32), "SK_d"), GCM, 128, None,
                               NI, NR, None, [])


def test_joining_refuses_a_secret_held_by_another_provider() -> None:
    """join_secrets runs where the secrets are: a part held by the token is refused by name, never exported."""
    plain = open_router("fips")
    foreign = SecretKey(SK1, "g^ir", "pkcs11")
    with pytest.raises(UnsupportedOperation, match="g\\^ir is held by pkcs11"):
        derive_followup_child_keys(plain, Prf.PRF_HMAC_SHA2_256, plain.import_secret(bytes(32), "SK_d"), GCM, 128,
                                   None, NI, NR, None, [foreign])


def test_joined_secret_is_the_concatenation_and_stays_a_handle(router: Router) -> None:
    parts = [router.import_secret(b"\x01" * 4, "a"), b"NN", router.import_secret(b"\x02" * 3, "b")]
    joined = router.join_secrets(parts, "joined")
    assert len(joined) == 9 and "\x01" not in repr(joined)
    assert joined._bytes() == b"\x01" * 4 + b"NN" + b"\x02" * 3


@pytest.mark.parametrize(("prf", "h"), [(Prf.PRF_HMAC_SHA2_256, "sha256"), (Prf.PRF_HMAC_SHA2_384, "sha384")])
def test_ike_rekey_skeyseed_with_followup_secrets(router: Router, prf: Prf, h: str) -> None:
    """SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | SK(2)) (RFC 9370 2.2.4), then RFC 7296 2.14."""
    old_d = bytes(range(50, 50 + hashlib.new(h).digest_size))
    keys = derive_followup_rekeyed_ike_keys(
        router, prf, router.import_secret(old_d, "SK_d"), prf, GCM, 256, None, router.import_secret(G_IR, "g^ir"),
        NI, NR, SPI_I, SPI_R, [router.import_secret(SK1, "g^ir"), router.import_secret(SK2, "g^ir")])
    assert_keys(router, prf, h, keys, split(h, hm(h, old_d, G_IR + NI + NR + SK1 + SK2)))
    # without additional secrets it is RFC 7296 2.18's
    plain = derive_followup_rekeyed_ike_keys(router, prf, router.import_secret(old_d, "SK_d"), prf, GCM, 256, None,
                                             router.import_secret(G_IR, "g^ir"), NI, NR, SPI_I, SPI_R, [])
    classic = derive_rekeyed_ike_keys(router, prf, router.import_secret(old_d, "SK_d"), prf, GCM, 256, None,
                                      router.import_secret(G_IR, "g^ir"), NI, NR, SPI_I, SPI_R)
    assert r_prf(router, prf, plain.sk_d) == r_prf(router, prf, classic.sk_d)
    assert_keys(router, prf, h, plain, split(h, hm(h, old_d, G_IR + NI + NR)))
