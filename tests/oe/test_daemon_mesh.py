"""Real `fipsike daemon`s in network namespaces on one bridge: XFRM policies in this host's kernel,
ACQUIREs from pings, IKE over real UDP, the seed's two configurations verbatim.

This host's kernel has no ESP: a Child SA is refused at install ("Requested AEAD algorithm not
found"). An instance whose Child SA the kernel refused fails (its IKE SA is deleted, the initiator's
failure shunt goes in), so what is asserted here is the IKE SA each pair negotiated (from the daemons'
`ike-sa-up` events: one per pair, the same SPIs on both sides), its deletion after the refusal, the
kernel's policies and the bare shunts; the pings' delivery through ESP, and each pair's IKE SA staying
up, belong to the guest kernel (tests/oe/guest).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.mesh import FAST_RETRANSMIT, ROOT, SEED_PRIVATE_OR_CLEAR, Mesh, Node, mesh

pytestmark = pytest.mark.netns

N = 8  # nodes with fipsike; one more without

SEED_CLOUD_MESH = """\
conn private
 left=%defaultroute
 leftid=%fromcert
 # our certificate
 leftcert={nickname}
 right=%opportunisticgroup
 rightid=%fromcert
 # their certificate transmitted via IKE
 rightca=%same
 ikev2=insist
 authby=rsasig
 failureshunt=drop
 negotiationshunt=hold
 auto=ondemand
"""

CLEAR_OR_PRIVATE = """\
conn clear-or-private
    left=%defaultroute
    leftid=%null
    rightid=%null
    right=%opportunisticgroup
    authby=null
    ikev2=insist
    failureshunt=passthrough
    negotiationshunt=passthrough
    auto=add
"""


def established(status: dict[str, Any]) -> dict[str, list[str]]:
    """peer address -> the established IKE SAs' names (SPI pairs) with it."""
    out: dict[str, list[str]] = {}
    for sa in status["ike_sas"]:
        if sa["state"] == "established":
            out.setdefault(str(sa["remote"]).rsplit(":", 1)[0], []).append(str(sa["name"]))
    return out


UP_EVENT = re.compile(r"^info ike-sa-up \[[a-z-]+#([0-9a-f.:]+)-([0-9a-f.:]+?)(?:~r)?\] (\S+) ", re.M)


def negotiated(node: Node) -> dict[str, list[str]]:
    """peer address -> the IKE SAs (names: SPI pairs) that came up with it, from the daemon's log."""
    out: dict[str, list[str]] = {}
    for _, remote, name in UP_EVENT.findall(node.log_text()):
        out.setdefault(remote, []).append(name)
    return out


def entries(status: dict[str, Any]) -> list[dict[str, Any]]:
    return list(status.get("opportunistic", {}).get("entries", []))


def policies(node: Node) -> dict[str, str]:
    """`ip xfrm policy`, keyed "SRC DST DIR" (socket policies left out)."""
    text = subprocess.run(["ip", "-n", node.netns, "xfrm", "policy"], capture_output=True, text=True,
                          check=True).stdout
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=src )", text.strip()):
        m = re.match(r"src (\S+) dst (\S+).*?\n\s*dir (\w+)", block, re.S)
        if m:
            out[f"{m[1]} {m[2]} {m[3]}"] = block
    return out


def prio(block: str) -> int:
    m = re.search(r"priority (\d+)", block)
    assert m is not None
    return int(m[1])


def cli(node: Node, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fipsike", *args, "--ctl", str(node.ctl)], cwd=ROOT,
                          capture_output=True, text=True, timeout=90, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Mesh]:
    with mesh(N, plain=1, workdir=tmp_path) as m:
        yield m


def test_private_or_clear_mesh_every_pair_one_ike_sa_clear_neighbours_and_a_plain_host_in_the_clear(
        lab: Mesh) -> None:
    """The seed's `conn private-or-clear` verbatim, 0.0.0.0/0 in private-or-clear, each node's next
    neighbour (a ring) as a /32 in clear, and one host without fipsike. Every node pings every other at
    once, so each pair's ACQUIREs cross."""
    nodes, plain = lab.nodes[:N], lab.nodes[N]

    def clear_pair(a: Node, b: Node) -> bool:
        return b.index == (a.index + 1) % N or a.index == (b.index + 1) % N

    for n in nodes:
        neighbour = nodes[(n.index + 1) % N]
        lab.write_config(n, FAST_RETRANSMIT + SEED_PRIVATE_OR_CLEAR,
                         {"private-or-clear": ["0.0.0.0/0"], "clear": [f"{neighbour.address}/32"]})
    lab.start()
    lab.ping_all()
    st = lab.settled(90.0)
    time.sleep(1.0)
    st = {i: lab.status(lab.nodes[i]) for i in st}
    up = {n.index: negotiated(n) for n in nodes}
    for a in nodes:
        # this kernel refused every Child SA: no IKE SA is left standing with a tunnel-less instance
        assert established(st[a.index]) == {}, (a.index, st[a.index]["ike_sas"])
        for b in nodes:
            if b is a:
                continue
            if clear_pair(a, b):
                assert b.address not in up[a.index], (a.index, b.index, up[a.index])
            elif a.index < b.index:
                # the crossing first packets made one IKE SA, the same one (SPIs) on both sides, never two
                # fighting ones. The refused Child SA then failed it: the initiator's failure shunt went in,
                # the responder's trap came back, and its side's next packet of the pair (a ping reply)
                # negotiated once more, one IKE SA again, which failed the same way.
                ab, ba = up[a.index].get(b.address, []), up[b.index].get(a.address, [])
                assert 1 <= len(ab) <= 2 and ab == ba, (a.index, b.index, ab, ba)
                shunts = [[(r["kind"], r.get("shunt")) for r in entries(st[x.index]) if r["remote"] == y.address]
                          for x, y in ((a, b), (b, a))]
                assert [("bare-shunt", "passthrough")] in shunts, (a.index, b.index, shunts)
                assert all(s in ([], [("bare-shunt", "passthrough")]) for s in shunts), (a.index, b.index, shunts)
        assert plain.address not in up[a.index]
        assert "oe-child-refused" in a.log_text()
        rows = entries(st[a.index])
        # the host without fipsike: the failure shunt lets it through for the shunt's lifetime
        shunt = [r for r in rows if r["remote"] == plain.address]
        assert len(shunt) == 1 and shunt[0]["kind"] == "bare-shunt" and shunt[0]["shunt"] == "passthrough"
        assert 0 < shunt[0]["expires_in"] <= 900
        assert [r for r in rows if r["kind"] == "instance"] == []
        pol = policies(a)
        neighbour = nodes[(a.index + 1) % N].address
        trap = pol[f"{a.address}/32 0.0.0.0/0 out"]
        assert "tmpl src 0.0.0.0 dst 0.0.0.0" in trap and "proto esp" in trap  # the private-or-clear trap
        clear_out, clear_in = pol[f"{a.address}/32 {neighbour}/32 out"], pol[f"{neighbour}/32 {a.address}/32 in"]
        assert "tmpl" not in clear_out + clear_in and "block" not in clear_out + clear_in  # the clear /32: pass
        assert prio(clear_out) < prio(trap)
    assert sum(1 for n in nodes for v in up[n.index].values() if v) == 2 * (N * (N - 1) // 2 - N)
    # the clear neighbour and the plain host are reached in the clear
    second = lab.ping_all(pairs=[(a, b) for a in nodes for b in nodes if clear_pair(a, b) and
                                 b.index == (a.index + 1) % N] + [(a, plain) for a in nodes])
    assert all(r > 0 for _, r in second.values()), second
    for a in nodes:
        # a's reply to the ping of the node that lists a in clear hit a's trap; a negotiated, that node
        # (clear) never answered IKE, and a's failure shunt now lets the pair through in the clear
        lister = nodes[(a.index - 1) % N]
        (row,) = [r for r in entries(st[a.index]) if r["remote"] == lister.address]
        assert row["kind"] == "bare-shunt" and row["shunt"] == "passthrough"
    # fipsike status: each instance with its group, the bare shunt with its kind and time left, the table
    text = cli(nodes[0], "status")
    assert text.returncode == 0, text.stderr
    assert f"-> {plain.address}: passthrough (group private-or-clear)" in text.stdout
    assert "private-or-clear  out trap" in text.stdout and "clear             in  pass" in text.stdout


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Mesh]:
    with mesh(3, workdir=tmp_path) as m:
        yield m


def test_oe_initiate_block_clear_or_private_and_a_32_overrides_a_8_both_ways(three: Mesh) -> None:
    """A: private-or-clear 10.0.0.0/8, B's /32 in clear, C's /32 in block. B: clear 10.0.0.0/8, C's /32 in
    private-or-clear. C: clear-or-private 10.0.0.0/8 (answers, never initiates)."""
    lab = three
    a, b, c = lab.nodes
    conf = FAST_RETRANSMIT + SEED_PRIVATE_OR_CLEAR + "\n" + CLEAR_OR_PRIVATE
    lab.write_config(a, conf, {"private-or-clear": ["10.0.0.0/8"], "clear": [f"{b.address}/32"],
                               "block": [f"{c.address}/32"]})
    lab.write_config(b, conf, {"clear": ["10.0.0.0/8"], "private-or-clear": [f"{c.address}/32"]})
    lab.write_config(c, conf, {"clear-or-private": ["10.0.0.0/8"]})
    lab.start()
    # oe-initiate: B -> C negotiates (its /32 in private-or-clear beats its /8 in clear); C answers it
    # (clear-or-private). The IKE SA comes up; this kernel refuses the Child SA, so the outcome is B's
    # failure shunt
    r = cli(b, "oe-initiate", "--local", b.address, "--remote", c.address, "--json")
    res = json.loads(r.stdout)
    assert r.returncode == 1 and res["outcome"] == "failed" and res["group"] == "private-or-clear", r
    assert res["shunt"] == "passthrough" and "oe-child-refused" in b.log_text()
    assert list(negotiated(b)) == [c.address] and negotiated(b)[c.address] == negotiated(c)[b.address]
    # A -> C: the block /32 beats A's private-or-clear /8: nothing to negotiate
    r = cli(a, "oe-initiate", "--local", a.address, "--remote", c.address)
    assert r.returncode == 1 and "not-opportunistic" in r.stdout and "block" in r.stdout, r
    r = cli(a, "oe-initiate", "--local", a.address, "--remote", "10.0.0.300")
    assert r.returncode == 1 and "is not an IP address" in r.stderr
    pings = lab.ping_all(pairs=[(a, b), (b, a), (a, c), (c, a)])
    assert pings[(a.index, b.index)][1] > 0 and pings[(b.index, a.index)][1] > 0  # the /32 in clear on A
    assert pings[(a.index, c.index)][1] == 0 and pings[(c.index, a.index)][1] == 0  # block, both directions
    st = {n.index: lab.status(n) for n in (a, b, c)}
    assert negotiated(a) == {} and all(established(st[n.index]) == {} for n in (a, b, c))
    # C answered as a clear-or-private instance; the refused Child SA ended it with no shunt (a responder's)
    assert f"ike-sa-up [clear-or-private#{c.address}-{b.address}]" in c.log_text()
    assert entries(st[c.index]) == []
    # the kernel's order: the /32s outrank the /8s whatever their groups
    prio = {(row["group"], row["dst"], row["dir"]): row["priority"]
            for row in st[a.index]["opportunistic"]["policies"]}
    assert prio[("clear", f"{b.address}/32", "out")] < prio[("private-or-clear", "10.0.0.0/8", "out")]
    assert prio[("block", f"{c.address}/32", "out")] < prio[("private-or-clear", "10.0.0.0/8", "out")]
    prio_b = {(row["group"], row["dst"], row["dir"]): row["priority"]
              for row in st[b.index]["opportunistic"]["policies"]}
    assert prio_b[("private-or-clear", f"{c.address}/32", "out")] < prio_b[("clear", "10.0.0.0/8", "out")]
    pol = policies(a)
    assert "action block" in pol[f"{a.address}/32 {c.address}/32 out"]
    assert "action block" in pol[f"{c.address}/32 {a.address}/32 in"]
    # fipsike xfrm names each policy's group, from the daemon's table
    r = subprocess.run([sys.executable, "-m", "fipsike", "xfrm", "--netns", a.netns, "--ctl", str(a.ctl), "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    named = {(p["selector"]["dst"], p["dir"]): p.get("group") for p in json.loads(r.stdout)["policies"]}
    assert named[(f"{c.address}/32", "out")] == "block" and named[(f"{a.address}/32", "in")] in ("block", "clear")
    assert named[("10.0.0.0/8", "out")] == "private-or-clear" and named[(f"{b.address}/32", "out")] == "clear"
    # SIGTERM: every policy fipsike put in goes (the IKE sockets' own per-socket policies do not upset the dump)
    lab.stop()
    for n in (a, b, c):
        assert "kernel-cleanup-failed" not in n.log_text() and "daemon-stopped" in n.log_text()
        assert not any("0x800000" in blk for blk in policies(n).values())


def _pki(tmp: Path, lab: Mesh, foreign: int, revoked: int) -> None:
    from certs.testpki import P256, TestPki
    from providers import open_router

    pki = TestPki(open_router("default"), datetime.now(UTC))
    ca, other = pki.root("Cloud CA", P256), pki.root("Other CA", P256)
    issued = {}
    for n in lab.nodes:
        issuer = other if n.index == foreign else ca
        nick = f"node{n.index}.example.com"
        key = n.dir / "private" / f"{nick}.key"
        key.parent.mkdir(parents=True, exist_ok=True)
        issued[n.index] = pki.end_entity_with_key_file(nick, issuer, P256, key, sans=(f"DNS:{nick}",))
        pki.write_pem(issued[n.index].cert, n.dir / "certs" / f"{nick}.pem")
        pki.write_pem(issuer.cert, n.dir / "cacerts" / "ca.pem")
    crl = pki.crl(ca, [issued[revoked]])
    for n in lab.nodes:
        pki.write_pem(crl, n.dir / "crls" / "cloud.crl")


def test_cloud_mesh_private_with_certificates_foreign_ca_and_revoked_never_reached_nothing_in_the_clear(
        tmp_path: Path) -> None:
    """The seed's `conn private` verbatim (leftcert= each node's nickname), 10.0.0.0/8 in private,
    FIPS mode policy. Node 4's certificate is from another CA, node 5's is revoked (on the CA's CRL)."""
    with mesh(6, workdir=tmp_path) as lab:
        foreign, revoked = 4, 5
        _pki(tmp_path, lab, foreign, revoked)
        for n in lab.nodes:
            lab.write_config(n, FAST_RETRANSMIT + SEED_CLOUD_MESH.format(nickname=f"node{n.index}.example.com"),
                             {"private": ["10.0.0.0/8"]})
        lab.start(fips_mode="policy")
        cap = tmp_path / "br0.txt"
        with open(cap, "w") as out:
            dump = subprocess.Popen(["ip", "netns", "exec", lab.hub, "tcpdump", "-l", "-n", "-i", "br0",
                                     "icmp or udp port 500 or udp port 4500 or esp"],
                                    stdout=out, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            try:
                lab.ping_all()
                lab.settled(60.0)
                lab.ping_all()  # the second packets: after every failure
                st = {n.index: lab.status(n) for n in lab.nodes}
            finally:
                dump.terminate()
                dump.wait(10)
        wire = cap.read_text()
        good = [n for n in lab.nodes if n.index not in (foreign, revoked)]
        for a in good:
            # certificate authentication worked between every good pair (the IKE SA came up; then this
            # kernel refused the Child SA and failureshunt=drop went in)
            up = negotiated(a)
            assert sorted(up) == sorted(b.address for b in good if b is not a), (a.index, up)
            assert established(st[a.index]) == {}
        # never reached: no good node's IKE SA with either came up (the revoked node, as a responder, sees
        # its IKE SA up before the initiator refuses its certificate; the foreign one trusts nobody here)
        assert negotiated(lab.nodes[foreign]) == {}
        for bad in (foreign, revoked):
            assert all(lab.nodes[bad].address not in negotiated(n) for n in good)
        assert "UDP" in wire or "isakmp" in wire  # IKE went over the bridge
        assert "ICMP" not in wire, wire[:2000]  # nothing in the clear, ever
        assert "authentication failed" in lab.nodes[foreign].log_text().lower() or \
            "AUTHENTICATION_FAILED" in "".join(n.log_text() for n in good)
        assert "revoked" in "".join(n.log_text() for n in good).lower()


@pytest.mark.softhsm
def test_cloud_mesh_with_imported_pkcs12_keys_on_the_token(tmp_path: Path, softhsm_token: Any) -> None:
    """The seed's deployment step verbatim: `ipsec import node1.example.com.p12` (here `fipsike import`: the
    key onto the PKCS#11 token, the certificate and its CA into the store), then `conn private` with
    leftcert=NICKNAME and no key file: the daemon finds the key on the token by the certificate."""
    from certs.testpki import P256, TestPki
    from providers import open_router

    store = tmp_path / "store"
    pki = TestPki(open_router("default"), datetime.now(UTC))
    ca = pki.root("Cloud CA", P256)
    env = dict(os.environ, PYTHONPATH=str(ROOT), FIPSIKE_CERT_DIR=str(store), P12PW="import-me")
    with mesh(2, workdir=tmp_path) as lab:
        tag = lab.tag
        for n in lab.nodes:
            nick = f"{tag}node{n.index}.example.com"  # unique on the shared test token
            issued = pki.end_entity_with_key_file(nick, ca, P256, tmp_path / f"{nick}.key", sans=(f"DNS:{nick}",))
            p12 = pki.write_pkcs12(issued, tmp_path / f"{nick}.key", tmp_path / f"{nick}.p12", "import-me")
            r = subprocess.run([sys.executable, "-m", "fipsike", "import", str(p12), "--password-env", "P12PW",
                                "--token", softhsm_token.label, "--pin-file", str(softhsm_token.pin_file),
                                "--store", str(store)], cwd=ROOT, capture_output=True, text=True, env=env,
                               timeout=120)
            assert r.returncode == 0, r.stderr
            lab.write_config(n, FAST_RETRANSMIT + SEED_CLOUD_MESH.format(nickname=nick), {"private": ["10.0.0.0/8"]})
            assert not (n.dir / "private").exists() and not (n.dir / "certs").exists()
        lab.start(fips_mode="policy", env={"FIPSIKE_CERT_DIR": str(store)},
                  args=("--token", softhsm_token.label, "--pin-file", str(softhsm_token.pin_file)))
        a, b = lab.nodes
        r = cli(a, "oe-initiate", "--local", a.address, "--remote", b.address, "--json")
        res = json.loads(r.stdout)
        # the IKE SA authenticated with the token's keys; this kernel then refused the Child SA, and FIPS mode's
        # failureshunt=none (fipsike.config) leaves the trap for the next packet
        assert res["outcome"] == "failed" and res["group"] == "private", (r.stdout, a.log_text()[-3000:])
        assert "no failure shunt" in res["reason"] and list(negotiated(a)) == [b.address], a.log_text()[-3000:]
        # the responder logs its peer after its IKE_AUTH answer has left: give its log a moment
        deadline = time.monotonic() + 10
        while f"CN={tag}node0.example.com" not in b.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"CN={tag}node1.example.com" in a.log_text() and f"CN={tag}node0.example.com" in b.log_text()


def test_a_bad_group_file_stops_the_daemon_with_its_file_and_line(tmp_path: Path) -> None:
    with mesh(1, workdir=tmp_path) as lab:
        n = lab.nodes[0]
        lab.write_config(n, SEED_PRIVATE_OR_CLEAR, {"private-or-clear": ["0.0.0.0/0", "10.1.2.3/8"]})
        with pytest.raises(RuntimeError) as err:
            lab.start()
        assert "policies/private-or-clear:2" in str(err.value) and "Traceback" not in n.log_text()

