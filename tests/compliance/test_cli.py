"""The entry points in a subprocess, on a private copy of the tree: a fault stops them with one
clear line and a non-zero status."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema

from tests.compliance.conftest import Cli

SELFTEST_FAILED = 3


def _write_manifest(cli: Cli) -> None:
    r = cli.run("selftest", "--write-manifest")
    assert r.returncode == 0, r.stderr
    assert (cli.tree / "compliance" / "integrity-manifest.json").is_file()


def _assert_refused(r: object, *names: str) -> None:
    rc, err = r.returncode, r.stderr  # type: ignore[attr-defined]
    assert rc == SELFTEST_FAILED, (rc, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err  # one clear line, no traceback
    assert "self-tests failed, module in error state; refusing to continue" in lines[0]
    assert "Traceback" not in err
    for n in names:
        assert n in lines[0]


def test_selftest_passes_on_a_clean_tree(cli: Cli) -> None:
    _write_manifest(cli)
    r = cli.run("selftest")
    assert r.returncode == 0, r.stderr
    assert "PASS  software-integrity" in r.stdout and "module state: OPERATIONAL" in r.stdout
    assert "claims no FIPS 140-3 validated cryptographic module" in r.stdout


def test_selftest_json_validates_against_the_schema(cli: Cli) -> None:
    from compliance.report import load_schema

    r = cli.run("selftest", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(doc)
    assert doc["fips_mode"] == {"mode": "policy", "source": "default", "profile": "fips",
                                "statement": doc["fips_mode"]["statement"]}
    assert {t["result"] for t in doc["tests"]} <= {"pass", "not-run"}
    # and a broken document does not validate (the schema has teeth)
    doc["tests"][0]["result"] = "maybe"
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(doc)


def test_corrupted_kat_value_stops_selftest(cli: Cli) -> None:
    vec = cli.tree / "compliance" / "kat_vectors.json"
    doc = json.loads(vec.read_text())
    doc["hmac"]["sha512"] = doc["hmac"]["sha512"][:-2] + "00"
    vec.write_text(json.dumps(doc))
    _write_manifest(cli)  # the tree is "installed" this way: only the KAT can catch it
    r = cli.run("selftest")
    _assert_refused(r, "kat-hmac-sha2-512")
    assert "FAIL  kat-hmac-sha2-512" in r.stdout
    r = cli.run("selftest", "--json")
    assert r.returncode == SELFTEST_FAILED
    doc = json.loads(r.stdout)
    assert doc["state"] == "ERROR" and not doc["passed"]
    assert [t["name"] for t in doc["tests"] if t["result"] == "fail"] == ["kat-hmac-sha2-512"]


def test_tampered_package_file_stops_selftest(cli: Cli) -> None:
    _write_manifest(cli)
    target = cli.tree / "providers" / "limits.py"
    target.write_text(target.read_text() + "\n# tampered\n")
    r = cli.run("selftest")
    _assert_refused(r, "software-integrity", "providers/limits.py")


def test_failing_pct_stops_selftest(cli: Cli, tmp_path: Path) -> None:
    # The fault-injection "special build" of a lab: a sitecustomize that corrupts signatures over the
    # pairwise-consistency message, loaded only by this subprocess.
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(textwrap.dedent("""
        import providers.openssl as o
        from compliance.kats import PCT_MESSAGE
        _sign = o.OpenSSLProvider.sign
        def sign(self, key, scheme, data, raw=False):
            sig = _sign(self, key, scheme, data, raw)
            return sig[:-1] + bytes([sig[-1] ^ 1]) if data == PCT_MESSAGE else sig
        o.OpenSSLProvider.sign = sign
    """))
    assert cli.run("selftest").returncode == 0  # sanity: the tree is clean without the hook
    r = cli.run("selftest", pythonpath_prefix=str(inject))
    _assert_refused(r, "pct-rsa-2048", "pct-ecdsa-secp256r1")


def test_fipsstatus_says_which_mode_and_why(cli: Cli) -> None:
    from tests.compliance.conftest import clean_env

    r = cli.run("fipsstatus", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["mode"] == "policy" and doc["source"] == "default" and doc["profile"] == "fips"
    assert "claims no FIPS 140-3 validated" in doc["verdict"]
    r = cli.run("fipsstatus", "--json", env=clean_env(FIPSIKE_FIPS_MODE="off"))
    doc = json.loads(r.stdout)
    assert doc["mode"] == "off" and doc["source"] == "environment FIPSIKE_FIPS_MODE" and doc["profile"] == "default"
    r = cli.run("fipsstatus", "--fips-mode", "required", env=clean_env(FIPSIKE_FIPS_MODE="off"))
    assert r.returncode == 1
    assert "required (from command line)" in r.stdout and "will refuse to start" in r.stdout
    r = cli.run("fipsstatus", env=clean_env(FIPSIKE_FIPS_MODE="bogus"))
    assert r.returncode == 2 and "unknown FIPS mode 'bogus'" in r.stderr


def test_cert_verify_refuses_when_a_self_test_fails(cli: Cli) -> None:
    import cryptography_vectors

    pem = Path(cryptography_vectors.__file__).parent / "x509" / "cryptography.io.pem"
    vec = cli.tree / "compliance" / "kat_vectors.json"
    doc = json.loads(vec.read_text())
    doc["ecdsa"]["P-256"]["signature"] = doc["ecdsa"]["P-256"]["signature"][:-2] + "00"
    vec.write_text(json.dumps(doc))
    r = cli.run("cert", "verify", str(pem), "--ca", str(pem))
    _assert_refused(r, "kat-ecdsa-p-256-verify")
    assert r.stderr.startswith("fipsike cert verify: ")
    assert r.stdout == ""  # no verdict at all from a module in error
