"""RFC 9242 3.3.2: the A | P octets of IKE_INTERMEDIATE messages and the IntAuth chain.

RFC 9242 publishes no test vectors, so the expected octets are laid out here by hand from RFC 7296
3.1 / 3.2 / 3.4 / 3.10 / 3.14 and RFC 9242 figure 1, and the chain is recomputed with the standard
library's HMAC. The same A | P must come out of the message as we send it, as the peer receives it
whole (AES-GCM and AES-CBC), and as it reassembles it from fragments."""

from __future__ import annotations

import hmac
import struct

import pytest

from fipsike.ike.encrypted import SkCrypto, SkKeys
from fipsike.ike.intauth import (
    IntAuth,
    IntAuthError,
    intauth_data,
    reassembled_intauth_data,
    received_intauth_data,
    sent_intauth_data,
)
from fipsike.ike.keymat import IkeKeys
from fipsike.ike.message import Message
from fipsike.ike.payloads import KeyExchangePayload, Notify
from fipsike.ike.registry import ExchangeType, KeyExchange, NotifyType
from providers import Encryption, Integrity, Prf, open_router
from providers.api import Provider
from tests.ike.codec.sk_helpers import SUITE_IDS, SUITES, make_keys

SPI_I, SPI_R = bytes.fromhex("a1a2a3a4a5a6a7a8"), bytes.fromhex("b1b2b3b4b5b6b7b8")
PK = bytes(range(256)) * 4 + bytes(160)  # 1184 octets: an ML-KEM-768 encapsulation key's size
N_DATA = b"\x01\x02"


def request(mid: int = 1) -> Message:
    return Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, mid, True, False,
                   (KeyExchangePayload(KeyExchange.ML_KEM_768, PK), Notify(40960, N_DATA)))


def expected_a_p(mid: int = 1, flags: int = 0x08) -> bytes:
    """By hand: IKE header (Next Payload SK = 46, version 2.0, exchange 43, Adjusted Length), SK generic
    header (Next Payload KE = 34, Adjusted Payload Length), then KE and N in plaintext."""
    ke = struct.pack(">BBH", 41, 0, 8 + len(PK)) + struct.pack(">HH", 36, 0) + PK
    n = struct.pack(">BBH", 0, 0, 8 + len(N_DATA)) + struct.pack(">BBH", 0, 0, 40960) + N_DATA
    inner = ke + n
    header = SPI_I + SPI_R + struct.pack(">BBBBII", 46, 0x20, 43, flags, mid, 28 + 4 + len(inner))
    return header + struct.pack(">BBH", 34, 0, 4 + len(inner)) + inner


def test_sent_message_a_p_by_hand() -> None:
    assert sent_intauth_data(request()) == expected_a_p()
    assert sent_intauth_data(request(7)) == expected_a_p(7)


@pytest.mark.parametrize(("encr", "bits", "integ"), SUITES, ids=SUITE_IDS)
def test_received_whole_and_fragmented_give_the_sent_octets(encr: Encryption, bits: int, integ: Integrity) -> None:
    """The adjusted lengths make A | P independent of the cipher's IV, padding and ICV, and of
    fragmentation (RFC 9242 3.3.2)."""
    r = open_router("fips")
    keys = make_keys(r, encr, bits, integ)
    sender, receiver = SkCrypto(r, keys, initiator=True), SkCrypto(r, keys, initiator=False)
    datagram = sender.seal(request())
    assert len(datagram) > len(expected_a_p())  # the wire form carries IV and ICV; A | P does not
    opened, inner = receiver.open_plaintext(datagram)
    assert opened.get(KeyExchangePayload) == KeyExchangePayload(KeyExchange.ML_KEM_768, PK)
    assert received_intauth_data(datagram, inner) == expected_a_p()

    fragments = sender.seal_fragments(request(), 500)
    assert len(fragments) >= 3
    opened_fragments = [receiver.open_fragment(f) for f in fragments]
    assert reassembled_intauth_data(opened_fragments) == expected_a_p()
    with pytest.raises(IntAuthError):
        reassembled_intauth_data(opened_fragments[1:])
    with pytest.raises(IntAuthError):
        reassembled_intauth_data(list(reversed(opened_fragments)))


def test_clear_payloads_before_sk_are_part_of_a() -> None:
    """RFC 9242 figure 1, "Unencrypted payloads (if any)": taken as received, with the lengths adjusted."""
    r = open_router("fips")
    key = r.import_secret(bytes(range(36)), "SK_er")
    clear = struct.pack(">BBH", 46, 0, 8) + struct.pack(">BBH", 0, 0, 40961)  # N(40961), then SK
    inner = struct.pack(">BBH", 0, 0, 8) + struct.pack(">BBH", 0, 0, 40962)  # N(40962)
    iv = bytes(7) + b"\x01"
    body_len = 28 + len(clear) + 4 + 8 + len(inner) + 1 + 16
    header = SPI_I + SPI_R + struct.pack(">BBBBII", 41, 0x20, 43, 0x20, 1, body_len)
    prefix = header + clear + struct.pack(">BBH", 41, 0, 4 + 8 + len(inner) + 1 + 16)
    datagram = prefix + iv + r.aead_seal(Encryption.ENCR_AES_GCM_16, key, iv, inner + b"\x00", prefix)
    keys = SkKeys(Encryption.ENCR_AES_GCM_16, 256, Integrity.NONE, key, key)
    opened, got_inner = SkCrypto(r, keys, initiator=True).open_plaintext(datagram)
    assert [n.notify_type for n in opened.notifies()] == [40961, 40962]
    want = (header[:24] + (28 + len(clear) + 4 + len(inner)).to_bytes(4, "big") + clear
            + struct.pack(">BBH", 41, 0, 4 + len(inner)) + inner)
    assert received_intauth_data(datagram, got_inner) == want


def test_intauth_data_refuses_what_is_no_message() -> None:
    with pytest.raises(IntAuthError):
        intauth_data(bytes(20), b"")
    with pytest.raises(IntAuthError):
        received_intauth_data(b"\x00" * 40, b"")
    with pytest.raises(IntAuthError):  # a message with no SK payload
        received_intauth_data(Message(SPI_I, SPI_R, 43, 1, True, False, (Notify(40960),)).serialize(), b"")


def _keys(r: Provider, pi: bytes, pr: bytes) -> IkeKeys:
    k = r.generate_secret(32, "x")
    return IkeKeys(Prf.PRF_HMAC_SHA2_256, k, None, None, k, k, r.import_secret(pi, "SK_pi"),
                   r.import_secret(pr, "SK_pr"))


def test_chain_and_octets_against_hmac() -> None:
    """IntAuth_i1 = prf(SK_pi1, A|P), IntAuth_i2 = prf(SK_pi2, IntAuth_i1 | A|P) (each under the keys of
    its own exchange), IntAuth = IntAuth_i2 | IntAuth_r2 | IKE_AUTH_MID."""
    r = open_router("fips")
    pi1, pr1, pi2, pr2 = (bytes([b]) * 32 for b in (1, 2, 3, 4))
    req1, resp1, req2, resp2 = b"request one", b"response one", b"request two", b"response two"
    chain = IntAuth(Prf.PRF_HMAC_SHA2_256)
    assert chain.octets(1) == b""  # no IKE_INTERMEDIATE: AUTH octets are RFC 7296's
    k1, k2 = _keys(r, pi1, pr1), _keys(r, pi2, pr2)
    chain.add(r, k1, req1, sent_by_initiator=True)
    with pytest.raises(IntAuthError):  # a request without its response
        chain.octets(2)
    chain.add(r, k1, resp1, sent_by_initiator=False)
    chain.add(r, k2, req2, sent_by_initiator=True)
    chain.add(r, k2, resp2, sent_by_initiator=False)

    def h(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, "sha256").digest()

    i1, r1 = h(pi1, req1), h(pr1, resp1)
    want = h(pi2, i1 + req2) + h(pr2, r1 + resp2) + (3).to_bytes(4, "big")
    assert chain.octets(3) == want
    assert chain.initiator.hex() not in repr(chain) and repr(chain) == "IntAuth(PRF_HMAC_SHA2_256, 2/2 messages)"
    with pytest.raises(IntAuthError):
        chain.octets(2**32)


def test_initiator_and_responder_ike_header_flags_differ() -> None:
    """The I and R flags are part of A: the responder's message is no initiator's."""
    resp = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, 1, False, True,
                   (KeyExchangePayload(KeyExchange.ML_KEM_768, PK), Notify(40960, N_DATA)))
    assert sent_intauth_data(resp) == expected_a_p(flags=0x20)
    assert NotifyType.INTERMEDIATE_EXCHANGE_SUPPORTED == 16438  # RFC 9242 3.1 (IANA)
    assert ExchangeType.IKE_INTERMEDIATE == 43  # RFC 9242 3.2 (IANA)


def test_auth_signed_octets_end_with_intauth() -> None:
    """InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI | IntAuth (RFC 9242 3.3.2): the
    IKE_AUTH task appends IntAuth to fipsike.ike.auth.signed_octets' result, for both AUTH payloads."""
    from fipsike.ike.auth import signed_octets

    r = open_router("fips")
    pi = bytes([9]) * 32
    keys = _keys(r, pi, bytes([8]) * 32)
    chain = IntAuth(Prf.PRF_HMAC_SHA2_256)
    chain.add(r, keys, b"A|P of request 1", sent_by_initiator=True)
    chain.add(r, keys, b"A|P of response 1", sent_by_initiator=False)
    real1, nonce_r, id_data = b"IKE_SA_INIT request octets", bytes(range(32)), b"moon.example"
    octets = signed_octets(r, Prf.PRF_HMAC_SHA2_256, keys.sk_pi, real1, nonce_r, 2, id_data) + chain.octets(2)
    maced_id = hmac.new(pi, bytes([2, 0, 0, 0]) + id_data, "sha256").digest()
    int_auth = (hmac.new(pi, b"A|P of request 1", "sha256").digest()
                + hmac.new(bytes([8]) * 32, b"A|P of response 1", "sha256").digest() + b"\x00\x00\x00\x02")
    assert octets == real1 + nonce_r + maced_id + int_auth
