"""SK through the real router: AES-GCM (RFC 5282) and AES-CBC + HMAC-SHA2 (RFC 7296 3.14)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fipsike.ike import encrypted as encrypted_mod
from fipsike.ike.encrypted import AEAD_IV_SIZE, SkCrypto, SkKeys
from fipsike.ike.errors import CodecError, DecryptionFailed, IntegrityCheckFailed, InvalidSyntax, IvExhausted
from fipsike.ike.header import ike_from_nat_t
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Authentication,
    Certificate,
    Encrypted,
    IdentificationInitiator,
    Notify,
    VendorId,
)
from fipsike.ike.registry import ExchangeType, PayloadType
from providers.algorithms import Encryption, Integrity
from providers.router import Router
from tests.ike.codec import strategies
from tests.ike.codec.sk_helpers import SUITE_IDS, SUITES, make_keys

AUTH = Message(b"I" * 8, b"R" * 8, ExchangeType.IKE_AUTH, 1, True, False,
               (IdentificationInitiator(2, b"moon.test"), Certificate(4, b"c" * 700), Notify.initial_contact(),
                Authentication(14, b"a" * 80)))


def pair(router: Router, suite: tuple[Encryption, int, Integrity]) -> tuple[SkCrypto, SkCrypto]:
    keys = make_keys(router, *suite)
    return SkCrypto(router, keys, initiator=True), SkCrypto(router, keys, initiator=False)


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_seal_open_round_trip(default_router: Router, suite: tuple[Encryption, int, Integrity]) -> None:
    i, r = pair(default_router, suite)
    data = i.seal(AUTH)
    outer = Message.parse(data)
    assert len(outer.payloads) == 1 and isinstance(outer.payloads[0], Encrypted)
    assert outer.payloads[0].first_payload == PayloadType.IDi
    assert r.open(data) == AUTH
    reply = Message(AUTH.spi_i, AUTH.spi_r, ExchangeType.IKE_AUTH, 1, False, True, (VendorId(b"x"),))
    assert i.open(r.seal(reply)) == reply


def test_fips_profile_gcm(fips_router: Router) -> None:
    i, r = pair(fips_router, (Encryption.ENCR_AES_GCM_16, 256, Integrity.NONE))
    assert r.open(i.seal(AUTH)) == AUTH


@pytest.mark.parametrize("suite", SUITES, ids=SUITE_IDS)
def test_every_octet_is_protected(default_router: Router, suite: tuple[Encryption, int, Integrity]) -> None:
    """Flip each octet of the header, the SK header, IV, ciphertext and ICV: all refused."""
    i, r = pair(default_router, suite)
    data = i.seal(Message(b"I" * 8, b"R" * 8, ExchangeType.INFORMATIONAL, 2, True, False, (VendorId(b"v" * 20),)))
    for pos in range(len(data)):
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises(CodecError):
            r.open(bytes(bad))


def test_integrity_checked_before_decryption(default_router: Router) -> None:
    """CBC: a bad ICV never reaches cbc_decrypt (RFC 7296 3.14)."""
    keys = make_keys(default_router, Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_256_128)
    calls: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> object:
            calls.append(name)
            return getattr(default_router, name)

    i = SkCrypto(default_router, keys, initiator=True)
    r = SkCrypto(Spy(), keys, initiator=False)  # type: ignore[arg-type]
    data = bytearray(i.seal(AUTH))
    data[-1] ^= 0xFF
    with pytest.raises(IntegrityCheckFailed):
        r.open(bytes(data))
    assert "integrity_verify" in calls and "cbc_decrypt" not in calls


def test_gcm_ivs_are_a_counter_and_never_repeat(default_router: Router) -> None:
    i, _ = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    ivs = []
    for _ in range(50):
        data = i.seal(AUTH)
        ivs.append(data[32:32 + AEAD_IV_SIZE])
    assert len(set(ivs)) == 50
    assert [int.from_bytes(v, "big") for v in ivs] == list(range(1, 51))


def test_gcm_iv_exhaustion_refuses(default_router: Router) -> None:
    i, _ = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    i.keys.ivs.initiator = 2**64 - 1
    with pytest.raises(IvExhausted):
        i.seal(AUTH)


def test_gcm_iv_counter_follows_the_keys_not_the_object(default_router: Router) -> None:
    keys = make_keys(default_router, Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE)
    first = SkCrypto(default_router, keys, initiator=True).seal(AUTH)[32:40]
    second = SkCrypto(default_router, keys, initiator=True).seal(AUTH)[32:40]
    assert first != second and int.from_bytes(second, "big") == int.from_bytes(first, "big") + 1


def test_gcm_iv_counters_belong_to_each_sa(default_router: Router) -> None:
    """No module-global state: another SA's keys count from 1 on their own, each direction apart."""
    a = SkCrypto(default_router, make_keys(default_router, Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE),
                 initiator=True)
    b = SkCrypto(default_router, make_keys(default_router, Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE),
                 initiator=True)
    for _ in range(3):
        a.seal(AUTH)
    assert int.from_bytes(b.seal(AUTH)[32:40], "big") == 1
    assert (a.keys.ivs.initiator, a.keys.ivs.responder) == (3, 0)
    assert not hasattr(encrypted_mod, "_IV_COUNTERS")


def test_cbc_ivs_are_random(default_router: Router) -> None:
    i, _ = pair(default_router, (Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_256_128))
    ivs = {i.seal(AUTH)[32:48] for _ in range(20)}
    assert len(ivs) == 20


def test_cbc_padding_makes_whole_blocks(default_router: Router) -> None:
    i, r = pair(default_router, (Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_256_128))
    for n in range(0, 40):
        m = Message(b"I" * 8, b"R" * 8, 37, 3, True, False, (VendorId(b"v" * n),))
        data = i.seal(m)
        assert (len(data) - 28 - 4 - 16 - 16) % 16 == 0
        assert r.open(data) == m


def test_reflected_message_is_refused(default_router: Router) -> None:
    i, _ = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    with pytest.raises(DecryptionFailed):
        i.open(i.seal(AUTH))
    with pytest.raises(ValueError):
        i.seal(Message(b"I" * 8, b"R" * 8, 35, 1, False, True, ()))


def test_passive_decoder_opens_both_directions(default_router: Router) -> None:
    keys = make_keys(default_router, Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE)
    i, r = SkCrypto(default_router, keys, True), SkCrypto(default_router, keys, False)
    passive = SkCrypto(default_router, keys, None)
    reply = Message(AUTH.spi_i, AUTH.spi_r, 35, 1, False, True, (VendorId(b"x"),))
    assert passive.open(i.seal(AUTH)) == AUTH and passive.open(r.seal(reply)) == reply


def test_wrong_keys_fail_integrity(default_router: Router) -> None:
    i, _ = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    _, other = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    with pytest.raises(IntegrityCheckFailed):
        other.open(i.seal(AUTH))


def test_clear_message_is_not_opened(default_router: Router) -> None:
    _, r = pair(default_router, (Encryption.ENCR_AES_GCM_16, 128, Integrity.NONE))
    with pytest.raises(DecryptionFailed):
        r.open(Message(b"I" * 8, b"R" * 8, 37, 1, True, False, (VendorId(b"x"),)).serialize())


def test_short_encrypted_payload(default_router: Router) -> None:
    _, r = pair(default_router, (Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_256_128))
    m = Message(b"I" * 8, b"R" * 8, 37, 1, True, False, (Encrypted(41, b"x" * 20),))
    with pytest.raises(InvalidSyntax):
        r.open(m.serialize())


def test_sk_keys_validate_suite(default_router: Router) -> None:
    k = default_router.generate_secret(36, "SK_ei")
    with pytest.raises(ValueError):
        SkKeys(Encryption.ENCR_AES_GCM_16, 256, Integrity.AUTH_HMAC_SHA2_256_128, k, k)
    with pytest.raises(ValueError):
        SkKeys(Encryption.ENCR_AES_CBC, 256, Integrity.AUTH_HMAC_SHA2_256_128, k, k)


def test_no_secret_in_reprs(default_router: Router) -> None:
    canary = bytes.fromhex("c0ffee00" * 9)
    key = default_router.import_secret(canary, "SK_ei")
    keys = SkKeys(Encryption.ENCR_AES_GCM_16, 256, Integrity.NONE, key, key)
    text = repr(keys) + repr(SkCrypto(default_router, keys, True))
    assert "c0ffee" not in text.lower()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(m=strategies.inner_message, suite=st.sampled_from(SUITES))
def test_sk_round_trip_generated(default_router: Router, m: Message, suite: tuple[Encryption, int, Integrity]) -> None:
    keys = make_keys(default_router, *suite)
    sealer = SkCrypto(default_router, keys, initiator=m.initiator)
    opener = SkCrypto(default_router, keys, initiator=not m.initiator)
    assert opener.open(sealer.seal(m)) == m


def test_nat_t_marker() -> None:
    assert ike_from_nat_t(b"\x00\x00\x00\x00" + AUTH.serialize()) == AUTH.serialize()
    assert ike_from_nat_t(b"\xff") is None and ike_from_nat_t(b"\x01\x02\x03\x04rest") is None
