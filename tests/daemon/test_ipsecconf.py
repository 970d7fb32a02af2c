"""The daemon reads libreswan's ipsec.conf: fipsike.config's conns become engine Connections with their
certificates (by nickname from <ipsecdir>/certs), private keys (<ipsecdir>/private or the token), trust
anchors (<ipsecdir>/cacerts, rightca=) and CRLs (<ipsecdir>/crls); what the daemon cannot run is refused
in one line with FILE:LINE, and no secret is ever quoted."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certs.testpki import P256, TestPki
from fipsike.config.hosts import StaticHost
from fipsike.daemon import config_seam
from fipsike.daemon.config_seam import Auto, ConfigError, ConfigPaths, DaemonConfig, load_config, with_reqids
from fipsike.daemon.ipsecconf import CrlFolderSource, IpsecConfLoader
from fipsike.daemon.runtime import DAEMON_REQID_BASE, ReqidBook
from fipsike.kernel.types import Ownership
from providers import open_router

CANARY = "Qz8CanaryKeyText5151"
HOST = StaticHost(frozenset({"192.0.2.1"}))
CONN = """config setup
\tcrl-strict=yes

conn gw
\tauto=route
\tleft=192.0.2.1
\tright=192.0.2.2
\tleftid=@moon.test
\trightid=@sun.test
\tleftcert=moon.test
\trightca=ca
\tleftsubnet=10.1.0.0/24
\trightsubnet=10.2.0.0/24,10.3.0.0/24
\tike=aes_gcm_16_256-sha2_384-ecp256
\tesp=aes_gcm_16_128
"""


@pytest.fixture(scope="module")
def router() -> Any:
    return open_router("default")


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory, router: Any) -> Path:
    d = tmp_path_factory.mktemp("pki")
    pki = TestPki(router, datetime.now(UTC))
    ca = pki.root("test CA", P256)
    (d / "certs").mkdir()
    (d / "cacerts").mkdir()
    (d / "private").mkdir(mode=0o700)
    (d / "crls").mkdir()
    moon = pki.end_entity_with_key_file("moon.test", ca, P256, d / "private" / "moon.test.key",
                                        sans=("DNS:moon.test",))
    other = pki.end_entity_with_key_file("mars.test", ca, P256, d / "mars.key", sans=("DNS:mars.test",))
    pki.write_pem(moon.cert, d / "certs" / "moon.test.crt")
    pki.write_pem(other.cert, d / "certs" / "mars.test.crt")
    pki.write_pem(ca.cert, d / "cacerts" / "ca.crt")
    pki.write_pem(pki.crl(ca, [other]), d / "crls" / "ca.crl")
    (d / "private" / "moon.test.key").chmod(0o600)
    return d


def _paths(tmp: Path, pki_dir: Path, text: str = CONN) -> ConfigPaths:
    ipsecdir = tmp / "ipsec.d"
    if not ipsecdir.exists():
        shutil.copytree(pki_dir, ipsecdir)
    (tmp / "ipsec.conf").write_text(text)
    return ConfigPaths(tmp / "ipsec.conf", tmp / "ipsec.secrets", ipsecdir)


def _line(paths: ConfigPaths, needle: str) -> int:
    return next(n for n, t in enumerate(paths.config.read_text().splitlines(), 1) if needle in t)


def test_a_conn_becomes_an_engine_connection(tmp_path: Path, pki_dir: Path, router: Any) -> None:
    loader = IpsecConfLoader(host=HOST)
    cfg = loader(_paths(tmp_path, pki_dir), router)
    (entry,) = cfg.connections
    c = entry.connection
    assert entry.auto is Auto.ROUTE and entry.auto.traps and entry.name == "gw"
    assert entry.spec is not None and entry.spec.local == "left"
    assert (c.local_addrs, c.remote_addrs, c.local_id, c.remote_id) == (("192.0.2.1",), ("192.0.2.2",),
                                                                        "@moon.test", "@sun.test")
    assert c.private_key is not None and "PRIVATE" not in repr(c.private_key)
    assert c.certificate.subject.rfc4514_string().startswith("CN=moon.test,")
    assert [a.subject.rfc4514_string() for a in c.trust_anchors] == [c.certificate.issuer.rfc4514_string()]
    assert c.crl_strict and c.dpd_action == "hold"  # libreswan 5: a dead trapped conn goes back to its trap
    assert [(t.start, t.end) for t in c.children[0].remote_ts] == [("10.2.0.0", "10.2.0.255"),
                                                                   ("10.3.0.0", "10.3.0.255")]
    assert cfg.invariants is not None and [k.name for k in cfg.invariants.conns] == ["gw"]
    numbered = with_reqids(cfg, ReqidBook())
    assert numbered.connections[0].connection.children[0].reqid == DAEMON_REQID_BASE
    assert Ownership().owns_reqid(DAEMON_REQID_BASE + 0x7FFF)
    # the CRL folder is the engine's CRL source: mars.test is revoked by the CA's CRL
    assert isinstance(cfg.crls, CrlFolderSource)
    gen, crls = cfg.crls.current()
    assert gen >= 1 and len(crls) == 1 and len(list(crls[0])) == 1
    # a reload swaps the folder under the engine's source; the generation moves on
    again = loader(_paths(tmp_path, pki_dir), router)
    cfg.crls.follow(again.crls)
    assert cfg.crls.current()[0] > gen and len(cfg.crls.current()[1]) == 1
    # the source text tells a changed conn from an unchanged one
    assert again.connections[0].source == entry.source
    assert f"cert={c.certificate.serial_number:x}" in entry.source  # a renewed certificate changes the conn
    changed = loader(_paths(tmp_path, pki_dir, CONN.replace("aes_gcm_16_128", "aes_gcm_16_256")), router)
    assert changed.connections[0].source != entry.source


def test_the_slot_defaults_to_ipsec_conf(tmp_path: Path, pki_dir: Path, router: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    text = CONN.replace("left=192.0.2.1", "left=127.0.0.1").replace("right=192.0.2.2", "right=203.0.113.250")
    paths = _paths(tmp_path, pki_dir, text)
    (entry,) = load_config(paths, router).connections
    assert entry.connection.local_addrs == ("127.0.0.1",)
    seen: list[Path] = []

    def fake(p: ConfigPaths, r: object) -> DaemonConfig:
        seen.append(p.config)
        return DaemonConfig()

    monkeypatch.setattr(config_seam, "LOADER", fake)
    assert load_config(paths, router) == DaemonConfig() and seen == [paths.config]


@pytest.mark.parametrize(("edit", "needle", "message"), [
    (("auto=route", "auto=sometimes"), "auto=", "conn gw: auto: "),
    (("esp=aes_gcm_16_128", "esp=aes_gcm_16_128-nonsense"), "esp=", "conn gw: esp: "),
    (("rightca=ca", "rightca=ca\n\tcolour=blue"), "colour", "conn gw: colour: unrecognized 'conn' keyword 'colour'"),
    (("auto=route", "auto=route\n\ttype=drop"), "type=", "conn gw: type: type=drop: shunt conns"),
    (("leftcert=moon.test", "leftcert=venus"), "leftcert", "conn gw: leftcert: no certificate 'venus' in "),
    (("rightca=ca", "rightca=nope"), "rightca", "conn gw: ca: no CA certificate 'nope' in "),
    (("rightid=@sun.test", "rightid=@venus.test\n\tauthby=secret"), "authby",
     "conn gw: authby: authby=secret but ipsec.secrets has no PSK for @moon.test / @venus.test"),
])
def test_what_the_daemon_refuses_is_one_line_with_file_and_line(
        tmp_path: Path, pki_dir: Path, router: Any, edit: tuple[str, str], needle: str, message: str) -> None:
    paths = _paths(tmp_path, pki_dir, CONN.replace(*edit))
    secret = paths.secrets
    secret.write_text(f'@moon.test @sun.test : PSK "{CANARY * 4}"\n')
    secret.chmod(0o600)
    with pytest.raises(ConfigError) as e:
        IpsecConfLoader(host=HOST)(paths, router)
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{paths.config}:{_line(paths, needle)}: "), text
    assert message in text and CANARY not in text


PSK_CONN = """conn gw
\tauto=add
\tauthby=secret
\tleft=192.0.2.1
\tright=192.0.2.2
\tleftid=@moon.test
\trightid=@sun.test
\tleftsubnet=10.1.0.0/24
\trightsubnet=10.2.0.0/24
"""


def test_authby_secret_takes_the_psk_for_the_id_pair_as_a_handle(tmp_path: Path, pki_dir: Path,
                                                                 router: Any) -> None:
    paths = _paths(tmp_path, pki_dir, PSK_CONN)
    paths.secrets.write_text(f': PSK "default-{CANARY * 2}"\n@sun.test @moon.test : PSK "pair-{CANARY * 2}"\n')
    paths.secrets.chmod(0o600)
    loader = IpsecConfLoader(host=HOST)
    (entry,) = loader(paths, router).connections
    c = entry.connection
    assert (c.local_auth, c.remote_auth) == ("psk", "psk")
    assert c.psk is not None and c.psk.kind == "PSK" and len(c.psk) == len(f"pair-{CANARY * 2}")
    assert c.certificate is None and c.private_key is None and c.trust_anchors == ()
    # the handle is the pair's line, not the default: its AUTH differs from the default line's
    from providers.algorithms import Prf

    pair_key = router.import_psk(f"pair-{CANARY * 2}".encode(), "t")
    assert router.shared_key_auth(Prf.PRF_HMAC_SHA2_256, c.psk, b"x") == \
        router.shared_key_auth(Prf.PRF_HMAC_SHA2_256, pair_key, b"x")
    texts = [repr(c), str(c), repr(entry), entry.source]
    assert not any(CANARY in t for t in texts) and f"psk={paths.secrets}:2:" in entry.source
    # a rotated PSK (same line) is a changed conn on reload; the same one is not
    assert loader(paths, router).connections[0].source == entry.source
    paths.secrets.write_text(f': PSK "default-{CANARY * 2}"\n@sun.test @moon.test : PSK "rotated-{CANARY * 2}"\n')
    assert loader(paths, router).connections[0].source != entry.source
    # leftauth=secret alone: we prove ourselves with the PSK and check the peer's certificate
    paths = _paths(tmp_path, pki_dir, PSK_CONN.replace("authby=secret", "leftauth=secret\n\trightauth=rsasig"))
    (entry,) = loader(paths, router).connections
    assert (entry.connection.local_auth, entry.connection.remote_auth) == ("psk", "pubkey")
    assert entry.connection.psk is not None and entry.connection.trust_anchors


def test_several_errors_give_the_first_and_a_count(tmp_path: Path, pki_dir: Path, router: Any) -> None:
    paths = _paths(tmp_path, pki_dir, CONN.replace("rightca=ca", "colour=blue\n\tshade=dark"))
    with pytest.raises(ConfigError) as e:
        IpsecConfLoader(host=HOST)(paths, router)
    assert str(e.value) == (f"{paths.config}:{_line(paths, 'colour')}: conn gw: colour: unrecognized 'conn' keyword "
                            f"'colour' (and 1 more: fipsike check-config --config {paths.config})")


def test_key_files_must_be_private_theirs_and_are_never_quoted(tmp_path: Path, pki_dir: Path, router: Any) -> None:
    paths = _paths(tmp_path, pki_dir)
    key = paths.ipsecdir / "private" / "moon.test.key"
    line = _line(paths, "leftcert")
    key.chmod(0o644)
    with pytest.raises(ConfigError, match=f"^{paths.config}:{line}: conn gw: leftcert: {key} is readable by group"):
        IpsecConfLoader(host=HOST)(paths, router)
    key.chmod(0o600)
    shutil.copy(pki_dir / "mars.key", key)
    with pytest.raises(ConfigError, match=f"{key} is not the private key of certificate 'moon.test'"):
        IpsecConfLoader(host=HOST)(paths, router)
    key.write_text(f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as e:
        IpsecConfLoader(host=HOST)(paths, router)
    assert str(e.value).endswith(f"conn gw: leftcert: {key} is not an unencrypted PEM private key")
    assert CANARY not in str(e.value) and CANARY not in repr(e.value.__context__)


def test_a_conn_that_is_not_this_hosts_is_skipped_with_a_warning(tmp_path: Path, pki_dir: Path, router: Any) -> None:
    paths = _paths(tmp_path, pki_dir)
    cfg = IpsecConfLoader(host=StaticHost(frozenset({"198.51.100.7"})))(paths, router)
    assert cfg.connections == ()
    assert any(w.startswith(f"{paths.config}:") and "conn gw: skipped: neither left nor right" in w
               for w in cfg.warnings), cfg.warnings


def test_the_daemon_stops_at_a_config_error_in_one_line_before_any_socket(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.daemon.harness import ROOT

    conf = tmp_path / "ipsec.conf"
    conf.write_text("conn gw\n\tleft=127.0.0.1\n\tright=203.0.113.250\n\tike=aes_gcm_16_256-md5\n")
    r = subprocess.run([sys.executable, "-m", "fipsike", "daemon", "--kernel", "memory", "--config", str(conf),
                        "--ipsecdir", str(tmp_path), "--ctl", str(tmp_path / "ctl")], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"fipsike daemon: error: {conf}:4: conn gw: ike: "), line
    assert not (tmp_path / "ctl").exists()
    r = subprocess.run([sys.executable, "-m", "fipsike", "daemon", "--kernel", "memory", "--config", str(conf),
                        "--ctl-group", "no-such-group-here", "--ctl", str(tmp_path / "ctl")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stderr.strip()) == (2, "fipsike daemon: error: --ctl-group no-such-group-here: "
                                                   "no such group")
