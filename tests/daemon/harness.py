"""`fipsike daemon` as a real process in a network namespace, driven through its control socket
and the CLI (`python -m fipsike ...`), exactly as an operator would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from fipsike.daemon.client import ControlClient, ControlError
from tests import strongswan_harness as ssh

ROOT = Path(__file__).resolve().parents[2]
# the guest kernel (one CPU, generic C crypto) takes far longer for the start-up self-tests
START_TIMEOUT = 180.0 if os.environ.get("FIPSIKE_GUEST") == "1" else 20.0


def conn(name: str, left: ssh.Host, right: ssh.Host, pki_dir: Path, lname: str, rname: str, auto: str = "add",
         **extra: Any) -> dict[str, Any]:
    """A connection from `left`'s point of view; Pki(pki_dir).issue(f"{lname}.test") made its certificate."""
    out: dict[str, Any] = {
        "name": name, "auto": auto, "left": left.address, "right": right.address,
        "leftid": f"{lname}.test", "rightid": f"{rname}.test",
        "leftcert": str(pki_dir / f"{lname}.test.crt"), "leftkey": str(pki_dir / f"{lname}.test.key"),
        "rightca": str(pki_dir / "ca.crt"), "leftsubnet": f"{left.inner}/32", "rightsubnet": f"{right.inner}/32",
        "ike": "aes256gcm16-prfsha384-ecp256", "esp": "aes256gcm16", "dpddelay": 0,
    }
    out.update(extra)
    return out


class DaemonProc:
    def __init__(self, workdir: Path, netns: str, conns: list[dict[str, Any]], kernel: str = "memory",
                 setup: dict[str, Any] | None = None, fips_mode: str = "policy", ctl: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.env = dict(os.environ, **(env or {}))
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.kernel = kernel
        self.fips_mode = fips_mode
        self.config = workdir / "ipsec.json"
        self.ctl = ctl or workdir / "ctl"
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_start = 0
        self.extra_args: list[str] = []
        self.write_config(conns, setup)

    def write_config(self, conns: list[dict[str, Any]], setup: dict[str, Any] | None = None) -> None:
        self.config.write_text(json.dumps({"config setup": setup or {}, "conns": conns}, indent=1))

    def start(self, timeout: float = START_TIMEOUT, wait_ready: bool = True) -> None:
        self.run_start = len(self.log_text())  # this run's lines begin here (the log is appended)
        err = open(self.log, "ab")  # noqa: SIM115 - lives as long as the daemon
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-m", "fipsike", "daemon", "--config",
             str(self.config), "--ipsecdir", str(self.dir), "--ctl", str(self.ctl), "--kernel", self.kernel,
             "--fips-mode", self.fips_mode, *self.extra_args],
            cwd=ROOT, stdout=err, stderr=err, start_new_session=True, env=self.env)
        err.close()
        if wait_ready:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if "daemon-ready" in self.run_log():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"daemon not ready:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def run_log(self) -> str:
        """The current run's log lines."""
        return self.log_text()[self.run_start:]

    def call(self, cmd: str, **args: Any) -> Any:
        with ControlClient(self.ctl, 60) as c:
            return c.call(cmd, **args)

    def try_call(self, cmd: str, **args: Any) -> Any:
        try:
            return self.call(cmd, **args)
        except ControlError as exc:
            return exc

    def cli(self, *args: str, timeout: float = 60, user: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "fipsike", *args, "--ctl", str(self.ctl)]
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *cmd]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))

    def wait_log(self, needle: str, timeout: float = 15.0, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            if text.count(needle) >= count:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} x{count} never logged:\n{text[-3000:]}")
            time.sleep(0.05)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.proc is None:
            return 0
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise
        self.proc = None
        return rc

    def kill9(self) -> None:
        if self.proc is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None


def xfrm(netns: str, what: str) -> str:
    return subprocess.run(["ip", "-n", netns, "xfrm", what], capture_output=True, text=True, check=True).stdout
