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
         "generate_private_key() outside providers"),
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
