"""The daemon with its private key on a SoftHSM2 token: no key file in the configuration, the key
found on the token by leftcert's public key (or by PKCS#11 URI), the PIN from a file, and the
PIN never in the daemon's log or replies."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests import strongswan_harness as ssh
from tests.daemon.conftest import moon_conn, sun_conn
from tests.daemon.harness import DaemonProc

pytestmark = [pytest.mark.softhsm, pytest.mark.netns]

PIN = "Pq4CanaryTokenPin88"
LABEL = "fipsike-daemon"


@pytest.fixture
def token(tmp_path: Path, pki: ssh.Pki) -> dict[str, str]:
    base = tmp_path / "hsm"
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = dict(os.environ, SOFTHSM2_CONF=str(conf))
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", LABEL, "--pin", PIN, "--so-pin",
                    "12345678"], env=env, check=True, capture_output=True)
    p8 = base / "moon.p8"
    subprocess.run(["openssl", "pkey", "-in", str(pki.dir / "moon.test.key"), "-out", str(p8)], check=True,
                   capture_output=True)
    subprocess.run(["softhsm2-util", "--import", str(p8), "--token", LABEL, "--label", "moon", "--id", "4d01",
                    "--pin", PIN], env=env, check=True, capture_output=True)
    p8.unlink()
    pin_file = base / "pin"
    pin_file.write_text(PIN + "\n")
    return {"SOFTHSM2_CONF": str(conf), "pin_file": str(pin_file)}


@pytest.mark.parametrize("leftkey", [None, "pkcs11:id=%4d%01;type=private"])
def test_up_with_the_key_on_the_token(hosts: ssh.TwoHosts, pki: ssh.Pki, tmp_path: Path, token: dict[str, str],
                                      leftkey: str | None) -> None:
    moon = DaemonProc(tmp_path / "moon", hosts.left.netns, [moon_conn(hosts, pki, leftkey=leftkey)],
                      env={"SOFTHSM2_CONF": token["SOFTHSM2_CONF"]})
    moon.extra_args = ["--token", LABEL, "--pin-file", token["pin_file"]]
    sun = DaemonProc(tmp_path / "sun", hosts.right.netns, [sun_conn(hosts, pki)])
    try:
        moon.start()
        sun.start()
        assert f"token {LABEL}" in moon.log_text()
        r = moon.cli("up", "gw")
        assert r.returncode == 0, (r.stdout, moon.log_text()[-2000:])
        status = moon.cli("status", "--json").stdout
        assert json.loads(status)["ike_sas"][0]["state"] == "established"
        assert moon.stop() == 0
        for text in (moon.log_text(), status, r.stdout):
            assert PIN not in text and PIN.encode().hex() not in text
    finally:
        moon.kill9()
        sun.kill9()


def test_no_token_and_no_key_file_is_a_clear_error(hosts: ssh.TwoHosts, pki: ssh.Pki, tmp_path: Path) -> None:
    moon = DaemonProc(tmp_path / "moon", hosts.left.netns, [moon_conn(hosts, pki, leftkey=None)])
    moon.start(wait_ready=False)
    assert moon.proc is not None and moon.proc.wait(60) == 1
    line = next(n for n, text in enumerate(moon.config.read_text().splitlines(), 1) if "leftcert=" in text)
    assert moon.log_text().splitlines()[-1] == (
        f"fipsike daemon: error: {moon.config}:{line}: conn gw: leftcert: neither {moon.dir}/private/moon.test.key "
        "nor a key on the token; no PKCS#11 token is configured (fipsike daemon --token LABEL)")


def _secrets(path: Path, pin: str) -> Path:
    path.write_text(f"# the token's user PIN, as libreswan gives it\n: PIN \"{pin}\"\n")
    path.chmod(0o600)
    return path


def test_up_with_the_pin_from_ipsec_secrets(hosts: ssh.TwoHosts, pki: ssh.Pki, tmp_path: Path,
                                           token: dict[str, str]) -> None:
    """No --pin-file: the daemon logs in with ipsec.secrets' `: PIN` entry (libreswan's place for it)."""
    moon = DaemonProc(tmp_path / "moon", hosts.left.netns, [moon_conn(hosts, pki, leftkey=None)],
                      env={"SOFTHSM2_CONF": token["SOFTHSM2_CONF"], "FIPSIKE_PIN": ""})
    moon.extra_args = ["--token", LABEL, "--secrets", str(_secrets(tmp_path / "ipsec.secrets", PIN))]
    sun = DaemonProc(tmp_path / "sun", hosts.right.netns, [sun_conn(hosts, pki)])
    try:
        moon.start()
        sun.start()
        assert f"token {LABEL}" in moon.log_text()
        r = moon.cli("up", "gw")
        assert r.returncode == 0, (r.stdout, moon.log_text()[-2000:])
        status = moon.cli("status", "--json").stdout
        assert json.loads(status)["ike_sas"][0]["state"] == "established"
        listing = json.dumps(moon.call("status")) + json.dumps(moon.call("trafficstatus"))
        assert moon.stop() == 0
        for text in (moon.log_text(), status, r.stdout, r.stderr, listing):
            assert PIN not in text and PIN.encode().hex() not in text
    finally:
        moon.kill9()
        sun.kill9()


def test_a_wrong_pin_in_ipsec_secrets_is_a_clear_error_without_the_pin(hosts: ssh.TwoHosts, pki: ssh.Pki,
                                                                     tmp_path: Path, token: dict[str, str]) -> None:
    wrong = "Zx7WrongCanaryPin31"
    moon = DaemonProc(tmp_path / "moon", hosts.left.netns, [moon_conn(hosts, pki, leftkey=None)],
                      env={"SOFTHSM2_CONF": token["SOFTHSM2_CONF"], "FIPSIKE_PIN": PIN})
    moon.extra_args = ["--token", LABEL, "--secrets", str(_secrets(tmp_path / "ipsec.secrets", wrong)),
                       "--verbose"]
    moon.start(wait_ready=False)
    assert moon.proc is not None and moon.proc.wait(60) != 0
    text = moon.log_text()
    assert "PIN incorrect" in text, text[-2000:]  # the secrets file's PIN was tried, not $FIPSIKE_PIN
    for canary in (wrong, PIN):
        assert canary not in text and canary.encode().hex() not in text


def test_pin_file_wins_over_ipsec_secrets(hosts: ssh.TwoHosts, pki: ssh.Pki, tmp_path: Path,
                                          token: dict[str, str]) -> None:
    moon = DaemonProc(tmp_path / "moon", hosts.left.netns, [moon_conn(hosts, pki, leftkey=None)],
                      env={"SOFTHSM2_CONF": token["SOFTHSM2_CONF"]})
    moon.extra_args = ["--token", LABEL, "--pin-file", token["pin_file"],
                       "--secrets", str(_secrets(tmp_path / "ipsec.secrets", "Zx7WrongCanaryPin31"))]
    try:
        moon.start()
        assert f"token {LABEL}" in moon.log_text()
        assert moon.stop() == 0
    finally:
        moon.kill9()
