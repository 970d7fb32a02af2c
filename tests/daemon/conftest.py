"""Fixtures for the daemon tests: two namespaces (moon = left, sun = right), a CA with a
certificate for each, and a factory for `fipsike daemon` processes that are always stopped."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.harness import DaemonProc, conn


@pytest.fixture(scope="module")
def hosts() -> Iterator[ssh.TwoHosts]:
    if os.geteuid() != 0:
        pytest.fail("the daemon tests need root for network namespaces")
    with ssh.TwoHosts("d") as h:
        # routes between the inner addresses, so a packet reaches the SPD (and a trap raises ACQUIRE)
        for a, b in ((h.left, h.right), (h.right, h.left)):
            h.exec(a, "ip", "route", "add", f"{b.inner}/32", "via", b.address, "src", a.inner)
        yield h


@pytest.fixture(scope="module")
def pki(hosts: ssh.TwoHosts, tmp_path_factory: pytest.TempPathFactory) -> ssh.Pki:
    p = ssh.Pki(tmp_path_factory.mktemp("pki"))
    p.issue("moon.test", sans=("moon.test", hosts.left.address))
    p.issue("sun.test", sans=("sun.test", hosts.right.address))
    return p


# tests/daemon/guest needs a kernel with ESP: it runs inside the user-mode-linux guest
# (`scripts/guest-run.sh tests/daemon/guest`, which sets FIPSIKE_GUEST=1)
collect_ignore = [] if os.environ.get("FIPSIKE_GUEST") == "1" else ["guest"]

Spawn = Callable[..., DaemonProc]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """spawn(side, conns, kernel="memory", start=True) -> a running DaemonProc in that side's netns."""
    procs: list[DaemonProc] = []
    dirs: list[Path] = []

    def make(netns: str, conns: list[dict[str, Any]], kernel: str = "memory", start: bool = True,
             tag: str = "", public_ctl: bool = False, secrets: str | None = None) -> DaemonProc:
        ctl = None
        if public_ctl:  # a directory any user can reach: only the socket's own mode and SO_PEERCRED decide
            ctl = Path(tempfile.mkdtemp(prefix="fipsike-ctl-")) / "ctl"
            ctl.parent.chmod(0o755)
            dirs.append(ctl.parent)
        d = DaemonProc(tmp_path / f"{netns}{tag}", netns, conns, kernel=kernel, ctl=ctl, secrets=secrets)
        procs.append(d)
        if start:
            d.start()
        return d

    yield make
    for d in procs:
        d.kill9()
    for p in dirs:
        shutil.rmtree(p, ignore_errors=True)


def moon_conn(hosts: ssh.TwoHosts, pki: ssh.Pki, name: str = "gw", **extra: Any) -> dict[str, Any]:
    return conn(name, hosts.left, hosts.right, pki.dir, "moon", "sun", **extra)


def sun_conn(hosts: ssh.TwoHosts, pki: ssh.Pki, name: str = "gw", **extra: Any) -> dict[str, Any]:
    return conn(name, hosts.right, hosts.left, pki.dir, "sun", "moon", **extra)
