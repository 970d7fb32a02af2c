"""`required` mode against the real OpenSSL FIPS provider built by scripts/build-openssl-fips.sh.

These never skip: CI builds the provider before pytest, and a missing build fails the test with
the command to run (fixture `fips_build`)."""

from __future__ import annotations

import json

import pytest

from tests.compliance.conftest import Cli, FipsBuild, clean_env

pytestmark = pytest.mark.fipsprovider
SELFTEST_FAILED = 3


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_required_mode_passes_with_the_fips_provider(cli: Cli, fips_build: FipsBuild) -> None:
    env = fips_build.env()
    r = cli.run("selftest", "--write-manifest", "--fips-mode", "required", env=env)
    assert r.returncode == 0, r.stderr
    r = cli.run("selftest", "--fips-mode", "required", "--json", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["passed"] and doc["state"] == "OPERATIONAL"
    assert doc["fips_provider"]["active"] is True
    assert doc["fips_provider"]["openssl_conf"] == str(fips_build.conf)
    assert all(p["fips"] for p in doc["providers"] if p["name"] == "openssl")
    results = {t["name"]: t["result"] for t in doc["tests"]}
    assert results["fips-provider-active"] == "pass" and results["software-integrity"] == "pass"
    assert results["kat-aes-gcm-256-encrypt"] == "pass" and results["kat-ecdh-ecp-384"] == "pass"
    assert "not-run" not in results.values() and "fail" not in results.values()
    # the OpenSSL 3.0 FIPS provider has no ML-KEM: disabled and said so, never a silent pass
    for name, why in doc["disabled"].items():
        assert "OpenSSL FIPS provider" in why, (name, why)


def test_required_mode_refuses_without_the_fips_provider(cli: Cli, fips_build: FipsBuild) -> None:
    r = cli.run("selftest", "--fips-mode", "required", env=clean_env())
    assert r.returncode == SELFTEST_FAILED
    line = _one_line(r.stderr)
    assert "fips-provider-active" in line and "OPENSSL_CONF is not set" in line


def test_required_mode_refuses_a_wrong_config_path(cli: Cli, fips_build: FipsBuild) -> None:
    env = fips_build.env(OPENSSL_CONF=str(fips_build.dir / "no-such-openssl.cnf"))
    r = cli.run("selftest", "--fips-mode", "required", env=env)
    assert r.returncode == SELFTEST_FAILED
    line = _one_line(r.stderr)
    assert "no-such-openssl.cnf does not exist" in line and "silently" in line
    r = cli.run("fipsstatus", "--fips-mode", "required", env=env)
    assert r.returncode == 1 and "will refuse to start" in r.stdout


def test_required_mode_refuses_a_config_without_fips(cli: Cli, fips_build: FipsBuild, tmp_path: object) -> None:
    from pathlib import Path

    plain = Path(str(tmp_path)) / "plain.cnf"
    plain.write_text("openssl_conf = openssl_init\n[openssl_init]\n")
    r = cli.run("selftest", "--fips-mode", "required", env=fips_build.env(OPENSSL_CONF=str(plain)))
    assert r.returncode == SELFTEST_FAILED
    assert "FIPS provider is not active" in _one_line(r.stderr)


def test_policy_mode_under_the_fips_provider_still_claims_nothing(cli: Cli, fips_build: FipsBuild) -> None:
    r = cli.run("fipsstatus", "--json", env=fips_build.env())
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["mode"] == "policy" and doc["fips_provider"]["active"] is True
    assert "claims no FIPS 140-3 validated" in doc["verdict"]
    r = cli.run("fipsstatus", "--json", "--fips-mode", "required", env=fips_build.env())
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["fips_provider"]["problem"] == ""
    # the OpenSSL 3.0 FIPS provider has no ML-KEM: fipsstatus says it will be disabled
    assert "ML_KEM_768" in doc["disabled"] and "FIPS provider" in doc["disabled"]["ML_KEM_768"]
