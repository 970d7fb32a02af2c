"""A reload does not pile up private key handles in the provider: the handle of an unchanged PEM key file
is reused (not imported again), and the handles of replaced keys and of removed conns are wiped once
nothing in the daemon uses them. Counted with Router.live_private_keys (providers.handles), which counts
a handle until it is wiped or collected: the test keeps references to the replaced handles, as any other
holder might (a log record, an SA under way), so only an explicit release keeps the count flat."""

from __future__ import annotations

import gc
import io
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certs.testpki import P256, TestPki
from fipsike.config.hosts import StaticHost
from fipsike.daemon.config_seam import ConfigPaths, with_reqids
from fipsike.daemon.eventlog import EventLog
from fipsike.daemon.ipsecconf import IpsecConfLoader
from fipsike.daemon.runtime import Daemon, Options, ReqidBook
from fipsike.kernel.memory import MemoryKernel
from providers import open_router
from tests.daemon.test_runtime import FakeSockets

HOST = StaticHost(frozenset({"192.0.2.1"}))
NICKS = ("keep", "churn", "extra")


def _conn(nick: str, right: str) -> str:
    return (f"conn {nick}\n\tauto=add\n\tleft=192.0.2.1\n\tright={right}\n\tleftid=@{nick}.test\n"
            f"\trightid=@peer.test\n\tleftcert={nick}.test\n\trightca=ca\n\tleftsubnet=10.1.0.0/24\n"
            f"\trightsubnet=10.2.0.0/24\n")


def _write_conf(path: Path, with_extra: bool) -> None:
    conns = [_conn("keep", "192.0.2.2"), _conn("churn", "192.0.2.3")]
    if with_extra:
        conns.append(_conn("extra", "192.0.2.4"))
    path.write_text("config setup\n\n" + "\n".join(conns))


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Any, Daemon, ConfigPaths]:
    router = open_router("default")
    pki = TestPki(router, datetime.now(UTC))
    ca = pki.root("test CA", P256)
    d = tmp_path / "ipsec.d"
    for sub in ("certs", "cacerts", "crls"):
        (d / sub).mkdir(parents=True)
    (d / "private").mkdir(mode=0o700)
    for nick in NICKS:
        issued = pki.end_entity_with_key_file(f"{nick}.test", ca, P256, d / "private" / f"{nick}.test.key",
                                              sans=(f"DNS:{nick}.test",))
        pki.write_pem(issued.cert, d / "certs" / f"{nick}.test.crt")
        (d / "private" / f"{nick}.test.key").chmod(0o600)
    pki.write_pem(ca.cert, d / "cacerts" / "ca.crt")
    paths = ConfigPaths(tmp_path / "ipsec.conf", tmp_path / "ipsec.secrets", d)
    _write_conf(paths.config, with_extra=True)
    loader = IpsecConfLoader(host=HOST)
    reqids = ReqidBook()
    config = with_reqids(loader(paths, router), reqids)
    daemon = Daemon(router, MemoryKernel(), FakeSockets(), config, Options(paths, tmp_path / "ctl", "memory"),
                    EventLog(io.StringIO()), loader=loader, reqids=reqids)
    return router, daemon, paths


def _touch(path: Path) -> None:
    """The key file written again (same key): a changed file as far as anyone can tell without reading it."""
    tmp = path.with_suffix(".new")
    shutil.copy(path, tmp)
    tmp.chmod(0o600)
    os.replace(tmp, path)


def _live(router: Any) -> int:
    gc.collect()
    return int(router.live_private_keys()["openssl"])


def test_twenty_reloads_leave_the_live_key_handles_flat(setup: tuple[Any, Daemon, ConfigPaths]) -> None:
    router, daemon, paths = setup
    keep = daemon.config.by_name()["keep"].connection.private_key
    assert keep is not None
    counts: list[int] = []
    replaced = []
    for i in range(20):
        churn = daemon.config.by_name()["churn"].connection.private_key
        _touch(paths.ipsecdir / "private" / "churn.test.key")
        _write_conf(paths.config, with_extra=i % 2 == 1)  # extra: removed, added, removed, ...
        result = daemon.reload()
        assert result["changed"] == [] and result[("removed" if i % 2 == 0 else "added")] == ["extra"]
        # the unchanged key file: the very same handle, in the config and in the engine
        assert daemon.config.by_name()["keep"].connection.private_key is keep and not keep.wiped
        assert daemon.engine.connections["keep"].private_key is keep
        new_churn = daemon.config.by_name()["churn"].connection.private_key
        assert new_churn is not churn and new_churn is not None  # the rewritten file was imported again
        replaced.append(churn)
        counts.append(_live(router))
    # the engine keeps its first Connection of the unchanged conn `churn` (and that key); every handle
    # imported since and replaced by the next reload is wiped
    first = daemon.engine.connections["churn"].private_key
    assert first is replaced[0] and not first.wiped
    assert all(k.wiped for k in replaced[1:])
    assert counts[2:] == counts[:2] * 9, counts  # flat: the same two values, removed / added
    assert abs(counts[0] - counts[1]) == 1


def test_a_conn_whose_key_changes_is_signed_with_the_new_key_and_the_old_one_wiped(
        setup: tuple[Any, Daemon, ConfigPaths]) -> None:
    router, daemon, paths = setup
    old = daemon.config.by_name()["extra"].connection.private_key
    assert old is not None
    _write_conf(paths.config, with_extra=False)
    daemon.reload()
    assert old.wiped  # removed conn: nothing uses its handle
    _write_conf(paths.config, with_extra=True)
    daemon.reload()
    again = daemon.engine.connections["extra"].private_key
    assert again is not None and again is not old and not again.wiped  # imported afresh, usable
