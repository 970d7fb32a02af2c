"""Two IntermediateKeyExchanges back to back, over real Router key shares (ECDH / MODP in IKE_SA_INIT,
then ML-KEM or ECDH in each IKE_INTERMEDIATE exchange), with the messages really sealed and opened.
Both sides must end with the same SK_* (checked by use: one seals, the other opens; equal PRF outputs)
and the same IntAuth, under retransmission and late copies of requests and responses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from fipsike.ike.encrypted import SkCrypto, inner_message
from fipsike.ike.errors import IntegrityCheckFailed
from fipsike.ike.intauth import reassembled_intauth_data, received_intauth_data, sent_intauth_data
from fipsike.ike.intermediate import KEM_SIZES, AdditionalKeyExchangeError, IntermediateKeyExchanges
from fipsike.ike.keymat import IkeKeys, derive_ike_keys
from fipsike.ike.message import Message
from fipsike.ike.payloads import KeyExchangePayload, Notify, Payload
from fipsike.ike.proposals import IkeSuite
from fipsike.ike.registry import ExchangeType, NotifyType
from providers import Encryption, Integrity, KeyExchange, Prf, open_router
from providers.router import Router

SPI_I, SPI_R = bytes.fromhex("0102030405060708"), bytes.fromhex("1112131415161718")
GCM256 = (Encryption.ENCR_AES_GCM_16, 256, None)
CBC128 = (Encryption.ENCR_AES_CBC, 128, Integrity.AUTH_HMAC_SHA2_256_128)


@dataclass
class Pair:
    router: Router
    i: IntermediateKeyExchanges
    r: IntermediateKeyExchanges
    keys0: tuple[IkeKeys, IkeKeys]
    mid: int = 1

    # one message each way, as the IKE_INTERMEDIATE task would: build, seal, chain, send
    def request(self) -> tuple[Message, bytes]:
        msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, self.mid, True, False,
                      tuple(self.i.next_request()))
        datagram = SkCrypto(self.router, self.i.sk_keys(), initiator=True).seal(msg)
        self.i.request_sent(sent_intauth_data(msg))
        return msg, datagram

    def answer(self, datagram: bytes) -> bytes:
        crypto = SkCrypto(self.router, self.r.sk_keys(), initiator=False)
        opened, inner = crypto.open_plaintext(datagram)
        reply = self.r.on_request(opened.payloads, received_intauth_data(datagram, inner))
        msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, opened.message_id, False, True, tuple(reply))
        out = crypto.seal(msg)  # sealed under the current keys, before they change
        self.r.response_sent(sent_intauth_data(msg))
        return out

    def take(self, datagram: bytes, crypto: SkCrypto | None = None) -> None:
        crypto = crypto or SkCrypto(self.router, self.i.sk_keys(), initiator=True)
        opened, inner = crypto.open_plaintext(datagram)
        self.i.on_response(opened.payloads, received_intauth_data(datagram, inner))
        self.mid += 1

    def run(self) -> None:
        while not self.i.done:
            _, req = self.request()
            self.take(self.answer(req))


def make_pair(base: KeyExchange, methods: Sequence[KeyExchange], cipher: tuple[Encryption, int, Integrity | None]
              = GCM256, prf: Prf = Prf.PRF_HMAC_SHA2_384) -> Pair:
    r = open_router("fips")
    encr, bits, integ = cipher
    suite = IkeSuite(encr, bits, prf, integ, base)
    ni, nr = r.random(32), r.random(32)
    share_i, share_r = r.ke_generate(base), r.ke_generate(base)
    keys_i = derive_ike_keys(r, prf, encr, bits, integ, ni, nr, r.ke_derive(share_i, share_r.public), SPI_I, SPI_R)
    keys_r = derive_ike_keys(r, prf, encr, bits, integ, ni, nr, r.ke_derive(share_r, share_i.public), SPI_I, SPI_R)
    i = IntermediateKeyExchanges(r, True, suite, keys_i, ni, nr, SPI_I, SPI_R, methods)
    resp = IntermediateKeyExchanges(r, False, suite, keys_r, ni, nr, SPI_I, SPI_R, methods)
    return Pair(r, i, resp, (keys_i, keys_r))


def probe(r: Router, keys: IkeKeys) -> list[bytes]:
    return [r.prf(keys.prf, k, b"probe") for k in (keys.sk_d, keys.sk_pi, keys.sk_pr)]


def assert_same_keys(p: Pair) -> None:
    assert probe(p.router, p.i.keys) == probe(p.router, p.r.keys)
    for sender, receiver, initiator in ((p.i, p.r, True), (p.r, p.i, False)):
        msg = Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, p.mid, initiator, not initiator, (Notify(40960, b"hi"),))
        datagram = SkCrypto(p.router, sender.sk_keys(), initiator=initiator).seal(msg)
        opened = SkCrypto(p.router, receiver.sk_keys(), initiator=not initiator).open(datagram)
        assert opened.notify(40960) == Notify(40960, b"hi")


@pytest.mark.parametrize(("base", "methods", "cipher"), [
    (KeyExchange.ECP_384, [KeyExchange.ML_KEM_1024], GCM256),
    (KeyExchange.ECP_256, [KeyExchange.ML_KEM_768], CBC128),
    (KeyExchange.MODP_3072, [KeyExchange.ML_KEM_768], GCM256),
    (KeyExchange.ECP_384, [KeyExchange.ML_KEM_768, KeyExchange.ECP_256, KeyExchange.ML_KEM_1024], CBC128),
], ids=["ecp384+mlkem1024-gcm", "ecp256+mlkem768-cbc", "modp3072+mlkem768-gcm", "ecp384+3-addke-cbc"])
def test_both_sides_derive_the_same_keys(base: KeyExchange, methods: list[KeyExchange],
                                          cipher: tuple[Encryption, int, Integrity | None]) -> None:
    p = make_pair(base, methods, cipher)
    before = probe(p.router, p.i.keys)
    assert p.i.pending == tuple(methods) and not p.i.done
    p.run()
    assert p.i.done and p.r.done and p.i.completed == len(methods)
    assert_same_keys(p)
    assert probe(p.router, p.i.keys) != before  # SK(n) changed every key
    assert all(k.sk_d.wiped and k.sk_ei.wiped for k in p.keys0)  # IKE_SA_INIT's keys are gone
    ike_auth_mid = p.mid
    assert ike_auth_mid == len(methods) + 1
    octets = p.i.int_auth_octets(ike_auth_mid)
    assert octets == p.r.int_auth_octets(ike_auth_mid)
    assert len(octets) == 2 * 48 + 4 and octets[-4:] == ike_auth_mid.to_bytes(4, "big")
    assert p.i.int_auth.initiator_messages == p.r.int_auth.responder_messages == len(methods)


def test_kem_payload_sizes_follow_fips_203() -> None:
    for method, (ek, ct) in KEM_SIZES.items():
        if method is KeyExchange.ML_KEM_512:
            continue  # not offered by the providers (FIPS 203 level 1); sizes kept for the table
        p = make_pair(KeyExchange.ECP_256, [method])
        msg, req = p.request()
        ke = msg.get(KeyExchangePayload)
        assert ke is not None and ke.group == method and len(ke.data) == ek
        resp = p.answer(req)
        reply = SkCrypto(p.router, p.i.sk_keys(), initiator=True).open(resp).get(KeyExchangePayload)
        assert reply is not None and len(reply.data) == ct
    assert KEM_SIZES[KeyExchange.ML_KEM_768] == (1184, 1088) and KEM_SIZES[KeyExchange.ML_KEM_1024] == (1568, 1568)


def test_retransmitted_request_and_response_change_nothing() -> None:
    p = make_pair(KeyExchange.ECP_384, [KeyExchange.ML_KEM_1024, KeyExchange.ML_KEM_768])
    msg, req = p.request()
    assert p.i.next_request() == list(msg.payloads)  # the initiator resends the same KEi(1)
    p.i.request_sent(sent_intauth_data(msg))  # counted once
    # the responder gets the request twice before answering: one reply, one IntAuth step
    crypto_r = SkCrypto(p.router, p.r.sk_keys(), initiator=False)
    opened, inner = crypto_r.open_plaintext(req)
    data = received_intauth_data(req, inner)
    first = p.r.on_request(opened.payloads, data)
    assert p.r.on_request(opened.payloads, data) == first
    resp_msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, 1, False, True, tuple(first))
    resp = crypto_r.seal(resp_msg)
    p.r.response_sent(sent_intauth_data(resp_msg))
    # the response is lost; the initiator retransmits; the responder answers from its cache
    assert p.r.on_request(opened.payloads, data) == first
    p.r.response_sent(sent_intauth_data(resp_msg))  # no second key update
    assert p.r.completed == 1
    crypto_i = SkCrypto(p.router, p.i.sk_keys(), initiator=True)
    late = crypto_i.open(resp).payloads  # opened while the exchange-1 keys exist (they are wiped after)
    p.take(resp, crypto_i)
    p.i.on_response(late, sent_intauth_data(resp_msg))  # a late copy: ignored
    assert p.i.completed == 1
    # exchange 2; then a late copy of request 1 reaches the responder mid-exchange: its old reply, no change
    _, req2 = p.request()
    assert p.r.on_request(opened.payloads, data) == first
    p.take(p.answer(req2))
    p.i.on_response(late, sent_intauth_data(resp_msg))  # even later, while no request is out: still ignored
    assert p.i.done and p.r.done
    assert_same_keys(p)
    assert p.i.int_auth_octets(3) == p.r.int_auth_octets(3)
    assert p.i.int_auth.initiator_messages == p.r.int_auth.initiator_messages == 2


def test_fragmented_exchange_gives_the_same_intauth() -> None:
    """ML-KEM-1024 over a 576-octet path: the request and response go as SKF fragments (RFC 7383); the
    receiver authenticates the reassembled message (RFC 9242 3.3.2)."""
    p = make_pair(KeyExchange.ECP_384, [KeyExchange.ML_KEM_1024])
    msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, 1, True, False, tuple(p.i.next_request()))
    frags = SkCrypto(p.router, p.i.sk_keys(), initiator=True).seal_fragments(msg, 576)
    assert len(frags) >= 3
    p.i.request_sent(sent_intauth_data(msg))
    crypto_r = SkCrypto(p.router, p.r.sk_keys(), initiator=False)
    opened = [crypto_r.open_fragment(f) for f in frags]
    reply = p.r.on_request(inner_message(opened).payloads, reassembled_intauth_data(opened))
    resp_msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, 1, False, True, tuple(reply))
    resp_frags = crypto_r.seal_fragments(resp_msg, 576)
    p.r.response_sent(sent_intauth_data(resp_msg))
    crypto_i = SkCrypto(p.router, p.i.sk_keys(), initiator=True)
    back = [crypto_i.open_fragment(f) for f in resp_frags]
    p.i.on_response(inner_message(back).payloads, reassembled_intauth_data(back))
    assert_same_keys(p)
    assert p.i.int_auth_octets(2) == p.r.int_auth_octets(2)


def _request_with(p: Pair, payloads: Sequence[Payload]) -> None:
    msg = Message(SPI_I, SPI_R, ExchangeType.IKE_INTERMEDIATE, 1, True, False, tuple(payloads))
    p.r.on_request(payloads, sent_intauth_data(msg))


def test_bad_requests_are_invalid_syntax_and_change_nothing() -> None:
    p = make_pair(KeyExchange.ECP_384, [KeyExchange.ML_KEM_1024])
    share = p.router.ke_generate(KeyExchange.ML_KEM_768)
    for payloads in ([], [KeyExchangePayload(KeyExchange.ML_KEM_768, share.public)],
                     [KeyExchangePayload(KeyExchange.ML_KEM_1024, bytes(1184))],
                     [KeyExchangePayload(KeyExchange.ML_KEM_1024, b"\xff" * 1568)]):  # sized, but no key (FIPS 203 7.2)
        with pytest.raises(AdditionalKeyExchangeError) as err:
            _request_with(p, payloads)
        assert err.value.notify == NotifyType.INVALID_SYNTAX
        assert "\\x" not in str(err.value)
    assert p.r.completed == 0 and p.r.int_auth.initiator_messages == 0
    p.run()  # the real request still goes through
    assert_same_keys(p)


def test_responses_of_the_wrong_form_are_refused() -> None:
    p = make_pair(KeyExchange.ECP_256, [KeyExchange.ML_KEM_768])
    msg, _ = p.request()
    short = [KeyExchangePayload(KeyExchange.ML_KEM_768, bytes(1000))]
    with pytest.raises(AdditionalKeyExchangeError, match="ciphertext of 1000"):
        p.i.on_response(short, b"some response")
    assert p.i.completed == 0 and p.i.int_auth.responder_messages == 0


def test_a_tampered_ciphertext_leaves_keys_that_do_not_match() -> None:
    """ML-KEM decapsulation rejects implicitly (FIPS 203 6.3): a changed ciphertext gives the initiator
    another secret, so the next message under the new keys fails its ICV: no silent success."""
    p = make_pair(KeyExchange.ECP_384, [KeyExchange.ML_KEM_1024])
    msg, req = p.request()
    crypto_r = SkCrypto(p.router, p.r.sk_keys(), initiator=False)
    opened, inner = crypto_r.open_plaintext(req)
    reply = p.r.on_request(opened.payloads, received_intauth_data(req, inner))
    ke = reply[0]
    assert isinstance(ke, KeyExchangePayload)
    tampered = [KeyExchangePayload(ke.group, bytes([ke.data[0] ^ 1]) + ke.data[1:])]
    p.r.response_sent(b"response")
    p.i.on_response(tampered, b"response")
    assert probe(p.router, p.i.keys) != probe(p.router, p.r.keys)
    msg2 = Message(SPI_I, SPI_R, ExchangeType.IKE_AUTH, 2, False, True, (Notify(40960),))
    sealed = SkCrypto(p.router, p.r.sk_keys(), initiator=False).seal(msg2)
    with pytest.raises(IntegrityCheckFailed):
        SkCrypto(p.router, p.i.sk_keys(), initiator=True).open(sealed)


def test_calls_out_of_order() -> None:
    p = make_pair(KeyExchange.ECP_256, [KeyExchange.ML_KEM_768])
    with pytest.raises(AdditionalKeyExchangeError):
        p.r.next_request()
    with pytest.raises(AdditionalKeyExchangeError):
        p.i.on_request([], b"x")
    with pytest.raises(AdditionalKeyExchangeError):
        p.i.request_sent(b"x")  # before next_request
    with pytest.raises(AdditionalKeyExchangeError):
        p.i.on_response([], b"x")  # nothing outstanding
    with pytest.raises(AdditionalKeyExchangeError):
        p.r.response_sent(b"x")
    with pytest.raises(AdditionalKeyExchangeError):
        p.i.int_auth_octets(2)  # IKE_AUTH before the exchange
    p.run()
    with pytest.raises(AdditionalKeyExchangeError, match="after all 1"):
        p.i.next_request()
    with pytest.raises(ValueError, match="NONE"):
        IntermediateKeyExchanges(p.router, True, p.i.suite, p.i.keys, b"", b"", SPI_I, SPI_R, [KeyExchange.NONE])
    assert "pending=[]" in repr(p.i) and "1/1" in repr(p.i)


def test_no_additional_exchange_is_done_at_once() -> None:
    p = make_pair(KeyExchange.ECP_256, [])
    assert p.i.done and p.i.int_auth_octets(1) == b""  # AUTH octets stay RFC 7296's


def test_from_negotiation_to_keys() -> None:
    """The pieces as the IKE_SA_INIT / IKE_INTERMEDIATE tasks will chain them: the responder selects
    from an offer with ADDKE, the initiator checks the reply, both take additional_key_exchanges() and
    run them; INTERMEDIATE_EXCHANGE_SUPPORTED is an empty status notify (RFC 9242 3.1)."""
    from fipsike.ike.proposals import Protocol, additional_key_exchanges, parse_proposal, select, verify_choice
    from tests.ike.intermediate.test_addke_negotiation import allowed

    spec = parse_proposal("aes256gcm16-prfsha384-ecp384", Protocol.IKE)
    offer = spec.with_additional_key_exchanges({1: [KeyExchange.ML_KEM_1024], 2: [KeyExchange.ML_KEM_768,
                                                                                     KeyExchange.NONE]})
    offered = [offer.to_proposal(1, SPI_I)]
    chosen = select(offered, [spec.with_additional_key_exchanges({1: [KeyExchange.ML_KEM_1024]})], allowed,
                    Protocol.IKE, additional=True)
    assert verify_choice([chosen], offered, allowed) == chosen
    methods = additional_key_exchanges(chosen)
    assert methods == (KeyExchange.ML_KEM_1024,)  # ADDKE2 answered NONE: one exchange
    p = make_pair(KeyExchange.ECP_384, methods)
    p.run()
    assert_same_keys(p)
    n = Notify.intermediate_exchange_supported()
    assert Notify.parse_body(n.body(), 0, len(n.body())) == n and n.body() == b"\x00\x00\x40\x36"
