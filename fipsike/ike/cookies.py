"""Stateless cookies against IKE_SA_INIT floods (RFC 7296 2.6).

Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>), with the hash a
PRF keyed by a random secret held by the provider. The secret rotates every
`rotate_every` seconds; the previous one is kept so a cookie handed out just
before the rotation still verifies. Cookies are asked for only while the number
of half-open IKE SAs is at or above `threshold`.
"""

from __future__ import annotations

import ipaddress

from providers.algorithms import Prf
from providers.api import IkeRouter
from providers.handles import SecretKey

_PRF = Prf.PRF_HMAC_SHA2_256
_VERSION_LEN = 1


class CookieJar:
    def __init__(self, router: IkeRouter, threshold: int = 100, rotate_every: float = 300.0) -> None:
        self._router = router
        self.threshold = threshold
        self.rotate_every = rotate_every
        self._version = 0
        self._secret: SecretKey | None = None
        self._previous: tuple[int, SecretKey] | None = None
        self._rotated_at = -1e18

    def required(self, half_open: int) -> bool:
        return half_open >= self.threshold

    def _rotate(self, now: float) -> None:
        if self._secret is not None and now - self._rotated_at < self.rotate_every:
            return
        if self._secret is not None:
            if self._previous is not None:
                self._previous[1].wipe()
            self._previous = (self._version, self._secret)
            self._version = (self._version + 1) % 256
        self._secret = self._router.generate_secret(32, "cookie-secret")
        self._rotated_at = now

    def _compute(self, secret: SecretKey, version: int, ni: bytes, ip: str, spi_i: bytes) -> bytes:
        data = ni + ipaddress.ip_address(ip).packed + spi_i
        return bytes([version]) + self._router.prf(_PRF, secret, data)

    def make(self, ni: bytes, ip: str, spi_i: bytes, now: float) -> bytes:
        self._rotate(now)
        assert self._secret is not None
        return self._compute(self._secret, self._version, ni, ip, spi_i)

    def check(self, cookie: bytes, ni: bytes, ip: str, spi_i: bytes, now: float) -> bool:
        self._rotate(now)
        if len(cookie) < _VERSION_LEN + 1:
            return False
        for version, secret in ((self._version, self._secret), self._previous or (None, None)):
            if secret is None or version != cookie[0]:
                continue
            # constant time: a timing oracle would let an off-path sender learn the cookie for a
            # spoofed address byte by byte, which is what cookies exist to prevent
            if self._router.equal(self._compute(secret, version, ni, ip, spi_i), cookie):
                return True
        return False
