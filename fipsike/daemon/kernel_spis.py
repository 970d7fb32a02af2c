"""The engine's SpiAllocator on the daemon's kernel: inbound SPIs from XFRM_MSG_ALLOCSPI.

The kernel picks a free SPI for (peer -> us) and holds it as a larval SA; the Installer's install
of the inbound SA completes that SA (UPDSA). An SPI released unused is deleted at once rather than
left for the kernel's net.core.xfrm_acq_expires timeout.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable

from fipsike.ike.spis import SPI_MAX, SPI_MIN, SpiRequest, SpiUnavailable
from fipsike.kernel.api import Kernel
from fipsike.kernel.types import KernelError, Mode

_address = functools.lru_cache(maxsize=4096)(ipaddress.ip_address)

# (level, event, message): the daemon's event log
Report = Callable[[str, str, str], None]


class KernelSpis:
    def __init__(self, kernel: Kernel, report: Report | None = None) -> None:
        self.kernel = kernel
        self.report = report or (lambda level, event, message: None)

    def allocate(self, request: SpiRequest) -> int:
        mode = Mode.TRANSPORT if request.transport else Mode.TUNNEL
        try:
            return self.kernel.alloc_spi(_address(request.remote), _address(request.local), request.reqid, mode,
                                         SPI_MIN, SPI_MAX)
        except (KernelError, ValueError) as exc:
            raise SpiUnavailable(f"the kernel refused ALLOCSPI for {request.remote} -> {request.local}: {exc}") \
                from None

    def release(self, request: SpiRequest, spi: int) -> None:
        try:
            self.kernel.delete_sa(_address(request.local), spi)
        except KernelError as exc:
            if exc.errno_name not in ("ESRCH", "ENOENT"):  # gone already: expired, or flushed
                self.report("warning", "spi-release-failed", f"SPI {spi:08x} for {request.remote}: {exc}")
