"""The control socket: who may use it (file mode and SO_PEERCRED), malformed requests (a clear
error, the daemon stays up), reload from a changed file (SIGHUP and `fipsike reload`), and the
--kernel memory refusal in FIPS mode required."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from typing import Any

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.harness import ROOT, DaemonProc

pytestmark = [pytest.mark.netns]


def _raw(d: DaemonProc, payload: bytes, replies: int = 1) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(d.ctl))
        s.sendall(payload)
        buf = b""
        while buf.count(b"\n") < replies:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return [json.loads(line) for line in buf.splitlines()]


# The caller under another uid speaks the protocol with the standard library only: on this host
# the interpreter's site-packages live under /root, which `nobody` cannot read.
_AS_USER = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit(3)
try:
    s.sendall(b'{"cmd": "status", "id": 1}\\n')
except OSError:
    pass  # refused callers are answered and hung up on at once: the answer is still there to read
print(s.makefile().readline().strip())
"""


def _as_user(d: DaemonProc, group: str = "nogroup") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups", sys.executable, "-I",
                           "-c", _AS_USER, str(d.ctl)], capture_output=True, text=True, timeout=30, cwd="/")


def test_socket_is_0600_and_refuses_nobody(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    d = spawn(hosts.left.netns, [moon_conn(hosts, pki)], public_ctl=True)
    st = d.ctl.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    r = _as_user(d)
    assert (r.returncode, r.stdout.strip()) == (3, "connect: Permission denied"), r.stderr
    # past the file mode, SO_PEERCRED still refuses: open the mode up and try again
    os.chmod(d.ctl, 0o666)
    r = _as_user(d)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": None, "ok": False,
                                    "error": "permission denied: uid 65534 is not root and not in the control group"}
    assert d.cli("status").returncode == 0
    # FIPSIKE_CTL instead of --ctl
    r = subprocess.run([sys.executable, "-m", "fipsike", "status", "--json"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, FIPSIKE_CTL=str(d.ctl)))
    assert r.returncode == 0 and json.loads(r.stdout)["connections"][0]["name"] == "gw", r.stderr


def test_control_group_is_let_in(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    d = spawn(hosts.left.netns, [moon_conn(hosts, pki)], start=False, public_ctl=True)
    d.extra_args = ["--ctl-group", "nogroup"]
    d.start()
    st = d.ctl.stat()
    assert stat.S_IMODE(st.st_mode) == 0o660
    r = _as_user(d)
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["ok"] and [c["name"] for c in reply["result"]["connections"]] == ["gw"]


def test_malformed_requests_get_errors_and_the_daemon_stays_up(hosts: ssh.TwoHosts, pki: ssh.Pki,
                                                               spawn: Spawn) -> None:
    d = spawn(hosts.left.netns, [moon_conn(hosts, pki)])
    bad = [b"not json\n", b"[1,2]\n", b'{"cmd": "explode"}\n', b'{"cmd": "up", "args": []}\n',
           b'{"cmd": "up", "args": {}}\n', b'{"cmd": "up", "args": {"name": "gw", "timeout": "x"}}\n',
           b'{"cmd": "down", "args": {"name": "nope"}, "id": 7}\n', b"\xff\xfe\x00garbage\n"]
    replies = _raw(d, b"".join(bad) + b'{"cmd": "status", "id": "last"}\n', replies=len(bad) + 1)
    assert [r["ok"] for r in replies] == [False] * len(bad) + [True]
    errors = [r["error"] for r in replies[:-1]]
    assert errors[0] == errors[1] == errors[7] == "malformed request: not a JSON object"
    assert errors[2].startswith('malformed request: "cmd" must be one of up, down, status')
    assert errors[3] == 'malformed request: "args" must be an object'
    assert errors[4] == '"args.name" (the connection\'s name) is required'
    assert errors[5] == '"args.timeout" must be 1..600 seconds'
    assert replies[6] == {"id": 7, "ok": False, "error": "no connection named 'nope'"}
    assert replies[-1]["id"] == "last"
    huge = _raw(d, b"{" + b" " * (70 * 1024) + b"\n")
    assert huge[0]["error"].startswith("malformed request: longer than")
    # a client that connects and leaves mid-line
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(d.ctl))
        s.sendall(b'{"cmd": "sta')
    assert d.call("status")["connections"][0]["name"] == "gw"
    assert d.proc is not None and d.proc.poll() is None
    assert "internal-error" not in d.log_text() and "Traceback" not in d.log_text()


def test_reload_adds_removes_and_replaces(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    sun = spawn(hosts.right.netns, [sun_conn(hosts, pki, esp="aes256gcm16,aes128gcm16"),
                                    sun_conn(hosts, pki, name="other")])
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki, auto="start"), moon_conn(hosts, pki, name="old")])

    def names(d: DaemonProc) -> list[str]:
        return sorted(c["name"] for c in d.call("status")["connections"])

    def ike(d: DaemonProc) -> list[str]:
        """IKE SAs of gw that carry their Child SA."""
        return [sa["name"] for sa in d.call("status")["ike_sas"] if sa["connection"] == "gw" and sa["children"]]

    deadline = time.monotonic() + 15
    while not ike(sun) and time.monotonic() < deadline:
        time.sleep(0.05)
    first = ike(sun)
    assert len(first) == 1 and names(moon) == ["gw", "old"]
    # changed (a new ESP proposal) + removed (old) + added (new) in one SIGHUP
    moon.write_config([moon_conn(hosts, pki, auto="start", esp="aes128gcm16"),
                       moon_conn(hosts, pki, name="new", auto="add")])
    moon.signal(signal.SIGHUP)
    moon.wait_log("reloaded")
    assert "reloaded [-] added ['new'] removed ['old'] changed ['gw']" in moon.log_text()
    assert names(moon) == ["gw", "new"]
    deadline = time.monotonic() + 15
    while (ike(sun) in ([], first) or not ike(moon)) and time.monotonic() < deadline:
        time.sleep(0.05)
    sas = [sa for sa in sun.call("status")["ike_sas"] if sa["connection"] == "gw"]
    assert len(sas) == 1 and sas[0]["name"] != first[0]
    assert sas[0]["children"][0]["suite"].startswith("ENCR_AES_GCM_16_128")
    # the CLI verb; a broken file keeps the running configuration
    good = moon.config.read_text()
    moon.config.write_text(good.replace("\tesp=aes_gcm_16_128", "\tesp=aes_gcm_16_128\n\tlefttsubnet=10.9.9.0/24"))
    line = next(n for n, text in enumerate(moon.config.read_text().splitlines(), 1) if "lefttsubnet" in text)
    r = moon.cli("reload")
    assert r.returncode == 1
    # one line: FILE:LINE, the conn, the keyword, why
    assert r.stderr.strip() == (f"fipsike reload: error: reload failed, running configuration kept: {moon.config}:"
                                f"{line}: conn gw: lefttsubnet: unrecognized 'conn' keyword 'lefttsubnet'")
    assert names(moon) == ["gw", "new"]
    moon.write_config([moon_conn(hosts, pki, auto="start", esp="aes128gcm16")])
    r = moon.cli("reload")
    assert r.returncode == 0 and r.stdout.splitlines() == ["added: -", "removed: new", "changed: -"]


def test_kernel_memory_is_refused_in_required_mode(tmp_path: Any) -> None:
    r = subprocess.run([sys.executable, "-m", "fipsike", "daemon", "--kernel", "memory", "--fips-mode", "required",
                        "--config", str(tmp_path / "none.conf"), "--ctl", str(tmp_path / "ctl")], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("fipsike daemon: error: --kernel memory keeps SAs in this process only")
    assert not (tmp_path / "ctl").exists()
