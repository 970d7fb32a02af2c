"""Additional key exchanges in IKE_INTERMEDIATE exchanges (RFC 9370 2.2.2 over RFC 9242) for one IKE SA.

    HDR(IKE_INTERMEDIATE), SK {KEi(n)}  -->
                                  <--  HDR(IKE_INTERMEDIATE), SK {KEr(n)}

One exchange per negotiated ADDKE method, in ADDKE order. Exchange n is protected by the (n-1) keys
(n = 1: IKE_SA_INIT's), and both of its messages are chained into IntAuth under those same keys
(RFC 9242 3.3.1, 3.3.2); then SK(n) gives the n keys (fipsike.ike.keymat.derive_intermediate_keys).
The initiator switches after the response, the responder after sending it.

A KEM method (ML-KEM, FIPS 203) has the initiator send the encapsulation key and the responder the
ciphertext; a DH/ECDH method has both send their public values. The task that runs the exchanges calls:

    initiator: next_request() -> payloads; request_sent(A|P); on_response(payloads, A|P) -> new keys
    responder: on_request(payloads, A|P) -> payloads; response_sent(A|P) -> new keys

where A|P comes from fipsike.ike.intauth (sent_intauth_data / received_intauth_data /
reassembled_intauth_data). Each call is idempotent for the same message: a retransmitted request or
response changes nothing (a responder answers it with its cached datagram: the keys have moved on).
"""

from __future__ import annotations

from collections.abc import Sequence

from fipsike.ike.encrypted import SkKeys
from fipsike.ike.errors import InvalidSyntax
from fipsike.ike.intauth import IntAuth
from fipsike.ike.keymat import IkeKeys, derive_intermediate_keys
from fipsike.ike.payloads import KeyExchangePayload, Payload
from fipsike.ike.proposals import IkeSuite
from providers.algorithms import Integrity, KeyExchange
from providers.api import IkeRouter
from providers.errors import InvalidKeyShare
from providers.handles import KeyShare, SecretKey

# FIPS 203 section 8, table 3: (encapsulation key, ciphertext) octets; the KE Data of KEi(n) / KEr(n).
KEM_SIZES: dict[KeyExchange, tuple[int, int]] = {
    KeyExchange.ML_KEM_512: (800, 768),
    KeyExchange.ML_KEM_768: (1184, 1088),
    KeyExchange.ML_KEM_1024: (1568, 1568),
}
MAX_ADDITIONAL = 7  # ADDKE1..ADDKE7 (RFC 9370 2.2.1): the hard cap RFC 9242 5 asks for


class AdditionalKeyExchangeError(InvalidSyntax):
    """A KE payload missing, of another method than negotiated, or with a value of the wrong form
    (answer INVALID_SYNTAX); or a call out of order."""


def ke_data_of(payloads: Sequence[Payload], method: KeyExchange, n: int, role: str) -> bytes:
    """The data of the one KE payload of additional exchange n's `role` ("request" / "response"), checked
    against the negotiated method and, for ML-KEM, the FIPS 203 size of what that role sends."""
    kes = [p for p in payloads if isinstance(p, KeyExchangePayload)]
    if len(kes) != 1:
        raise AdditionalKeyExchangeError(f"IKE_INTERMEDIATE {role} {n} carries {len(kes)} KE payloads, not 1")
    if kes[0].group != method:
        raise AdditionalKeyExchangeError(f"IKE_INTERMEDIATE {role} {n} has KE method {kes[0].group}, "
                                         f"negotiated {method.name}")
    data = kes[0].data
    sizes = KEM_SIZES.get(method)
    if sizes is not None and len(data) != sizes[0 if role == "request" else 1]:
        what = "encapsulation key" if role == "request" else "ciphertext"
        raise AdditionalKeyExchangeError(f"{method.name} {what} of {len(data)} octets (FIPS 203 8)")
    return data


class IntermediateKeyExchanges:
    """The pending additional key exchanges of one IKE SA, its current keys and its IntAuth."""

    def __init__(self, router: IkeRouter, initiator: bool, suite: IkeSuite, keys: IkeKeys, ni: bytes, nr: bytes,
                 spi_i: bytes, spi_r: bytes, methods: Sequence[KeyExchange]) -> None:
        if len(methods) > MAX_ADDITIONAL:
            raise ValueError(f"{len(methods)} additional key exchanges; RFC 9370 allows {MAX_ADDITIONAL}")
        if KeyExchange.NONE in methods:
            raise ValueError("NONE is no key exchange: leave it out (proposals.additional_key_exchanges does)")
        self.router = router
        self.initiator = initiator
        self.suite = suite
        self.methods = tuple(methods)
        self.int_auth = IntAuth(suite.prf)
        self._keys = keys
        self._ni, self._nr, self._spi_i, self._spi_r = ni, nr, spi_i, spi_r
        self._n = 0  # exchanges completed
        self._share: KeyShare | None = None  # initiator: our value for exchange n+1
        self._request: bytes | None = None  # A|P of exchange n+1's request, once chained in
        self._reply: list[Payload] | None = None  # responder: the reply to self._request
        self._shared: SecretKey | None = None  # responder: SK(n+1) until the response is sent
        # every completed exchange (at most 7): a late copy of any of them is recognised, never re-run
        self._answered: dict[bytes, list[Payload]] = {}  # responder: request A|P -> our reply
        self._taken: set[bytes] = set()  # initiator: response A|P

    # --- state ---------------------------------------------------------------------------------
    @property
    def keys(self) -> IkeKeys:
        """The current SK_*: they protect the next IKE_INTERMEDIATE exchange, or IKE_AUTH once done."""
        return self._keys

    @property
    def done(self) -> bool:
        return self._n == len(self.methods)

    @property
    def completed(self) -> int:
        return self._n

    @property
    def pending(self) -> tuple[KeyExchange, ...]:
        """The methods still to run, the next first."""
        return self.methods[self._n:]

    def sk_keys(self) -> SkKeys:
        """The SK payload protection under the current keys (fipsike.ike.encrypted.SkCrypto takes it)."""
        k, s = self._keys, self.suite
        return SkKeys(s.encr, s.encr_key_bits, s.integ or Integrity.NONE, k.sk_ei, k.sk_er, k.sk_ai, k.sk_ar)

    def int_auth_octets(self, ike_auth_mid: int) -> bytes:
        """IntAuth for both AUTH signed octets (RFC 9242 3.3.2); only once every exchange is done."""
        if not self.done:
            raise AdditionalKeyExchangeError(f"IKE_AUTH before additional key exchange {self._n + 1}")
        return self.int_auth.octets(ike_auth_mid)

    def _next_method(self, role: str) -> KeyExchange:
        if self.done:
            raise AdditionalKeyExchangeError(f"an IKE_INTERMEDIATE {role} after all {len(self.methods)} "
                                             "additional key exchanges")
        return self.methods[self._n]

    def _advance(self, shared: SecretKey) -> IkeKeys:
        """SK(n) -> the n keys (RFC 9370 2.2.2); the (n-1) keys are wiped: nothing outstanding needs them."""
        s = self.suite
        try:
            new = derive_intermediate_keys(self.router, self._keys, s.encr, s.encr_key_bits, s.integ, shared,
                                           self._ni, self._nr, self._spi_i, self._spi_r)
        finally:
            shared.wipe()
        old, self._keys = self._keys, new
        old.wipe()
        self._n += 1
        self._request = None
        return new

    # --- initiator -------------------------------------------------------------------------------
    def next_request(self) -> list[Payload]:
        """KEi(n+1): the same payloads until its response is taken (a retransmission resends them)."""
        if not self.initiator:
            raise AdditionalKeyExchangeError("the responder sends no IKE_INTERMEDIATE request")
        method = self._next_method("request")
        if self._share is None:
            self._share = self.router.ke_generate(method)
        return [KeyExchangePayload(method, self._share.public)]

    def request_sent(self, data: bytes) -> None:
        """IntAuth_i(n+1) over the request's A|P, under the current SK_pi; once per request."""
        if self._share is None:
            raise AdditionalKeyExchangeError("request_sent before next_request")
        if self._request is not None:
            if self._request != data:
                raise AdditionalKeyExchangeError("a second, different request for one exchange")
            return
        self.int_auth.add(self.router, self._keys, data, sent_by_initiator=True)
        self._request = data

    def on_response(self, payloads: Sequence[Payload], data: bytes) -> IkeKeys:
        """KEr(n+1): IntAuth_r(n+1) under the current SK_pr, then SK(n+1) and the new keys.

        A retransmitted copy of the response just taken returns the current keys and changes nothing."""
        if data in self._taken:
            return self._keys  # checked first: a late copy must never be taken for the next response
        if self._request is None:
            raise AdditionalKeyExchangeError("an IKE_INTERMEDIATE response with no request outstanding")
        assert self._share is not None
        method = self.methods[self._n]
        peer = ke_data_of(payloads, method, self._n + 1, "response")
        try:
            shared = self.router.ke_derive(self._share, peer)
        except InvalidKeyShare as e:
            raise AdditionalKeyExchangeError(f"{method.name} response refused: {e}") from None
        # the peer's value is sound: only now does the response enter IntAuth
        self.int_auth.add(self.router, self._keys, data, sent_by_initiator=False)
        self._share.wipe()
        self._share = None
        self._taken.add(data)
        return self._advance(shared)

    # --- responder -------------------------------------------------------------------------------
    def on_request(self, payloads: Sequence[Payload], data: bytes) -> list[Payload]:
        """KEi(n+1) -> KEr(n+1), IntAuth_i(n+1) under the current SK_pi. The keys change only at
        response_sent. The same request again (or the last completed one) gets the same reply."""
        if self.initiator:
            raise AdditionalKeyExchangeError("the initiator answers no IKE_INTERMEDIATE request")
        done = self._answered.get(data)
        if done is not None:
            return list(done)
        if self._request is not None:
            if data == self._request and self._reply is not None:
                return list(self._reply)
            raise AdditionalKeyExchangeError("a new IKE_INTERMEDIATE request before the last one was answered")
        method = self._next_method("request")
        peer = ke_data_of(payloads, method, self._n + 1, "request")
        try:
            if method.is_kem:
                ciphertext, shared = self.router.ke_encapsulate(method, peer)
                reply: list[Payload] = [KeyExchangePayload(method, ciphertext)]
            else:
                share = self.router.ke_generate(method)
                try:
                    shared = self.router.ke_derive(share, peer)
                finally:
                    share.wipe()
                reply = [KeyExchangePayload(method, share.public)]
        except InvalidKeyShare as e:
            raise AdditionalKeyExchangeError(f"{method.name} request refused: {e}") from None
        self.int_auth.add(self.router, self._keys, data, sent_by_initiator=True)
        self._request, self._reply, self._shared = data, reply, shared
        return list(reply)

    def response_sent(self, data: bytes) -> IkeKeys:
        """IntAuth_r(n+1) over our response's A|P under the current SK_pr, then the n+1 keys.
        Seal the response with the current keys BEFORE calling this."""
        if self._shared is None or self._request is None or self._reply is None:
            if self._answered and self._request is None:
                return self._keys  # the response to a retransmission: already counted
            raise AdditionalKeyExchangeError("response_sent with no request answered")
        self.int_auth.add(self.router, self._keys, data, sent_by_initiator=False)
        shared, self._shared = self._shared, None
        self._answered[self._request] = self._reply
        self._reply = None
        return self._advance(shared)

    def wipe(self) -> None:
        """Drop every secret held for unfinished exchanges (the SA is going away)."""
        for s in (self._share, self._shared):
            if s is not None:
                s.wipe()
        self._share = self._shared = None

    def __repr__(self) -> str:
        role = "initiator" if self.initiator else "responder"
        return (f"IntermediateKeyExchanges({role}, {self._n}/{len(self.methods)} done, "
                f"pending={[m.name for m in self.pending]})")
