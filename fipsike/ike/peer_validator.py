"""The peer's certificate chain against a connection's trust anchors and the CRLs (RFC 5280 6),
with the caches that keep re-authentication cheap.

The CRLs come from a CrlSource the driver gives the engine (the daemon: certs' CRL folder,
libreswan's /etc/ipsec.d/crls, re-read when it changes). Nothing here fetches anything or reads
a clock: the wall-clock time for validity is passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.validation import PathValidator, load_der_certificate
from fipsike.ike.auth import AuthError
from providers.api import IkeRouter


class CrlSource(Protocol):
    """Where the engine's CRLs come from."""

    def current(self) -> tuple[int, Sequence[x509.CertificateRevocationList]]:
        """(generation, the CRLs now in force). The generation changes whenever the set changes, so
        the validators and the remembered verdicts built on the old set are dropped."""
        ...


class NoCrls:
    """No CRLs at all: every certificate is taken as unrevoked, unless a connection is crl_strict."""

    def current(self) -> tuple[int, Sequence[x509.CertificateRevocationList]]:
        return 0, ()


AnchorKey = tuple[bytes, ...]


class PeerValidator:
    """Validates a peer's chain (certs.validation.PathValidator), one validator per (trust anchors,
    CRL generation, strictness), and remembers positive verdicts.

    A positive verdict is remembered for `verdict_cache_ttl` seconds of wall-clock time (never past
    the end entity's notAfter), keyed by the exact chain octets, the anchor set, the CRL generation
    and the strictness, so a peer that re-authenticates does not pay for path validation again
    (strongSwan's cert_cache does the same for issuer signatures), and a new CRL is always applied.
    0 turns the cache off.
    """

    def __init__(self, router: IkeRouter, crl_source: CrlSource | None = None,
                 verdict_cache_ttl: float = 300.0) -> None:
        self.router = router
        self.crl_source: CrlSource = crl_source or NoCrls()
        self.verdict_cache_ttl = verdict_cache_ttl
        self._generation = -1
        self._crls: tuple[x509.CertificateRevocationList, ...] = ()
        self._validators: dict[tuple[AnchorKey, bool], PathValidator] = {}
        self._verdicts: dict[tuple[tuple[bytes, ...], AnchorKey, int, bool], tuple[x509.Certificate, datetime]] = {}
        self._anchor_keys: dict[int, tuple[tuple[x509.Certificate, ...], AnchorKey]] = {}

    def _refresh(self) -> int:
        generation, crls = self.crl_source.current()
        if generation != self._generation:
            self._generation, self._crls = generation, tuple(crls)
            self._validators.clear()
            self._verdicts.clear()
        return generation

    def validator(self, anchors: tuple[x509.Certificate, ...], crl_strict: bool = False) -> PathValidator:
        """One PathValidator per set of trust anchors and strictness (it indexes the anchors once)."""
        self._refresh()
        key = (self.anchor_key(anchors), crl_strict)
        v = self._validators.get(key)
        if v is None:
            if len(self._validators) >= 256:
                self._validators.clear()
            v = self._validators[key] = PathValidator(self.router, anchors, crls=self._crls, require_crl=crl_strict)
        return v

    def validated_peer(self, chain_der: tuple[bytes, ...], anchors: tuple[x509.Certificate, ...], wall: datetime,
                       crl_strict: bool = False) -> x509.Certificate:
        """The peer's end-entity certificate once its chain validates against `anchors` at `wall`
        (timezone-aware UTC) and no CRL revokes it (with `crl_strict`, its issuer's CRL must be
        there). Raises AuthError."""
        generation = self._refresh()
        key = (chain_der, self.anchor_key(anchors), generation, crl_strict)
        hit = self._verdicts.get(key)
        if hit is not None and wall < hit[1]:
            return hit[0]
        try:
            parsed = [load_der_certificate(d) for d in chain_der]  # parsing interned by the octets
        except ValueError:
            raise AuthError("malformed certificate") from None
        verdict = self.validator(anchors, crl_strict).validate(parsed[0], wall, intermediates=parsed[1:])
        if not verdict.ok:
            raise AuthError(f"certificate refused: {verdict}")
        if self.verdict_cache_ttl > 0:
            if len(self._verdicts) >= 1024:
                self._verdicts.clear()
            until = min(wall + timedelta(seconds=self.verdict_cache_ttl), parsed[0].not_valid_after_utc)
            self._verdicts[key] = (parsed[0], until)
        return parsed[0]

    def anchor_key(self, anchors: tuple[x509.Certificate, ...]) -> AnchorKey:
        """The anchors' DER octets, remembered per anchors tuple (a connection's trust_anchors is one
        long-lived tuple): hashing bytes is cheap, hashing certificates re-hashes their DER."""
        hit = self._anchor_keys.get(id(anchors))
        if hit is not None and hit[0] is anchors:
            return hit[1]
        der = tuple(a.public_bytes(Encoding.DER) for a in anchors)
        if len(self._anchor_keys) >= 256:
            self._anchor_keys.clear()
        self._anchor_keys[id(anchors)] = (anchors, der)  # holds the tuple: its id stays its own
        return der
