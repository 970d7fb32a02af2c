"""The CLI's last line of defence, broken pipes, -v after the verb, and messages that name the
real problem (PIN-free URIs, Ed25519, unparsable certificates)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certs.store import CertStore
from certs.testpki import P256, TestPki
from fipsike import cli
from fipsike.commands.importp12 import CommandError
from providers import open_router
from providers.errors import KeyNotFound, ProviderError
from providers.pkcs11.uri import Pkcs11UriError, parse_uri, printable_uri
from tests.cli.conftest import World, assert_no_canary, assert_one_line_error, base_env

PIN_CANARY = "CANARYPIN4242"


def test_last_resort_prints_messages_of_safe_types_only() -> None:
    try:
        b"Kq7Canary\xe9Pin".decode("utf-8")
    except UnicodeDecodeError as exc:
        text = cli.describe_error(exc)
    assert text.startswith("UnicodeDecodeError") and "0xe9" not in text and "position" not in text
    assert cli.describe_error(ValueError(f"bad cell {PIN_CANARY!r}")).startswith("ValueError")
    assert PIN_CANARY not in cli.describe_error(RuntimeError(PIN_CANARY))
    assert cli.describe_error(ProviderError("token gone")) == "ProviderError: token gone"
    assert cli.describe_error(CommandError("--store x: no such directory")).endswith("no such directory")
    oserr = FileExistsError(17, "File exists", "/tmp/store")
    assert cli.describe_error(oserr) == "/tmp/store: File exists"


def test_full_verb_name_and_verbose_after_the_verb() -> None:
    p = cli.build_parser()
    ns = p.parse_args(["cert", "list", "-vv"])
    assert ns._prog == "fipsike cert list" and ns.verbose == 2
    ns = p.parse_args(["-v", "xfrm"])
    assert ns._prog == "fipsike xfrm" and ns.verbose == 1
    for argv in (["selftest", "-v"], ["import", "x.p12", "--verbose"], ["decode", "-v", "f"], ["fipsstatus", "-v"]):
        assert p.parse_args(argv).verbose == 1


@pytest.mark.softhsm
def test_broken_pipe_is_quiet(world: World, tmp_path: Path) -> None:
    many = tmp_path / "many"
    many.mkdir()
    for i in range(400):
        (many / f"c{i}.pem").write_bytes(world.root_pem.read_bytes())
    hexfile = tmp_path / "msgs.txt"
    hexfile.write_text(("00" * 8 + "11" * 8 + "2120220800000000000000ff" + "00" * 243 + "\n") * 3000)
    for argv in (["cert", "list", "--store", str(many)], ["cert", "list", "--json", "--store", str(many)],
                 ["decode", str(hexfile)]):
        proc = subprocess.Popen([sys.executable, "-m", "fipsike.cli", *argv], env=world.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(100)
        proc.stdout.close()  # the reader goes away, as `| head` does
        err = proc.stderr.read().decode()
        rc = proc.wait(timeout=180)
        assert err == "", err
        assert rc == cli.EXIT_BROKEN_PIPE


@pytest.mark.softhsm
def test_pin_value_never_printed(router_hsm: object, tmp_path: Path) -> None:
    uri = f"pkcs11:object=ee.example?pin-value={PIN_CANARY}"
    assert PIN_CANARY not in printable_uri(uri) and "pin-value=***" in printable_uri(uri)
    assert PIN_CANARY not in printable_uri(f"pkcs11:obj ect=x?pin-value={PIN_CANARY}&x")  # unparsable too
    with pytest.raises(Pkcs11UriError) as info:
        parse_uri("pkcs11:object=x?pin-value=CANARY#PIN")
    assert "#" not in str(info.value)
    pki = TestPki(open_router("fips"), datetime.now(UTC))
    root = pki.root("Redaction Root", P256)
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "root.pem").write_bytes(root.cert.public_bytes(Encoding.PEM))
    store = CertStore(store_dir, router_hsm)
    (entry,) = list(store)
    for ref in (uri, f"pkcs11:object=no-such-key?pin-value={PIN_CANARY}"):
        with pytest.raises(KeyNotFound) as refused:
            store.private_key(entry, ref)
        assert_no_canary(str(refused.value) + repr(refused.value), [PIN_CANARY])
        assert "pin-value" in str(refused.value)


@pytest.mark.softhsm
def test_ed25519_and_unparsable_certificates_name_the_problem(world: World, tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", "ed.key", "-subj",
                    "/CN=ed.example", "-days", "30", "-out", "ed.pem"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=60)
    r = world.run("cert", "verify", "--ca", str(tmp_path / "ed.pem"), str(tmp_path / "ed.pem"))
    assert r.returncode == 1
    assert "Ed25519 refused" in r.stdout and "ECDSA-" not in r.stdout
    r = world.run("cert", "list", "--store", str(tmp_path), "--json")
    assert r.returncode == 0 and '"key_type": "Ed25519"' in r.stdout
    (tmp_path / "short.der").write_bytes(b"\x30\x82\x01\x00\x02")
    r = world.run("cert", "list", "--store", str(tmp_path))
    line = assert_one_line_error(r, "short.der: not a PEM or DER certificate")
    assert "ParseError" not in line and "ShortData" not in line


def test_no_verb_and_unknown_verb_are_usage_errors() -> None:
    r = subprocess.run([sys.executable, "-m", "fipsike.cli"], capture_output=True, text=True, timeout=60,
                       env=base_env())
    assert r.returncode == 2 and "COMMAND" in r.stdout
