"""`fipsike daemon` as a real process in a network namespace, driven through its control socket
and the CLI (`python -m fipsike ...`), exactly as an operator would."""

from __future__ import annotations

import os
import re
import shutil
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
    """A connection from `left`'s point of view; Pki(pki_dir).issue(f"{lname}.test") made its certificate.

    ipsec.conf keywords, except that leftcert=, leftkey= and rightca= are files here: `render_ipsec_conf`
    copies them into the daemon's ipsecdir (certs/, private/, cacerts/) and names them as ipsec.conf does.
    leftkey=None: the key is on the token; leftkey="pkcs11:...": leftcert= becomes that URI."""
    out: dict[str, Any] = {
        "name": name, "auto": auto, "left": left.address, "right": right.address,
        "leftid": f"{lname}.test", "rightid": f"{rname}.test",
        "leftcert": str(pki_dir / f"{lname}.test.crt"), "leftkey": str(pki_dir / f"{lname}.test.key"),
        "rightca": str(pki_dir / "ca.crt"), "leftsubnet": f"{left.inner}/32", "rightsubnet": f"{right.inner}/32",
        "ike": "aes256gcm16-prfsha384-ecp256", "esp": "aes256gcm16", "dpddelay": 0,
    }
    out.update(extra)
    return out


def libreswan_id(value: str) -> str:
    """libreswan's ID syntax: an FQDN is written @name (a bare name would be resolved as a host)."""
    if value.startswith(("@", "%")) or "=" in value or value.replace(".", "").isdigit() or ":" in value:
        return value
    return "@" + value


def libreswan_algs(text: str) -> str:
    """strongSwan's proposal spelling (aes256gcm16-prfsha384-ecp256, aes128-sha256) in libreswan's grammar."""
    text = re.sub(r"aes(\d+)gcm16", r"aes_gcm_16_\1", text)
    text = re.sub(r"prfsha(\d+)", r"sha2_\1", text)
    return re.sub(r"(?<![_\w])sha(256|384|512)", r"sha2_\1", text)


def render_ipsec_conf(conns: list[dict[str, Any]], setup: dict[str, Any], ipsecdir: Path) -> str:
    """ipsec.conf text for these conns; their certificate and key files are copied under `ipsecdir`."""
    for sub in ("certs", "cacerts", "private"):
        (ipsecdir / sub).mkdir(parents=True, exist_ok=True)
    (ipsecdir / "private").chmod(0o700)
    lines = ["# written by tests/daemon/harness.py", "config setup"]
    lines += [f"\t{k}={v}" for k, v in setup.items()]
    for c in conns:
        c = dict(c)
        lines += ["", f"conn {c.pop('name')}"]
        cert, key, ca = c.pop("leftcert", None), c.pop("leftkey", None), c.pop("rightca", None)
        if cert is not None:
            nick = Path(cert).stem
            shutil.copy(cert, ipsecdir / "certs" / f"{nick}.crt")
            if isinstance(key, str) and key.startswith("pkcs11:"):
                c["leftcert"] = key
            else:
                c["leftcert"] = nick
                if key is not None:
                    dst = ipsecdir / "private" / f"{nick}.key"
                    shutil.copy(key, dst)
                    dst.chmod(0o600)
        if ca is not None:
            shutil.copy(ca, ipsecdir / "cacerts" / Path(ca).name)
            c["rightca"] = Path(ca).stem
        for k, v in c.items():
            if v is None:
                continue
            if isinstance(v, bool):
                v = "yes" if v else "no"
            elif k in ("leftid", "rightid"):
                v = libreswan_id(str(v))
            elif k in ("ike", "esp"):
                v = libreswan_algs(str(v))
            lines.append(f"\t{k}={v}")
    return "\n".join(lines) + "\n"


class DaemonProc:
    def __init__(self, workdir: Path, netns: str, conns: list[dict[str, Any]], kernel: str = "memory",
                 setup: dict[str, Any] | None = None, fips_mode: str = "policy", ctl: Path | None = None,
                 env: dict[str, str] | None = None, secrets: str | None = None) -> None:
        self.env = dict(os.environ, **(env or {}))
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.netns = netns
        self.kernel = kernel
        self.fips_mode = fips_mode
        self.config = workdir / "ipsec.conf"
        self.ctl = ctl or workdir / "ctl"
        self.log = workdir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.run_start = 0
        self.extra_args: list[str] = []
        self.write_config(conns, setup)
        if secrets is not None:
            self.write_secrets(secrets)

    def write_secrets(self, text: str) -> None:
        """ipsec.secrets (mode 0600, as the loader demands), passed with --secrets."""
        path = self.dir / "ipsec.secrets"
        path.write_text(text)
        path.chmod(0o600)
        if "--secrets" not in self.extra_args:
            self.extra_args += ["--secrets", str(path)]

    def write_config(self, conns: list[dict[str, Any]], setup: dict[str, Any] | None = None) -> None:
        self.config.write_text(render_ipsec_conf(conns, setup or {}, self.dir))

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
