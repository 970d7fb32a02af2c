"""CREATE_CHILD_SA followed by IKE_FOLLOWUP_KE exchanges (RFC 9370 2.2.4), back to back over real Router
key shares: SK(0) from the CREATE_CHILD_SA's ECDH, SK(1..n) from ML-KEM / ECDH, the link notify
(ADDITIONAL_KEY_EXCHANGE 16441) chaining the exchanges, STATE_NOT_FOUND (47) for an unknown link, and
both sides ending with the same Child SA KEYMAT and the same rekeyed IKE SA keys (checked by use)."""

from __future__ import annotations

import pytest

from fipsike.ike.followup_ke import LINK_SIZE, FollowupKeyExchanges, StateNotFound, link_of
from fipsike.ike.intermediate import AdditionalKeyExchangeError
from fipsike.ike.keymat import derive_followup_child_keys, derive_followup_rekeyed_ike_keys
from fipsike.ike.payloads import KeyExchangePayload, Notify
from fipsike.ike.registry import ExchangeType, NotifyType
from providers import Encryption, Integrity, KeyExchange, Prf
from providers.router import Router

GCM = Encryption.ENCR_AES_GCM_16
PRF = Prf.PRF_HMAC_SHA2_384
SK_D = bytes(range(48))


def pair(router: Router, methods: list[KeyExchange]) -> tuple[FollowupKeyExchanges, FollowupKeyExchanges]:
    a, b = router.ke_generate(KeyExchange.ECP_384), router.ke_generate(KeyExchange.ECP_384)
    i = FollowupKeyExchanges(router, True, methods, router.ke_derive(a, b.public))
    r = FollowupKeyExchanges(router, False, methods, router.ke_derive(b, a.public))
    i.on_create_response([Notify(40960), r.create_response_notify()])
    return i, r


def run(i: FollowupKeyExchanges, r: FollowupKeyExchanges) -> int:
    exchanges = 0
    while not i.done:
        request = i.next_request()
        assert link_of(request) is not None
        reply = r.on_request(request)
        assert (link_of(reply) is None) == r.done  # the last response carries no link
        i.on_response(reply)
        exchanges += 1
    return exchanges


@pytest.mark.parametrize("methods", [[KeyExchange.ML_KEM_768], [KeyExchange.ML_KEM_1024, KeyExchange.ECP_256,
                                                                 KeyExchange.ML_KEM_768]])
def test_child_sa_keymat_agrees(router: Router, methods: list[KeyExchange]) -> None:
    i, r = pair(router, methods)
    assert run(i, r) == len(methods) and r.done
    ni, nr = router.random(32), router.random(32)
    keys = []
    for side in (i, r):
        sk0, sk = side.secrets()
        assert len(sk) == len(methods)
        keys.append(derive_followup_child_keys(router, PRF, router.import_secret(SK_D, "SK_d"), GCM, 256, None,
                                               ni, nr, sk0, sk))
    iv = bytes(8)
    for name in ("encr_i", "encr_r"):
        sealed = router.aead_seal(GCM, getattr(keys[0], name), iv, b"esp payload", b"spi|seq")
        assert router.aead_open(GCM, getattr(keys[1], name), iv, sealed, b"spi|seq") == b"esp payload"
    # the secrets are all needed: leaving out the last one gives other keys
    sk0, sk = i.secrets()
    fewer = derive_followup_child_keys(router, PRF, router.import_secret(SK_D, "SK_d"), GCM, 256, None, ni, nr,
                                       sk0, sk[:-1] if len(sk) > 1 else [])
    sealed = router.aead_seal(GCM, fewer.encr_i, iv, b"esp payload", b"")
    with pytest.raises(Exception, match="ICV"):
        router.aead_open(GCM, keys[1].encr_i, iv, sealed, b"")


def test_ike_sa_rekey_agrees(router: Router) -> None:
    i, r = pair(router, [KeyExchange.ML_KEM_1024])
    run(i, r)
    ni, nr, spi_i, spi_r = router.random(32), router.random(32), router.random(8), router.random(8)
    new = []
    for side in (i, r):
        sk0, sk = side.secrets()
        assert sk0 is not None
        new.append(derive_followup_rekeyed_ike_keys(router, PRF, router.import_secret(SK_D, "SK_d"), PRF,
                                                    Encryption.ENCR_AES_CBC, 256, Integrity.AUTH_HMAC_SHA2_384_192,
                                                    sk0, ni, nr, spi_i, spi_r, sk))
    for name in ("sk_d", "sk_pi", "sk_pr"):
        assert router.prf(PRF, getattr(new[0], name), b"p") == router.prf(PRF, getattr(new[1], name), b"p")
    data = router.random(32)
    ai = [k.sk_ai for k in new]
    assert ai[0] is not None and ai[1] is not None
    assert (router.integrity_icv(Integrity.AUTH_HMAC_SHA2_384_192, ai[0], data)
            == router.integrity_icv(Integrity.AUTH_HMAC_SHA2_384_192, ai[1], data))


def test_retransmissions_and_late_copies(router: Router) -> None:
    i, r = pair(router, [KeyExchange.ML_KEM_768, KeyExchange.ML_KEM_1024])
    req1 = i.next_request()
    assert i.next_request() == req1
    rep1 = r.on_request(req1)
    assert r.on_request(req1) == rep1  # retransmitted request: the same reply, no second SK(1)
    i.on_response(rep1)
    i.on_response(rep1)  # late copy
    assert i.completed == r.completed == 1
    req2 = i.next_request()
    assert link_of(req2) == link_of(rep1) != link_of(req1)
    assert r.on_request(req1) == rep1  # a late copy of request 1 during exchange 2
    i.on_response(r.on_request(req2))
    assert i.done and r.done
    assert r.on_request(req2) == r.on_request(req2)
    sk_i, sk_r = i.secrets()[1], r.secrets()[1]
    assert [router.prf(PRF, k, b"p") for k in sk_i] == [router.prf(PRF, k, b"p") for k in sk_r]


def test_unknown_link_is_state_not_found(router: Router) -> None:
    i, r = pair(router, [KeyExchange.ML_KEM_768])
    req = i.next_request()
    forged = [req[0], Notify(int(NotifyType.ADDITIONAL_KEY_EXCHANGE), b"\x00" * LINK_SIZE)]
    with pytest.raises(StateNotFound) as err:
        r.on_request(forged)
    assert err.value.notify == NotifyType.STATE_NOT_FOUND == 47  # RFC 9370 (IANA)
    with pytest.raises(StateNotFound):
        r.on_request(req[:1])  # no link at all
    assert r.completed == 0
    run(i, r)
    assert NotifyType.ADDITIONAL_KEY_EXCHANGE == 16441 and ExchangeType.IKE_FOLLOWUP_KE == 44  # RFC 9370 (IANA)


def test_malformed_messages(router: Router) -> None:
    i, r = pair(router, [KeyExchange.ML_KEM_768, KeyExchange.ML_KEM_768])
    req = i.next_request()
    with pytest.raises(AdditionalKeyExchangeError):  # an SPI on the link notify
        link_of([Notify(int(NotifyType.ADDITIONAL_KEY_EXCHANGE), b"x", 3, b"\x01\x02\x03\x04")])
    with pytest.raises(AdditionalKeyExchangeError):  # two links
        link_of([req[1], req[1]])
    with pytest.raises(AdditionalKeyExchangeError):  # the wrong method
        r.on_request([KeyExchangePayload(KeyExchange.ML_KEM_1024, bytes(1568)), req[1]])
    reply = r.on_request(req)
    with pytest.raises(AdditionalKeyExchangeError, match="link"):  # more to come, but no link
        i.on_response(reply[:1])
    i.on_response(reply)
    with pytest.raises(AdditionalKeyExchangeError):
        i.secrets()  # one of two done
    with pytest.raises(AdditionalKeyExchangeError):
        FollowupKeyExchanges(router, True, [KeyExchange.ML_KEM_768], None).next_request()  # no link yet
    with pytest.raises(ValueError):
        FollowupKeyExchanges(router, True, [], None)
    with pytest.raises(AdditionalKeyExchangeError):
        i.on_create_response([])
    i.wipe()
    assert "1/2" in repr(i)
