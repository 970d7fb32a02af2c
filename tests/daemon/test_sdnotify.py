"""systemd integration: the notify protocol as the daemon speaks it (READY, STATUS, WATCHDOG,
STOPPING over $NOTIFY_SOCKET), and the unit file's hardening as systemd-analyze scores it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fipsike.daemon.sdnotify import Notifier
from tests import strongswan_harness as ssh
from tests.daemon.conftest import moon_conn
from tests.daemon.harness import ROOT, DaemonProc

UNIT = ROOT / "packaging" / "systemd" / "fipsike.service"


def test_notifier_sends_one_datagram_and_knows_the_watchdog(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "3000000"})
        assert n.enabled and n.watchdog_interval == 1.5
        n.notify(READY="1", STATUS="2 IKE SAs")
        assert s.recv(4096) == b"READY=1\nSTATUS=2 IKE SAs"
    assert not Notifier({}).enabled and Notifier({"WATCHDOG_USEC": "x"}).watchdog_interval is None
    assert Notifier({"NOTIFY_SOCKET": "@abstract"}).address == "\0abstract"
    Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).notify(READY="1")  # no listener: no error


@pytest.mark.netns
def test_daemon_notifies_ready_status_watchdog_stopping(hosts: ssh.TwoHosts, pki: ssh.Pki, tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        s.settimeout(20)
        d = DaemonProc(tmp_path / "d", hosts.left.netns, [moon_conn(hosts, pki)],
                       env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "200000"})
        try:
            d.start()
            got: list[bytes] = []
            deadline = time.monotonic() + 10
            while sum(m == b"WATCHDOG=1" for m in got) < 2 and time.monotonic() < deadline:
                got.append(s.recv(4096))
            assert got[0] == b"READY=1\nSTATUS=0 IKE SAs, 0 Child SAs"
            assert got.count(b"WATCHDOG=1") >= 2
            assert d.stop() == 0
            rest = []
            s.settimeout(0.5)
            try:
                while True:
                    rest.append(s.recv(4096))
            except TimeoutError:
                pass
            assert b"STOPPING=1\nSTATUS=deleting SAs" in rest
        finally:
            d.kill9()


def test_unit_file_hardening_score() -> None:
    text = UNIT.read_text()
    assert "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE\n" in text
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes", "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines()
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is part of systemd: expected on this host")
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(UNIT)],
                       capture_output=True, text=True, timeout=60)
    line = [x for x in r.stdout.splitlines() if "Overall exposure level" in x][0]
    score = float(line.split(":")[1].split()[0])
    assert score <= 2.5, line  # "OK" band; 2.2 when written
