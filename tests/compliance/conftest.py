"""Fixtures for the compliance tests: a private copy of the package tree (so tampering never
touches the repository, and other people's edits never race a manifest), the CLI run in a
subprocess on that copy, and the OpenSSL FIPS provider built by scripts/build-openssl-fips.sh."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("providers", "certs", "compliance", "fipsike")
DEFAULT_FIPS_DIR = "/var/cache/fipsike/openssl-fips"


def copy_tree(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for pkg in PACKAGES:
        if (REPO / pkg).is_dir():
            shutil.copytree(REPO / pkg, dest / pkg,
                            ignore=shutil.ignore_patterns("__pycache__", "integrity-manifest.json"))
    return dest


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return copy_tree(tmp_path / "tree")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENSSL_CONF", "OPENSSL_MODULES", "FIPSIKE_FIPS_MODE", "PYTHONPATH")}
    # providers/ may print a CryptographyDeprecationWarning (FFDH) on stderr; the tests check that
    # stderr holds exactly one line of ours, so library warnings are silenced here.
    env["PYTHONWARNINGS"] = "ignore"
    env.update(extra)
    return env


@dataclass
class Cli:
    tree: Path

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            pythonpath_prefix: str = "") -> subprocess.CompletedProcess[str]:
        e = dict(env if env is not None else clean_env())
        e["PYTHONPATH"] = f"{pythonpath_prefix}:{self.tree}" if pythonpath_prefix else str(self.tree)
        return subprocess.run([sys.executable, "-m", "fipsike.cli", *args], cwd=self.tree, env=e,
                              capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli(tree: Path) -> Cli:
    return Cli(tree)


@dataclass(frozen=True)
class FipsBuild:
    dir: Path

    @property
    def conf(self) -> Path:
        return self.dir / "openssl-fips.cnf"

    @property
    def modules(self) -> Path:
        return self.dir / "mods"

    def env(self, **extra: str) -> dict[str, str]:
        return clean_env(**{"OPENSSL_CONF": str(self.conf), "OPENSSL_MODULES": str(self.modules), **extra})


@pytest.fixture(scope="session")
def fips_build() -> FipsBuild:
    d = Path(os.environ.get("FIPSIKE_FIPS_DIR", DEFAULT_FIPS_DIR))
    b = FipsBuild(d)
    if not (b.conf.is_file() and (b.modules / "fips.so").is_file() and (b.modules / "fipsmodule.cnf").is_file()):
        pytest.fail(f"the OpenSSL FIPS provider is not built in {d}: run scripts/build-openssl-fips.sh "
                    "(CI runs it before pytest)")
    return b
