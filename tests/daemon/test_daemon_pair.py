"""Two `fipsike daemon` processes in two network namespaces, operated through the CLI and the
control socket: up / status / trafficstatus / listen / rekey / down, failures with a reason,
SIGTERM sending DELETE, and kill -9 + restart bringing the tunnel back with INITIAL_CONTACT.

The in-memory kernel here (the XFRM kernel tests are in test_xfrm.py: this host has no ESP)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.harness import ROOT, DaemonProc

pytestmark = [pytest.mark.netns]


def _ike(d: DaemonProc, conn: str = "gw") -> list[dict[str, Any]]:
    return [sa for sa in d.call("status")["ike_sas"] if sa["connection"] == conn]


def _wait(cond: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def test_up_status_trafficstatus_listen_rekey_down(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki)])
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    listen = subprocess.Popen([sys.executable, "-m", "fipsike", "listen", "--json", "--ctl", str(sun.ctl)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        r = moon.cli("up", "gw")
        assert r.returncode == 0, (r.stdout, r.stderr, moon.log_text())
        assert r.stdout.startswith('"gw": established: Child SA gw established'), r.stdout

        m, s = _ike(moon), _ike(sun)
        assert len(m) == len(s) == 1 and m[0]["name"] == s[0]["name"]
        assert m[0]["state"] == s[0]["state"] == "established" and m[0]["initiator"] and not s[0]["initiator"]
        assert (m[0]["local_id"], m[0]["remote_id"]) == ("@moon.test", "@sun.test")
        mc, sc = m[0]["children"][0], s[0]["children"][0]
        assert (mc["spi_in"], mc["spi_out"]) == (sc["spi_out"], sc["spi_in"])
        assert mc["local_ts"] == sc["remote_ts"] == [f"{hosts.left.inner}-{hosts.left.inner}"]

        text = moon.cli("status").stdout
        assert "gw: " + m[0]["name"] + ", ESTABLISHED, IKEv2, initiator" in text
        assert f"    in  {mc['spi_in']}" in text and f"    out {mc['spi_out']}" in text

        ts = json.loads(sun.cli("trafficstatus", "--json").stdout)["child_sas"]
        assert [(c["spi_in"], c["spi_out"]) for c in ts] == [(sc["spi_in"], sc["spi_out"])]
        assert set(ts[0]["in"]) == {"bytes", "packets"}
        line = sun.cli("trafficstatus").stdout
        assert line.startswith('"gw/gw", type=ESP,') and f"spi_in={sc['spi_in']}" in line

        r = moon.cli("rekey", "gw")
        assert r.returncode == 0 and "rekeying 1 Child SA" in r.stdout
        _wait(lambda: _ike(sun)[0]["children"][0]["spi_in"] != sc["spi_in"], what="Child SA rekey")
        r = moon.cli("rekey", "gw", "--ike")
        assert r.returncode == 0, r.stderr
        _wait(lambda: bool(_ike(sun)) and _ike(sun)[0]["name"] != s[0]["name"], what="IKE SA rekey")

        r = moon.cli("down", "gw")
        assert r.returncode == 0 and r.stdout.strip() == '"gw": deleting 1 IKE SA(s)'
        _wait(lambda: not _ike(sun) and not _ike(moon), what="IKE SA deleted on both sides")
        assert sun.call("trafficstatus") == {"child_sas": []}
    finally:
        listen.terminate()
        out, _ = listen.communicate(timeout=10)
    events = [json.loads(line) for line in out.splitlines()]
    names = [e["event"] for e in events]
    assert "ike-sa-up" in names and "child-sa-up" in names and "ike-sa-down" in names, names
    assert all(e["connection"] == "gw" for e in events if e["event"] in ("ike-sa-up", "child-sa-up"))


def test_up_failure_prints_the_reason_and_exits_1(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki, rightid="mars.test")])
    spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    r = moon.cli("up", "gw")
    assert r.returncode == 1, r.stdout
    assert r.stdout.startswith('"gw": failed: IKE SA failed:'), r.stdout
    r = moon.cli("up", "nosuch")
    assert r.returncode == 1 and r.stderr.strip() == "fipsike up: error: no connection named 'nosuch'"
    r = moon.cli("rekey", "gw")
    assert r.returncode == 1 and "no established Child SA" in r.stderr


def test_sigterm_deletes_and_exits_0(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki, auto="start")])
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    _wait(lambda: len(_ike(sun)) == 1 and bool(_ike(sun)[0]["children"]), what="auto=start")
    assert moon.stop() == 0
    assert "daemon-stopped" in moon.log_text()
    sun.wait_log("deleted by peer")
    assert _ike(sun) == [] and not moon.ctl.exists()


def test_kill9_and_restart_brings_the_tunnel_back(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    """The restarted initiator sends INITIAL_CONTACT (RFC 7296 2.4): the peer drops the stale IKE SA
    at once instead of keeping two."""
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki, auto="start")])
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    _wait(lambda: len(_ike(sun)) == 1 and bool(_ike(sun)[0]["children"]), what="auto=start")
    old = _ike(sun)[0]["name"]
    moon.kill9()
    t0 = time.monotonic()
    moon.start()
    _wait(lambda: [sa["name"] for sa in _ike(sun)] not in ([], [old]) and len(_ike(sun)) == 1
          and bool(_ike(sun)[0]["children"]), what="tunnel back with one IKE SA")
    assert time.monotonic() - t0 < 15
    assert _ike(moon)[0]["name"] == _ike(sun)[0]["name"] != old
    assert f"initial-contact [-] {old}: replaced after INITIAL_CONTACT" in sun.log_text()
    assert "kernel-cleanup [-] removed 0 stale SAs" in moon.run_log()


def test_concurrent_status_calls_during_handshakes(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    """The issue's numbers: 1,000 control clients (32 at a time) while the daemons run 100 handshakes
    (10 connections up and down 10 times): every reply and every handshake intact."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    names = [f"c{i}" for i in range(10)]
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki, name=n) for n in names])
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki, name=n) for n in names])
    done = threading.Event()
    during = []

    def status(i: int) -> int:
        reply = (sun if i % 2 else moon).call("status")
        during.append(not done.is_set())
        assert isinstance(reply["ike_sas"], list)
        return len(reply["connections"])

    def handshakes() -> list[bool]:
        out = []
        for _ in range(10):
            for n in names:
                out.append(bool(moon.call("up", name=n)["established"]))
            for n in names:
                moon.call("down", name=n)
        done.set()
        return out

    t0 = time.monotonic()
    with ThreadPoolExecutor(33) as pool:
        hs = pool.submit(handshakes)
        counts = list(pool.map(status, range(1000)))
        ok = hs.result(timeout=300)
    took = time.monotonic() - t0
    assert counts == [10] * 1000
    assert ok == [True] * 100
    assert sum(during) >= 500, f"only {sum(during)} status replies came while the handshakes ran"
    assert took < 120, took
    assert "internal-error" not in moon.log_text() + sun.log_text()
