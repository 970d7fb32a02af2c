"""CRLs in the daemon: <ipsecdir>/crls is the engine's CRL source and `crl-strict` comes from ipsec.conf's
config setup. A peer whose certificate the CA's CRL lists is refused; with crl-strict=yes a peer whose CA
has no CRL is refused too; a CRL that lists nobody, added later, lets it in (the folder is re-read
when it changes; a reload keeps the engine's CRL source and points it at the new folder)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests import strongswan_harness as ssh
from tests.daemon.conftest import Spawn, moon_conn, sun_conn
from tests.daemon.harness import DaemonProc


def _crl(pki: ssh.Pki, path: Path, revoke: Path | None) -> None:
    args = ["pki", "--signcrl", "--cacert", str(pki.ca_cert), "--cakey", str(pki.ca_key), "--lifetime", "2",
            "--outform", "pem"]
    if revoke is not None:
        args += ["--reason", "key-compromise", "--cert", str(revoke)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ssh._run_bytes(args))


def _up(moon: DaemonProc) -> tuple[int, str]:
    r = moon.cli("up", "gw", "--timeout", "20", timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_revoked_and_missing_crls(hosts: ssh.TwoHosts, pki: ssh.Pki, spawn: Spawn) -> None:
    spawn(hosts.right.netns, [sun_conn(hosts, pki)])
    # sun's certificate revoked in moon's crls/: refused (crl-strict or not)
    moon = spawn(hosts.left.netns, [moon_conn(hosts, pki)], start=False)
    _crl(pki, moon.dir / "crls" / "ca.crl", pki.dir / "sun.test.crt")
    moon.start()
    rc, out = _up(moon)
    assert rc == 1, out
    assert "revoked" in moon.log_text(), moon.log_text()[-2000:]
    moon.stop()

    # crl-strict=yes and no CRL at all: refused for the missing CRL
    strict = spawn(hosts.left.netns, [moon_conn(hosts, pki)], start=False, tag="strict")
    strict.write_config([moon_conn(hosts, pki)], {"crl-strict": "yes"})
    strict.start()
    rc, out = _up(strict)
    assert rc == 1, out
    # a CRL that lists nobody, added and reloaded: let in
    _crl(pki, strict.dir / "crls" / "ca.crl", None)
    strict.signal(signal.SIGHUP)
    strict.wait_log("reloaded")
    rc, out = _up(strict)
    assert rc == 0, (out, strict.log_text()[-2000:])
