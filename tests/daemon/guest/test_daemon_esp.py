"""Two `fipsike daemon --kernel xfrm` negotiate a tunnel and ESP carries pings through it, in the
user-mode-linux guest (a kernel with ESP): the data path with negotiated keys, not hand-made ones.

Run: scripts/guest-run.sh tests/daemon/guest   (collected only inside the guest)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.harness import ROOT, xfrm
from tests.kernel.netns import ping

pytestmark = [pytest.mark.guest, pytest.mark.netns]


@pytest.mark.parametrize("esp", ["aes256gcm16", "aes128-sha256"])
def test_negotiated_tunnel_carries_pings(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn, esp: str) -> None:
    left, right = hosts.left, hosts.right
    moon = spawn(left.netns, [moon_conn(hosts, pki, esp=esp)], kernel="xfrm", tag=esp)
    sun = spawn(right.netns, [sun_conn(hosts, pki, esp=esp)], kernel="xfrm", tag=esp)
    r = moon.cli("up", "gw", "--timeout", "90", timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr, moon.log_text()[-3000:])
    assert ping(left.netns, left.inner, right.inner, count=5) == 5
    ts = {c["spi_in"]: c for c in json.loads(moon.cli("trafficstatus", "--json").stdout)["child_sas"]}
    (mine,) = ts.values()
    assert mine["out"]["packets"] >= 5 and mine["in"]["packets"] >= 5 and mine["out"]["bytes"] > 0
    theirs = json.loads(sun.cli("trafficstatus", "--json").stdout)["child_sas"][0]
    assert (theirs["spi_in"], theirs["spi_out"]) == (mine["spi_out"], mine["spi_in"])
    state = xfrm(left.netns, "state")
    assert f"spi 0x{mine['spi_in']}" in state and f"spi 0x{mine['spi_out']}" in state
    # the redacted report: key lengths and fingerprints, never the keys
    rep = subprocess.run([sys.executable, "-m", "fipsike", "xfrm", "--netns", left.netns, "--json"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert len(json.loads(rep.stdout)["sas"]) == 2

    assert moon.cli("rekey", "gw").returncode == 0
    assert ping(left.netns, left.inner, right.inner, count=3) == 3

    assert moon.stop() == 0 and sun.stop() == 0
    for ns in (left.netns, right.netns):
        assert "0x800000" not in xfrm(ns, "state") + xfrm(ns, "policy")
    assert ping(left.netns, left.inner, right.inner, count=1) == 1  # no policy left: clear text again
