"""fipsike's side of a cell as the real daemon: a `fipsike daemon --kernel xfrm` process in the
cell's namespace, driven as an operator drives it (issue 15).

The daemon is configured through libreswan's ipsec.conf and ipsecdir layout, which `daemon_config()`
alone writes.
Commands go to its control socket (the JSON Lines protocol of docs/daemon-json.md: `up`, `status`,
`trafficstatus`, `rekey`, `down`); `up` goes through the CLI (`python -m fipsike up gw`) once per
cell, so the operator's verb is exercised too. Events are read back from its log (stderr, one
`LEVEL EVENT [CONN] message` line each). kill -9 hits the whole process group: no Delete is sent
and the kernel state stays, exactly as after a crash; restart() starts the daemon again with
auto=start, and the daemon's start-up removes the stale state before it negotiates anew.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fipsike.daemon.client import ControlClient, ControlError
from fipsike.kernel.api import KeyRouter
from tests.daemon.harness import libreswan_algs, libreswan_id
from tests.interop.peers.common import PeerError, in_guest, in_netns, kill9, stop_group
from tests.interop.peers.pki import EndEntity
from tests.interop.peers.spec import SUITES
from tests.interop.peers.topology import open_xfrm

REPO = Path(__file__).resolve().parents[3]
CONN = "gw"
# start-up runs the self-tests and the integrity check first: in the guest (UML, every syscall a
# ptrace round trip) a Python start alone takes seconds
START_TIMEOUT = 180.0 if in_guest() else 30.0


@dataclass(frozen=True)
class ConnPlan:
    """fipsike's connection "gw" (one Child SA "net", tunnel mode) in one cell, as data: the engine
    side builds an engine Connection from it, the daemon side writes the daemon's config file."""

    local: str
    remote: str  # "%any" when fipsike only answers
    local_ts: str  # CIDR
    remote_ts: str
    ike: str  # strongSwan/fipsike proposal syntax
    esp: str
    auth: str = "pubkey"  # "pubkey" | "psk" | "null"
    local_id: str = "%null"
    remote_id: str = "%any"
    ee: EndEntity | None = None  # certificate, key and intermediates (auth=pubkey)
    trust: Path | None = None  # the root CA
    on_token: bool = False  # the private key lives on the SoftHSM2 token, not in a file
    label: str = "fips"
    peer_address: str = ""  # where a restarted fipsike finds the peer ("" if it cannot reach it)
    dpd_delay: float = 2.0
    dpd_action: str = "clear"
    retransmit_interval: float = 1.0  # seconds; doubling (libreswan's retransmit-interval)
    retransmit_timeout: float = 6.0  # seconds in all (libreswan's retransmit-timeout)
    salifetime: float = 3300.0  # no automatic Child SA rekey within a cell (the checks start them)
    ikelifetime: float = 0.0  # 0: no automatic IKE SA rekey
    psk: str = ""  # auth=psk: the pre-shared key for (local_id, remote_id), written to ipsec.secrets


@dataclass(frozen=True)
class Token:
    """The SoftHSM2 token that holds fipsike's private key (cells with the key on a token)."""

    label: str
    pin_file: Path


def _libreswan(strongswan: str, column: int) -> str:
    """A suite's ike= (column 2) or esp= (column 3) in libreswan's grammar (spec.SUITES has both)."""
    for suite in SUITES.values():
        if suite[column - 2] == strongswan:
            return suite[column]
    return libreswan_algs(strongswan)


def daemon_config(plan: ConnPlan, folder: Path, auto: str = "add") -> Path:
    """THE one place the daemon's configuration is written: the ipsec.conf to pass as --config, with
    --ipsecdir `folder` (libreswan's layout, docs/daemon-json.md): the leaf in certs/, its key in
    private/ (mode 0600), the root and the intermediates in cacerts/ (the daemon sends the chain it
    finds there, as the peers trust only the root). With the key on the token there is no key file:
    the daemon finds the token's key by the certificate's public key. A PSK conn is authby=secret with
    its line `@local @remote : PSK "..."` in ipsec.secrets (mode 0600). A restart writes it again."""
    lines = ["# written by tests/interop/peers/daemon_side.py", "config setup", "", f"conn {CONN}",
             f"\tauto={auto}", f"\tleft={plan.local}", f"\tright={plan.remote}", f"\tleftsubnet={plan.local_ts}",
             f"\trightsubnet={plan.remote_ts}", f"\tike={_libreswan(plan.ike, 2)}",
             f"\tesp={_libreswan(plan.esp, 3)}", "\ttype=tunnel", f"\tdpddelay={plan.dpd_delay:g}",
             f"\tretransmit-interval={int(plan.retransmit_interval * 1000)}",
             f"\tretransmit-timeout={plan.retransmit_timeout:g}", f"\tsalifetime={plan.salifetime:g}",
             # ikelifetime=0 in the plan: no automatic IKE SA rekey within a cell (a day is that here)
             f"\tikelifetime={plan.ikelifetime or 86400:g}", f"\tleftid={libreswan_id(plan.local_id)}",
             f"\trightid={libreswan_id(plan.remote_id)}"]
    secret_lines = ""
    if plan.auth == "null":
        lines.append("\tauthby=null")
    elif plan.auth == "psk":
        lines.append("\tauthby=secret")
        secret_lines = f'{libreswan_id(plan.local_id)} {libreswan_id(plan.remote_id)} : PSK "{plan.psk}"\n'
    else:
        assert plan.ee is not None and plan.trust is not None
        for sub in ("certs", "cacerts", "private"):
            (folder / sub).mkdir(mode=0o700, exist_ok=True)
        for old in (*(folder / "certs").iterdir(), *(folder / "cacerts").iterdir(), *(folder / "private").iterdir()):
            old.unlink()
        shutil.copy(plan.ee.cert, folder / "certs" / "fips.crt")
        shutil.copy(plan.trust, folder / "cacerts" / "root.crt")
        for i, inter in enumerate(plan.ee.chain):
            shutil.copy(inter, folder / "cacerts" / f"intermediate{i}.crt")
        if not plan.on_token:
            shutil.copy(plan.ee.key, folder / "private" / "fips.key")
            (folder / "private" / "fips.key").chmod(0o600)
        lines += [f"\tauthby={'ecdsa' if plan.ee.kind in ('p256', 'p384') else 'rsasig'}", "\tleftcert=fips",
                  "\trightca=root"]
    path = folder / "ipsec.conf"
    path.write_text("\n".join(lines) + "\n")
    secrets = folder / "ipsec.secrets"
    secrets.touch(mode=0o600)
    secrets.chmod(0o600)  # before the secret goes in
    secrets.write_text(secret_lines)
    return path


# log event -> the FipsikeSide event tag (fipsike_side.FipsikeSide.events)
_TAGS: dict[str, Callable[[str], str]] = {
    "ike-sa-up": lambda m: "established",
    "ike-sa-rekeyed": lambda m: "rekeyed",
    "ike-sa-down": lambda m: f"deleted:{m.split(': ', 1)[-1]}",
    "ike-sa-failed": lambda m: f"failed:{m}",
    "child-sa-failed": lambda m: f"child-failed:{m.split(': ', 1)[-1]}",
    "dead-peer-action": lambda m: f"dead-peer:{m.split(': ', 1)[-1]}",
    "child-sa-install-failed": lambda m: f"kernel-error:{m.split(': ', 1)[-1]}",
    "child-sa-up": lambda m: "child-installed",
    "child-sa-down": lambda m: "child-deleted",
}


class DaemonSide:
    """fipsike = a `fipsike daemon` process in network namespace `netns`."""

    name = "daemon"

    def __init__(self, router: KeyRouter, netns: str, plan: ConnPlan, folder: Path, token: Token | None = None,
                 cli_up: bool = True) -> None:
        self.router = router  # only to read the kernel's state back (keys shown as fingerprints)
        self.netns = netns
        self.plan = plan
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.cli_up = cli_up
        self.ctl = self.dir / "ctl"
        self.log = self.dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.config = daemon_config(plan, self.dir)
        self.start_seconds: list[float] = []

    # --- life cycle ---------------------------------------------------------------------------
    def _spawn(self) -> None:
        args = [sys.executable, "-m", "fipsike", "daemon", "--config", str(self.config), "--secrets",
                str(self.dir / "ipsec.secrets"), "--ipsecdir", str(self.dir),
                "--ctl", str(self.ctl), "--kernel", "xfrm", "--fips-mode", "policy"]
        if self.token is not None:
            args += ["--token", self.token.label, "--pin-file", str(self.token.pin_file)]
        self.ctl.unlink(missing_ok=True)
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(in_netns(self.netns, *args), cwd=REPO, stdout=err, stderr=err,
                                         start_new_session=True, env={**os.environ, "PYTHONPATH": str(REPO)})

    def _wait_ready(self, mark: int, timeout: float = START_TIMEOUT) -> float:
        t = time.monotonic()
        while True:
            if self.proc is None or self.proc.poll() is not None:
                rc = None if self.proc is None else self.proc.returncode
                self.proc = None
                raise PeerError(f"fipsike daemon exited {rc} at start-up: {self._last_lines(mark)}")
            if any(" daemon-ready " in line for line in self._lines(mark)):
                return time.monotonic() - t
            if time.monotonic() - t > timeout:
                raise PeerError(f"fipsike daemon not ready in {timeout} s: {self._last_lines(mark)}")
            time.sleep(0.05)

    def start(self) -> float:
        mark = len(self._lines())
        self._spawn()
        s = self._wait_ready(mark)
        self.start_seconds.append(s)
        return s

    def stop(self) -> None:
        """SIGTERM: the daemon deletes its SAs (Delete sent) and empties its part of the kernel."""
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM, grace=10.0)
            self.proc = None

    def kill9(self) -> None:
        if self.proc is None:
            raise PeerError("fipsike daemon is not running")
        kill9(self.proc)
        self.proc = None

    def restart(self) -> float:
        """After kill9: start again configured to initiate (auto=start, the peer's address as right=);
        seconds from the spawn until a Child SA is installed."""
        if not self.plan.peer_address:
            raise PeerError("fipsike cannot reach the peer (it sits behind the NAT): only the peer can restart")
        self.config = daemon_config(replace(self.plan, remote=self.plan.peer_address), self.dir, auto="start")
        mark = len(self._lines())
        t = time.monotonic()
        self._spawn()
        self.start_seconds.append(self._wait_ready(mark))
        if not self.wait_for(lambda: bool(self.child_spis()), 40):
            raise PeerError(f"no Child SA within 40 s of the restart: {self._last_lines(mark)}")
        return time.monotonic() - t

    # --- the control socket -------------------------------------------------------------------
    def call(self, cmd: str, timeout: float = 30.0, **args: object) -> Any:
        try:
            with ControlClient(self.ctl, timeout) as c:
                return c.call(cmd, **args)
        except (ControlError, OSError) as exc:
            raise PeerError(f"fipsike {cmd}: {exc}") from None

    def up(self, timeout: float = 20.0) -> tuple[bool, str]:
        if self.cli_up:
            res = subprocess.run([sys.executable, "-m", "fipsike", "up", CONN, "--timeout", str(int(timeout)),
                                  "--ctl", str(self.ctl)], cwd=REPO, capture_output=True, text=True,
                                 timeout=timeout + 60, env={**os.environ, "PYTHONPATH": str(REPO)})
            why = (res.stdout.strip() or res.stderr.strip()).splitlines()
            return res.returncode == 0, why[-1] if why else f"fipsike up: exit {res.returncode}"
        r = self._up_call(timeout)
        return bool(r.get("established")), str(r.get("reason", ""))

    def _up_call(self, timeout: float) -> Any:
        try:  # "timeout" is both the client's and the request's: the request's is an argument here
            with ControlClient(self.ctl, timeout + 10) as c:
                return c.call("up", name=CONN, timeout=int(timeout))
        except (ControlError, OSError) as exc:
            raise PeerError(f"fipsike up: {exc}") from None

    def wait_up(self, timeout: float = 20.0) -> bool:
        return self.wait_for(lambda: bool(self.child_spis()), timeout)

    def wait_for(self, cond: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if cond():
                    return True
            except PeerError:
                pass
            time.sleep(0.1)
        return False

    def status(self) -> list[dict[str, Any]]:
        if self.proc is None:
            return []
        sas: list[dict[str, Any]] = self.call("status")["ike_sas"]
        return sas

    def traffic(self) -> list[dict[str, Any]]:
        """`trafficstatus`: per Child SA, the kernel's byte and packet counters each way."""
        out: list[dict[str, Any]] = self.call("trafficstatus")["child_sas"]
        return out

    def child_spis(self) -> set[tuple[int, int]]:
        return {(int(c["spi_in"], 16), int(c["spi_out"], 16)) for sa in self.status() for c in sa["children"]
                if c["state"] in ("installed", "rekeying")}

    def ike_names(self) -> list[str]:
        return [str(sa["name"]) for sa in self.status()]

    def rekey_child(self) -> None:
        self.call("rekey", name=CONN, ike=False)

    def rekey_ike(self) -> None:
        self.call("rekey", name=CONN, ike=True)

    def down(self) -> None:
        self.call("down", name=CONN)

    def owned_state(self) -> tuple[int, int]:
        k = open_xfrm(self.router, self.netns)
        try:
            return len(k.list_sas()), len(k.list_policies())
        finally:
            k.close()

    # --- the log ------------------------------------------------------------------------------
    def _lines(self, since: int = 0) -> list[str]:
        try:
            return self.log.read_text(errors="replace").splitlines()[since:]
        except FileNotFoundError:
            return []

    def _last_lines(self, mark: int) -> str:
        return " | ".join(self._lines(mark)[-4:]) or "(no log)"

    def events(self) -> list[str]:
        out: list[str] = []
        for line in self._lines():
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            level, event, message = parts[0], parts[1], parts[3] if len(parts) > 3 else ""
            if event in _TAGS:
                out.append(_TAGS[event](message))
            elif level in ("warning", "error"):
                out.append(event)
        return out

    def wait_event(self, pred: Callable[[str], bool], timeout: float, since: int = 0) -> bool:
        return self.wait_for(lambda: any(pred(e) for e in self.events()[since:]), timeout)

    def log_lines(self) -> list[str]:
        return self._lines()
