"""The responders benchmarks.daemon and benchmarks.churn measure, each a process in the responder's
namespace with one pid to read /proc from:

- `charon`: Debian's charon-systemd with its own strongswan.conf (dos_protection = no; kernel-libipsec,
  userspace ESP, because this host kernel installs no ESP SAs; Debian's build has no fake kernel).
- `fipsike`: `fipsike daemon --kernel memory|xfrm` with its control socket (the daemon branch's CLI).
- `fipsike-engine`: benchmarks.responder, the Engine behind a minimal asyncio UDP loop (until the
  daemon is in main).

Each answers `counts()` (IKE SAs up, Child SAs up) after the measurement, so counting never costs
the measured interval anything.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from typing import Protocol

from benchmarks.ikebench import (
    INITIATOR_ID,
    INITIATOR_NET,
    RESPONDER_ADDR,
    RESPONDER_ID,
    RESPONDER_NET,
    PkiPaths,
    Suite,
    netns_cmd,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[1]
CHARON = "/usr/sbin/charon-systemd"


class Responder(Protocol):
    name: str
    kernel: str  # which SA backend its figures are with

    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...

    def counts(self) -> tuple[int, int]:
        """(IKE SAs established, Child SAs installed)."""
        ...

    def stop(self) -> None: ...


def _python_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))


def _stop(proc: subprocess.Popen[bytes] | None, sig: signal.Signals = signal.SIGTERM, wait: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


# --- charon ---------------------------------------------------------------------------------
# kernel-libipsec before kernel-netlink: userspace ESP (../shared/recipes/strongswan.md)
CHARON_PLUGINS = ("random nonce openssl pem pkcs1 pkcs8 x509 pubkey constraints revocation kdf kernel-libipsec "
                  "kernel-netlink socket-default vici")
STRONGSWAN_CONF = """\
charon {{
  load = {plugins}
  port = 500
  port_nat_t = 4500
  install_routes = no
  dos_protection = no
  {retransmit}
  {rsa_pss}
  plugins {{
    vici {{
      socket = unix://{vici}
    }}
  }}
  filelog {{
    charonlog {{
      path = {log}
      time_format = %T
      default = 0
      flush_line = yes
      append = no
    }}
  }}
}}
swanctl {{
  load = pem pkcs1 pkcs8 x509 openssl
}}
"""

SWANCTL_CONF = """\
connections {{
  bench {{
    version = 2
    local_addrs = {local}
    proposals = {ike}
    unique = no
    send_cert = always
    dpd_delay = {dpd}
    local {{
      auth = pubkey
      certs = responder.crt
      id = {lid}
    }}
    remote {{
      auth = pubkey
      id = {rid}
    }}
    children {{
      net {{
        local_ts = {lnet}
        remote_ts = {rnet}
        esp_proposals = {esp}
        start_action = none
      }}
    }}
  }}
}}
"""


def _charon_retransmit(give_up: float | None) -> str:
    """charon's IKEv2 liveness check gives up when its retransmissions do (strongswan.conf(5):
    timeout * base**n for n = 0..tries): three sends whose waits add up to `give_up` seconds,
    as fipsike's dpdtimeout= does."""
    if give_up is None:
        return ""
    base = 1.8
    return (f"retransmit_tries = 2\n  retransmit_base = {base}\n"
            f"  retransmit_timeout = {give_up / (1 + base + base * base):.3f}")


class CharonResponder:
    """`xfrm`: kernel-netlink alone, the SAs in the kernel's XFRM (a kernel with ESP: the guest's);
    otherwise kernel-libipsec, userspace ESP (the host kernel has XFRM netlink but no ESP)."""

    name = "charon"

    def __init__(self, workdir: Path, netns: str, pki: PkiPaths, suite: Suite, dpd: float = 0.0,
                 dpd_timeout: float | None = None, xfrm: bool = False) -> None:
        self.dir, self.netns = workdir, netns
        self.kernel = "xfrm (kernel-netlink)" if xfrm else "kernel-libipsec (userspace ESP)"
        plugins = CHARON_PLUGINS.replace("kernel-libipsec ", "") if xfrm else CHARON_PLUGINS
        self.vici = workdir / "charon.vici"
        self.conf = workdir / "strongswan.conf"
        self.swanctl_dir = workdir / "swanctl"
        self.proc: subprocess.Popen[bytes] | None = None
        for sub, name, src in (("x509", "responder.crt", pki.responder_cert), ("x509ca", "ca.crt", pki.ca),
                               ("private", "responder.key", pki.responder_key)):
            d = self.swanctl_dir / sub
            d.mkdir(parents=True, exist_ok=True)
            (d / name).write_bytes(src.read_bytes())
        (self.swanctl_dir / "swanctl.conf").write_text(SWANCTL_CONF.format(
            local=RESPONDER_ADDR, ike=suite.ike, esp=suite.esp, lid=RESPONDER_ID, rid=INITIATOR_ID,
            lnet=RESPONDER_NET, rnet=INITIATOR_NET, dpd=f"{int(dpd)}s"))
        self.conf.write_text(STRONGSWAN_CONF.format(
            plugins=plugins, vici=self.vici, log=workdir / "charon.log",
            retransmit=_charon_retransmit(dpd_timeout),
            rsa_pss="rsa_pss = yes" if suite.key_type == "rsa" else ""))

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def swanctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, SWANCTL_DIR=str(self.swanctl_dir))
        return subprocess.run(["swanctl", *args, "--uri", f"unix://{self.vici}"], env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def start(self) -> None:
        env = dict(os.environ, STRONGSWAN_CONF=str(self.conf))
        with suppress(FileNotFoundError):
            self.vici.unlink()
        err = open(self.dir / "charon.stderr", "wb")  # noqa: SIM115 - lives as long as the daemon
        self.proc = subprocess.Popen(netns_cmd(self.netns, [CHARON]), env=env, stdout=err, stderr=err,
                                     start_new_session=True)
        wait_for(lambda: self.vici.exists() and self.swanctl("--stats").returncode == 0, 15,
                 "charon's VICI socket did not come up")
        res = self.swanctl("--load-all", "--file", str(self.swanctl_dir / "swanctl.conf"))
        if res.returncode != 0:
            raise RuntimeError(f"swanctl --load-all failed: {res.stdout[-1000:]} {res.stderr[-1000:]}")

    def counts(self) -> tuple[int, int]:
        out = self.swanctl("--list-sas", "--raw").stdout
        return len(re.findall(r"\bstate=ESTABLISHED\b", out)), len(re.findall(r"\bstate=INSTALLED\b", out))

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


# --- the engine responder -----------------------------------------------------------------------
class EngineResponder:
    name = "fipsike-engine"
    kernel = "memory"

    def __init__(self, workdir: Path, netns: str, pki_dir: Path, suite: Suite, dpd: float = 0.0,
                 profile: bool = False, trace: bool = False, dpd_timeout: float = 150.0) -> None:
        self.dir, self.netns = workdir, netns
        workdir.mkdir(parents=True, exist_ok=True)
        self.status_file = workdir / "responder-status.json"
        self.profile = workdir / "responder.prof" if profile else None
        self.trace = workdir / "responder-tracemalloc.json" if trace else None
        self.argv = [sys.executable, "-m", "benchmarks.responder", "--pki", str(pki_dir), "--suite", suite.name,
                     "--status", str(self.status_file), "--dpd", str(dpd), "--dpd-timeout", str(dpd_timeout)]
        if self.profile:
            self.argv += ["--profile", str(self.profile)]
        if self.trace:
            self.argv += ["--tracemalloc", str(self.trace)]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with suppress(FileNotFoundError):
            self.status_file.unlink()
        err = open(self.dir / "responder.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(netns_cmd(self.netns, self.argv), cwd=ROOT, env=_python_env(), stdout=err,
                                     stderr=err, start_new_session=True)
        wait_for(lambda: self.status_file.exists() or self.proc is None or self.proc.poll() is not None, 60,
                 "the engine responder did not start")
        if self.proc.poll() is not None:
            raise RuntimeError("the engine responder exited: "
                               + (self.dir / "responder.stderr").read_text(errors="replace")[-2000:])

    def status(self) -> dict[str, int]:
        before = self.status_file.stat().st_mtime_ns
        os.kill(self.pid, signal.SIGUSR1)
        wait_for(lambda: self.status_file.stat().st_mtime_ns != before, 30, "no status from the responder",
                 step=0.01)
        return dict(json.loads(self.status_file.read_text()))

    def dump_tracemalloc(self) -> None:
        """A numbered tracemalloc dump beside the final one (SIGUSR2; only when tracing)."""
        assert self.trace is not None
        n = len(list(self.dir.glob("responder-tracemalloc-*.json")))
        os.kill(self.pid, signal.SIGUSR2)
        wait_for(lambda: len(list(self.dir.glob("responder-tracemalloc-*.json"))) > n, 300,
                 "no tracemalloc dump from the responder", step=0.2)

    def counts(self) -> tuple[int, int]:
        s = self.status()
        return s["ike_sas_up"], s["child_sas"]

    def stop(self) -> None:
        _stop(self.proc, wait=120)  # the profile / tracemalloc dumps take a moment
        self.proc = None


def _libreswan(text: str) -> str:
    """strongSwan's proposal spelling (aes256gcm16-prfsha384-ecp256) in libreswan's ike=/esp= grammar."""
    text = re.sub(r"aes(\d+)gcm16", r"aes_gcm_16_\1", text)
    text = re.sub(r"prfsha(\d+)", r"sha2_\1", text)
    return re.sub(r"(?<![_\w])sha(256|384|512)", r"sha2_\1", text)


# --- fipsike daemon ------------------------------------------------------------------------------
class DaemonResponder:
    """`fipsike daemon` with an ipsec.conf (libreswan's format; the certificate by nickname from
    <ipsecdir>/certs, its key from <ipsecdir>/private, the CA from <ipsecdir>/cacerts)."""

    name = "fipsike"

    def __init__(self, workdir: Path, netns: str, pki: PkiPaths, suite: Suite, kernel: str = "memory",
                 dpd: float = 0.0, profile: Path | None = None, dpd_timeout: float = 150.0,
                 trace: Path | None = None) -> None:
        self.dir, self.netns, self.kernel = workdir, netns, kernel
        workdir.mkdir(parents=True, exist_ok=True)
        self.ctl = workdir / "ctl"
        for sub, src, name in (("certs", pki.responder_cert, "responder.crt"), ("private", pki.responder_key,
                                                                                 "responder.key"),
                               ("cacerts", pki.ca, "ca.crt")):
            (workdir / sub).mkdir(mode=0o700, exist_ok=True)
            (workdir / sub / name).write_bytes(Path(src).read_bytes())
        (workdir / "private" / "responder.key").chmod(0o600)
        config = workdir / "ipsec.conf"
        config.write_text("\n".join([
            "conn bench", "\tauto=add", f"\tleft={RESPONDER_ADDR}", "\tright=%any", f"\tleftid=@{RESPONDER_ID}",
            f"\trightid=@{INITIATOR_ID}", "\tleftcert=responder", f"\tleftsubnet={RESPONDER_NET}",
            f"\trightsubnet={INITIATOR_NET}", f"\tike={suite.libreswan_ike or _libreswan(suite.ike)}",
            f"\tesp={_libreswan(suite.esp)}",
            f"\tdpddelay={dpd:g}", f"\tdpdtimeout={dpd_timeout:g}",
            f"\tauthby={'rsasig' if suite.key_type == 'rsa' else 'ecdsa'}", ""]))
        (workdir / "ipsec.secrets").write_text("")
        (workdir / "ipsec.secrets").chmod(0o600)
        cli = ["daemon", "--config", str(config), "--secrets", str(workdir / "ipsec.secrets"), "--ipsecdir",
               str(workdir), "--ctl", str(self.ctl), "--kernel", kernel, "--fips-mode", "policy"]
        # --profile: under cProfile (CPU time), the stats in PROFILE once it stops
        self.trace = trace
        if trace is not None:  # --tracemalloc: the growth between two marks (tracemalloc_mark)
            self.argv = [sys.executable, "-m", "benchmarks.profiled", "--tracemalloc", str(trace), *cli]
        elif profile is not None:
            self.argv = [sys.executable, "-m", "benchmarks.profiled", str(profile), *cli]
        else:
            self.argv = [sys.executable, "-m", "fipsike", *cli]
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        res = subprocess.run([sys.executable, "-m", "fipsike", "daemon", "--help"], cwd=ROOT, env=_python_env(),
                             capture_output=True, text=True, timeout=60, check=False)
        return None if res.returncode == 0 else "`fipsike daemon` is not in this tree yet"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _status(self, timeout: float = 120) -> dict[str, object] | None:
        res = subprocess.run([sys.executable, "-m", "fipsike", "status", "--json", "--ctl", str(self.ctl)],
                             cwd=ROOT, env=_python_env(), capture_output=True, text=True, timeout=timeout,
                             check=False)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def start(self) -> None:
        err = open(self.dir / "daemon.stderr", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(netns_cmd(self.netns, self.argv), cwd=ROOT, env=_python_env(), stdout=err,
                                     stderr=err, start_new_session=True)
        wait_for(lambda: self.ctl.exists() or self.proc is None or self.proc.poll() is not None, 60,
                 "fipsike daemon's control socket did not come up")
        if self.proc.poll() is not None:
            raise RuntimeError("fipsike daemon exited: "
                               + (self.dir / "daemon.stderr").read_text(errors="replace")[-2000:])

    def tracemalloc_mark(self) -> None:
        """Under --tracemalloc: the first call takes the baseline, the second writes the growth."""
        assert self.trace is not None
        flag = self.trace.with_suffix(".base") if not self.trace.with_suffix(".base").exists() else self.trace
        os.kill(self.pid, signal.SIGUSR2)
        wait_for(flag.exists, 600, "no tracemalloc snapshot from the daemon", step=0.2)

    def counts(self) -> tuple[int, int]:
        st = self._status() or {}
        sas = st.get("ike_sas", [])
        assert isinstance(sas, list)
        up = [sa for sa in sas if sa.get("state") == "established"]
        return len(up), sum(1 for sa in up for c in sa.get("children", []) if c.get("state") == "installed")

    def stop(self) -> None:
        _stop(self.proc, wait=120)  # SIGTERM: the daemon deletes every SA before it exits
        self.proc = None

