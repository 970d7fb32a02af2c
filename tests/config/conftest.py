from __future__ import annotations

import os
from pathlib import Path

import pytest

from fipsike.config.hosts import StaticHost, StaticResolver

CORPUS = Path(__file__).parent / "corpus"

# libreswan's test hosts (testing/baseconfigs/all/etc/hosts and the test network's IPv6 plan)
WEST = StaticHost(frozenset({"192.1.2.45", "192.0.1.254", "2001:db8:1:2::45"}), "192.1.2.45", "2001:db8:1:2::45")
EAST = StaticHost(frozenset({"192.1.2.23", "192.0.2.254", "2001:db8:1:2::23"}), "192.1.2.23", "2001:db8:1:2::23")
NOWHERE = StaticHost(frozenset(), None, None)
RESOLVER = StaticResolver({"west": ("192.1.2.45",), "east": ("192.1.2.23",), "road": ("192.1.3.209",)})
LONG_PSK = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!!"  # 64 bytes


def write_secret(path: Path, text: str) -> Path:
    path.write_text(text)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def secrets(tmp_path: Path) -> Path:
    return write_secret(tmp_path / "ipsec.secrets", f': PSK "{LONG_PSK}"\n')


@pytest.fixture
def ipsecdir(tmp_path: Path) -> Path:
    d = tmp_path / "ipsec.d"
    (d / "policies").mkdir(parents=True)
    return d


_EMPTY: list[Path] = []


def empty_secrets() -> Path:
    """An empty 0600 secrets file, so that no test reads the machine's /etc/ipsec.secrets."""
    if not _EMPTY:
        import tempfile

        _EMPTY.append(write_secret(Path(tempfile.mkdtemp(prefix="fipsike-secrets-")) / "ipsec.secrets", ""))
    return _EMPTY[0]
