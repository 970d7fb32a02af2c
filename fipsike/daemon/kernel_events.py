"""Kernel events as an asyncio stream (the daemon owns asyncio, so this lives here, not in fipsike.kernel).

The kernel multicasts ACQUIRE, EXPIRE and policy changes on the event socket;
the loop watches its descriptor (add_reader) and the non-blocking read happens
on the loop thread, so no worker thread or second event loop is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fipsike.kernel.api import Kernel
from fipsike.kernel.types import KernelEvent


async def kernel_events(kernel: Kernel) -> AsyncIterator[KernelEvent]:
    """Yield events for what fipsike owns until the consumer stops iterating."""
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    fd = kernel.fileno()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            for event in kernel.read_events(0.0):
                yield event
    finally:
        loop.remove_reader(fd)
