"""The layering and the FIPS boundary, on the real tree and on planted violations."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.layering import check_tree

ROOT = Path(__file__).resolve().parents[1]


def test_repository_respects_the_layers_and_the_boundary() -> None:
    violations = check_tree(ROOT)
    assert violations == [], "\n".join(map(str, violations))


def _plant(tmp_path: Path, rel: str, source: str) -> Path:
    for layer in ("providers", "certs", "compliance", "fipsike"):
        (tmp_path / layer).mkdir(exist_ok=True)
        (tmp_path / layer / "__init__.py").write_text("")
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(source)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("certs/bad.py", "import fipsike.cli\n", "upward import"),
        ("providers/bad.py", "from compliance import x\n", "upward import"),
        ("compliance/bad.py", "from fipsike.ike import message\n", "upward import"),
        ("fipsike/bad.py", "from cryptography.hazmat.primitives import hashes\n", "outside providers"),
        ("fipsike/bad.py", "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n", "outside providers"),
        ("certs/bad.py", "import pkcs11\n", "outside providers"),
        ("fipsike/ike/bad.py", "import hashlib\n", "outside providers"),
        ("compliance/bad.py", "import hmac\n", "outside providers"),
        ("fipsike/bad.py", "import secrets\n", "outside providers"),
        ("fipsike/bad.py", "import os as o\nx = o.urandom(8)\n", "urandom() outside providers"),
        ("fipsike/bad.py", "from os import urandom\nx = urandom(8)\n", "urandom() outside providers"),
        ("fipsike/bad.py", "from cryptography import hazmat\n", "hazmat outside providers"),
        ("fipsike/bad.py", "import cryptography\nh = cryptography.hazmat.primitives\n", "hazmat reached by attribute"),
        ("fipsike/bad.py", "import importlib\nh = importlib.import_module('hashlib')\n", "hashlib outside providers"),
        ("certs/bad.py", "h = __import__('hmac')\n", "hmac outside providers"),
        ("certs/bad.py", "import importlib\nm = importlib.import_module(name)\n", "computed name"),
        ("compliance/bad.py", "import importlib\nm = importlib.import_module('fipsike.cli')\n", "upward import"),
        ("fipsike/bad.py", "import ssl\n", "ssl outside providers"),
        ("fipsike/bad.py", "import uuid\n", "uuid outside providers"),
        ("fipsike/bad.py", "import ctypes\n", "ctypes outside providers"),
        ("fipsike/bad.py", "from cryptography.hazmat.primitives.asymmetric import ec\nk = ec.generate_private_key(c)\n",
         "generate_private_key: a private key outside providers"),
        ("fipsike/bad.py", "def f(k, p):\n    return k.exchange(p)\n", "exchange() outside providers"),
        ("certs/bad.py", "def f(c, i):\n    c.verify_directly_issued_by(i)\n", "verify_directly_issued_by()"),
        ("certs/bad.py", "from cryptography import x509\nx = x509.SubjectKeyIdentifier.from_public_key(k)\n",
         "from_public_key() outside providers"),
    ],
)
def test_planted_violation_is_caught(tmp_path: Path, rel: str, source: str, expected: str) -> None:
    violations = check_tree(_plant(tmp_path, rel, source))
    assert len(violations) >= 1
    assert any(expected in str(v) for v in violations), violations
    assert all(str(v).startswith(rel + ":") for v in violations)


# Rule 3: private keys stay inside providers/. Each planted once; the message names what was found.
KEY_PLANTS = [
    # parsing
    ("certs/bad.py", "from cryptography.hazmat.primitives.serialization import pkcs12\n"
                     "b = pkcs12.load_pkcs12(data, pw)\n", "load_pkcs12: a private key"),
    ("certs/bad.py", "from cryptography.hazmat.primitives.serialization.pkcs12 import load_key_and_certificates\n",
     "load_key_and_certificates: a private key"),
    ("compliance/bad.py", "from cryptography.hazmat.primitives import serialization\n"
                          "k = serialization.load_der_private_key(der, None)\n", "load_der_private_key: a private key"),
    ("fipsike/bad.py", "from cryptography.hazmat.primitives.serialization import load_pem_private_key\n",
     "load_pem_private_key: a private key"),
    ("fipsike/bad.py", "from cryptography.hazmat.primitives import serialization as s\n"
                       "load = s.load_ssh_private_key\n", "load_ssh_private_key: a private key"),
    # generation
    ("fipsike/ike/bad.py", "from cryptography.hazmat.primitives.asymmetric import rsa\n"
                           "k = rsa.generate_private_key(65537, 2048)\n", "generate_private_key: a private key"),
    ("certs/bad.py", "from cryptography.hazmat.primitives.asymmetric import ed25519\n"
                     "k = ed25519.Ed25519PrivateKey.from_private_bytes(b)\n", "from_private_bytes: a private key"),
    # export
    ("certs/bad.py", "def f(key, enc, fmt, alg):\n    return key.private_bytes(enc, fmt, alg)\n",
     "private_bytes: a private key"),
    ("compliance/bad.py", "def f(key):\n    return key.private_numbers().d\n", "private_numbers: a private key"),
    # .sign / .verify / .exchange on a cryptography key object
    ("certs/bad.py", "def f(cert, sig, data, alg):\n    cert.public_key().verify(sig, data, alg)\n",
     ".verify() on a cryptography key"),
    ("fipsike/bad.py", "from cryptography.hazmat.primitives.asymmetric import ec\n"
                       "def f(key: ec.EllipticCurvePrivateKey, data: bytes, a: object) -> bytes:\n"
                       "    return key.sign(data, a)\n", ".sign() on a cryptography key"),
    ("compliance/bad.py", "from cryptography.hazmat.primitives import serialization\n"
                          "pub = serialization.load_der_public_key(spki)\npub.verify(sig, msg, pad, alg)\n",
     ".verify() on a cryptography key"),
    ("fipsike/bad.py", "from cryptography.hazmat.primitives.asymmetric import ec\n"
                       "def f(k, m, alg):\n    return k.sign(m, ec.ECDSA(alg))\n", ".sign() on a cryptography key"),
    ("certs/bad.py", "from cryptography.hazmat.primitives.asymmetric import ec\n"
                     "def f(k, peer):\n    if isinstance(k, ec.EllipticCurvePrivateKey):\n"
                     "        return k.exchange(ec.ECDH(), peer)\n", ".exchange() on a cryptography key"),
    ("fipsike/bad.py", "def f(edkey, data):\n    return edkey.sign(data)\n", ".sign() on a cryptography key"),
    ("fipsike/bad.py", "def f(edpub, sig, data):\n    edpub.verify(sig, data)\n", ".verify() on a cryptography key"),
    # a key made (or a signature computed) by the openssl command line
    ("fipsike/bad.py", "import subprocess\nsubprocess.run(['openssl', 'genpkey', '-algorithm', 'EC'])\n",
     "openssl command line"),
    ("certs/bad.py", "import os\nos.system('openssl pkcs12 -export -inkey k.pem -out k.p12')\n",
     "openssl command line"),
]


@pytest.mark.parametrize(("rel", "source", "expected"), KEY_PLANTS)
def test_planted_private_key_use_is_caught(tmp_path: Path, rel: str, source: str, expected: str) -> None:
    violations = check_tree(_plant(tmp_path, rel, source))
    assert any(expected in str(v) and "outside providers/" in str(v) for v in violations), violations
    assert all(str(v).startswith(rel + ":") for v in violations)
    # the same source inside providers/ is the boundary doing its job
    inside = tmp_path / "inside"
    inside.mkdir()
    assert check_tree(_plant(inside, "providers/ok.py", source)) == []


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        # the Router's own sign/verify (3+ / 4+ arguments, a SignatureScheme) are how keys are used
        ("fipsike/ok.py", "def f(router, key, scheme, data, sig):\n    s = router.sign(key, scheme, data)\n"
                          "    return router.verify(key.public_key(), scheme, data, s)\n"),
        ("certs/ok.py", "from cryptography.hazmat.primitives.serialization import load_pem_public_key\n"
                        "def f(router, pem, scheme, d, s):\n    pub = load_pem_public_key(pem)\n"
                        "    return router.verify(pub, scheme, d, s, raw=True)\n"),
        ("compliance/ok.py", "def f(integrity, router, root, manifest):\n"
                             "    return integrity.verify(router, root, manifest)\n"),
        ("certs/ok.py", "def f(router, data, pw):\n    return router.open_pkcs12(data, pw)\n"),
        # the one named exception: the test PKI's exportable PKCS#12 keys
        ("certs/testpki.py", "import subprocess\nsubprocess.run(['openssl', 'genpkey'])\n"),
    ],
)
def test_router_key_use_passes(tmp_path: Path, rel: str, source: str) -> None:
    assert check_tree(_plant(tmp_path, rel, source)) == []


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("providers/ok.py", "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\nimport pkcs11\n"),
        ("certs/ok.py", "from cryptography import x509\nfrom providers import api\n"),
        ("fipsike/ok.py", "from cryptography.hazmat.primitives.serialization import pkcs12\nimport certs\n"),
        ("fipsike/ok.py", "from cryptography.hazmat.primitives.asymmetric import ec, rsa\n"),
        ("compliance/ok.py", "import certs.store\nimport providers\n"),
        ("fipsike/ok.py", "import importlib\nm = importlib.import_module(f'fipsike.commands.{n}')\n"),
        ("providers/ok.py", "import os\nx = os.urandom(8)\nimport importlib\nimportlib.import_module(n)\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, rel: str, source: str) -> None:
    assert check_tree(_plant(tmp_path, rel, source)) == []
