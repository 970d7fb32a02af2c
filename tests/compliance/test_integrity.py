"""Software integrity over a private copy of the package tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compliance import integrity
from compliance.module import FAIL, StartupError, startup
from providers import open_router


@pytest.fixture
def manifest(tree: Path) -> Path:
    return integrity.write_manifest(open_router("fips"), tree)


def test_manifest_covers_the_four_packages(tree: Path, manifest: Path) -> None:
    doc = json.loads(manifest.read_text())
    files = set(doc["files"])
    for must in ("providers/router.py", "compliance/kats.py", "compliance/kat_vectors.json",
                 "fipsike/cli.py", "compliance/report.schema.json"):
        assert must in files
    assert not any("__pycache__" in f or f.endswith(integrity.MANIFEST_NAME) for f in files)
    assert integrity.verify(open_router("fips"), tree).files == len(files)


@pytest.mark.parametrize("how", ["modify", "add", "remove", "edit-manifest"])
def test_tampering_is_caught(tree: Path, manifest: Path, how: str) -> None:
    target = tree / "providers" / "policy.py"
    if how == "modify":
        target.write_text(target.read_text().replace("_RSA_MIN_BITS: Final = 2048", "_RSA_MIN_BITS: Final = 1024"))
        words = "modified since the manifest was written: providers/policy.py"
    elif how == "add":
        (tree / "providers" / "backdoor.py").write_text("KEY = 1\n")
        words = "not in the manifest: providers/backdoor.py"
    elif how == "remove":
        target.unlink()
        words = "missing since the manifest was written: providers/policy.py"
    else:
        doc = json.loads(manifest.read_text())
        doc["files"]["providers/policy.py"] = "00" * 32
        manifest.write_text(json.dumps(doc))
        words = "manifest's own MAC does not verify"
    with pytest.raises(integrity.IntegrityError, match=words):
        integrity.verify(open_router("fips"), tree)
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, integrity_root=tree)
    assert "software-integrity" in str(info.value)
    assert info.value.report is not None
    assert [r.name for r in info.value.report.results if r.result == FAIL] == ["software-integrity"]


def test_missing_manifest_is_not_run_in_policy_and_fails_in_required(tree: Path) -> None:
    module = startup("policy", env={}, integrity_root=tree)
    (res,) = [r for r in module.report.results if r.name == "software-integrity"]
    assert res.result == "not-run" and "write-manifest" in res.detail
    with pytest.raises(StartupError) as info:
        startup("required", env={}, integrity_root=tree)
    assert "software-integrity" in str(info.value)
