"""PKCS#12 import onto a real SoftHSM2 token: PKCS#12 files made by `openssl pkcs12 -export`,
keys that then sign on the token (checked by `openssl dgst -verify` with the certificate's public
key) and whose private values cannot be read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_private_key
from pkcs11 import Attribute

from certs.pkcs12_import import ImportRefused, import_pkcs12
from certs.store import CertStore
from certs.testpki import P256, P384, RSA_3072, Issued, TestPki, openssl_keypair
from providers.algorithms import KeySpec, SignatureScheme
from tests.certs.conftest import Pki

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=120)


@dataclass
class P12:
    path: Path
    key_pem: Path
    issued: Issued
    name: str


def make_p12(pki: Pki, d: Path, name: str, spec: KeySpec, password: str = PASSWORD) -> P12:
    """Key by `openssl genpkey`, certificate by the test PKI's intermediate, bundle by `openssl pkcs12 -export`."""
    key = d / f"{name}.key"
    issued = pki.pki.end_entity_with_key_file(f"{name}.example", pki.inter, spec, key)
    p12 = TestPki.write_pkcs12(issued, key, d / f"{name}.p12", password, friendly_name=name)
    return P12(p12, key, issued, name)


def weak_p12(d: Path, spec: KeySpec) -> Path:
    """A self-signed certificate for a key the Router refuses (so the test PKI cannot certify it)."""
    d.mkdir(parents=True, exist_ok=True)
    openssl_keypair(spec, d / "k.pem")
    run("openssl", "req", "-x509", "-new", "-key", "k.pem", "-subj", "/CN=weak.example", "-days", "30",
        "-out", "c.pem", cwd=d)
    run("openssl", "pkcs12", "-export", "-inkey", "k.pem", "-in", "c.pem", "-passout", f"pass:{PASSWORD}",
        "-out", "w.p12", cwd=d)
    return d / "w.p12"


def openssl_verifies(d: Path, cert: Issued, scheme: SignatureScheme, message: bytes, signature: bytes) -> bool:
    pub = d / "verify-pub.pem"
    pub.write_bytes(cert.cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    (d / "msg.bin").write_bytes(message)
    (d / "sig.bin").write_bytes(signature)
    cmd = ["openssl", "dgst", f"-{scheme.hash.value}", "-verify", str(pub), "-signature", "sig.bin"]
    if scheme.family == "rsa-pss":
        cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]
    res = subprocess.run([*cmd, "msg.bin"], cwd=d, capture_output=True, text=True, timeout=60)
    return res.returncode == 0 and "Verified OK" in res.stdout


@pytest.mark.softhsm
@pytest.mark.parametrize(("name", "spec", "scheme", "key_type"), [
    ("rsa-gw", RSA_3072, SignatureScheme.RSA_PSS_SHA256, "RSA-3072"),
    ("ec-gw", P256, SignatureScheme.ECDSA_SHA256, "ECDSA-secp256r1"),
    ("ec384-gw", P384, SignatureScheme.ECDSA_SHA384, "ECDSA-secp384r1"),
])
def test_import_then_sign_on_the_token(pki: Pki, router_hsm: Any, tmp_path: Path, name: str, spec: KeySpec,
                                       scheme: SignatureScheme, key_type: str) -> None:
    p12 = make_p12(pki, tmp_path / "src", name, spec)
    store = CertStore(tmp_path / "store", router_hsm)
    result = import_pkcs12(p12.path.read_bytes(), PASSWORD.encode(), router_hsm, store)

    ski = p12.issued.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert result.key_id == ski.value.digest
    assert result.label == name and result.key_type == key_type and not result.key_already_present
    assert result.cert_path == store.directory / f"{name}.pem"
    assert sorted(p.name for p in result.ca_paths) == ["Test Intermediate CA.pem".replace(" ", "_"),
                                                       "Test Root CA.pem".replace(" ", "_")]
    entry = store.by_nickname(name)
    assert entry is not None and entry.cert == p12.issued.cert
    assert store.by_nickname(f"{name}.example") is entry  # by CN, as leftcert= may name it

    key = store.private_key(entry)
    assert key.owner.startswith("pkcs11:")
    message = b"IKE_AUTH signed octets " + name.encode()
    signature = router_hsm.sign(key, scheme, message)
    assert openssl_verifies(tmp_path, p12.issued, scheme, message, signature)
    assert router_hsm.verify(entry.cert.public_key(), scheme, message, signature)

    # On the token: sensitive, never extractable, labelled, CKA_ID = SKI; the private value stays there.
    obj = key._impl
    assert obj[Attribute.SENSITIVE] is True and obj[Attribute.EXTRACTABLE] is False
    assert obj[Attribute.LABEL] == name and bytes(obj[Attribute.ID]) == result.key_id
    secret_attr = Attribute.PRIVATE_EXPONENT if key_type.startswith("RSA") else Attribute.VALUE
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        obj[secret_attr]

    # importing the same bundle again is a no-op for the key
    again = import_pkcs12(p12.path.read_bytes(), PASSWORD.encode(), router_hsm, store)
    assert again.key_already_present and again.cert_path == result.cert_path


@pytest.mark.softhsm
@pytest.mark.parametrize(("spec", "message"), [
    (KeySpec("rsa", 1024), "RSA-1024"),
    (KeySpec("ec", 256, "secp256k1"), "curve not approved"),
])
def test_forbidden_keys_are_refused_before_anything_is_written(router_hsm: Any, tmp_path: Path, spec: KeySpec,
                                                               message: str) -> None:
    p12 = weak_p12(tmp_path / "src", spec)
    store = CertStore(tmp_path / "store", router_hsm)
    with pytest.raises(ImportRefused, match=message):
        import_pkcs12(p12.read_bytes(), PASSWORD.encode(), router_hsm, store)
    assert not (tmp_path / "store").exists()


@pytest.mark.softhsm
def test_wrong_password_and_garbage(pki: Pki, router_hsm: Any, tmp_path: Path) -> None:
    p12 = make_p12(pki, tmp_path / "src", "pw-gw", P256)
    store = CertStore(tmp_path / "store", router_hsm)
    with pytest.raises(ImportRefused, match="wrong password"):
        import_pkcs12(p12.path.read_bytes(), b"not the password", router_hsm, store)
    with pytest.raises(ImportRefused, match="not a PKCS#12"):
        import_pkcs12(b"\x30\x03\x02\x01\x03", b"x", router_hsm, store)


# --- the CLI, end to end, on its own throwaway token (a subprocess is another PKCS#11 process) ---------
CLI_TOKEN = "fipsike-cli"
CLI_PIN = "918273"


@pytest.fixture
def cli_token(tmp_path: Path) -> dict[str, str]:
    base = tmp_path / "cli-hsm"
    (base / "tokens").mkdir(parents=True)
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PYTHONPATH": str(ROOT)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", CLI_TOKEN, "--so-pin", "55667788",
                    "--pin", CLI_PIN], check=True, capture_output=True, env=env)
    pin = base / "pin"
    pin.write_text(CLI_PIN + "\n")
    env["FIPSIKE_PIN"] = CLI_PIN
    return {**env, "_pin_file": str(pin)}


def fipsike(env: dict[str, str], *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in env.items() if not k.startswith("_")}
    return subprocess.run([sys.executable, "-m", "fipsike", *args], env={**clean, **kw.pop("extra_env", {})},
                          capture_output=True, text=True, timeout=180, cwd=ROOT, **kw)


@pytest.mark.softhsm
def test_cli_import_and_list(pki: Pki, tmp_path: Path, cli_token: dict[str, str]) -> None:
    p12 = make_p12(pki, tmp_path / "src", "cli-gw", RSA_3072)
    canary = f"{load_pem_private_key(p12.key_pem.read_bytes(), None).private_numbers().d:x}"  # type: ignore[union-attr]
    pw = tmp_path / "p12.pw"
    pw.write_text(PASSWORD + "\n")
    store = tmp_path / "store"
    res = fipsike(cli_token, "import", str(p12.path), "--token", CLI_TOKEN, "--pin-file", cli_token["_pin_file"],
                  "--store", str(store), "--password-file", str(pw), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["label"] == "cli-gw" and out["key_type"] == "RSA-3072" and out["token"] == CLI_TOKEN
    assert out["key_uri"].startswith("pkcs11:type=private;id=%")
    assert Path(out["certificate"]).read_bytes() == p12.issued.cert.public_bytes(Encoding.PEM)

    # the password from the environment, the PIN from FIPSIKE_PIN, text output: idempotent re-import
    res2 = fipsike(cli_token, "import", str(p12.path), "--token", CLI_TOKEN, "--store", str(store),
                   extra_env={"FIPSIKE_P12_PASSWORD": PASSWORD})
    assert res2.returncode == 0, res2.stderr
    assert "already on token fipsike-cli" in res2.stdout and "(sensitive, not extractable)" in res2.stdout

    listed = fipsike(cli_token, "cert", "list", "--store", str(store), "--token", CLI_TOKEN, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["nickname"]: r for r in json.loads(listed.stdout)["certificates"]}
    assert rows["cli-gw"]["private_key_on_token"] is True and rows["cli-gw"]["ca"] is False
    assert rows["cli-gw"]["san"] == ["DNS:cli-gw.example"] and rows["cli-gw"]["key_type"] == "RSA-3072"
    assert rows["Test_Root_CA"]["ca"] is True and rows["Test_Root_CA"]["private_key_on_token"] is False
    text = fipsike(cli_token, "cert", "list", "--store", str(store), "--token", CLI_TOKEN)
    assert "private key on token: yes" in text.stdout
    for r in (res, res2, listed, text):
        assert canary not in r.stdout + r.stderr
        assert "PRIVATE KEY" not in r.stdout + r.stderr and PASSWORD not in r.stdout + r.stderr

    # the key really is on that token: pkcs11-tool lists it by the label we gave
    objs = subprocess.run(["pkcs11-tool", "--module", "/usr/lib/softhsm/libsofthsm2.so", "--token-label",
                           CLI_TOKEN, "--login", "--pin", CLI_PIN, "--list-objects", "--type", "privkey"],
                          env=cli_token, capture_output=True, text=True, timeout=60)
    assert "label:      cli-gw" in objs.stdout and out["key_id"] in objs.stdout.replace(" ", "")


@pytest.mark.softhsm
def test_cli_refusals_are_one_line(pki: Pki, tmp_path: Path, cli_token: dict[str, str]) -> None:
    weak = weak_p12(tmp_path / "weak", KeySpec("rsa", 1024))
    res = fipsike(cli_token, "import", str(weak), "--token", CLI_TOKEN, "--store", str(tmp_path / "s"),
                  extra_env={"FIPSIKE_P12_PASSWORD": PASSWORD})
    assert res.returncode == 1
    ours = [line for line in res.stderr.splitlines() if line.startswith("fipsike")]
    assert len(ours) == 1 and "RSA-1024" in ours[0] and "2048" in ours[0], res.stderr
    assert "Traceback" not in res.stderr
    nopw = fipsike(cli_token, "import", str(weak), "--token", CLI_TOKEN, stdin=subprocess.DEVNULL)
    assert nopw.returncode == 2 and "no password" in nopw.stderr
    notoken = fipsike({k: v for k, v in cli_token.items() if k != "FIPSIKE_TOKEN_LABEL"}, "import",
                      str(weak), extra_env={"FIPSIKE_P12_PASSWORD": PASSWORD})
    assert notoken.returncode == 2 and "--token" in notoken.stderr


@pytest.mark.softhsm
def test_the_bundle_is_opened_inside_the_boundary_and_its_software_key_dropped(
        pki: Pki, router_hsm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """certs/ never sees the key object: the Router opens the bundle (fix 5 of issue 11), certs gets a
    software handle, moves it to the token, and the software handle is wiped afterwards."""
    opened: list[Any] = []
    real = router_hsm.open_pkcs12

    def spy(data: bytes, password: bytes | None) -> Any:
        contents = real(data, password)
        opened.append((contents, contents.key))
        return contents

    monkeypatch.setattr(router_hsm, "open_pkcs12", spy)
    p12 = make_p12(pki, tmp_path / "src", "boundary-gw", P256)
    result = import_pkcs12(p12.path.read_bytes(), PASSWORD.encode(), router_hsm, CertStore(tmp_path / "s", router_hsm))
    (contents, software), = opened
    assert software.owner == "openssl" and software.wiped and contents.key is None
    assert router_hsm.load_private_key(f"pkcs11:id={''.join(f'%{b:02x}' for b in result.key_id)}").owner \
        .startswith("pkcs11:")
