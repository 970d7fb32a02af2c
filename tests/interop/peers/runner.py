"""Runs matrix cells: each cell's checks (issue 15), a JSON result per cell, and the Markdown table.

Checks of a positive cell, in order (a failed check skips the ones that need its state):
  establish   IKE_SA_INIT + IKE_AUTH + Child SA from the cell's initiator; both sides show the same SPIs
  ping        3 pings each way through the tunnel; ESP counters on both sides (and the daemon's
              `trafficstatus`) = 6 packets / 504 octets each way; tcpdump on the path saw only ESP (or ESP
              in UDP 4500 behind the NAT)
  rekey-*     Child SA and IKE SA rekeys started by each side with a ping flow running; lost packets counted
  delete-*    a delete from each side leaves no SA on either side (IKE, and kernel ESP SAs)
  dpd         the peer is killed (-9): fipsike's liveness check fails and its dpd action (clear, or restart
              after the restart check made the conn auto=start) empties its SAD/SPD
  restart     kill -9 of fipsike, then a restart that initiates: the tunnel back (INITIAL_CONTACT) in N s;
              n/a when the peer sits behind the NAT (fipsike cannot reach it); needs the daemon
A negative cell: the peer initiates with what fipsike must refuse; fipsike answers with the notify
and the peer reports the failure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.proposals import Protocol as IkeProtocol
from fipsike.ike.proposals import parse_proposals
from fipsike.ike.retransmit import RetransmitPolicy
from fipsike.ike.ts import ts_from_cidr
from tests.interop.peers import topology
from tests.interop.peers.cells import AUTH_NAMES, NEGATIVE, SUITE_NAMES, Cell
from tests.interop.peers.charon import CharonPeer
from tests.interop.peers.common import PeerError, run
from tests.interop.peers.daemon_side import ConnPlan, DaemonSide, Token
from tests.interop.peers.fipsike_side import EngineSide, FipsikePeer, FipsikeSide, NeedsDaemon
from tests.interop.peers.pki import EndEntity, MatrixPki, build, load
from tests.interop.peers.pluto import PlutoPeer
from tests.interop.peers.spec import MATRIX_PSK, SUITES, WRONG_PSK, PeerSpec

CHECKS = ("establish", "ping", "rekey-child-fipsike", "rekey-child-peer", "rekey-ike-fipsike", "rekey-ike-peer",
          "delete-fipsike", "delete-peer", "dpd", "restart")
PINGS = 3
DPD_DELAY = 2.0


class Peer(Protocol):
    name: str

    def start(self) -> float: ...

    def stop(self) -> None: ...

    def kill9(self) -> None: ...

    def initiate(self, timeout: int = 20) -> tuple[bool, str]: ...

    def rekey_child(self) -> None: ...

    def rekey_ike(self) -> None: ...

    def terminate(self) -> None: ...

    def ike_sas(self) -> list[dict[str, Any]]: ...

    def child_spis(self) -> set[tuple[int, int]]: ...

    def log_text(self) -> str: ...


@dataclass
class Check:
    status: str  # "pass" | "fail" | "needs daemon" | "n/a" | "skip"
    detail: str = ""
    seconds: float = 0.0
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class CellResult:
    id: str
    cell: dict[str, str]
    status: str = "green"  # "green" | "red" | "n/a"
    checks: dict[str, Check] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "cell": self.cell, "status": self.status, "seconds": round(self.seconds, 1),
                "note": self.note, "checks": {k: {**asdict(v), "seconds": round(v.seconds, 2)}
                                              for k, v in self.checks.items()}}


class Context:
    """What every cell of one run shares: the routers, the PKI, a work folder."""

    def __init__(self, workdir: Path, pki_dir: Path | None = None) -> None:
        from providers import open_router

        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.router = open_router("fips")
        self._hsm: Any = None
        self._on_token: set[str] = set()
        t = time.monotonic()
        self.pki: MatrixPki = load(pki_dir) if pki_dir else build(self.router, workdir / "pki")
        self.pki_seconds = time.monotonic() - t

    def router_hsm(self) -> Any:
        """A FIPS router whose private-key operations go to a fresh SoftHSM2 token (made once)."""
        if self._hsm is None:
            import os

            from providers import Pkcs11Config, open_router
            from providers.pkcs11.config import SOFTHSM2_MODULE

            base = self.dir / "softhsm"
            (base / "tokens").mkdir(parents=True, exist_ok=True)
            conf = base / "softhsm2.conf"
            conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\n"
                            "log.level = ERROR\nslots.removable = false\n")
            os.environ["SOFTHSM2_CONF"] = str(conf)
            pin = "246813"
            run(["softhsm2-util", "--init-token", "--free", "--label", "interop", "--so-pin", "13572468", "--pin", pin])
            pin_file = base / "user.pin"
            pin_file.write_text(pin + "\n")
            pin_file.chmod(0o600)
            self._hsm = open_router("fips", pkcs11=Pkcs11Config(module_path=SOFTHSM2_MODULE, token_label="interop",
                                                                pin_file=str(pin_file)))
        return self._hsm

    def token_with(self, ee: EndEntity) -> Token:
        """The SoftHSM2 token, holding `ee`'s private key (imported once: a provisioning step, as
        `fipsike import` would be); the daemon finds the key there by the certificate's public key."""
        router = self.router_hsm()
        if ee.name not in self._on_token:
            key_obj = load_pem_private_key(ee.key.read_bytes(), None)
            router.import_private_key(key_obj, label=ee.name, key_id=ee.name.encode()[:16], to_token=True)
            self._on_token.add(ee.name)
        return Token("interop", self.dir / "softhsm" / "user.pin")


# --- building one cell --------------------------------------------------------------------------------
def _cert_names(cell: Cell) -> tuple[str, str]:
    """(fipsike's end entity, the peer's) in the matrix PKI."""
    kind = {"rsa": "rsa", "p384": "p384", "chain2": "chain2"}.get(cell.auth, "p256")
    peer = {"other-ca": "peer-otherca", "expired": "peer-expired", "wrong-id": "peer-intruder"}.get(
        cell.negative, f"peer-{kind}")
    return f"fips-{kind}", peer


def conn_plan(ctx: Context, cell: Cell, ee: EndEntity | None, local: str, remote: str, local_ts: str,
              remote_ts: str, label: str, peer_address: str) -> ConnPlan:
    """fipsike's connection "gw" in `cell`, as data (both fipsike sides are built from it)."""
    ike, esp = SUITES["cnsa" if cell.negative == "weak-suite" else cell.suite][:2]
    common = {"local": local, "remote": remote, "local_ts": local_ts, "remote_ts": remote_ts, "ike": ike, "esp": esp,
              "label": label, "peer_address": peer_address, "dpd_delay": DPD_DELAY}
    if cell.auth == "null":
        return ConnPlan(auth="null", local_id="%null", remote_id="%any", **common)  # type: ignore[arg-type]
    assert ee is not None
    if cell.auth == "psk":  # the same IDs as the certificate cells, proved with MATRIX_PSK instead
        return ConnPlan(auth="psk", local_id=ee.identity, remote_id="peer.test" if label == "fips" else "fips.test",
                        psk=MATRIX_PSK, **common)  # type: ignore[arg-type]
    return ConnPlan(auth="pubkey", local_id=ee.identity, remote_id="peer.test" if label == "fips" else "fips.test",
                    ee=ee, trust=ctx.pki.main_root, on_token=cell.auth == "rsa" and label == "fips",
                    **common)  # type: ignore[arg-type]


def engine_connection(ctx: Context, plan: ConnPlan, cell_id: str) -> tuple[Connection, Any]:
    """(the engine's connection "gw", the router that holds its key) for the engine-backed side."""
    router = ctx.router
    kw: dict[str, Any] = {}
    if plan.auth == "null":
        kw = {"local_auth": "null", "remote_auth": "null", "allow_null": True, "local_id": "%null",
              "remote_id": "%any"}
    elif plan.auth == "psk":
        kw = {"local_auth": "psk", "remote_auth": "psk", "local_id": plan.local_id, "remote_id": plan.remote_id,
              "psk": router.import_psk(plan.psk.encode(), f"{plan.label}-{cell_id}"), "send_certreq": False}
    else:
        ee = plan.ee
        assert ee is not None
        if plan.on_token:
            router = ctx.router_hsm()
        key_obj = load_pem_private_key(ee.key.read_bytes(), None)
        key = router.import_private_key(key_obj, label=f"{plan.label}-{cell_id}"[:60], key_id=plan.label.encode()[:8],
                                        to_token=plan.on_token)
        kw = {"local_id": plan.local_id, "remote_id": plan.remote_id, "private_key": key,
              "certificate": x509.load_pem_x509_certificate(ee.cert.read_bytes()),
              "intermediates": tuple(x509.load_pem_x509_certificate(p.read_bytes()) for p in ee.chain),
              "trust_anchors": (x509.load_pem_x509_certificate(ctx.pki.main_root.read_bytes()),)}
    conn = Connection(
        name="gw", local_addrs=(plan.local,), remote_addrs=(plan.remote,),
        ike_proposals=parse_proposals([plan.ike], IkeProtocol.IKE), dpd_delay=plan.dpd_delay,
        dpd_action=plan.dpd_action, retransmit=RetransmitPolicy(base=1.0, factor=1.5, tries=3), rekey_time=0,
        life_time=0, children=(ChildConfig("net", (ts_from_cidr(plan.local_ts),), (ts_from_cidr(plan.remote_ts),),
                                           parse_proposals([plan.esp], IkeProtocol.ESP), rekey_time=3000,
                                           life_time=3300),), **kw)
    return conn, router


SideFactory = Callable[[Context, ConnPlan, str, Path], FipsikeSide]


def engine_side(ctx: Context, plan: ConnPlan, netns: str, workdir: Path) -> FipsikeSide:
    """The sans-I/O engine driven in this process (no kill -9 / restart): kept to tell a daemon bug
    from an engine bug (`scripts/interop-matrix --fipsike-side engine`)."""
    conn, router = engine_connection(ctx, plan, workdir.parent.name)
    return EngineSide(router, netns, plan.local, conn)


def daemon_side(ctx: Context, plan: ConnPlan, netns: str, workdir: Path) -> FipsikeSide:
    """The real daemon: a `fipsike daemon` process in the namespace (tests/interop/peers/daemon_side.py).
    A NULL-auth cell runs the engine instead: the daemon allows NULL authentication (RFC 7619) only on
    opportunistic instances (issue 14), and a cell's conn is a plain one; tests/oe/test_pluto_oe.py
    runs the daemon's opportunistic NULL auth against pluto."""
    if plan.auth == "null":
        return engine_side(ctx, plan, netns, workdir)
    token = None
    if plan.on_token:
        assert plan.ee is not None
        token = ctx.token_with(plan.ee)
    return DaemonSide(ctx.router, netns, plan, workdir / f"{plan.label}-daemon", token)


# fipsike's side of every cell: (context, plan, netns, cell folder) -> a FipsikeSide
SIDES: dict[str, SideFactory] = {"daemon": daemon_side, "engine": engine_side}
SIDE = "daemon"


@dataclass
class Placed:
    topo: topology.Topology
    fk: FipsikeSide
    peer: Peer
    fk_host: topology.Host
    peer_host: topology.Host


def place(ctx: Context, cell: Cell, workdir: Path) -> Placed:
    topo = topology.make(cell.path)
    # the initiator sits behind the NAT (left); on the direct path fipsike is always left
    fk_left = cell.initiator == "fipsike" or cell.path == "direct"
    fk_host, peer_host = (topo.left, topo.right) if fk_left else (topo.right, topo.left)
    fk_ee_name, peer_ee_name = _cert_names(cell)
    fk_ee = None if cell.auth == "null" else ctx.pki[fk_ee_name]
    peer_ee = None if cell.auth == "null" else ctx.pki[peer_ee_name]
    # whom each side initiates to (the responder's own address; a NAT only changes the initiator's)
    fk_remote = peer_host.address if cell.initiator == "fipsike" else "%any"
    peer_remote = fk_host.address if cell.initiator == "peer" else "%any"
    # a restarted fipsike initiates: it can reach the peer unless the peer sits behind the NAT
    fk_reach = "" if (cell.path == "nat" and not fk_left) else peer_host.address
    plan = conn_plan(ctx, cell, fk_ee, fk_host.address, fk_remote, f"{fk_host.inner}/32", f"{peer_host.inner}/32",
                     "fips", fk_reach)
    fk = SIDES[SIDE](ctx, plan, fk_host.netns, workdir)
    peer: Peer
    if cell.peer == "fipsike":
        pplan = conn_plan(ctx, cell, peer_ee, peer_host.address, peer_remote, f"{peer_host.inner}/32",
                          f"{fk_host.inner}/32", "peer", "")
        peer = FipsikePeer(SIDES[SIDE](ctx, pplan, peer_host.netns, workdir))
    else:
        trust = (str(ctx.pki.main_root),)
        auth = cell.auth if cell.auth in ("null", "psk") else "pubkey"
        psk = (WRONG_PSK if cell.negative == "wrong-psk" else MATRIX_PSK) if auth == "psk" else ""
        spec = PeerSpec(peer_host.address, peer_remote, peer_ee.identity if peer_ee else "", "fips.test",
                        auth, cell.suite, f"{peer_host.inner}/32", f"{fk_host.inner}/32",
                        peer_ee if auth == "pubkey" else None, trust if auth == "pubkey" else (), psk=psk)
        cls = CharonPeer if cell.peer == "charon" else PlutoPeer
        peer = cls(workdir / cell.peer, peer_host.netns, spec)
    return Placed(topo, fk, peer, fk_host, peer_host)


# --- the checks ------------------------------------------------------------------------------------------
def _flip(spis: set[tuple[int, int]]) -> set[tuple[int, int]]:
    return {(b, a) for a, b in spis}


def _agree(p: Placed) -> bool:
    mine = p.fk.child_spis()
    return len(mine) == 1 and _flip(p.peer.child_spis()) == mine


def _wait(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if cond():
                return True
        except PeerError:
            pass
        time.sleep(0.1)
    return False


def establish(p: Placed, cell: Cell) -> Check:
    t = time.monotonic()
    if cell.initiator == "fipsike":
        ok, why = p.fk.up(20)
    else:
        ok, why = p.peer.initiate(20)
        ok = ok and p.fk.wait_up(10)
    if not ok:
        return Check("fail", f"not established: {why}; fipsike events: {p.fk.events()[-5:]}", time.monotonic() - t)
    if not _wait(lambda: _agree(p), 10):
        return Check("fail", f"SPIs differ: fipsike {p.fk.child_spis()} peer {_flip(p.peer.child_spis())}",
                     time.monotonic() - t)
    st = p.fk.status()
    return Check("pass", st[0].get("suite", "") if st else "", time.monotonic() - t,
                 {"suite": st[0].get("suite") if st else None, "child": st[0]["children"][0]["suite"] if st else None,
                  "nat": st[0].get("nat") if st else None})


def ping_check(ctx: Context, p: Placed, cell: Cell, workdir: Path) -> Check:
    t = time.monotonic()
    before_fk = topology.esp_counters(p.fk_host.netns, ctx.router)
    before_peer = topology.esp_counters(p.peer_host.netns, ctx.router)
    reported = getattr(p.fk, "traffic", None)  # the daemon's own `trafficstatus` (kernel counters it reports)
    before_ts = _traffic_of(reported()) if reported else {}
    caps = [topology.Capture(ns, ifname, workdir / f"ping-{ns}.pcap") for ns, ifname in p.topo.wire()]
    for cap in caps:
        cap.wait_ready()
    there = topology.ping(p.fk_host.netns, p.fk_host.inner, p.peer_host.inner, PINGS)
    back = topology.ping(p.peer_host.netns, p.peer_host.inner, p.fk_host.inner, PINGS)
    # the last reply is on the wire: wait until tcpdump has written it (a stop at once can drop the
    # packets still in its socket), bounded so a real shortfall is still reported below
    carrier = "esp_in_udp" if cell.path == "nat" else "esp"
    inner = (p.fk_host.inner, p.peer_host.inner)
    _wait(lambda: sum(cap.written(carrier, inner) for cap in caps) >= 4 * PINGS, 3)
    for cap in caps:
        cap.stop()
    seen: dict[str, int] = {}
    for cap in caps:
        for k, v in cap.summary(inner).items():
            seen[k] = seen.get(k, 0) + v
    (spi_in, spi_out), = p.fk.child_spis()
    after_fk = topology.esp_counters(p.fk_host.netns, ctx.router)
    after_peer = topology.esp_counters(p.peer_host.netns, ctx.router)

    def delta(after: dict[int, topology.SaCounter], before: dict[int, topology.SaCounter], spi: int) -> tuple[int, int]:
        a = after.get(spi)
        b = before.get(spi)
        if a is None:
            return (-1, -1)
        return (a.packets - (b.packets if b else 0), a.bytes - (b.bytes if b else 0))

    want = (2 * PINGS, 2 * PINGS * topology.ICMP_ECHO_BYTES)
    counters = {"fipsike_out": delta(after_fk, before_fk, spi_out), "fipsike_in": delta(after_fk, before_fk, spi_in),
                "peer_in": delta(after_peer, before_peer, spi_out), "peer_out": delta(after_peer, before_peer, spi_in)}
    figures = {"replies": [there, back], "counters": counters, "capture": seen, "want_each_sa": want}
    problems = []
    if (there, back) != (PINGS, PINGS):
        problems.append(f"replies {there}/{PINGS} and {back}/{PINGS}")
    if reported:
        after_ts = _traffic_of(reported())
        key = (spi_in, spi_out)
        if key in after_ts:
            b = before_ts.get(key, {"in": (0, 0), "out": (0, 0)})
            for d in ("in", "out"):
                counters[f"trafficstatus_{d}"] = (after_ts[key][d][0] - b[d][0], after_ts[key][d][1] - b[d][1])
        else:
            problems.append(f"`fipsike trafficstatus` does not list the Child SA {spi_in:08x}/{spi_out:08x}")
    bad = {k: v for k, v in counters.items() if v != want}
    if bad:
        problems.append(f"counters {bad} (want {want} each)")
    if seen["clear_inner"]:
        problems.append(f"{seen['clear_inner']} inner packets in the clear on the path")
    if seen[carrier] < 4 * PINGS:
        problems.append(f"tcpdump saw {seen[carrier]} {carrier} packets, want >= {4 * PINGS}")
    return Check("fail" if problems else "pass", "; ".join(problems), time.monotonic() - t, figures)


def _traffic_of(child_sas: list[dict[str, Any]]) -> dict[tuple[int, int], dict[str, tuple[int, int]]]:
    """`trafficstatus` by (spi_in, spi_out): each way (packets, bytes)."""
    return {(int(c["spi_in"], 16), int(c["spi_out"], 16)):
            {d: (int(c[d]["packets"]), int(c[d]["bytes"])) for d in ("in", "out")} for c in child_sas}


def rekey_check(ctx: Context, p: Placed, what: str, who: str) -> Check:
    t = time.monotonic()
    old_spis = p.fk.child_spis()
    old_ike = p.fk.ike_names()
    flow = topology.Flow(p.fk_host.netns, p.fk_host.inner, p.peer_host.inner)
    time.sleep(0.3)  # traffic is flowing when the rekey starts
    try:
        actor = p.fk if who == "fipsike" else p.peer
        if what == "child":
            actor.rekey_child()
            done = _wait(lambda: p.fk.child_spis() != old_spis and _agree(p), 20)
        else:
            actor.rekey_ike()
            done = _wait(lambda: p.fk.ike_names() != old_ike and len(p.fk.ike_names()) == 1 and _agree(p), 20)
        time.sleep(0.3)  # and still flows after it
    finally:
        sent, received = flow.stop()
    figures = {"sent": sent, "received": received, "lost": sent - received}
    if not done:
        return Check("fail", f"{what} rekey by {who} did not complete: fipsike {p.fk.child_spis()} "
                     f"peer {_flip(p.peer.child_spis())}; events {p.fk.events()[-4:]}", time.monotonic() - t, figures)
    after = topology.ping(p.fk_host.netns, p.fk_host.inner, p.peer_host.inner, 2)
    if after != 2:
        return Check("fail", f"no traffic after the rekey ({after}/2)", time.monotonic() - t, figures)
    return Check("pass", f"{sent - received} of {sent} lost", time.monotonic() - t, figures)


def _nothing_left(ctx: Context, p: Placed) -> list[str]:
    left = []
    if p.fk.status():
        left.append(f"fipsike IKE SAs {len(p.fk.status())}")
    if p.peer.ike_sas():
        left.append(f"peer IKE SAs {len(p.peer.ike_sas())}")
    for host, who in ((p.fk_host, "fipsike"), (p.peer_host, "peer")):
        n = len(topology.esp_counters(host.netns, ctx.router))
        if n:
            left.append(f"{n} ESP SAs in {who}'s kernel")
    return left


def delete_check(ctx: Context, p: Placed, cell: Cell, who: str) -> Check:
    t = time.monotonic()
    if not p.fk.child_spis():
        est = establish(p, cell)
        if est.status != "pass":
            return Check("fail", f"re-establish before the delete: {est.detail}", time.monotonic() - t)
    if who == "fipsike":
        p.fk.down()
    else:
        p.peer.terminate()
    ok = _wait(lambda: not _nothing_left(ctx, p), 15)
    if not ok:
        return Check("fail", "left after the delete: " + ", ".join(_nothing_left(ctx, p)), time.monotonic() - t)
    return Check("pass", "", time.monotonic() - t)


def dpd_check(ctx: Context, p: Placed, cell: Cell) -> Check:
    t = time.monotonic()
    if not p.fk.child_spis():
        est = establish(p, cell)
        if est.status != "pass":
            return Check("fail", f"re-establish before the kill: {est.detail}", time.monotonic() - t)
    mark = len(p.fk.events())
    p.peer.kill9()
    killed = time.monotonic()
    if not p.fk.wait_event(lambda e: e.startswith("dead-peer"), 40, since=mark):
        return Check("fail", f"no dead-peer within 40 s; events {p.fk.events()[mark:][-4:]}", time.monotonic() - t)
    detect = time.monotonic() - killed
    # the conn's action (libreswan 5: what its auto= says): clear, or restart once the restart check
    # has made it auto=start; either way the dead peer's SAs and policies go, and a restart's new IKE
    # SA is still negotiating (the peer is dead)
    action = next((e.split(":", 1)[1] for e in p.fk.events()[mark:] if e.startswith("dead-peer:")), "clear")

    def left() -> tuple[int, int, int]:
        sas, pols = p.fk.owned_state()
        up = [s for s in p.fk.status() if action != "restart" or s.get("state") == "established"]
        return len(up), sas, pols

    _wait(lambda: left() == (0, 0, 0), 5)
    ike, sas, pols = left()
    if ike or sas or pols:
        return Check("fail", f"dpdaction={action} left {ike} IKE SAs, {sas} SAs, {pols} policies",
                     time.monotonic() - t)
    return Check("pass", f"dead peer found {detect:.1f} s after kill -9; dpdaction={action}: SAD/SPD cleared",
                 time.monotonic() - t, {"detect_seconds": round(detect, 1)})


def restart_not_applicable(cell: Cell) -> str:
    if cell.path == "nat" and cell.initiator == "peer":
        return "the peer sits behind the NAT: a restarted fipsike cannot reach it, only the peer can re-establish"
    if cell.auth == "null":
        # seen in the guest: pluto keeps the stale SAs and answers the new Child SA with TS_UNACCEPTABLE
        return ("NULL authentication: every peer is %null (RFC 7619), so nothing ties the new IKE SA to the "
                "crashed one; the peer keeps the stale SAs until its own liveness check")
    return ""


def restart_check(ctx: Context, p: Placed, cell: Cell) -> Check:
    """kill -9 of fipsike mid-tunnel (no Delete sent; its kernel SAs stay), then a restart configured
    to initiate: the daemon's start-up removes the stale state, negotiates anew with INITIAL_CONTACT
    (RFC 7296 2.4), and the peer drops its stale IKE SA for the new one."""
    t = time.monotonic()
    if not p.fk.child_spis():
        est = establish(p, cell)
        if est.status != "pass":
            return Check("fail", f"re-establish before the kill: {est.detail}", time.monotonic() - t)
    old = p.fk.child_spis()
    p.fk.kill9()  # NeedsDaemon from an in-process side
    stale = p.fk.owned_state()
    try:
        seconds = p.fk.restart()
    except PeerError as e:
        return Check("fail", f"restart: {e}", time.monotonic() - t, {"stale_after_kill": stale})
    # the tunnel is back when the peer has fipsike's new Child SA; INITIAL_CONTACT lets it drop the
    # stale one (RFC 7296 2.4: the recipient MAY delete the other IKE SAs of that identity)
    back = _wait(lambda: len(p.fk.child_spis()) == 1 and p.fk.child_spis() <= _flip(p.peer.child_spis()), 15)
    dropped = _wait(lambda: _agree(p), 5)
    new = p.fk.child_spis()
    kept = _flip(p.peer.child_spis()) - new
    pings = topology.ping(p.fk_host.netns, p.fk_host.inner, p.peer_host.inner, 3)
    figures = {"restart_seconds": round(seconds, 1), "daemon_start_seconds": round(p.fk.start_seconds[-1], 1),
               "stale_after_kill": {"sas": stale[0], "policies": stale[1]}, "peer_kept_stale_child_sas": len(kept),
               "pings": pings}
    problems = []
    if not back:
        problems.append(f"the peer does not have the new Child SA (fipsike {new}, peer {_flip(p.peer.child_spis())})")
    if new & old:
        problems.append("the old Child SA survived the crash")
    if pings != 3:
        problems.append(f"{pings}/3 pings after the restart")
    if problems:
        return Check("fail", "; ".join(problems), time.monotonic() - t, figures)
    note = "" if dropped else (f"; the peer kept {len(kept)} stale Child SA(s) beside the new one (it does not act "
                               "on INITIAL_CONTACT, a MAY in RFC 7296 2.4: they go at its liveness check or lifetime)")
    return Check("pass", f"tunnel back {seconds:.1f} s after the restart (daemon start-up "
                         f"{p.fk.start_seconds[-1]:.1f} s){note}", time.monotonic() - t, figures)


def negative(ctx: Context, p: Placed, cell: Cell) -> dict[str, Check]:
    what, notify, rfc = NEGATIVE[cell.negative]
    t = time.monotonic()
    ok, why = p.peer.initiate(20)
    time.sleep(0.5)
    peer_log = p.peer.log_text()
    fk_events = p.fk.events()
    tag = notify.lower().replace("_", "-")
    fk_said = any(notify in e or tag in e for e in fk_events) or any(
        notify in line or f" {tag} " in line for line in p.fk.log_lines())
    peer_saw = notify in peer_log or notify in why
    out = {"refused": Check("pass" if not ok and not p.fk.child_spis() else "fail",
                            "" if not ok else "the peer established a tunnel it should not have",
                            time.monotonic() - t)}
    out["notify"] = Check("pass" if fk_said and peer_saw else "fail",
                          f"{notify} ({rfc}): fipsike {'sent' if fk_said else 'did NOT send'} it, the peer "
                          f"{'reported' if peer_saw else 'did NOT report'} it; fipsike events {fk_events[-3:]}",
                          0.0, {"peer_said": why[-200:]})
    return out


def run_cell(ctx: Context, cell: Cell) -> CellResult:
    res = CellResult(cell.id, {"peer": cell.peer, "initiator": cell.initiator, "auth": cell.auth,
                               "suite": cell.suite, "path": cell.path, "negative": cell.negative})
    t0 = time.monotonic()
    if cell.not_applicable:
        res.status, res.note = "n/a", cell.not_applicable
        return res
    workdir = ctx.dir / "cells" / cell.id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    p: Placed | None = None
    try:
        p = place(ctx, cell, workdir)
        p.peer.start()
        p.fk.start()
        if cell.negative:
            res.checks.update(negative(ctx, p, cell))
        else:
            res.checks["establish"] = establish(p, cell)
            if res.checks["establish"].status == "pass":
                res.checks["ping"] = ping_check(ctx, p, cell, workdir)
                for what in ("child", "ike"):
                    for who in ("fipsike", "peer"):
                        res.checks[f"rekey-{what}-{who}"] = rekey_check(ctx, p, what, who)
                        if res.checks[f"rekey-{what}-{who}"].status != "pass" and not _agree(p):
                            break
                res.checks["delete-fipsike"] = delete_check(ctx, p, cell, "fipsike")
                res.checks["delete-peer"] = delete_check(ctx, p, cell, "peer")
                # before the DPD check, which kills the peer
                why_not = restart_not_applicable(cell)
                if why_not:
                    res.checks["restart"] = Check("n/a", why_not)
                else:
                    try:
                        res.checks["restart"] = restart_check(ctx, p, cell)
                    except NeedsDaemon as e:
                        res.checks["restart"] = Check("needs daemon", str(e))
                res.checks["dpd"] = dpd_check(ctx, p, cell)
            for name in CHECKS:
                res.checks.setdefault(name, Check("skip", "an earlier check failed"))
    except Exception as e:  # noqa: BLE001 - a cell that crashes is a red cell with its reason, not a crashed run
        res.checks["error"] = Check("fail", f"{type(e).__name__}: {e}")
        (workdir / "traceback.txt").write_text(traceback.format_exc())
    finally:
        if p is not None:
            for stop in (p.fk.stop, p.peer.stop):
                try:
                    stop()
                except Exception as e:  # noqa: BLE001
                    res.checks.setdefault("cleanup", Check("fail", f"{type(e).__name__}: {e}"))
            try:
                (workdir / f"{p.peer.name}-peer.log").write_text(p.peer.log_text()[-200_000:])
                (workdir / "fipsike.log").write_text("\n".join(p.fk.log_lines()))
            except OSError:
                pass
            p.topo.close()
    res.seconds = time.monotonic() - t0
    if any(c.status == "fail" for c in res.checks.values()):
        res.status = "red"
    return res


# --- output ------------------------------------------------------------------------------------------------
MARK = {"pass": "ok", "fail": "**FAIL**", "needs daemon": "needs daemon", "n/a": "n/a", "skip": "-"}


def table(results: list[dict[str, Any]]) -> str:
    pos = [r for r in results if not r["cell"]["negative"]]
    neg = [r for r in results if r["cell"]["negative"]]
    lines = []
    if pos:
        lines += ["| cell | peer | init | auth | suite | path | " + " | ".join(CHECKS) + " | result |",
                  "|" + "---|" * (len(CHECKS) + 7)]
        for r in pos:
            c = r["cell"]
            checks = []
            for name in CHECKS:
                ch = r["checks"].get(name)
                if ch is None:
                    checks.append("n/a" if r["status"] == "n/a" else "-")
                    continue
                cell_text = MARK.get(ch["status"], ch["status"])
                if name.startswith("rekey") and ch["status"] == "pass":
                    cell_text += f" ({ch['figures'].get('lost', 0)} lost)"
                if name == "restart" and ch["status"] == "pass":
                    kept = ch["figures"].get("peer_kept_stale_child_sas", 0)
                    stale = ", peer kept stale SA" if kept else ""
                    cell_text += f" ({ch['figures'].get('restart_seconds', '?')} s{stale})"
                checks.append(cell_text)
            lines.append(f"| {r['id']} | {c['peer']} | {c['initiator']} | {AUTH_NAMES.get(c['auth'], c['auth'])} | "
                         f"{SUITE_NAMES.get(c['suite'], c['suite'])} | {c['path']} | " + " | ".join(checks)
                         + f" | {r['status']} |")
    if neg:
        lines += ["", "| negative cell | the peer | fipsike must answer | refused | notify | result |",
                  "|---|---|---|---|---|---|"]
        for r in neg:
            what, notify, rfc = NEGATIVE[r["cell"]["negative"]]
            ch = r["checks"]
            lines.append(f"| {r['id']} | {what} | {notify} ({rfc}) | "
                         f"{MARK.get(ch.get('refused', {}).get('status', 'skip'), '-')} | "
                         f"{MARK.get(ch.get('notify', {}).get('status', 'skip'), '-')} | {r['status']} |")
    reds = [r for r in results if r["status"] == "red"]
    if reds:
        lines += ["", "Red cells:"]
        for r in reds:
            for name, ch in r["checks"].items():
                if ch["status"] == "fail":
                    lines.append(f"- {r['id']} {name}: {ch['detail']}")
    nas = [r for r in results if r["status"] == "n/a"]
    if nas:
        lines += ["", "Not applicable: " + "; ".join(f"{r['id']}: {r['note']}" for r in nas)]
    return "\n".join(lines) + "\n"


def run_cells(cells: list[Cell], workdir: Path, out: Path, progress: Callable[[str], None] = print,
              pki_dir: Path | None = None) -> list[dict[str, Any]]:
    ctx = Context(workdir, pki_dir)
    progress(f"interop-matrix: PKI ready in {ctx.pki_seconds:.1f} s; {len(cells)} cell(s)")
    results: list[dict[str, Any]] = []
    out.mkdir(parents=True, exist_ok=True)
    for cell in cells:
        r = run_cell(ctx, cell).as_dict()
        results.append(r)
        (out / f"{cell.id}.json").write_text(json.dumps(r, indent=1, default=str))
        src = workdir / "cells" / cell.id
        if src.exists() and r["status"] == "red":  # the logs of a red cell, for the report
            subprocess.run(["cp", "-r", str(src), str(out / f"{cell.id}.logs")], check=False)
        progress(f"interop-matrix: {cell.id}: {r['status']} ({r['seconds']} s)")
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return results
