"""Inbound SPIs from the kernel (XFRM_MSG_ALLOCSPI) through the engine's SpiAllocator seam, against this
host's XFRM in network namespaces: the SPI offered and negotiated is the kernel's larval SA, the
install completes that SA with UPDSA, and a negotiation that fails deletes it at once (it does not
wait for net.core.xfrm_acq_expires).

Two engines back to back (tests/ike/engine/harness), each allocating from its own namespace's kernel.
This host has no ESP, so the UPDSA itself is refused here; the guest kernel completes it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest

from fipsike.daemon.installer import Installer
from fipsike.daemon.kernel_spis import KernelSpis
from fipsike.ike.actions import ChildSaFailed, DeleteChildSa, IkeSaFailed, InstallChildSa
from fipsike.ike.engine import Engine
from fipsike.ike.registry import ExchangeType
from fipsike.ike.spis import SpiRequest
from fipsike.ike.ts import ts_from_cidr
from fipsike.kernel.types import KernelError, Ownership
from fipsike.kernel.xfrm import XfrmKernel
from providers import open_router
from tests.ike.engine.conftest import MOON, SUN, Pki, make_conn
from tests.ike.engine.conftest import pki as pki  # noqa: PLC0414 - the session's engine PKI fixture
from tests.ike.engine.harness import Net, Side
from tests.ike.engine.test_spi_allocator import offered_spis
from tests.kernel.netns import netns, sh

pytestmark = [pytest.mark.netns]

M, S = ipaddress.ip_address(MOON), ipaddress.ip_address(SUN)


class Pair:
    def __init__(self, net: Net, moon: XfrmKernel, sun: XfrmKernel, moon_ns: str) -> None:
        self.net, self.moon, self.sun, self.moon_ns = net, moon, sun, moon_ns


@pytest.fixture
def kernels() -> Iterator[tuple[str, str]]:
    with netns("m") as m, netns("s") as s:
        yield m, s


def build(pki: Pki, namespaces: tuple[str, str], moon_kw: dict[str, Any] | None = None,
          sun_kw: dict[str, Any] | None = None) -> Pair:
    rm, rs = open_router("fips"), open_router("fips")
    km, ks = XfrmKernel(rm, netns=namespaces[0]), XfrmKernel(rs, netns=namespaces[1])
    a = Side("moon", Engine(rm, [make_conn(pki, "moon", **(moon_kw or {}))], spis=KernelSpis(km)), MOON)
    b = Side("sun", Engine(rs, [make_conn(pki, "sun", **(sun_kw or {}))], spis=KernelSpis(ks)), SUN)
    return Pair(Net(a, b), km, ks, namespaces[0])


def test_the_negotiated_inbound_spi_is_the_kernels_larval_sa(pki: Pki, kernels: tuple[str, str]) -> None:
    p = build(pki, kernels)
    net = p.net
    try:
        net.initiate(net.a, "gw")
        net.step()
        net.step()  # moon's IKE_AUTH leaves with its Child SA offer
        (offered,) = offered_spis(net, net.a, ExchangeType.IKE_AUTH)
        (larval,) = p.moon.list_sas()
        assert larval.larval and larval.spi == offered and (larval.src, larval.dst) == (S, M)
        assert Ownership().owns_reqid(larval.reqid) and larval.algorithms == ()
        assert f"spi {offered:#010x}" in sh("ip", "-n", p.moon_ns, "xfrm", "state").stdout
        net.run()
        (mi,) = [e for e in net.a.events if isinstance(e, InstallChildSa)]
        (si,) = [e for e in net.b.events if isinstance(e, InstallChildSa)]
        assert mi.inbound.spi == offered and si.outbound.spi == offered
        # the responder's SPI came from its own kernel too: a larval SA there, the one sent back
        (sun_larval,) = p.sun.list_sas()
        assert sun_larval.larval and sun_larval.spi == si.inbound.spi == mi.outbound.spi

        installer = Installer(p.moon)
        try:
            installer.install(mi)
        except KernelError as exc:  # no ESP in this kernel: it refuses the UPDSA, which names the larval SA
            assert exc.operation == "UPDSA" and exc.errno_name != "ENOENT", exc
            assert [s.spi for s in p.moon.list_sas() if s.larval] == [offered]
            # the daemon deletes a refused Child SA: the larval SA goes with it
            net.take(net.a, net.a.engine.delete_child(offered, net.now))
            net.run()
            (gone,) = [e for e in net.a.events if isinstance(e, DeleteChildSa)]
            installer.remove(gone)
            assert p.moon.list_sas() == []
        else:  # a kernel with ESP: the larval SA became the Child SA's inbound SA
            sa = p.moon.get_sa(M, offered)
            assert not sa.larval and sa.algorithms and sa.reqid == mi.reqid
    finally:
        p.moon.close()
        p.sun.close()


def test_a_refused_child_deletes_its_larval_sa_at_once(pki: Pki, kernels: tuple[str, str]) -> None:
    p = build(pki, kernels, sun_kw={"child_remote_ts": (ts_from_cidr("192.0.2.0/24"),)})
    net = p.net
    try:
        net.initiate(net.a, "gw")
        net.step()
        net.step()
        (offered,) = offered_spis(net, net.a, ExchangeType.IKE_AUTH)
        assert [s.spi for s in p.moon.list_sas()] == [offered]
        net.run()  # sun: TS_UNACCEPTABLE; the IKE SA is up without a Child SA
        assert [e.notify for e in net.a.of(ChildSaFailed)] == ["TS_UNACCEPTABLE"]
        assert p.moon.list_sas() == [] and p.sun.list_sas() == []
        assert not sh("ip", "-n", p.moon_ns, "xfrm", "state").stdout.strip()
    finally:
        p.moon.close()
        p.sun.close()


def test_an_unanswered_ike_auth_deletes_its_larval_sa(pki: Pki, kernels: tuple[str, str]) -> None:
    p = build(pki, kernels)
    net = p.net
    try:
        net.initiate(net.a, "gw")
        net.step()
        net.step()
        assert len(p.moon.list_sas()) == 1
        for _ in range(400):  # sun never hears the IKE_AUTH: moon retransmits, then gives up
            net.wire.clear()
            net.advance(1.0)
            if not net.a.ike_sas():
                break
        assert net.a.of(IkeSaFailed) and p.moon.list_sas() == []
    finally:
        p.moon.close()
        p.sun.close()


def test_release_of_an_spi_the_kernel_already_dropped_is_quiet(kernels: tuple[str, str]) -> None:
    reports: list[tuple[str, str, str]] = []
    with XfrmKernel(open_router("fips"), netns=kernels[0]) as k:
        spis = KernelSpis(k, lambda *r: reports.append(r))
        req = SpiRequest(MOON, SUN, Ownership().reqid_min + 5)
        spi = spis.allocate(req)
        assert [(s.spi, s.larval) for s in k.list_sas()] == [(spi, True)]
        k.delete_sa(M, spi)  # as net.core.xfrm_acq_expires would
        spis.release(req, spi)
        assert reports == [] and k.list_sas() == []
