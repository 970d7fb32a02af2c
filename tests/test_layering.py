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
        ("fipsike/bad.py", "import os\nx = os.urandom(8)\n", "os.urandom"),
    ],
)
def test_planted_violation_is_caught(tmp_path: Path, rel: str, source: str, expected: str) -> None:
    violations = check_tree(_plant(tmp_path, rel, source))
    assert len(violations) >= 1
    assert expected in str(violations[0])
    assert str(violations[0]).startswith(rel + ":")


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        ("providers/ok.py", "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\nimport pkcs11\n"),
        ("certs/ok.py", "from cryptography import x509\nfrom providers import api\n"),
        ("fipsike/ok.py", "from cryptography.hazmat.primitives.serialization import pkcs12\nimport certs\n"),
        ("fipsike/ok.py", "from cryptography.hazmat.primitives.asymmetric import ec, rsa\n"),
        ("compliance/ok.py", "import certs.store\nimport providers\n"),
    ],
)
def test_allowed_imports_pass(tmp_path: Path, rel: str, source: str) -> None:
    assert check_tree(_plant(tmp_path, rel, source)) == []
