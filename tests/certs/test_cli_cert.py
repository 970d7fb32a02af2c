"""`fipsike cert verify` end to end (subprocess): verdict, reason, exit status, --json, --profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.certs.conftest import NOW, Pki

ROOT = Path(__file__).resolve().parents[2]
AT = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fipsike", "cert", "verify", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_good_chain_text_and_json(pki: Pki) -> None:
    ca = pki.dir / "anchors"
    ca.mkdir(exist_ok=True)
    (ca / "root.pem").write_bytes(pki.files["root"].read_bytes())
    res = verify("--ca", str(ca), "--at", AT, str(pki.files["via-inter"]), str(pki.files["inter"]))
    assert res.returncode == 0, res.stderr
    assert "OK (valid)" in res.stdout and "CN=Test Root CA" in res.stdout
    res = verify("--ca", str(ca), "--at", AT, "--json", str(pki.files["via-inter"]), str(pki.files["inter"]))
    out = json.loads(res.stdout)
    assert out["ok"] is True and out["reason"] == "valid" and out["profile"] == "fips"
    assert out["chain"][1] == "C=US, O=fipsike test, CN=Test Intermediate CA"


def test_refusals_exit_1_with_the_reason(pki: Pki) -> None:
    res = verify("--ca", str(pki.files["root"]), "--at", AT, "--crl", str(pki.files["crl-inter"]), "--json",
                 str(pki.files["revoked"]), str(pki.files["inter"]))
    assert res.returncode == 1
    out = json.loads(res.stdout)
    assert out["ok"] is False and out["reason"] == "revoked" and "revoked.example" in out["detail"]
    res = verify("--ca", str(pki.files["root"]), "--at", AT, str(pki.files["expired"]), str(pki.files["inter"]))
    assert res.returncode == 1 and "REFUSED (expired)" in res.stdout


def test_profile_decides_sha1(pki: Pki) -> None:
    args = ("--ca", str(pki.files["sha1-root"]), "--at", AT, "--json", str(pki.files["sha1-ee"]))
    fips = verify(*args)
    assert fips.returncode == 1 and json.loads(fips.stdout)["reason"] == "signature-algorithm-not-allowed"
    default = verify("--profile", "default", *args)
    assert default.returncode == 0, default.stdout + default.stderr
    assert json.loads(default.stdout)["profile"] == "default"


def test_bad_input_exits_2_with_one_line(pki: Pki, tmp_path: Path) -> None:
    res = verify("--ca", str(tmp_path / "none"), str(pki.files["direct"]))
    assert res.returncode == 2 and "no such file or directory" in res.stderr and "Traceback" not in res.stderr
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    res = verify("--ca", str(pki.files["root"]), str(garbage))
    assert res.returncode == 2 and "garbage.pem" in res.stderr
    res = verify("--ca", str(pki.files["root"]), "--at", "yesterday", str(pki.files["direct"]))
    assert res.returncode == 2 and "ISO 8601" in res.stderr
