"""`fipsike check-config`: exit status 0 / 1 / 2, one line per error, and --json against its schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from fipsike.cli import main
from tests.config.conftest import LONG_PSK, write_secret

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "check-config.schema.json").read_text())
SEED = Path(__file__).parent / "seed"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["check-config", "--local-address", "192.1.2.45", "--defaultroute", "192.1.2.45", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "d" / "policies").mkdir(parents=True)
    (tmp_path / "d" / "policies" / "private").write_text("10.0.0.0/8\n")
    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn net\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftsubnet=192.0.1.0/24\n"
                    "\trightsubnet=192.0.2.0/24\n\tleftid=@west\n\trightid=@east\n\tauthby=secret\n"
                    "\tike=aes_gcm_16_256-sha2_256-dh19\n\tesp=aes_gcm_16_256\n\tikelifetime=30h\n\tauto=start\n")
    secrets = write_secret(tmp_path / "ipsec.secrets", '@west @east : PSK "' + LONG_PSK + '"\n')
    return {"conf": conf, "secrets": secrets, "dir": tmp_path / "d"}


def _args(f: dict[str, Path], *more: str) -> list[str]:
    return ["--config", str(f["conf"]), "--secrets", str(f["secrets"]), "--ipsecdir", str(f["dir"]), *more]


def test_clean_config_exit_0_and_text(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    rc, out, err = run(capsys, *_args(files, "--fips-mode", "policy"))
    assert rc == 0, err
    assert "conn net (" in out and "local side left" in out
    assert "child net: 192.0.1.0-192.0.1.255 <=> 192.0.2.0-192.0.2.255 (tunnel)" in out
    assert "ENCR_AES_GCM_16/256/PRF_HMAC_SHA2_256/ECP_256" in out
    assert "warning: " in out and "ikelifetime: capped at 86400 s" in out
    assert "policy group private: 10.0.0.0/8" in out and "secret PSK for @west @east" in out


def test_errors_exit_1_one_line_each(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    files["conf"].write_text(files["conf"].read_text() + "\tmobike=yes\n\tesp=aes-md5\n\tbogus=1\n")
    rc, out, err = run(capsys, *_args(files))
    assert rc == 1 and out == ""
    lines = err.strip().splitlines()
    conf = files["conf"]
    assert lines == [
        f"{conf}:13: conn net: mobike: libreswan keyword 'mobike' is not supported by fipsike: "
        "MOBIKE (RFC 4555) is not implemented",
        f"{conf}:14: conn net: esp: duplicate keyword (first at line 10); libreswan 4 refuses this and 5 keeps "
        "the first: fipsike refuses",
        f"{conf}:15: conn net: bogus: unrecognized 'conn' keyword 'bogus'"]


def test_unreadable_exit_2(capsys: pytest.CaptureFixture[str], files: dict[str, Path], tmp_path: Path) -> None:
    rc, _, err = run(capsys, "--config", str(tmp_path / "nope.conf"), "--secrets", str(files["secrets"]),
                     "--ipsecdir", str(files["dir"]))
    assert rc == 2 and "nope.conf" in err and "No such file" in err
    files["conf"].write_text(files["conf"].read_text() + "include missing.conf\n")
    assert run(capsys, *_args(files))[0] == 2
    rc, _, err = run(capsys, "--config", str(files["conf"]), "--secrets", str(tmp_path / "none.secrets"))
    assert rc == 2


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    rc, out, _ = run(capsys, *args, "--json")
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    return rc, doc


def test_json_clean_matches_schema(capsys: pytest.CaptureFixture[str], files: dict[str, Path]) -> None:
    rc, doc = _json(capsys, *_args(files, "--fips-mode", "policy"))
    assert rc == 0 and doc["ok"] and doc["exit_status"] == 0 and doc["profile"] == "fips"
    (c,) = doc["connections"]
    assert c["name"] == "net" and c["local"] == "left" and c["left"]["address"] == "192.1.2.45"
    assert c["ike"]["proposals"][0]["encryption"] == [{"name": "ENCR_AES_GCM_16", "key_bits": 256}]
    assert c["lifetimes"]["ike"] == 86400 and c["children"][0]["start_action"] == "start"
    assert {i["name"] for i in doc["invariants"]} >= {"no-passthrough-shunts", "proposals-fips-approved"}
    assert all(i["ok"] for i in doc["invariants"])
    assert doc["warnings"][0]["keyword"] == "ikelifetime" and doc["secrets"][0]["ids"] == ["@west", "@east"]


def test_json_errors_and_unreadable_match_schema(capsys: pytest.CaptureFixture[str], files: dict[str, Path],
                                                 tmp_path: Path) -> None:
    files["conf"].write_text(files["conf"].read_text() + "\tleftsourceip=192.0.1.254\n")
    rc, doc = _json(capsys, *_args(files))
    assert rc == 1 and not doc["ok"] and doc["connections"] == []
    assert doc["errors"][0]["line"] == 13 and doc["errors"][0]["keyword"] == "leftsourceip"
    rc, doc = _json(capsys, "--config", str(tmp_path / "missing.conf"), "--ipsecdir", str(files["dir"]))
    assert rc == 2 and doc["exit_status"] == 2


def test_json_seed_matches_schema(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    secrets = write_secret(tmp_path / "ipsec.secrets", "")
    rc, doc = _json(capsys, "--config", str(SEED / "ipsec.conf"), "--ipsecdir", str(SEED / "ipsec.d"),
                    "--secrets", str(secrets), "--fips-mode", "policy")
    assert rc == 0 and [c["name"] for c in doc["connections"]] == ["private", "private-or-clear"]
    poc = doc["connections"][1]
    assert poc["shunts"] == {"negotiation": "hold", "failure": "none"} and poc["opportunistic"]
    assert {(w["conn"], w["keyword"]) for w in doc["warnings"]} == {
        ("private", "failureshunt"), ("private-or-clear", "failureshunt"), ("private-or-clear", "negotiationshunt")}
    assert doc["policy_groups"]["private-or-clear"] == ["193.110.157.0/24", "193.111.228.0/24"]
