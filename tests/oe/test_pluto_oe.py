"""Interop: fipsike's private-or-clear against libreswan's pluto (4.10) doing the same, NULL authentication
(RFC 7619), the seed's `conn private-or-clear` verbatim on both sides, initiated from each side.

pluto runs from the unpacked Debian package (scripts/libreswan-setup.sh; /work/shared/recipes/libreswan.md),
its group files in its own --ipsecdir. This host's kernel has no ESP, so the Child SAs are refused at install on
both sides: what is asserted is the IKE SA with NULL identities on both, and which side initiated it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.mesh import FAST_RETRANSMIT, ROOT, SEED_PRIVATE_OR_CLEAR, Mesh, Node, mesh
from tests.interop.peers.common import in_netns, run, stop_group, wait_for
from tests.interop.peers.pluto import LIBEXEC, LIBS, NSS_BIN, available

pytestmark = pytest.mark.netns


class OePluto:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.dir = node.dir
        self.run_dir = self.dir / "run"
        self.ctl = self.run_dir / "pluto.ctl"
        self.log = self.dir / "pluto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env = {**os.environ, "LD_LIBRARY_PATH": str(LIBS)}

    def start(self) -> None:
        d = self.dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (d / "ipsec.secrets").write_text("")
        nss = d / "nss"
        nss.mkdir(exist_ok=True)
        run([str(NSS_BIN / "certutil"), "-N", "-d", f"sql:{nss}", "--empty-password"], env=self.env)
        # the host's /usr/lib/ipsec/_updown is strongSwan's: pluto runs without one (the seed's conn stays verbatim)
        (d / "ipsec.conf").write_text("config setup\n\tdnssec-enable=no\n\nconn %default\n\tleftupdown=%disabled\n\n"
                                      + SEED_PRIVATE_OR_CLEAR)
        script = (f"mount -t tmpfs -o mode=755 fipsike-libexec /usr/libexec && mkdir /usr/libexec/ipsec && "
                  f"mount --bind {LIBEXEC} /usr/libexec/ipsec && "
                  f"exec {LIBEXEC}/pluto --nofork --rundir {self.run_dir} --nssdir {nss} "
                  f"--secretsfile {d}/ipsec.secrets --ipsecdir {d} --logfile {self.log} "
                  f"--log-no-append --no-dnssec --dumpdir {self.run_dir}")
        self.proc = subprocess.Popen(in_netns(self.node.netns, "/bin/sh", "-c", script), env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=(d / "pluto.stderr").open("wb"),
                                     start_new_session=True)
        wait_for(lambda: self.ctl.exists() and self.whack("--briefstatus").returncode == 0, 20, "pluto")
        res = run(in_netns(self.node.netns, str(LIBEXEC / "addconn"), "--config", str(d / "ipsec.conf"),
                           "--ctlsocket", str(self.ctl), "private-or-clear"), env=self.env, check=False)
        assert res.returncode == 0, res.stdout + res.stderr + self.log_text()[-2000:]
        self.whack("--listen")  # loads the group files from --ipsecdir/policies
        self.whack("--name", "private-or-clear", "--route")  # auto=ondemand: the group's instances get traps

    def whack(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return run([str(LIBEXEC / "whack"), "--ctlsocket", str(self.ctl), *args], timeout=timeout, check=False,
                   env=self.env)

    def stop(self) -> None:
        if self.proc is not None:
            self.whack("--shutdown", timeout=10)
            stop_group(self.proc)
            self.proc = None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Mesh, Node, OePluto]]:
    why = available()
    assert why is None, why  # scripts/libreswan-setup.sh unpacks it
    with mesh(1, plain=1, workdir=tmp_path) as lab:
        fk, pl = lab.nodes
        lab.write_config(fk, FAST_RETRANSMIT + SEED_PRIVATE_OR_CLEAR, {"private-or-clear": ["10.0.0.0/8"]})
        lab.write_config(pl, "", {"private-or-clear": ["10.0.0.0/8"]})
        lab.start()
        pluto = OePluto(pl)
        try:
            pluto.start()
            yield lab, fk, pluto
        finally:
            pluto.stop()


def cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fipsike", *args, "--ctl", str(node.ctl)], cwd=ROOT,
                          capture_output=True, text=True, timeout=90, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_fipsike_initiates_private_or_clear_to_pluto_with_null_auth(pair: tuple[Mesh, Node, OePluto]) -> None:
    lab, fk, pluto = pair
    pl = lab.nodes[1]
    r = cli(fk, "oe-initiate", "--local", fk.address, "--remote", pl.address, "--json")
    # the NULL-authenticated IKE SA comes up with pluto; this host's kernel (no ESP) then refuses the Child SA,
    # and the instance fails whole: IKE SA deleted, the seed's passthrough failure shunt
    assert '"outcome": "failed"' in r.stdout and '"shunt": "passthrough"' in r.stdout, (
        r.stdout, r.stderr, fk.log_text()[-3000:], pluto.log_text()[-3000:])
    assert f"ike-sa-up [private-or-clear#{fk.address}-{pl.address}]" in fk.log_text()
    assert "%null === %null" in fk.log_text() and "oe-child-refused" in fk.log_text()
    assert "responder established IKE SA; authenticated peer using authby=null and ID_NULL" in pluto.log_text(), \
        pluto.log_text()[-3000:]


def test_pluto_initiates_private_or_clear_to_fipsike_with_null_auth(pair: tuple[Mesh, Node, OePluto]) -> None:
    lab, fk, pluto = pair
    pl = lab.nodes[1]
    pluto.whack("--oppohere", pl.address, "--oppothere", fk.address, timeout=60)
    wait_for(lambda: "oe-established" in fk.log_text(), 30, "fipsike's instance answering pluto")
    assert f"ike-sa-up [private-or-clear#{fk.address}-{pl.address}]" in fk.log_text()
    assert f"oe-respond [-] private-or-clear#{fk.address}-{pl.address} (private-or-clear)" in fk.log_text()
    assert "%null === %null" in fk.log_text()
    # this host's kernel refused the Child SA: the answering instance ends with its IKE SA, no shunt
    wait_for(lambda: "oe-child-refused" in fk.log_text(), 30, "the refused Child SA failing the instance")
    wait_for(lambda: lab.status(fk)["opportunistic"]["entries"] == [], 30, "the instance gone")
    assert "initiator established IKE SA; authenticated peer using authby=null and ID_NULL" in pluto.log_text()
