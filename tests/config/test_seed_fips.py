"""The seed's two configurations, verbatim, and the FIPS checks at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.invariants import check_invariants
from compliance.modes import FipsMode
from fipsike.config import ConfigError, load
from fipsike.config.defaults import ESP_DEFAULT, IKE_DEFAULT, default_proposals
from providers.policy import Policy
from providers.router import open_router
from tests.config.conftest import RESOLVER, WEST, empty_secrets

SEED = Path(__file__).parent / "seed"


def _seed(mode: FipsMode):  # type: ignore[no-untyped-def]
    return load(SEED / "ipsec.conf", secrets=empty_secrets(), ipsecdir=SEED / "ipsec.d", fips_mode=mode, host=WEST,
                resolver=RESOLVER)


def test_seed_cloud_mesh_private() -> None:
    spec = _seed(FipsMode.POLICY).conn("private")
    c = spec.connection
    assert spec.local == "left" and c.local_addrs == ("192.1.2.45",) and c.remote_addrs == ("%any",)
    assert (c.local_id, c.remote_id) == ("%fromcert", "%fromcert")
    assert (spec.left.cert, spec.right.ca) == ("nodel.example.com", "%same")
    assert (c.local_auth, c.remote_auth, spec.authby) == ("pubkey", "pubkey", "rsasig")
    assert spec.opportunistic and spec.policy_group == "private" and spec.auto == "ondemand"
    assert [ch.start_action for ch in c.children] == ["trap"]
    assert spec.negotiationshunt == "hold"
    assert spec.ike_default and spec.ike == IKE_DEFAULT["fips"]


def test_seed_private_or_clear_null() -> None:
    loaded = _seed(FipsMode.POLICY)
    spec = loaded.conn("private-or-clear")
    c = spec.connection
    assert (c.local_auth, c.remote_auth, c.local_id, c.remote_id) == ("null", "null", "%null", "%null")
    assert c.allow_null and spec.opportunistic and spec.policy_group == "private-or-clear"
    assert loaded.groups.members("private-or-clear") == ["193.110.157.0/24", "193.111.228.0/24"]
    # FIPS: the passthrough shunts are overridden as libreswan does in FIPS mode, and said so
    assert (spec.negotiationshunt, spec.failureshunt) == ("hold", "none")
    said = {(w.conn, w.keyword): w.message for w in loaded.warnings}
    assert "packets MUST be blocked in FIPS mode" in said[("private-or-clear", "negotiationshunt")]
    assert "failureshunt=passthrough ignored" in said[("private-or-clear", "failureshunt")]
    assert "failureshunt=drop ignored" in said[("private", "failureshunt")]


def test_seed_outside_fips_keeps_the_shunts() -> None:
    loaded = _seed(FipsMode.OFF)
    spec = loaded.conn("private-or-clear")
    assert (spec.negotiationshunt, spec.failureshunt) == ("passthrough", "passthrough")
    assert loaded.conn("private").failureshunt == "drop" and not loaded.warnings
    assert loaded.conn("private").ike == IKE_DEFAULT["default"]


def test_invariants_run_over_the_loaded_config() -> None:
    router = open_router(profile="fips")
    loaded = _seed(FipsMode.POLICY)
    cfg = loaded.invariant_config()
    assert {c.name for c in cfg.conns} == {"private", "private-or-clear"}
    assert all(r.ok for r in check_invariants(cfg, router)), [r.detail for r in check_invariants(cfg, router)]
    # the same config outside FIPS (passthrough shunts kept) fails the no-passthrough invariant
    results = {r.name: r for r in check_invariants(_seed(FipsMode.OFF).invariant_config(), router)}
    assert not results["no-passthrough-shunts"].ok
    assert "private-or-clear" in results["no-passthrough-shunts"].detail


@pytest.mark.parametrize("profile", ["fips", "default"])
def test_default_proposals_follow_libreswan_and_the_allowlist(profile: str) -> None:
    policy = Policy(profile)
    text, ike = default_proposals("ike", policy)
    assert text == IKE_DEFAULT[profile]
    names = [[str(c) for c in p.ciphers] for p in ike]
    assert names[0][:2] == ["ENCR_AES_GCM_16/256", "ENCR_AES_GCM_16/128"]
    assert names[1] == ["ENCR_AES_CBC/256", "ENCR_AES_CBC/128"]
    assert [x.name for x in ike[0].prfs] == ["PRF_HMAC_SHA2_512", "PRF_HMAC_SHA2_256"]
    groups = [k.name for k in ike[0].ke]
    assert groups[:3] == ["ECP_256", "ECP_384", "ECP_521"] and groups[-1] == "MODP_8192"
    assert ("CURVE25519" in groups) is (profile == "default")
    assert ("ENCR_CHACHA20_POLY1305/256" in names[0]) is (profile == "default")
    _, esp = default_proposals("esp", policy)
    assert ESP_DEFAULT[profile].startswith("aes_gcm_16_256+aes_gcm_16_128")
    assert [x.name for x in esp[1].integrity] == ["AUTH_HMAC_SHA2_512_256", "AUTH_HMAC_SHA2_256_128"]


BASE = "conn a\n\tleft=192.1.2.45\n\tright=192.1.2.23\n\tleftcert=west\n"


def _load(tmp_path: Path, text: str, mode: FipsMode = FipsMode.POLICY):  # type: ignore[no-untyped-def]
    conf = tmp_path / "ipsec.conf"
    conf.write_text(BASE + text)
    (tmp_path / "d" / "policies").mkdir(parents=True, exist_ok=True)
    return load(conf, secrets=empty_secrets(), ipsecdir=tmp_path / "d", fips_mode=mode, host=WEST, resolver=RESOLVER)


# The FIPS table: every non-approved transform is refused at load, naming it.
@pytest.mark.parametrize(("line", "transform"), [
    ("ike=3des-sha2_256-dh19", "ENCR_3DES"), ("ike=aes-md5-dh19", "PRF_HMAC_MD5"),
    ("ike=aes-sha1-dh19", "PRF_HMAC_SHA1"), ("ike=aes-sha2_256-modp1024", "MODP_1024"),
    ("ike=aes-sha2_256-modp1536", "MODP_1536"), ("ike=aes_gcm_16_256-sha2_256-curve25519", "CURVE25519"),
    ("ike=aes_gcm_16_256-sha2_256-x448", "CURVE448"), ("ike=chacha20_poly1305-sha2_256-dh19", "CHACHA20"),
    ("ike=aes-aes_xcbc-dh19", "AES128_XCBC"), ("ike=aes_gcm_16_256-sha2_256-dh22", "MODP_1024_160_POS"),
    ("esp=aes_gcm_8_128", "ENCR_AES_GCM_8"), ("esp=aes_ctr128-sha2_256", "ENCR_AES_CTR"),
    ("esp=aes_ccm_16_128", "ENCR_AES_CCM_16"), ("esp=aes-sha1", "AUTH_HMAC_SHA1_96"),
    ("esp=null-sha2_256", "ENCR_NULL"), ("esp=aes-md5", "AUTH_HMAC_MD5_96"), ("esp=3des-sha2", "ENCR_3DES"),
    ("esp=aes_gcm_16_128-none-mlkem512", "ML_KEM_512"),
])
def test_fips_refuses_each_non_approved_transform(tmp_path: Path, line: str, transform: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, f"\t{line}\n")
    d = next(x for x in info.value.diagnostics if transform in x.message)
    assert (d.location.line, d.conn, d.keyword) == (5, "a", line.split("=")[0])
    assert str(d).startswith(f"{tmp_path / 'ipsec.conf'}:5: conn a: {line.split('=')[0]}: proposal ")


def test_long_lifetimes_capped_with_warning(tmp_path: Path) -> None:
    loaded = _load(tmp_path, "\tikelifetime=25h\n\tipsec-lifetime=9h\n")
    spec = loaded.conn("a")
    assert (spec.ikelifetime, spec.ipsec_lifetime) == (24 * 3600, 8 * 3600)
    assert spec.connection.life_time == 24 * 3600 and spec.connection.children[0].life_time == 8 * 3600
    msgs = {w.keyword: w.message for w in loaded.warnings}
    assert "capped at 86400 s (24 h)" in msgs["ikelifetime"] and "capped at 28800 s (8 h)" in msgs["ipsec-lifetime"]
    off = _load(tmp_path, "\tikelifetime=25h\n\tipsec-lifetime=9h\n", FipsMode.OFF).conn("a")
    assert (off.ikelifetime, off.ipsec_lifetime) == (25 * 3600, 9 * 3600)


@pytest.mark.parametrize(("line", "ok"), [
    ("\tesp=aes_gcm_16_256\n\tipsec-max-packets=4294967296\n", True),  # 2^32: AES-GCM's limit itself
    ("\tesp=aes_gcm_16_256\n\tipsec-max-packets=2^33\n", False),  # above SP 800-38D 8.3
    ("\tesp=aes_gcm_16_256\n\tipsec-max-packets=1000\n", True),  # lowered: fine
    ("\tesp=aes_cbc_256-sha2_256\n\tipsec-max-bytes=549755813888\n", True),  # 2^35 blocks of 16 bytes
    ("\tesp=aes_cbc_256-sha2_256\n\tipsec-max-bytes=549755813889\n", False),
])
def test_usage_limits_only_lowered(tmp_path: Path, line: str, ok: bool) -> None:
    for mode in (FipsMode.POLICY, FipsMode.OFF):
        if ok:
            assert _load(tmp_path, line, mode).conn("a")
            continue
        with pytest.raises(ConfigError) as info:
            _load(tmp_path, line, mode)
        d = info.value.first
        assert d.location.line == 6 and "can only be lowered" in d.message and d.keyword.startswith("ipsec-max-")


def test_sha1_signatures_refused_in_fips(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SHA-1 signatures") as info:
        _load(tmp_path, "\tauthby=rsa-sha1\n")
    assert (info.value.first.location.line, info.value.first.keyword) == (5, "authby")
    assert _load(tmp_path, "\tauthby=rsa-sha1\n", FipsMode.OFF).conn("a").authby == "rsasig"


def test_null_auth_only_on_opportunistic_conns(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only on opportunistic") as info:
        _load(tmp_path, "\tauthby=null\n")
    assert info.value.first.location.line == 5
    assert _load(tmp_path, "\tauthby=null\n", FipsMode.OFF).conn("a").connection.allow_null


def test_passthrough_conn_and_clear_groups_refused_in_fips(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="type=passthrough"):
        _load(tmp_path, "\ttype=passthrough\n\tauthby=never\n")
    (tmp_path / "d" / "policies" / "clear").write_text("192.0.2.0/24\n")
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, "")
    d = info.value.first
    assert d.location.file.endswith("policies/clear") and d.location.line == 1 and "cleartext" in d.message
