"""The in-memory kernel behaves like the XFRM backend where the engine and daemon can tell."""

from __future__ import annotations

import inspect
import ipaddress
import select

import pytest

from fipsike.kernel.api import Kernel
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import (
    Acquire,
    Direction,
    Expire,
    KernelError,
    Lifetime,
    Mode,
    Ownership,
    PolicyAction,
    PolicySpec,
    SaSpec,
    Shunt,
    Template,
    TrafficSelector,
)
from fipsike.kernel.xfrm import XfrmKernel
from providers import Encryption, open_router

OWN = Ownership()
A1, A2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
H1, H2 = ipaddress.ip_address("10.1.0.1"), ipaddress.ip_address("10.2.0.1")
SEL = TrafficSelector.parse("10.1.0.1/32", "10.2.0.1/32")


def _spec(spi: int, lifetime: Lifetime | None = None) -> SaSpec:
    key = open_router("default").import_secret(b"\x01" * 20, "ESP_ei")
    return SaSpec(A1, A2, spi, OWN.reqid_min, Mode.TUNNEL, Encryption.ENCR_AES_GCM_16, key,
                  lifetime=lifetime or Lifetime())


def test_both_backends_implement_the_protocol() -> None:
    assert isinstance(MemoryKernel(), Kernel)
    # mypy checks the full signatures (fipsike/kernel/__init__.py); here: same names and parameters
    for name in ("alloc_spi", "install_sa", "delete_sa", "get_sa", "list_sas", "install_policy", "get_policy",
                 "remove_policy", "list_policies", "install_shunt", "read_events", "fileno", "flush_owned", "close"):
        proto = inspect.signature(getattr(Kernel, name))
        for impl in (XfrmKernel, MemoryKernel):
            assert list(inspect.signature(getattr(impl, name)).parameters) == list(proto.parameters), (impl, name)


def test_records_sas_with_key_lengths_only() -> None:
    k = MemoryKernel()
    spi = k.alloc_spi(A1, A2, OWN.reqid_min)
    assert k.get_sa(A2, spi).larval
    k.install_sa(_spec(spi))
    sa = k.get_sa(A2, spi)
    assert not sa.larval and sa.algorithms[0].name == "rfc4106(gcm(aes))" and sa.algorithms[0].key.octets == 20
    with pytest.raises(KernelError) as info:
        k.install_sa(_spec(spi))
    assert info.value.errno_name == "EEXIST"
    k.delete_sa(A2, spi)
    with pytest.raises(KernelError) as info:
        k.delete_sa(A2, spi)
    assert info.value.errno_name == "ESRCH"


def test_reqid_outside_the_range_is_refused() -> None:
    k = MemoryKernel()
    with pytest.raises(KernelError) as info:
        k.alloc_spi(A1, A2, 5)
    assert info.value.errno_name == "EPERM"


def test_trap_raises_acquire_then_sa_protects() -> None:
    k = MemoryKernel()
    k.install_shunt(SEL, Shunt.TRAP, Template(A1, A2, OWN.reqid_min))
    k.read_events()
    assert k.send_packet(H1, H2) == "acquire"
    r, _, _ = select.select([k.fileno()], [], [], 1)
    assert r  # readable for asyncio's add_reader
    (acq,) = k.read_events()
    assert isinstance(acq, Acquire) and acq.reqid == OWN.reqid_min and (acq.src, acq.dst) == (A1, A2)
    k.install_sa(_spec(0x3000))
    assert k.send_packet(H1, H2) == "protected"


def test_shunt_precedence_specific_first() -> None:
    k = MemoryKernel()
    k.install_shunt(TrafficSelector.parse("10.1.0.0/16", "10.2.0.0/16"), Shunt.DROP)
    assert k.send_packet(H1, H2) == "dropped"
    k.install_shunt(SEL, Shunt.PASS)
    assert k.send_packet(H1, H2) == "clear"
    k.install_policy(PolicySpec(SEL, Direction.OUT, PolicyAction.HOLD))
    assert k.send_packet(H1, H2) == "dropped"


def test_soft_then_hard_expire() -> None:
    k = MemoryKernel()
    k.install_sa(_spec(0x4000, Lifetime(soft_bytes=100, hard_bytes=200)))
    k.read_events()
    k.count_traffic(A2, 0x4000, 84)
    assert k.read_events() == []
    k.count_traffic(A2, 0x4000, 84)
    (soft,) = k.read_events()
    assert isinstance(soft, Expire) and not soft.hard
    k.count_traffic(A2, 0x4000, 84)
    (hard,) = k.read_events()
    assert isinstance(hard, Expire) and hard.hard and hard.bytes == 252
    assert k.list_sas() == []


def test_flush_owned() -> None:
    k = MemoryKernel()
    k.install_sa(_spec(0x5000))
    k.install_shunt(SEL, Shunt.DROP, directions=(Direction.OUT, Direction.IN))
    report = k.flush_owned()
    assert (report.sas_removed, report.policies_removed) == (1, 2)
    assert k.list_sas() == [] and k.list_policies() == []
