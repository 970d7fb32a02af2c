"""Inbound Child SA SPIs (RFC 4303 2.1): who picks them, and the ones picked but not yet used.

Our inbound SPI is offered in the SA payload before the Child SA exists. The daemon lets the
kernel pick it (XFRM_MSG_ALLOCSPI reserves it as a larval SA, so nothing else can take it before
the install, which then completes that SA with UPDSA), as pluto and charon do. The engine asks
through the SpiAllocator protocol and stays sans-I/O; without one it draws SPIs from the Router's
random source. SPIs allocated for an exchange that then ends without a Child SA (refused, timed
out, its IKE SA gone) are released, so no larval SA waits for the kernel's acq_expires timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from providers.api import IkeRouter

SPI_MIN = 0x100  # 1-255 are reserved by IANA (RFC 4303 2.1); 0 is never an SPI
SPI_MAX = 0xFFFF_FFFF


@dataclass(frozen=True, slots=True)
class SpiRequest:
    """Where the inbound SA will be: from the peer (`remote`) to us (`local`), for a Child of `reqid`."""

    local: str
    remote: str
    reqid: int
    transport: bool = False


class SpiUnavailable(Exception):
    """No inbound SPI could be had (the kernel refused ALLOCSPI); the Child SA cannot be offered."""


class SpiAllocator(Protocol):
    def allocate(self, request: SpiRequest) -> int:
        """A fresh inbound SPI in SPI_MIN..SPI_MAX, reserved until installed or released. Raises SpiUnavailable."""
        ...

    def release(self, request: SpiRequest, spi: int) -> None:
        """`spi` will not be installed after all: drop its reservation (best effort, never raises)."""
        ...


class RandomSpis:
    """Engines without a kernel (tests, benchmarks, the interop driver): random SPIs, nothing reserved."""

    def __init__(self, router: IkeRouter) -> None:
        self.router = router

    def allocate(self, request: SpiRequest) -> int:
        while True:
            spi = int.from_bytes(self.router.random(4), "big")
            if spi >= SPI_MIN:
                return spi

    def release(self, request: SpiRequest, spi: int) -> None:
        pass
