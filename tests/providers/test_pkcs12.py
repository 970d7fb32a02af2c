"""Private keys that arrive as bytes are opened inside the boundary (issue 11, fix 5): a PKCS#12
through Router.open_pkcs12, a PKCS#8 through Router.import_pkcs8, each under the gate and the policy."""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.testpki import P256, RSA_3072, TestPki, openssl_keypair
from compliance import kats
from providers import open_router
from providers.algorithms import KeySpec, SignatureScheme
from providers.errors import InvalidInput, ModuleNotOperational, PolicyViolation, WipedKey
from providers.handles import PrivateKey
from providers.router import Router

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
PASSWORD = "p12 test password"


def _p12(router: Router, d: Path, spec: KeySpec) -> bytes:
    pki = TestPki(router, NOW)
    root = pki.root("P12 Root", P256)
    issued = pki.end_entity_with_key_file("p12.example", root, spec, d / "k.pem")
    return TestPki.write_pkcs12(issued, d / "k.pem", d / "b.p12", PASSWORD, friendly_name="gw").read_bytes()


def test_open_pkcs12_gives_a_handle_and_the_certificates(router_fips: Router, tmp_path: Path) -> None:
    contents = router_fips.open_pkcs12(_p12(router_fips, tmp_path, RSA_3072), PASSWORD.encode())
    key = contents.key
    assert isinstance(key, PrivateKey) and key.owner == "openssl" and key.spec == RSA_3072
    assert contents.cert is not None and contents.friendly_name == "gw"
    assert [c.subject.rfc4514_string() for c in contents.additional] == ["CN=P12 Root,O=fipsike test,C=US"]
    assert key.public_key().public_numbers() == contents.cert.public_key().public_numbers()
    scheme = SignatureScheme.RSA_PSS_SHA256
    assert router_fips.verify(contents.cert.public_key(), scheme, b"m", router_fips.sign(key, scheme, b"m"))
    # a software handle moves (here: re-wrapped in software; onto a token in tests/certs/test_import.py)
    moved = router_fips.import_private_key(key, label="moved")
    assert moved.label == "moved" and moved is not key
    contents.wipe()
    assert contents.key is None and key.wiped and "RSA" in repr(key)
    with pytest.raises(WipedKey):
        router_fips.sign(key, scheme, b"m")
    with pytest.raises(WipedKey):
        router_fips.import_private_key(key)


def test_open_pkcs12_applies_the_policy_before_any_handle(tmp_path: Path) -> None:
    maker = open_router("default")
    d = tmp_path / "weak"
    d.mkdir()
    pki = TestPki(maker, NOW)
    root = pki.root("Weak Root", P256)
    issued = pki.end_entity("weak.example", root, public_key=openssl_keypair(KeySpec("rsa", 1024), d / "k.pem"))
    data = TestPki.write_pkcs12(issued, d / "k.pem", d / "w.p12", PASSWORD).read_bytes()
    for profile in ("fips", "default"):
        with pytest.raises(PolicyViolation, match="RSA-1024"):
            open_router(profile).open_pkcs12(data, PASSWORD.encode())


def test_open_pkcs12_bad_input_is_a_typed_error(router_fips: Router, tmp_path: Path) -> None:
    data = _p12(router_fips, tmp_path, P256)
    with pytest.raises(InvalidInput, match="wrong password or not a PKCS#12") as info:
        router_fips.open_pkcs12(data, b"not it")
    assert PASSWORD not in str(info.value)
    with pytest.raises(InvalidInput, match="not a PKCS#12"):
        router_fips.open_pkcs12(b"\x30\x03\x02\x01\x03", b"x")


def test_the_gate_refuses_key_parsing_in_error() -> None:
    router = open_router("fips")
    der = base64.b64decode(kats.load_vectors()["rsa_pss"]["private_pkcs8"])
    assert router.import_pkcs8(der, label="kat").spec == KeySpec("rsa", 2048)
    router.gate.fail("test")
    with pytest.raises(ModuleNotOperational):
        router.import_pkcs8(der)
    with pytest.raises(ModuleNotOperational):
        router.open_pkcs12(b"anything", b"pw")


def test_import_pkcs8_refuses_garbage_and_weak_keys(router_fips: Router, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a DER private key"):
        router_fips.import_pkcs8(b"\x30\x00")
    openssl_keypair(KeySpec("rsa", 1024), tmp_path / "k.pem")
    der = subprocess.run(["openssl", "pkey", "-in", str(tmp_path / "k.pem"), "-outform", "DER"],
                         check=True, capture_output=True).stdout
    with pytest.raises(PolicyViolation, match="RSA-1024"):
        router_fips.import_pkcs8(der)
