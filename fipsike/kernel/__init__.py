"""The kernel backend: XFRM netlink (xfrm.py), an in-memory twin (memory.py), the redacted report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mypy proves both backends implement the Kernel protocol
    from fipsike.kernel.api import Kernel
    from fipsike.kernel.memory import MemoryKernel
    from fipsike.kernel.xfrm import XfrmKernel

    def _conforms(xfrm: XfrmKernel, memory: MemoryKernel) -> tuple[Kernel, Kernel]:
        return xfrm, memory
