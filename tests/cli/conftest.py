"""The CLI end to end in subprocesses (`python -m fipsike.cli ...`), with canary secrets planted
everywhere a secret can be: the token PIN (file and environment), the PKCS#12 password (file and
environment), key-table cells. Every bad-input run must end in one line on stderr, a non-zero
status, no traceback, and no canary in any printable form."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certs.testpki import P256, Issued, TestPki
from providers import open_router
from providers.pkcs11.config import SOFTHSM2_MODULE

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fipsike-cli-canary"
CANARY_PIN = "Kq7CanaryPin4242"
CANARY_PASSWORD = "Zx9CanaryPass7777"  # noqa: S105 - a planted test canary
WRONG_PIN_CANARY = "Wr0ngCanaryPin9191"
SO_PIN = "55667788"


def forms(secret: str | bytes) -> set[str]:
    """The printable forms a leak could take: raw text, hex (both cases), base64, Python's repr
    of the bytes. Hex text (a key cell) also counts in its decoded forms."""
    raw = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
    blobs = [raw]
    try:
        blobs.append(bytes.fromhex(raw.decode("ascii")))
    except ValueError:
        pass
    out: set[str] = set()
    for b in blobs:
        out |= {b.hex(), b.hex().upper(), base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode(),
                repr(b)[2:-1]}
        try:
            out.add(b.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return {f.rstrip("=") for f in out if len(f.rstrip("=")) >= 6}


def assert_no_canary(text: str, canaries: Iterable[str | bytes]) -> None:
    low = text.lower()
    for c in canaries:
        for f in forms(c):
            assert f.lower() not in low, f"canary form {f!r} leaked into: {text!r}"


def assert_one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> str:
    assert r.returncode != 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("fipsike "), lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def base_env(**extra: str | bytes) -> dict[str, str | bytes]:
    env: dict[str, str | bytes] = {k: v for k, v in os.environ.items()
                                   if k not in ("OPENSSL_CONF", "OPENSSL_MODULES", "PYTHONPATH")
                                   and not k.startswith("FIPSIKE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONWARNINGS"] = "ignore"  # a library's deprecation warning is not our stderr line
    env.update(extra)
    return env


@dataclass
class World:
    dir: Path
    softhsm_conf: Path
    pin_file: Path
    password_file: Path
    root: Issued
    ee: Issued
    p12: Path
    ee_pem: Path
    root_pem: Path
    store: Path

    def env(self, **extra: str | bytes) -> dict[str, str | bytes]:
        # the canaries sit in the environment of every run: nothing may echo them
        return base_env(**{"SOFTHSM2_CONF": str(self.softhsm_conf), "FIPSIKE_PIN": CANARY_PIN,
                           "FIPSIKE_P12_PASSWORD": CANARY_PASSWORD, **extra})

    def run(self, *args: str, env: dict[str, str | bytes] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fipsike.cli", *args], env=env or self.env(),
                              cwd=cwd or self.dir, capture_output=True, text=True, timeout=timeout)

    def token_objects(self) -> str:
        """What pkcs11-tool lists on the token (labels and ids of keys)."""
        r = subprocess.run(["pkcs11-tool", "--module", SOFTHSM2_MODULE, "--token-label", TOKEN, "--login",
                            "--pin", CANARY_PIN, "--list-objects"],
                           env={**os.environ, "SOFTHSM2_CONF": str(self.softhsm_conf)},
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    d = tmp_path_factory.mktemp("cli-canary")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--so-pin", SO_PIN,
                    "--pin", CANARY_PIN], check=True, capture_output=True,
                   env={**os.environ, "SOFTHSM2_CONF": str(conf)})
    pin = d / "pin"
    pin.write_text(CANARY_PIN + "\n")
    pw = d / "p12.pw"
    pw.write_text(CANARY_PASSWORD + "\n")
    pki = TestPki(open_router("fips"), datetime.now(UTC))
    root = pki.root("CLI Canary Root", P256)
    ee = pki.end_entity_with_key_file("gw.cli.example", root, P256, d / "ee.key")
    p12 = TestPki.write_pkcs12(ee, d / "ee.key", d / "ee.p12", CANARY_PASSWORD, friendly_name="cli-gw")
    from cryptography.hazmat.primitives.serialization import Encoding

    ee_pem = d / "ee.pem"
    ee_pem.write_bytes(ee.cert.public_bytes(Encoding.PEM))
    root_pem = d / "root.pem"
    root_pem.write_bytes(root.cert.public_bytes(Encoding.PEM))
    store = d / "store"
    store.mkdir()
    (store / "root.pem").write_bytes(root_pem.read_bytes())
    return World(d, conf, pin, pw, root, ee, p12, ee_pem, root_pem, store)
