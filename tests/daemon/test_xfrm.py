"""`fipsike daemon --kernel xfrm` against the host kernel's XFRM, in network namespaces.

This host's kernel has XFRM policies, SPI allocation and ACQUIRE but no ESP, so NEWSA is refused:
what can be shown here is shown (trap policies, ACQUIRE starting a negotiation, a refused SA
deleted again with the peer told, SIGTERM and crash clean-up touching exactly fipsike's state).
The data path with negotiated keys is the guest kernel's job (tests/kernel/guest)."""

from __future__ import annotations

import re
import subprocess
import time
from typing import Any

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.harness import DaemonProc, xfrm

pytestmark = [pytest.mark.netns]

FOREIGN = "10.77.0.0/24"  # an administrator's own policy: fipsike must never touch it


def _owned_policies(netns: str) -> list[str]:
    """Policy blocks carrying fipsike's ownership mark (0/0x800000)."""
    blocks = re.split(r"\n(?=src )", xfrm(netns, "policy"))
    return [b for b in blocks if "mark 0/0x800000" in b]


def _ike(d: DaemonProc) -> list[dict[str, Any]]:
    return list(d.call("status")["ike_sas"])


def _ping(netns: str, src: str, dst: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "1", "-I", src, dst], capture_output=True,
                   timeout=10, check=False)


def test_route_acquire_refused_sa_and_sigterm(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    left, right = hosts.left, hosts.right
    subprocess.run(["ip", "-n", left.netns, "xfrm", "policy", "add", "src", FOREIGN, "dst", FOREIGN, "dir", "out",
                    "action", "block"], check=True)
    try:
        sun = spawn(right.netns, [sun_conn(hosts, pki)], kernel="xfrm")
        moon = spawn(left.netns, [moon_conn(hosts, pki, auto="route")], kernel="xfrm")
        pols = _owned_policies(left.netns)
        assert len(pols) == 1 and f"src {left.inner}/32 dst {right.inner}/32" in pols[0] and "dir out" in pols[0]
        assert "reqid 1179222016" in pols[0] and f"tmpl src {left.address} dst {right.address}" in pols[0]
        assert moon.call("status")["connections"][0]["routed"] is True

        _ping(left.netns, left.inner, right.inner)  # hits the trap: the kernel raises ACQUIRE
        moon.wait_log("acquire [gw] packet")
        # IKE comes up; the Child SA is negotiated, but this kernel has no ESP: NEWSA is refused,
        # the Child SA is deleted again (the peer told), the IKE SA stays, the trap comes back
        moon.wait_log("child-sa-install-failed [gw]")
        sun.wait_log("child-sa-install-failed [gw]")
        # the inbound SPI each daemon negotiated is the kernel's (ALLOCSPI): its install is the UPDSA of
        # that larval SA (which this ESP-less kernel refuses), for the SPI the engine installed
        for d in (moon, sun):
            text = d.log_text()
            spi_in = re.search(r"child-sa-negotiated .* in ([0-9a-f]{8}) out", text)
            assert spi_in is not None, text
            assert re.search(rf"child-sa-install-failed \[gw\] .*UPDSA: \w+ \(spi 0x{spi_in[1]} ", text), text
        deadline = time.monotonic() + 10
        while any(sa["children"] for sa in _ike(moon) + _ike(sun)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [sa["state"] for sa in _ike(moon)] == ["established"] and not _ike(moon)[0]["children"]
        assert not _ike(sun)[0]["children"]
        # no ESP SA: only the kernel's own ACQUIRE placeholder (SPI 0) for the trapped packet
        assert re.findall(r"spi (0x[0-9a-f]+)", xfrm(left.netns, "state")) in ([], ["0x00000000"])
        pols = _owned_policies(left.netns)
        assert len(pols) == 1 and "dir out" in pols[0], xfrm(left.netns, "policy")

        assert moon.stop() == 0
        assert _owned_policies(left.netns) == [] and not xfrm(left.netns, "state").strip()
        assert FOREIGN.split("/")[0] in xfrm(left.netns, "policy")  # the administrator's policy is still there
        assert "kernel-cleanup [-] removed" in moon.log_text()
    finally:
        subprocess.run(["ip", "-n", left.netns, "xfrm", "policy", "flush"], check=False)


def test_kill9_leaves_state_that_the_restart_removes_exactly(hosts: ssh.TwoHosts, pki: ssh.Pki,
                                                            spawn: Spawn) -> None:
    left, right = hosts.left, hosts.right
    subprocess.run(["ip", "-n", left.netns, "xfrm", "policy", "add", "src", FOREIGN, "dst", FOREIGN, "dir", "out",
                    "action", "block"], check=True)
    try:
        moon = spawn(left.netns, [moon_conn(hosts, pki, auto="route"),
                                  moon_conn(hosts, pki, name="second", auto="route", leftsubnet="10.1.9.0/24")],
                     kernel="xfrm")
        _ping(left.netns, left.inner, right.inner)  # a larval ACQUIRE state in the SAD too
        moon.wait_log("acquire [gw]")
        assert len(_owned_policies(left.netns)) == 2
        moon.kill9()
        assert len(_owned_policies(left.netns)) == 2  # a crash leaves them behind
        moon.write_config([moon_conn(hosts, pki, auto="add")])
        moon.start()
        cleanup = [line for line in moon.run_log().splitlines() if "kernel-cleanup" in line]
        # two trap policies, and the kernel's ACQUIRE placeholder the trapped ping left in the SAD
        assert cleanup == ["info kernel-cleanup [-] removed 1 stale SAs and 2 stale policies (xfrm)"], cleanup
        assert _owned_policies(left.netns) == []
        assert FOREIGN.split("/")[0] in xfrm(left.netns, "policy")
        del right
    finally:
        subprocess.run(["ip", "-n", left.netns, "xfrm", "policy", "flush"], check=False)
