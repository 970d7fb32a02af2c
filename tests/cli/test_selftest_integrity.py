"""Software integrity over every file of the package trees; an explicit manifest must exist; the
invariants say what they were checked over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compliance import integrity
from compliance.invariants import InvariantConfig
from compliance.module import startup
from providers import open_router
from tests.cli.conftest import assert_one_line_error
from tests.compliance.conftest import clean_env, copy_tree


def _cli(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(PYTHONPATH=str(tree))
    return subprocess.run([sys.executable, "-m", "fipsike.cli", *args], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    t = copy_tree(tmp_path / "tree")
    r = _cli(t, "selftest", "--write-manifest")
    assert r.returncode == 0, r.stderr
    return t


@pytest.mark.parametrize("planted", ["providers/_openssl_shim.cpython-311-x86_64-linux-gnu.so",
                                     "certs/store.pyc", "fipsike/commands/notes.txt", "compliance/extra.pth"])
def test_a_file_the_manifest_does_not_list_fails(tree: Path, planted: str) -> None:
    assert _cli(tree, "selftest").returncode == 0
    (tree / planted).write_bytes(b"\x7fELF not really")
    r = _cli(tree, "selftest")
    assert_one_line_error(r, "software-integrity", f"not in the manifest: {planted}")
    assert r.returncode == 3 and "FAIL  software-integrity" in r.stdout


def test_a_changed_data_file_fails(tree: Path) -> None:
    readme = tree / "providers" / "README.md"
    readme.write_text(readme.read_text() + "\nchanged\n")
    r = _cli(tree, "selftest")
    assert_one_line_error(r, "modified since the manifest was written: providers/README.md")


def test_pycache_is_not_covered(tree: Path) -> None:
    assert not any("__pycache__" in f for f in integrity.covered_files(tree))
    (tree / "providers" / "__pycache__").mkdir(exist_ok=True)
    (tree / "providers" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert _cli(tree, "selftest").returncode == 0


def test_explicit_manifest_must_exist(tree: Path) -> None:
    missing = tree.parent / "missing.json"
    r = _cli(tree, "selftest", "--manifest", str(missing))
    assert_one_line_error(r, "software-integrity", f"no integrity manifest at {missing}")
    assert r.returncode == 3
    # the default manifest, absent: "not run" in policy mode (unchanged)
    (tree / "compliance" / integrity.MANIFEST_NAME).unlink()
    r = _cli(tree, "selftest")
    assert r.returncode == 0 and "----  software-integrity" in r.stdout


def test_manifest_written_elsewhere_in_the_tree_is_not_an_extra_file(tree: Path) -> None:
    other = tree / "compliance" / "site-manifest.json"
    r = _cli(tree, "selftest", "--write-manifest", "--manifest", str(other))
    assert r.returncode == 0, r.stderr
    r = _cli(tree, "selftest", "--manifest", str(other))
    assert r.returncode == 0, r.stderr


def test_write_manifest_to_a_bad_path_is_one_line(tree: Path) -> None:
    r = _cli(tree, "selftest", "--write-manifest", "--manifest", "/proc/fipsike-none/m.json")
    assert_one_line_error(r, "cannot write the integrity manifest /proc/fipsike-none/m.json")
    assert r.returncode == 2 and "FileNotFoundError" not in r.stderr


def test_invariants_say_what_they_were_checked_over() -> None:
    r = subprocess.run([sys.executable, "-m", "fipsike.cli", "selftest", "--json"], capture_output=True, text=True,
                       timeout=180, env=clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    doc = json.loads(r.stdout)
    inv = [t for t in doc["tests"] if t["kind"] == "invariant"]
    assert inv and all("built-in defaults (no daemon configuration given)" in t["vector_source"] for t in inv)
    assert all("built-in defaults" in t["detail"] for t in inv)
    module = startup("policy", env={}, config=InvariantConfig())
    given = [t for t in module.report.results if t.kind == "invariant"]
    assert given and all("daemon configuration given" in t.source and "built-in" not in t.source for t in given)
    rerun = module.rerun()
    assert all("daemon configuration given" in t.source for t in rerun.results if t.kind == "invariant")
    bare = startup("policy", env={}, router=open_router("fips"))
    assert all("built-in defaults" in t.source for t in bare.report.results if t.kind == "invariant")
