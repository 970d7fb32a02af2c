"""Additional key exchanges after a CREATE_CHILD_SA: the IKE_FOLLOWUP_KE exchanges (RFC 9370 2.2.4).

    HDR(CREATE_CHILD_SA), SK {SA, Ni, KEi} -->
                          <-- HDR(CREATE_CHILD_SA), SK {SA, Nr, KEr, N(ADDITIONAL_KEY_EXCHANGE)(link1)}
    HDR(IKE_FOLLOWUP_KE), SK {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link1)} -->
                          <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(1), N(ADDITIONAL_KEY_EXCHANGE)(link2)}
    ...                   <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(n)}        (the last carries no link)

The link is opaque to the initiator; the responder makes it (random here) to find its state, and
answers STATE_NOT_FOUND to a link it does not know. The IKE SA's keys protect every message and do not
change; the new Child SA's KEYMAT (or the new IKE SA's SKEYSEED) takes SK(0) | Ni | Nr | SK(1) | ...
| SK(n) once all are done (fipsike.ike.keymat.derive_followup_*). RFC 9370 2.2.4 asks the responder to
drop the state when the next request does not come within a reasonable time (5-20 s):
RESPONDER_WAIT is that deadline for the task's timer.
"""

from __future__ import annotations

from collections.abc import Sequence

from fipsike.ike.errors import CodecError
from fipsike.ike.intermediate import MAX_ADDITIONAL, AdditionalKeyExchangeError, ke_data_of
from fipsike.ike.payloads import KeyExchangePayload, Notify, Payload
from fipsike.ike.registry import NotifyType
from providers.algorithms import KeyExchange
from providers.api import IkeRouter
from providers.errors import InvalidKeyShare
from providers.handles import KeyShare, SecretKey

LINK_SIZE = 16  # our links' length; the RFC leaves it to the responder
RESPONDER_WAIT = 20.0  # seconds (RFC 9370 2.2.4: "5-20 seconds")


class StateNotFound(CodecError):
    """An IKE_FOLLOWUP_KE request whose link names no state (RFC 9370 2.2.4: answer STATE_NOT_FOUND)."""

    notify = NotifyType.STATE_NOT_FOUND


def link_of(payloads: Sequence[Payload]) -> bytes | None:
    """The ADDITIONAL_KEY_EXCHANGE link in a message, or None (the last response carries none)."""
    links = [p for p in payloads if isinstance(p, Notify) and p.notify_type == NotifyType.ADDITIONAL_KEY_EXCHANGE]
    if len(links) > 1:
        raise AdditionalKeyExchangeError("more than one ADDITIONAL_KEY_EXCHANGE notify")
    if links and (links[0].protocol or links[0].spi or not links[0].data):
        # RFC 9370 2.2.4: Protocol ID and SPI Size 0, the link as data
        raise AdditionalKeyExchangeError("ADDITIONAL_KEY_EXCHANGE with an SPI or without a link")
    return links[0].data if links else None


class FollowupKeyExchanges:
    """The additional key exchanges of one CREATE_CHILD_SA (a new or rekeyed Child SA, or an IKE SA
    rekey). `shared` is SK(0), the CREATE_CHILD_SA's own KE secret (None without a KE payload); this
    object owns it and the SK(1..n) it gathers until `secrets()` hands them over."""

    def __init__(self, router: IkeRouter, initiator: bool, methods: Sequence[KeyExchange],
                 shared: SecretKey | None) -> None:
        if not 1 <= len(methods) <= MAX_ADDITIONAL or KeyExchange.NONE in methods:
            raise ValueError("1 to 7 additional key exchange methods, NONE left out (RFC 9370 2.2.1)")
        self.router = router
        self.initiator = initiator
        self.methods = tuple(methods)
        self._sk0 = shared
        self._sk: list[SecretKey] = []
        self._link: bytes | None = None  # initiator: the link to send; responder: the one we expect
        self._share: KeyShare | None = None
        self._answered: dict[bytes, list[Payload]] = {}  # responder: link of a done request -> reply
        self._taken: set[bytes] = set()  # initiator: KE data of the responses taken

    @property
    def done(self) -> bool:
        return len(self._sk) == len(self.methods)

    @property
    def completed(self) -> int:
        return len(self._sk)

    @property
    def link(self) -> bytes | None:
        """Responder: the link its state answers to now (the task's index for STATE_NOT_FOUND)."""
        return self._link

    # --- responder -------------------------------------------------------------------------------
    def create_response_notify(self) -> Notify:
        """N(ADDITIONAL_KEY_EXCHANGE)(link1) for the CREATE_CHILD_SA response."""
        if self.initiator or self._sk:
            raise AdditionalKeyExchangeError("only the responder opens the follow-up exchanges")
        if self._link is None:
            self._link = self.router.random(LINK_SIZE)
        return Notify.additional_key_exchange(self._link)

    def on_request(self, payloads: Sequence[Payload]) -> list[Payload]:
        """KEi(n), N(link n) -> KEr(n) [, N(link n+1)]. A retransmitted request gets the same reply."""
        if self.initiator:
            raise AdditionalKeyExchangeError("the initiator answers no IKE_FOLLOWUP_KE request")
        link = link_of(payloads)
        if link is not None and link in self._answered:
            return list(self._answered[link])
        if link is None or self._link is None or link != self._link or self.done:
            raise StateNotFound("IKE_FOLLOWUP_KE for a link we hold no state for")
        n = len(self._sk)
        method = self.methods[n]
        peer = ke_data_of(payloads, method, n + 1, "request")
        try:
            if method.is_kem:
                value, shared = self.router.ke_encapsulate(method, peer)
            else:
                share = self.router.ke_generate(method)
                try:
                    shared = self.router.ke_derive(share, peer)
                finally:
                    share.wipe()
                value = share.public
        except InvalidKeyShare as e:
            raise AdditionalKeyExchangeError(f"{method.name} request refused: {e}") from None
        self._sk.append(shared)
        reply: list[Payload] = [KeyExchangePayload(method, value)]
        if not self.done:
            self._link = self.router.random(LINK_SIZE)
            reply.append(Notify.additional_key_exchange(self._link))
        else:
            self._link = None
        self._answered[link] = reply
        return list(reply)

    # --- initiator -------------------------------------------------------------------------------
    def on_create_response(self, payloads: Sequence[Payload]) -> None:
        """The CREATE_CHILD_SA response: its link opens the first IKE_FOLLOWUP_KE exchange."""
        link = link_of(payloads)
        if link is None:
            raise AdditionalKeyExchangeError("additional key exchanges negotiated, but no ADDITIONAL_KEY_EXCHANGE")
        if self._link is None and not self._sk:
            self._link = link

    def next_request(self) -> list[Payload]:
        """KEi(n), N(link): the same until its response is taken."""
        if not self.initiator or self._link is None or self.done:
            raise AdditionalKeyExchangeError("no IKE_FOLLOWUP_KE request to send now")
        method = self.methods[len(self._sk)]
        if self._share is None:
            self._share = self.router.ke_generate(method)
        return [KeyExchangePayload(method, self._share.public), Notify.additional_key_exchange(self._link)]

    def on_response(self, payloads: Sequence[Payload]) -> None:
        """KEr(n) [, N(link n+1)]: SK(n). A late copy of a response already taken changes nothing."""
        kes = [p.data for p in payloads if isinstance(p, KeyExchangePayload)]
        if kes and kes[0] in self._taken:
            return
        if self._share is None or self.done:
            raise AdditionalKeyExchangeError("an IKE_FOLLOWUP_KE response with no request outstanding")
        n = len(self._sk)
        method = self.methods[n]
        peer = ke_data_of(payloads, method, n + 1, "response")
        link = link_of(payloads)
        last = n + 1 == len(self.methods)
        if last == (link is not None):
            raise AdditionalKeyExchangeError("ADDITIONAL_KEY_EXCHANGE link where none belongs, or missing")
        try:
            shared = self.router.ke_derive(self._share, peer)
        except InvalidKeyShare as e:
            raise AdditionalKeyExchangeError(f"{method.name} response refused: {e}") from None
        self._share.wipe()
        self._share = None
        self._taken.add(peer)
        self._sk.append(shared)
        self._link = link

    # --- the result ------------------------------------------------------------------------------
    def secrets(self) -> tuple[SecretKey | None, list[SecretKey]]:
        """(SK(0), [SK(1), ..., SK(n)]) for keymat.derive_followup_child_keys / _rekeyed_ike_keys;
        the caller wipes them after the derivation."""
        if not self.done:
            raise AdditionalKeyExchangeError(f"{len(self._sk)} of {len(self.methods)} additional key exchanges done")
        return self._sk0, list(self._sk)

    def wipe(self) -> None:
        for s in (self._sk0, self._share, *self._sk):
            if s is not None:
                s.wipe()
        self._share = None

    def __repr__(self) -> str:
        role = "initiator" if self.initiator else "responder"
        return f"FollowupKeyExchanges({role}, {len(self._sk)}/{len(self.methods)} done)"
