"""`fipsike demo`: the whole product in under a minute, on one machine.

Two network namespaces joined by a veth pair, a test CA and two certificates (certs.testpki),
moon's private key generated on a SoftHSM2 token and never leaving it, sun's in a PEM file,
two `fipsike daemon --kernel xfrm`, `up`, pings through the tunnel, then `status`,
`trafficstatus` and the redacted `xfrm` report. Everything is removed at the end.

The daemons read ipsec.conf files the demo writes (libreswan's format), with their certificates
under each daemon's --ipsecdir: certs/, cacerts/ and, for sun, private/.

The data path needs a kernel with ESP (esp4). Where there is none (as on these CI hosts) the demo
runs itself inside the user-mode-linux guest kernel that scripts/setup.sh prepares, through
scripts/guest-run.sh (one guest at a time: it waits for a guest another run holds); `--no-guest`
stops with one line instead.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fipsike.commands.selftest import add_fips_mode_option, start_module

MOON, SUN = ("10.98.0.1", "10.3.0.1"), ("10.98.0.2", "10.4.0.1")  # (outer, inner) of each side
TOKEN_LABEL = "fipsike-demo"  # noqa: S105 - a token label, not a secret
NO_ESP = "this kernel has no ESP ({why}): the tunnel's data path cannot run here"
GUEST_RUN = Path(__file__).resolve().parents[2] / "scripts" / "guest-run.sh"
GUEST_SECONDS = 300  # the guest's own limit (a demo in it takes about 40 s)


class DemoError(Exception):
    """A step that failed: one line for the operator."""


class NoEsp(DemoError):
    """The kernel cannot hold ESP SAs: the demo moves to the guest kernel."""


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="two namespaces, two daemons, one key on a SoftHSM2 token: a tunnel and pings through it",
        description="Build a throw-away test PKI (one private key on a SoftHSM2 token), two network namespaces "
                    "and two fipsike daemons, bring the tunnel up, ping through it, show status, trafficstatus "
                    "and the redacted kernel report, then remove everything. Needs root and a kernel with ESP.")
    p.add_argument("--keep", action="store_true", help="leave the work folder (configs, logs) behind")
    p.add_argument("--no-guest", action="store_true",
                   help="on a kernel without ESP, stop instead of running the demo in the guest kernel")
    add_fips_mode_option(p)
    p.set_defaults(func=run)


def _sh(*cmd: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=60, env=env)
    if check and r.returncode != 0:
        raise DemoError(f"{' '.join(cmd[:4])}...: {(r.stderr or r.stdout).strip()[:200]}")
    return r


def esp_missing(netns: str) -> str:
    """Why ESP SAs cannot be added in this kernel, or "" when they can (an all-zero throw-away key)."""
    r = _sh("ip", "-n", netns, "xfrm", "state", "add", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp",
            "spi", "0x100", "mode", "tunnel", "enc", "cbc(aes)", "0x" + "00" * 16, "auth-trunc", "hmac(sha256)",
            "0x" + "00" * 32, "128", check=False)
    return "" if r.returncode == 0 else (r.stderr.strip() or f"ip exit {r.returncode}")


class Demo:
    def __init__(self, work: Path, fips_mode: str | None) -> None:
        self.work = work
        self.fips_mode = fips_mode or "policy"
        tag = f"{os.getpid() % 100000}"
        self.ns = (f"fdemo{tag}m", f"fdemo{tag}s")
        self.daemons: list[subprocess.Popen[bytes]] = []
        self.env = dict(os.environ, SOFTHSM2_CONF=str(work / "softhsm2.conf"))

    def step(self, text: str) -> None:
        print(f"fipsike demo: {text}", flush=True)

    # --- set-up ---------------------------------------------------------------------------------
    def namespaces(self) -> None:
        (m, s) = self.ns
        for n in self.ns:
            _sh("ip", "netns", "add", n)
            _sh("ip", "-n", n, "link", "set", "lo", "up")
        _sh("ip", "link", "add", f"v{m}", "type", "veth", "peer", "name", f"v{s}")
        for n, (outer, inner), (peer_outer, peer_inner) in ((m, MOON, SUN), (s, SUN, MOON)):
            dev = f"v{n}"
            _sh("ip", "link", "set", dev, "netns", n)
            _sh("ip", "-n", n, "addr", "add", f"{outer}/24", "dev", dev)
            _sh("ip", "-n", n, "addr", "add", f"{inner}/32", "dev", "lo")
            _sh("ip", "-n", n, "link", "set", dev, "up")
            _sh("ip", "-n", n, "route", "add", f"{peer_inner}/32", "via", peer_outer, "src", inner)

    def token(self, router_pin: str) -> Path:
        (self.work / "tokens").mkdir()
        Path(self.env["SOFTHSM2_CONF"]).write_text(f"directories.tokendir = {self.work / 'tokens'}\n"
                                                  "objectstore.backend = file\nlog.level = ERROR\n")
        so_pin = router_pin[::-1]
        _sh("softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", router_pin, "--so-pin",
            so_pin, env=self.env)
        pin_file = self.work / "pin"
        pin_file.write_text(router_pin + "\n")
        pin_file.chmod(0o600)
        return pin_file

    def pki(self, args: argparse.Namespace, pin_file: Path) -> None:
        from certs.testpki import P256, TestPki
        from providers.pkcs11.config import Pkcs11Config

        os.environ["SOFTHSM2_CONF"] = self.env["SOFTHSM2_CONF"]
        module = start_module(args, "demo", pkcs11=Pkcs11Config(token_label=TOKEN_LABEL, pin_file=str(pin_file)))
        if isinstance(module, int):
            raise DemoError("the self-tests did not pass (see above)")
        router = module.router
        pki = TestPki(router, datetime.now(UTC), org="fipsike demo")
        ca = pki.root("fipsike demo CA", P256)
        moon_key = router.generate_keypair(P256, label="moon.demo", key_id=b"\x4d\x01", to_token=True)
        moon = pki.end_entity("moon.demo", ca, P256, sans=("DNS:moon.demo", f"IP:{MOON[0]}"),
                              public_key=moon_key.public_key())
        sun = pki.end_entity_with_key_file("sun.demo", ca, P256, self.work / "sun.key",
                                           sans=("DNS:sun.demo", f"IP:{SUN[0]}"))
        for name, issued in (("ca.crt", ca), ("moon.crt", moon), ("sun.crt", sun)):
            pki.write_pem(issued.cert, self.work / name)

    def configs(self) -> tuple[Path, Path]:
        """moon.conf and sun.conf (ipsec.conf), each with its ipsecdir: certs/, cacerts/, sun's private/."""
        out = []
        for my, their, me, peer in (("moon", "sun", MOON, SUN), ("sun", "moon", SUN, MOON)):
            d = self.work / f"{my}.d"
            for sub in ("certs", "cacerts", "private"):
                (d / sub).mkdir(parents=True, mode=0o700)
            shutil.copy(self.work / f"{my}.crt", d / "certs" / f"{my}.demo.crt")
            shutil.copy(self.work / "ca.crt", d / "cacerts" / "demo-ca.crt")
            if my == "sun":  # moon's key stays on the token: found by its certificate's public key
                shutil.copy(self.work / "sun.key", d / "private" / "sun.demo.key")
                (d / "private" / "sun.demo.key").chmod(0o600)
            path = self.work / f"{my}.conf"
            path.write_text(f"""# fipsike demo: {my}'s side (libreswan ipsec.conf)
config setup
\tcrl-strict=no

conn demo
\tauto=add
\tleft={me[0]}
\tleftid=@{my}.demo
\tleftcert={my}.demo
\tleftsubnet={me[1]}/32
\tright={peer[0]}
\trightid=@{their}.demo
\trightca=demo-ca
\trightsubnet={peer[1]}/32
\tike=aes_gcm_16_256-sha2_384-ecp384
\tesp=aes_gcm_16_256
\tdpddelay=0
""")
            out.append(path)
        return out[0], out[1]

    def start(self, netns: str, config: Path, name: str, extra: list[str]) -> Path:
        ctl = self.work / f"{name}.ctl"
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 - the daemon keeps it
        self.daemons.append(subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "fipsike", "daemon", "--kernel", "xfrm",
             "--config", str(config), "--ipsecdir", str(config.with_suffix(".d")), "--secrets",
             str(self.work / "ipsec.secrets"), "--ctl", str(ctl), "--fips-mode",
             self.fips_mode, *extra], stdout=log, stderr=log, env=self.env, start_new_session=True))
        log.close()
        return ctl

    def wait_ready(self, name: str, timeout: float = 120.0) -> None:
        log = self.work / f"{name}.log"
        deadline = time.monotonic() + timeout
        while "daemon-ready" not in log.read_text(errors="replace"):
            if any(d.poll() is not None for d in self.daemons) or time.monotonic() > deadline:
                raise DemoError(f"the {name} daemon did not start: {log.read_text(errors='replace')[-400:]}")
            time.sleep(0.1)

    # --- tear-down ------------------------------------------------------------------------------
    def close(self, keep: bool) -> None:
        codes: list[int] = []
        for d in self.daemons:
            with suppress(ProcessLookupError):
                os.killpg(d.pid, signal.SIGTERM)
        for d in self.daemons:
            try:
                codes.append(d.wait(20))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(d.pid, signal.SIGKILL)
                codes.append(d.wait(5))
        for n in self.ns:
            _sh("ip", "netns", "del", n, check=False)
        if not keep:
            shutil.rmtree(self.work, ignore_errors=True)
        left = [n for n in self.ns if n in _sh("ip", "netns", check=False).stdout.split()]
        if self.daemons:
            self.step(f"cleaned up: daemons exited {'/'.join(map(str, codes))} (SIGTERM: DELETE sent, SAs and "
                      f"policies removed), namespaces {'removed' if not left else 'LEFT: ' + ' '.join(left)}"
                      f"{', work folder removed' if not keep else ''}")


def run(args: argparse.Namespace) -> int:
    from fipsike.commands.control import render_status

    if os.geteuid() != 0:
        print("fipsike demo: error: needs root (network namespaces, XFRM)", file=sys.stderr)
        return 2
    missing = [t for t in ("ip", "ping", "softhsm2-util", "openssl") if shutil.which(t) is None]
    if missing:
        print(f"fipsike demo: error: {', '.join(missing)} not installed (scripts/setup.sh installs them)",
              file=sys.stderr)
        return 2
    try:
        return _run_here(args, render_status)
    except NoEsp as exc:
        if args.no_guest or os.environ.get("FIPSIKE_GUEST") == "1":
            print(f"fipsike demo: error: {exc}", file=sys.stderr)
            return 1
        return run_in_guest(args, str(exc))


def run_in_guest(args: argparse.Namespace, why: str) -> int:
    """The same demo inside the user-mode-linux guest kernel (which has ESP), through scripts/guest-run.sh;
    its output comes back when the guest halts. The exit status is the demo's in the guest."""
    if not GUEST_RUN.exists():
        print(f"fipsike demo: error: {why}, and this installation has no guest runner ({GUEST_RUN})",
              file=sys.stderr)
        return 1
    print(f"fipsike demo: {why}: running the demo inside the guest kernel ({GUEST_RUN.name}; "
          "its output follows when the guest halts)", flush=True)
    inner = [sys.executable, "-m", "fipsike", "demo", "--no-guest"]
    if args.fips_mode:
        inner += ["--fips-mode", args.fips_mode]
    env = dict(os.environ, GUEST_CMD=shlex.join(inner), PYTHON=sys.executable, GUEST_TIMEOUT=str(GUEST_SECONDS))
    try:
        r = subprocess.run([str(GUEST_RUN)], env=env, timeout=GUEST_SECONDS + 960, check=False)
    except subprocess.TimeoutExpired:
        print("fipsike demo: error: the guest run did not finish", file=sys.stderr)
        return 1
    return 0 if r.returncode == 0 else 1


def _run_here(args: argparse.Namespace, render_status: Callable[[Any], str]) -> int:
    from fipsike.daemon.client import ControlClient, ControlError

    t0 = time.monotonic()
    demo = Demo(Path(tempfile.mkdtemp(prefix="fipsike-demo-")), args.fips_mode)
    try:
        demo.namespaces()
        why = esp_missing(demo.ns[0])
        if why:
            raise NoEsp(NO_ESP.format(why=why))
        _sh("ip", "-n", demo.ns[0], "xfrm", "state", "flush")
        demo.step(f"namespaces {demo.ns[0]} (moon {MOON[0]}, inner {MOON[1]}) and {demo.ns[1]} "
                  f"(sun {SUN[0]}, inner {SUN[1]})")
        from providers import open_router

        pin_hex = open_router("default").random(8).hex()  # a throw-away token PIN, never printed
        pin_file = demo.token(pin_hex)
        demo.pki(args, pin_file)
        demo.step(f"test CA, moon's key generated on SoftHSM2 token {TOKEN_LABEL!r} (non-extractable), "
                  "sun's in a PEM file")
        moon_cfg, sun_cfg = demo.configs()
        moon_ctl = demo.start(demo.ns[0], moon_cfg, "moon", ["--token", TOKEN_LABEL, "--pin-file", str(pin_file)])
        sun_ctl = demo.start(demo.ns[1], sun_cfg, "sun", [])
        demo.wait_ready("moon")
        demo.wait_ready("sun")
        demo.step("two daemons running (self-tests passed); fipsike up demo")
        with ControlClient(moon_ctl, 150) as c:
            res = c.call("up", name="demo", timeout=120)
        assert isinstance(res, dict)
        print(f"\"demo\": {'established' if res.get('established') else 'failed'}: {res.get('reason')}")
        if not res.get("established"):
            raise DemoError("the tunnel did not come up (logs: rerun with --keep)")
        ping = _sh("ip", "netns", "exec", demo.ns[0], "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-I",
                   MOON[1], SUN[1], check=False)
        print(ping.stdout.strip())
        with ControlClient(moon_ctl) as c:
            status = c.call("status")
            traffic = c.call("trafficstatus")
        assert isinstance(status, dict) and isinstance(traffic, dict)
        demo.step("fipsike status")
        print(render_status(status), end="")
        demo.step("fipsike trafficstatus")
        for t in traffic["child_sas"]:
            print(f"\"{t['connection']}/{t['child']}\", type=ESP, spi_in={t['spi_in']}, spi_out={t['spi_out']}, "
                  f"inBytes={t['in']['bytes']}, outBytes={t['out']['bytes']}, inPackets={t['in']['packets']}, "
                  f"outPackets={t['out']['packets']}")
        demo.step(f"fipsike xfrm --netns {demo.ns[0]} (keys shown as length + keyed fingerprint)")
        print(_sh(sys.executable, "-m", "fipsike", "xfrm", "--netns", demo.ns[0], env=demo.env).stdout, end="")
        with ControlClient(sun_ctl) as c:
            c.call("status")
        if ping.returncode != 0:
            raise DemoError("the pings did not come back through the tunnel")
        demo.step(f"done in {time.monotonic() - t0:.1f} s; stopping the daemons (DELETE sent, SAs removed)")
        return 0
    except NoEsp:
        raise
    except (DemoError, ControlError) as exc:
        print(f"fipsike demo: error: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.close(args.keep)
        if args.keep:
            print(f"fipsike demo: work folder kept: {demo.work}")
