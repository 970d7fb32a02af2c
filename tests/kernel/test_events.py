"""The asyncio event stream over both backends."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from fipsike.daemon.kernel_events import kernel_events
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import Acquire, Ownership, Shunt, Template, TrafficSelector
from fipsike.kernel.xfrm import XfrmKernel
from providers import open_router
from tests.kernel.netns import netns_pair, ping

OWN = Ownership()
A1, A2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
SEL = TrafficSelector.parse("10.1.0.1/32", "10.2.0.1/32")


async def _first_acquire(kernel: MemoryKernel | XfrmKernel) -> Acquire:
    async for event in kernel_events(kernel):
        if isinstance(event, Acquire):
            return event
    raise AssertionError("stream ended")


def test_memory_kernel_stream() -> None:
    k = MemoryKernel()
    k.install_shunt(SEL, Shunt.TRAP, Template(A1, A2, OWN.reqid_min))

    async def main() -> Acquire:
        task = asyncio.create_task(_first_acquire(k))
        await asyncio.sleep(0.01)
        k.send_packet(ipaddress.ip_address("10.1.0.1"), ipaddress.ip_address("10.2.0.1"))
        return await asyncio.wait_for(task, 2)

    assert asyncio.run(main()).reqid == OWN.reqid_min


@pytest.mark.netns
def test_xfrm_stream_delivers_acquire_from_a_real_packet() -> None:
    with netns_pair() as (left, _right), XfrmKernel(open_router("default"), netns=left) as k:
        k.install_shunt(SEL, Shunt.TRAP, Template(A1, A2, OWN.reqid_min + 7))

        async def main() -> Acquire:
            task = asyncio.create_task(_first_acquire(k))
            await asyncio.to_thread(ping, left, "10.1.0.1", "10.2.0.1", 1)
            return await asyncio.wait_for(task, 5)

        acq = asyncio.run(main())
        assert acq.reqid == OWN.reqid_min + 7 and acq.dst == A2
        k.flush_owned()
