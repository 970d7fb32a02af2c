"""The daemon's configuration seam: the interim JSON loader's connections and its errors (file and
key named, never a secret), reqids handed out by the daemon, and the loader slot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fipsike.daemon import config_seam
from fipsike.daemon.config_seam import Auto, ConfigError, ConfigPaths, DaemonConfig, load_config, with_reqids
from fipsike.daemon.runtime import DAEMON_REQID_BASE, ReqidBook
from fipsike.kernel.types import Ownership
from providers import open_router
from tests import strongswan_harness as ssh

CANARY = "Qz8CanaryKeyText5151"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ssh.Pki:
    p = ssh.Pki(tmp_path_factory.mktemp("seam"))
    p.issue("moon.test")
    return p


def _write(tmp: Path, pki: ssh.Pki, **over: Any) -> ConfigPaths:
    conn = {"name": "gw", "auto": "route", "left": "192.0.2.1", "right": "192.0.2.2", "leftid": "moon.test",
            "rightid": "sun.test", "leftcert": "moon.test.crt", "leftkey": "moon.test.key", "rightca": "ca.crt",
            "leftsubnet": "10.1.0.0/24", "rightsubnet": "10.2.0.0/24, 10.3.0.0/24", "esp": "aes128gcm16"}
    conn.update(over)
    path = tmp / "ipsec.json"
    path.write_text(json.dumps({"conns": [{k: v for k, v in conn.items() if v is not None}]}))
    return ConfigPaths(path, tmp / "secrets", pki.dir)


def test_a_connection_becomes_an_engine_connection(tmp_path: Path, pki: ssh.Pki) -> None:
    cfg = load_config(_write(tmp_path, pki), open_router("default"))
    (entry,) = cfg.connections
    c = entry.connection
    assert entry.auto is Auto.ROUTE and entry.auto.traps and entry.name == "gw"
    assert (c.local_addrs, c.remote_addrs, c.local_id, c.remote_id) == (("192.0.2.1",), ("192.0.2.2",),
                                                                        "moon.test", "sun.test")
    assert c.private_key is not None and "PRIVATE" not in repr(c.private_key)
    assert [(t.start, t.end) for t in c.children[0].remote_ts] == [("10.2.0.0", "10.2.0.255"),
                                                                   ("10.3.0.0", "10.3.0.255")]
    numbered = with_reqids(cfg, ReqidBook())
    assert numbered.connections[0].connection.children[0].reqid == DAEMON_REQID_BASE
    assert Ownership().owns_reqid(DAEMON_REQID_BASE + 0x7FFF)


def test_liveness_settings(tmp_path: Path, pki: ssh.Pki) -> None:
    """dpddelay= and dpdtimeout= (libreswan's names): when to check a quiet peer, when to give up."""
    (entry,) = load_config(_write(tmp_path, pki, dpddelay=10, dpdtimeout=15), open_router("default")).connections
    assert (entry.connection.dpd_delay, entry.connection.dpd_timeout) == (10.0, 15.0)
    (entry,) = load_config(_write(tmp_path, pki), open_router("default")).connections
    assert (entry.connection.dpd_delay, entry.connection.dpd_timeout) == (30.0, 150.0)


@pytest.mark.parametrize(("over", "message"), [
    ({"auto": "sometimes"}, "conn gw: auto= must be one of ignore, add, ondemand, route, start"),
    ({"type": "passthrough"}, "conn gw: type= must be tunnel or transport"),
    ({"leftsubnet": "10.1.0.300/24"}, "conn gw: '10.1.0.300/24' is not an address or subnet"),
    ({"leftcert": "missing.crt"}, "conn gw: leftcert="),
    ({"colour": "blue"}, "unknown key colour="),
    ({"dpddelay": -1}, "conn gw: dpddelay= must be a number of seconds >= 0"),
    ({"esp": "aes128gcm16-nonsense"}, "conn gw: ike=/esp="),
])
def test_bad_settings_name_the_file_and_key(tmp_path: Path, pki: ssh.Pki, over: dict[str, Any],
                                            message: str) -> None:
    paths = _write(tmp_path, pki, **over)
    with pytest.raises(ConfigError) as e:
        load_config(paths, open_router("default"))
    assert str(e.value).startswith(str(paths.config)) and message in str(e.value)


def test_a_bad_key_file_is_named_but_never_quoted(tmp_path: Path, pki: ssh.Pki) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text(f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as e:
        load_config(_write(tmp_path, pki, leftkey=str(bad)), open_router("default"))
    assert str(e.value).endswith(f"conn gw: leftkey={bad} is not an unencrypted PEM private key")
    assert CANARY not in str(e.value) and CANARY not in repr(e.value.__context__)


def test_not_json_and_duplicates(tmp_path: Path, pki: ssh.Pki) -> None:
    p = tmp_path / "x.json"
    p.write_text("{\n  oops")
    with pytest.raises(ConfigError, match=r"x.json: not valid JSON \(line 2\)"):
        load_config(ConfigPaths(p), open_router("default"))
    paths = _write(tmp_path, pki)
    doc = json.loads(paths.config.read_text())
    doc["conns"] *= 2
    paths.config.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="conn gw is defined twice"):
        load_config(paths, open_router("default"))


def test_the_loader_slot_takes_other_formats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def fake(paths: ConfigPaths, router: object) -> DaemonConfig:
        seen.append(paths.config)
        return DaemonConfig()

    monkeypatch.setattr(config_seam, "LOADER", fake)
    assert load_config(ConfigPaths(tmp_path / "ipsec.conf"), open_router("default")) == DaemonConfig()
    assert seen == [tmp_path / "ipsec.conf"]
