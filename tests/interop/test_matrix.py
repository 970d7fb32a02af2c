"""The interop matrix's representative subset (issue 15), run as CI runs it: scripts/interop-matrix
boots the user-mode-linux guest once and runs, over real ESP, the fipsike daemon against charon and
pluto (each initiating and responding, ECDSA P-256, CNSA suite, direct), against itself, one NAT cell
and one negative cell. Every cell must be green. The whole matrix: `scripts/interop-matrix` (README).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.interop.peers import cells as matrix
from tests.interop.peers.charon import swanctl_conf
from tests.interop.peers.pluto import ipsec_conf
from tests.interop.peers.runner import CHECKS, table
from tests.interop.peers.spec import PeerSpec

ROOT = Path(__file__).resolve().parents[2]
MATRIX = ROOT / "scripts" / "interop-matrix"


def test_cell_ids_are_unique_and_the_ci_subset_exists() -> None:
    ids = [c.id for c in matrix.all_cells()]
    assert len(ids) == len(set(ids))
    assert set(matrix.CI_CELLS) <= set(ids)
    assert [c.id for c in matrix.select("charon-neg-*")] == [f"charon-neg-{n}" for n in matrix.NEGATIVE]
    assert matrix.select("nothing-like-this") == []
    # every peer, both initiators, both paths, every suite and every authentication appear
    cells = matrix.all_cells()
    assert {c.peer for c in cells} == {"charon", "pluto", "fipsike"}
    assert {c.path for c in cells} == {"direct", "nat"}
    assert {c.suite for c in cells if not c.negative} == set(matrix.SUITE_NAMES)
    assert {c.auth for c in cells} == set(matrix.AUTH_NAMES)
    assert all(c.peer == "pluto" for c in cells if c.auth == "null")
    assert {c.id for c in cells if c.not_applicable} == {"pluto-neg-expired"}
    # PSK from both sides with every peer, and a wrong PSK refused
    assert {(c.peer, c.initiator) for c in cells if c.auth == "psk" and not c.negative} == {
        (p, i) for p in matrix.PEERS for i in ("fipsike", "peer")}
    assert {c.id for c in cells if c.negative == "wrong-psk"} == {"charon-neg-wrong-psk", "pluto-neg-wrong-psk"}


def test_peer_configs_use_each_daemons_own_names() -> None:
    spec = PeerSpec("10.99.0.2", "%any", "peer.test", "fips.test", "pubkey", "cnsa", "10.2.0.1/32", "10.1.0.1/32")
    ss = swanctl_conf(spec)
    assert "proposals = aes256gcm16-prfsha384-ecp384" in ss and "esp_proposals = aes256gcm16-ecp384" in ss
    assert "remote_addrs = %any" in ss and "id = fips.test" in ss
    lsw = ipsec_conf(spec, "peer-p256")
    assert "ike=aes_gcm256-sha384-dh20" in lsw and "esp=aes_gcm256-null-dh20" in lsw  # libreswan's names
    assert "leftcert=peer-p256" in lsw and "sendca=all" in lsw and "leftupdown=%disabled" in lsw
    null = ipsec_conf(PeerSpec("10.99.0.2", "%any", "", "", "null", "gcm128", "10.2.0.1/32", "10.1.0.1/32"), "")
    assert "authby=null" in null and "leftid=%null" in null and "leftcert" not in null
    psk = PeerSpec("10.99.0.2", "%any", "peer.test", "fips.test", "psk", "cnsa", "10.2.0.1/32", "10.1.0.1/32",
                   psk="the-matrix-psk-0123456789abcdef")
    ss = swanctl_conf(psk)
    assert ss.count("auth = psk") == 2 and "certs =" not in ss
    assert "id-local = peer.test" in ss and "id-remote = fips.test" in ss and 'secret = "the-matrix-psk-' in ss
    lsw = ipsec_conf(psk, "")
    assert "authby=secret" in lsw and "leftid=@peer.test" in lsw and "rightid=@fips.test" in lsw
    assert "leftcert" not in lsw


def test_the_daemon_config_is_written_in_one_place_and_the_daemon_loads_it(tmp_path: Path) -> None:
    """daemon_config() is the one function that writes fipsike's config in a cell: what it writes is
    what the daemon's loader makes of it (the chain after the leaf, libreswan's retransmit keys, no
    automatic rekeys, auto=start for a restart; NULL auth refused on a plain conn)."""
    from dataclasses import replace

    from fipsike.config.hosts import StaticHost
    from fipsike.daemon.config_seam import Auto, ConfigError, ConfigPaths
    from fipsike.daemon.ipsecconf import IpsecConfLoader
    from providers import open_router
    from tests.interop.peers.daemon_side import ConnPlan, daemon_config
    from tests.interop.peers.pki import build

    router = open_router("fips")
    pki = build(router, tmp_path / "pki")
    ee = pki["fips-chain2"]
    plan = ConnPlan("10.99.0.1", "%any", "10.1.0.1/32", "10.2.0.1/32", "aes256gcm16-prfsha384-ecp384",
                    "aes256gcm16-ecp384", local_id=ee.identity, remote_id="peer.test", ee=ee, trust=pki.main_root,
                    peer_address="10.99.0.2")
    load_config = IpsecConfLoader(host=StaticHost(frozenset({"10.99.0.1"})))
    paths = ConfigPaths(daemon_config(plan, tmp_path), tmp_path / "ipsec.secrets", tmp_path)
    (entry,) = load_config(paths, router).connections
    conn = entry.connection
    assert entry.auto is Auto.ADD and conn.remote_addrs == ("%any",) and conn.local_id == "@fips.test"
    assert len(conn.intermediates) == 2 and conn.certificate is not None and conn.private_key is not None
    assert (conn.retransmit.base, conn.retransmit.tries) == (1.0, 3) and conn.dpd_delay == 2.0
    assert conn.rekey_time > 3600 and conn.children[0].rekey_time > 2700
    restart = replace(plan, remote=plan.peer_address)
    (entry,) = load_config(ConfigPaths(daemon_config(restart, tmp_path, auto="start"), paths.secrets, tmp_path),
                           router).connections
    assert entry.auto is Auto.START and entry.connection.remote_addrs == ("10.99.0.2",)
    # PSK: authby=secret, the line for the ID pair in ipsec.secrets (0600), loaded as a provider handle
    psk = replace(plan, auth="psk", ee=None, trust=None, psk="fipsike-matrix-psk-0123456789abcdef")
    (entry,) = load_config(ConfigPaths(daemon_config(psk, tmp_path), paths.secrets, tmp_path), router).connections
    assert (entry.connection.local_auth, entry.connection.remote_auth) == ("psk", "psk")
    assert entry.connection.psk is not None and len(entry.connection.psk) == len(psk.psk)
    assert entry.connection.certificate is None and paths.secrets.stat().st_mode & 0o077 == 0
    assert "@fips.test @peer.test : PSK" in paths.secrets.read_text()
    null = replace(plan, auth="null", ee=None, trust=None, local_id="%null")
    with pytest.raises(ConfigError, match="NULL authentication .* only on opportunistic conns"):
        load_config(ConfigPaths(daemon_config(null, tmp_path), paths.secrets, tmp_path), router)


def test_the_table_names_each_red_check_and_its_reason() -> None:
    ok = {"status": "pass", "detail": "", "seconds": 0.1, "figures": {"lost": 2}}
    red = {"id": "pluto-fi-p256-cnsa-direct", "status": "red", "note": "", "seconds": 1.0,
           "cell": {"peer": "pluto", "initiator": "fipsike", "auth": "p256", "suite": "cnsa", "path": "direct",
                    "negative": ""},
           "checks": {**{n: ok for n in CHECKS},
                      "ping": {"status": "fail", "detail": "replies 0/3", "seconds": 1, "figures": {}}}}
    text = table([red])
    assert "| pluto-fi-p256-cnsa-direct |" in text and "**FAIL**" in text and "ok (2 lost)" in text
    assert "- pluto-fi-p256-cnsa-direct ping: replies 0/3" in text


@pytest.mark.guest
@pytest.mark.netns
@pytest.mark.strongswan
@pytest.mark.slow
def test_the_ci_subset_is_green_over_real_esp(tmp_path: Path) -> None:
    out, js = tmp_path / "out", tmp_path / "matrix.json"
    r = subprocess.run([sys.executable, str(MATRIX), "--cells", ",".join(matrix.CI_CELLS), "--out", str(out),
                        "--json", str(js)], capture_output=True, text=True, timeout=900, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    output = r.stdout + r.stderr
    assert js.exists(), output[-4000:]
    results = {c["id"]: c for c in json.loads(js.read_text())}
    assert set(results) == set(matrix.CI_CELLS), output[-4000:]
    red = {k: {n: c["detail"] for n, c in v["checks"].items() if c["status"] == "fail"}
           for k, v in results.items() if v["status"] != "green"}
    assert not red, f"red cells: {red}\n{output[-3000:]}"
    assert r.returncode == 0, output[-4000:]
    for cid, res in results.items():
        checks = res["checks"]
        if res["cell"]["negative"]:
            assert checks["refused"]["status"] == "pass" and checks["notify"]["status"] == "pass", cid
            continue
        for name in CHECKS:
            assert checks[name]["status"] == "pass", (cid, name, checks[name])
        # kill -9 + restart: the daemon's tunnel is back, its stale kernel state gone
        assert checks["restart"]["figures"]["restart_seconds"] > 0, checks["restart"]
        counters = checks["ping"]["figures"]["counters"]
        want = checks["ping"]["figures"]["want_each_sa"]
        assert all(v == want for v in counters.values()), (cid, counters)
        capture = checks["ping"]["figures"]["capture"]
        assert capture["clear_inner"] == 0
        assert capture["esp_in_udp" if res["cell"]["path"] == "nat" else "esp"] >= 12, (cid, capture)
    md = (out / "matrix.md").read_text()
    assert all(f"| {cid} |" in md for cid in matrix.CI_CELLS)


@pytest.mark.netns
@pytest.mark.strongswan
@pytest.mark.parametrize("auth", ["p256", "psk"])
@pytest.mark.parametrize("peer", ["charon", "pluto"])
def test_the_peer_layer_negotiates_ike_on_the_host(tmp_path: Path, peer: str, auth: str) -> None:
    """On the host kernel (XFRM, no ESP) only IKE works: fipsike's IKE SA with each real peer comes up
    as seen by both sides (with certificates, and with a PSK: authby=secret), its Child SA fails in the
    kernel as it must there, and a delete from fipsike leaves the peer with nothing."""
    from tests.interop.peers.runner import Context, place

    if os.environ.get("FIPSIKE_GUEST") == "1":
        pytest.fail("this is the host half of the peer layer's test; the guest half is the matrix itself")
    ctx = Context(tmp_path / "work")
    cell = matrix.Cell(peer, "fipsike", auth, "cnsa", "direct")
    p = place(ctx, cell, tmp_path / "cell")
    try:
        assert p.peer.start() < 15
        p.fk.start()
        ok, why = p.fk.up(20)
        # no ESP in this kernel: fipsike's install fails, or the peer's (it refuses the Child SA)
        assert not ok and "Child SA" in why and ("kernel" in why or "refused" in why), why
        assert "established" in p.fk.events()
        sas = p.peer.ike_sas()
        assert len(sas) == 1 and sas[0]["state"] == "ESTABLISHED", sas
        assert p.fk.status()[0]["state"] == "established"
        p.fk.down()
        deadline = time.monotonic() + 10
        while (p.peer.ike_sas() or p.fk.status()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert p.peer.ike_sas() == [] and p.fk.status() == []
    finally:
        p.fk.stop()
        p.peer.stop()
        p.topo.close()
