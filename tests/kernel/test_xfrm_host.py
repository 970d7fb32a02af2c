"""The XFRM backend against this host's kernel, in throw-away network namespaces.

This kernel has XFRM policies, ALLOCSPI and ACQUIRE/EXPIRE events but no ESP:
SA installs are tested in the guest (tests/kernel/guest), their encoding in test_encoding.py.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator

import pytest

from fipsike.kernel.types import (
    Acquire,
    Direction,
    Expire,
    KernelError,
    Mode,
    Ownership,
    PolicyAction,
    PolicyChanged,
    PolicySpec,
    SaSpec,
    Shunt,
    Template,
    TrafficSelector,
)
from fipsike.kernel.xfrm import XfrmKernel
from providers import Encryption, open_router
from tests.kernel.canary import assert_no_canary, canary
from tests.kernel.netns import netns, netns_pair, ping, sh

pytestmark = pytest.mark.netns

OWN = Ownership()
A1, A2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
INNER = TrafficSelector.parse("10.1.0.1/32", "10.2.0.1/32")


@pytest.fixture
def ns() -> Iterator[str]:
    with netns("h") as name:
        yield name


@pytest.fixture
def kernel(ns: str) -> Iterator[XfrmKernel]:
    with XfrmKernel(open_router("default"), netns=ns) as k:
        yield k


def wait_events(k: XfrmKernel, kind: type, timeout: float = 5.0) -> list:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    found: list = []  # type: ignore[type-arg]
    while not found and time.monotonic() < deadline:
        found = [e for e in k.read_events(0.2) if isinstance(e, kind)]
    return found


def test_policy_install_list_update_remove(kernel: XfrmKernel, ns: str) -> None:
    sel = TrafficSelector.parse("10.1.0.0/16", "10.2.0.0/16")
    kernel.install_policy(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC, Template(A1, A2, OWN.reqid_min)))
    kernel.install_policy(PolicySpec(sel.reversed(), Direction.IN, PolicyAction.IPSEC,
                                     Template(A2, A1, OWN.reqid_min)))
    pols = {(p.selector, p.direction): p for p in kernel.list_policies()}
    assert set(pols) == {(sel, Direction.OUT), (sel.reversed(), Direction.IN)}
    out = pols[(sel, Direction.OUT)]
    assert out.action is PolicyAction.IPSEC and out.templates == (Template(A1, A2, OWN.reqid_min),)
    assert out.mark == (0, OWN.mark_mask)
    # update in place: same selector/direction, new template
    kernel.install_policy(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC,
                                     Template(A1, A2, OWN.reqid_min + 1, Mode.TUNNEL), priority=5))
    (p,) = [p for p in kernel.list_policies() if p.direction is Direction.OUT]
    assert p.templates[0].reqid == OWN.reqid_min + 1 and p.priority == 5
    assert kernel.get_policy(sel, Direction.OUT) == p
    with pytest.raises(KernelError) as info:  # NEWPOLICY does not replace
        kernel.install_policy(PolicySpec(sel, Direction.OUT, PolicyAction.DROP), replace=False)
    assert info.value.errno_name == "EEXIST" and "10.1.0.0/16" in str(info.value)
    assert "reqid 1179189249" in sh("ip", "-n", ns, "xfrm", "policy").stdout
    kernel.remove_policy(sel, Direction.OUT)
    kernel.remove_policy(sel.reversed(), Direction.IN)
    assert kernel.list_policies() == []


def test_errors_are_typed_with_errno_names(kernel: XfrmKernel) -> None:
    with pytest.raises(KernelError) as info:
        kernel.remove_policy(TrafficSelector.parse("10.7.0.0/16", "10.8.0.0/16"), Direction.OUT)
    assert info.value.errno_name == "ENOENT" and "DELPOLICY" in str(info.value)
    with pytest.raises(KernelError) as info:
        kernel.get_sa(A2, 0x4242)
    assert info.value.errno_name in ("ESRCH", "ENOENT")
    with pytest.raises(KernelError) as info:  # refused before anything reaches the kernel
        kernel.install_policy(PolicySpec(INNER, Direction.OUT, PolicyAction.IPSEC, Template(A1, A2, 7)))
    assert info.value.errno_name == "EPERM"


def test_missing_netns_is_a_typed_error() -> None:
    with pytest.raises(KernelError) as info:
        XfrmKernel(netns="fipsike-no-such-netns")
    assert info.value.errno_name == "ENOENT"


def test_foreign_entries_are_never_listed_as_owned_nor_flushed(kernel: XfrmKernel, ns: str) -> None:
    sh("ip", "-n", ns, "xfrm", "policy", "add", "src", "10.5.0.0/16", "dst", "10.6.0.0/16", "dir", "out",
       "tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "reqid", str(OWN.reqid_min), "mode", "tunnel")
    sh("ip", "-n", ns, "xfrm", "state", "allocspi", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
       "reqid", "5", "mode", "tunnel")
    kernel.install_shunt(INNER, Shunt.DROP)
    assert [p.selector for p in kernel.list_policies()] == [INNER]
    assert len(kernel.list_policies(owned_only=False)) == 2
    assert kernel.list_sas() == [] and len(kernel.list_sas(owned_only=False)) == 1
    report = kernel.flush_owned()
    assert (report.sas_removed, report.policies_removed, report.errors) == (0, 1, ())
    assert "10.5.0.0/16" in sh("ip", "-n", ns, "xfrm", "policy").stdout
    assert "reqid 5 " in sh("ip", "-n", ns, "xfrm", "state").stdout


@pytest.mark.parametrize("family", [4, 6])
def test_alloc_spi_makes_an_owned_larval_sa(kernel: XfrmKernel, family: int) -> None:
    src, dst = (A1, A2) if family == 4 else (ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2"))
    spi = kernel.alloc_spi(src, dst, OWN.reqid_min)
    assert 0x100 <= spi <= 0xFFFF_FFFF
    exact = kernel.alloc_spi(src, dst, OWN.reqid_min + 1, spi_min=0xC0DE01, spi_max=0xC0DE01)
    assert exact == 0xC0DE01
    sas = {s.spi: s for s in kernel.list_sas()}
    assert set(sas) == {spi, exact}
    assert sas[spi].larval and sas[spi].algorithms == () and sas[spi].src == src and sas[spi].dst == dst
    assert sas[exact].reqid == OWN.reqid_min + 1
    assert kernel.get_sa(dst, exact).spi == exact
    kernel.delete_sa(dst, spi)
    assert [s.spi for s in kernel.list_sas()] == [exact]


def test_failed_newsa_reports_the_kernel_reason_and_no_key(kernel: XfrmKernel,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """No ESP on this host: the NEWSA fails, the error says why, and nothing echoes the keys."""
    caplog.set_level(logging.DEBUG)
    router = kernel.router
    assert router is not None
    key = canary(20)
    spec = SaSpec(A1, A2, 0x2001, OWN.reqid_min, Mode.TUNNEL, Encryption.ENCR_AES_GCM_16,
                  open_router("default").import_secret(key, "ESP_ei"))
    with pytest.raises(KernelError) as info:
        kernel.install_sa(spec)
    assert info.value.operation == "NEWSA" and info.value.errno_name in ("ENOSYS", "EINVAL", "ENOENT")
    assert "0x2001" in str(info.value) and info.value.detail
    assert_no_canary(str(info.value) + repr(info.value) + caplog.text, [key], "the NEWSA error")


def test_acquire_from_a_ping_into_a_trap_policy() -> None:
    with netns_pair() as (left, _right), XfrmKernel(open_router("default"), netns=left) as k:
        k.install_shunt(INNER, Shunt.TRAP, Template(A1, A2, OWN.reqid_min + 3))
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 0  # held: no SA yet
        (acq,) = wait_events(k, Acquire)[:1]
        assert acq.reqid == OWN.reqid_min + 3 and acq.direction is Direction.OUT
        assert (acq.src, acq.dst) == (A1, A2)
        assert acq.selector.src == ipaddress.ip_network("10.1.0.1/32")
        assert acq.selector.dst == ipaddress.ip_network("10.2.0.1/32")
        # the kernel's ACQUIRE state (spi 0) inherits our reqid and mark: clean-up removes it too
        (larval,) = k.list_sas()
        assert larval.spi == 0 and larval.larval and larval.reqid == OWN.reqid_min + 3
        report = k.flush_owned()
        assert (report.sas_removed, report.policies_removed, report.errors) == (1, 1, ())
        assert k.list_policies() == [] and k.list_sas(owned_only=False) == []


def test_shunts_pass_drop_hold() -> None:
    with netns_pair() as (left, _right), XfrmKernel(open_router("default"), netns=left) as k:
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 1
        k.install_shunt(TrafficSelector.parse("10.1.0.0/16", "10.2.0.0/16"), Shunt.DROP)
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 0
        # a more specific PASS wins over the broader DROP (default priorities: specific first)
        k.install_shunt(INNER, Shunt.PASS, directions=(Direction.OUT, Direction.IN))
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 1
        k.install_shunt(INNER, Shunt.HOLD)  # replaces the PASS out-policy: negotiating, hold
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 0
        actions = sorted((p.direction.name, p.action.value) for p in k.list_policies())
        assert actions == [("IN", "pass"), ("OUT", "drop"), ("OUT", "drop")]
        report = k.flush_owned()
        assert report.policies_removed == 3
        assert ping(left, "10.1.0.1", "10.2.0.1", count=1) == 1


def test_hard_expire_of_a_larval_sa(kernel: XfrmKernel, ns: str) -> None:
    """An allocated SPI never completed expires after net.core.xfrm_acq_expires: a hard EXPIRE."""
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.core.xfrm_acq_expires=1")
    spi = kernel.alloc_spi(A1, A2, OWN.reqid_min + 9)
    (exp,) = wait_events(kernel, Expire, timeout=8)
    assert exp.hard and exp.spi == spi and exp.reqid == OWN.reqid_min + 9 and exp.dst == A2
    assert kernel.list_sas() == []


def test_policy_events_say_who_owns_them(kernel: XfrmKernel, ns: str) -> None:
    kernel.install_shunt(INNER, Shunt.DROP)
    sh("ip", "-n", ns, "xfrm", "policy", "add", "src", "10.5.0.0/16", "dst", "10.6.0.0/16", "dir", "out",
       "action", "block")
    events = []
    deadline = time.monotonic() + 5
    while len(events) < 2 and time.monotonic() < deadline:
        events += [e for e in kernel.read_events(0.2) if isinstance(e, PolicyChanged)]
    assert [(e.selector, e.owned) for e in events] == [
        (INNER, True), (TrafficSelector.parse("10.5.0.0/16", "10.6.0.0/16"), False)]
    kernel.remove_policy(INNER, Direction.OUT)
    (gone,) = wait_events(kernel, PolicyChanged)
    assert gone.kind == "delete" and gone.selector == INNER and gone.owned


def test_per_socket_policies_are_not_listed(kernel: XfrmKernel, ns: str) -> None:
    """The daemon's IKE sockets bypass IPsec with per-socket policies; a policy dump returns them too
    (dir = XFRM_POLICY_MAX + direction). They are not the SPD: listing and flushing skip them (found by
    the interop matrix: the daemon's own flush at shutdown failed on them)."""
    import subprocess
    import sys

    holder = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c",
         "import sys, time; from fipsike.daemon.udp import IkeSockets; s = IkeSockets(); print('ok', flush=True); "
         "time.sleep(30)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        assert "socket" in sh("ip", "-n", ns, "xfrm", "policy").stdout  # they are there, and dumped
        assert kernel.list_policies(owned_only=False) == []
        assert not kernel.flush_owned().errors
    finally:
        holder.kill()
        holder.wait()
