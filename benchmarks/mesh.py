"""Opportunistic mesh: N `fipsike daemon`s in network namespaces on one bridge, each with the seed's
`conn private-or-clear` (NULL authentication) and 0.0.0.0/0 in private-or-clear; every node pings
every other at once, so every pair's ACQUIREs collide.

    python -m benchmarks.mesh [--json] [--nodes 8,16,32] [--hold]

Figures per mesh size:
- time to the first delivered packet per pair (median, p95): from the start of the first of the pair's two
  pings to the pair's IKE SA being established (IKE_SA_INIT + IKE_AUTH, which carries the Child SA's
  negotiation), from each daemon's event stream. This host's kernel has no ESP (it refuses the Child SA's
  AEAD at install), so "delivered" here means "IKE SA and Child SA negotiated, handed to the kernel": the
  moment a kernel with ESP would send the first packet encrypted. (In the guest, with --hold, the first
  ping's reply is the delivery: `lost` counts those that got none.)
- tunnels/s: IKE SAs established across the mesh / the time from the first ping to the last one up.
- CPU seconds per daemon from its first ping to the end (start-up self-tests not counted) and its max RSS
  (from /proc).
- with --hold (negotiationshunt=hold, queued on the larval state, xfrm_larval_drop=0): first packets lost,
  the first pings that got no reply. Without ESP on this host a held packet can only leave as ESP, so here
  every held first packet is lost; the guest run is the one that shows the kernel delivering them.

The lab (namespaces, daemons, pings, status) is `Mesh`, which tests/oe uses too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUBNET = "10.77"

SEED_PRIVATE_OR_CLEAR = """\
conn private-or-clear
    left=%defaultroute
    leftauth=null
    leftid=%null
    rightauth=null
    rightid=%null
    right=%opportunisticgroup
    authby=null
    ikev2=insist
    failureshunt=passthrough
    negotiationshunt=passthrough
    # to not leak during IKE negotiation, use
    # negotiationshunt=hold
    auto=ondemand
    # clear-or-private uses auto=add
"""


# beside the seed's conn, verbatim: peers that never answer are given up after 10 s, not libreswan's 60
FAST_RETRANSMIT = "conn %default\n    retransmit-timeout=10s\n\n"


def sh(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stdout}{r.stderr}")
    return r


@dataclass
class Node:
    index: int
    netns: str
    address: str
    dir: Path
    fipsike: bool = True
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ctl(self) -> Path:
        return self.dir / "ctl"

    @property
    def log(self) -> Path:
        return self.dir / "daemon.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


_SERIAL = itertools.count()


@dataclass
class Mesh:
    """N namespaces joined by a bridge in a hub namespace; node i is SUBNET.0.(i+1)/16."""

    workdir: Path
    tag: str = field(default_factory=lambda: f"m{os.getpid() % 100000}x{next(_SERIAL)}")
    nodes: list[Node] = field(default_factory=list)
    hub: str = ""

    def build(self, count: int, plain: int = 0) -> None:
        """`count` nodes with fipsike, then `plain` without."""
        self.hub = f"{self.tag}hub"
        sh("ip", "netns", "add", self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i in range(count + plain):
            ns = f"{self.tag}n{i}"
            addr = f"{SUBNET}.{(i + 1) // 250}.{(i + 1) % 250}"
            sh("ip", "netns", "add", ns)
            node = Node(i, ns, addr, self.workdir / f"n{i}", i < count)
            self.nodes.append(node)
            node.dir.mkdir(parents=True, exist_ok=True)
            a, b = f"{self.tag}a{i}", f"{self.tag}b{i}"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", ns)
            sh("ip", "link", "set", b, "netns", self.hub)
            sh("ip", "-n", self.hub, "link", "set", b, "master", "br0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "link", "set", a, "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/16", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            # %defaultroute resolves through this (nothing answers at .255.254: no traffic leaves)
            sh("ip", "-n", ns, "route", "add", "default", "via", f"{SUBNET}.255.254", "dev", "eth0", "onlink")
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.core.xfrm_acq_expires=3")

    def write_config(self, node: Node, conf: str, groups: dict[str, list[str]], extra: Callable[[Node], None]
                     | None = None) -> None:
        """ipsec.conf (the group conns) and the group files under policies/."""
        (node.dir / "ipsec.conf").write_text(conf)
        pol = node.dir / "policies"
        pol.mkdir(exist_ok=True)
        for g in ("private", "private-or-clear", "clear-or-private", "block", "clear"):
            p = pol / g
            if g in groups:
                p.write_text("\n".join(groups[g]) + "\n")
            elif p.exists():
                p.unlink()
        if extra is not None:
            extra(node)

    def start(self, fips_mode: str = "off", timeout: float = 120.0, env: dict[str, str] | None = None,
              args: tuple[str, ...] = ()) -> None:
        for n in self.nodes:
            if not n.fipsike:
                continue
            out = open(n.log, "ab")  # noqa: SIM115 - lives as long as the daemon
            n.proc = subprocess.Popen(
                ["ip", "netns", "exec", n.netns, sys.executable, "-m", "fipsike", "daemon", "--config",
                 str(n.dir / "ipsec.conf"), "--secrets", str(n.dir / "ipsec.secrets"), "--ipsecdir", str(n.dir),
                 "--ctl", str(n.ctl), "--kernel", "xfrm",
                 "--fips-mode", fips_mode, *args], cwd=ROOT, stdout=out, stderr=out, start_new_session=True,
                env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})))
            out.close()
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            while n.proc is not None and "daemon-ready" not in n.log_text():
                if n.proc.poll() is not None:
                    raise RuntimeError(f"node {n.index} exited {n.proc.returncode}:\n{n.log_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"node {n.index} not ready:\n{n.log_text()[-3000:]}")
                time.sleep(0.1)

    def call(self, node: Node, cmd: str, **args: Any) -> Any:
        from fipsike.daemon.client import ControlClient

        with ControlClient(node.ctl, 60) as c:
            return c.call(cmd, **args)

    def ping_all(self, count: int = 1, wait: float = 1.0,
                 pairs: list[tuple[Node, Node]] | None = None) -> dict[tuple[int, int], tuple[float, int]]:
        """Every ordered pair at once (or `pairs`): {(i, j): (start time, replies)}."""
        todo = pairs if pairs is not None else [(a, b) for a in self.nodes for b in self.nodes if a is not b]
        procs = []
        for a, b in todo:
            t = time.time()
            p = subprocess.Popen(["ip", "netns", "exec", a.netns, "ping", "-n", "-q", "-c", str(count), "-i", "0.2",
                                  "-W", str(wait), b.address], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 text=True)
            procs.append((a.index, b.index, t, p))
        out: dict[tuple[int, int], tuple[float, int]] = {}
        for i, j, t, p in procs:
            stdout, _ = p.communicate(timeout=60)
            m = re.search(r"(\d+) received", stdout)
            out[(i, j)] = (t, int(m.group(1)) if m else 0)
        return out

    def status(self, node: Node) -> dict[str, Any]:
        res = self.call(node, "status")
        assert isinstance(res, dict)
        return res

    def settled(self, timeout: float) -> dict[int, dict[str, Any]]:
        """Wait until no daemon has an instance still negotiating; every daemon's status."""
        deadline = time.monotonic() + timeout
        while True:
            st = {n.index: self.status(n) for n in self.nodes if n.proc is not None}
            busy = [i for i, s in st.items()
                    if any(e["state"] == "negotiating" for e in s.get("opportunistic", {}).get("entries", []))
                    or any(sa["state"] != "established" for sa in s["ike_sas"])]
            if not busy or time.monotonic() > deadline:
                return st
            time.sleep(0.5)

    def stop(self) -> None:
        for n in self.nodes:
            if n.proc is None:
                continue
            with suppress(ProcessLookupError):
                os.killpg(n.proc.pid, signal.SIGTERM)
        for n in self.nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(n.proc.pid, signal.SIGKILL)
                n.proc.wait(10)
            n.proc = None

    def destroy(self) -> None:
        self.stop()
        for n in self.nodes:
            sh("ip", "netns", "del", n.netns, check=False)
        if self.hub:
            sh("ip", "netns", "del", self.hub, check=False)

    def usage(self, node: Node) -> tuple[float, int]:
        """(CPU seconds, max RSS in KiB) of the daemon process (the python child of `ip netns exec`)."""
        assert node.proc is not None
        pid = node.proc.pid  # ip netns exec execs the interpreter: same pid
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / tick
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1])
        return cpu, rss


@contextmanager
def mesh(count: int, plain: int = 0, workdir: Path | None = None) -> Iterator[Mesh]:
    with tempfile.TemporaryDirectory(prefix="fipsike-mesh-") as tmp:
        m = Mesh(Path(workdir or tmp))
        try:
            m.build(count, plain)
            yield m
        finally:
            m.destroy()


# --- the benchmark ----------------------------------------------------------------------------------
class UpTimes:
    """Each daemon's event stream (`fipsike listen`): the wall time each peer's IKE SA came up (its Child
    SA is negotiated in the same IKE_AUTH; this host's kernel then refuses it for want of ESP)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.times: dict[int, dict[str, float]] = {n.index: {} for n in nodes}
        self.clients = []
        for n in nodes:
            from fipsike.daemon.client import ControlClient

            c = ControlClient(n.ctl, None)
            c.__enter__()
            self.clients.append(c)
            threading.Thread(target=self._read, args=(c, n.index), daemon=True).start()

    def _read(self, client: Any, index: int) -> None:
        with suppress(Exception):  # the daemon went away: the stream ends
            for ev in client.events():
                conn = str(ev.get("connection") or "")
                if ev.get("event") == "ike-sa-up" and "#" in conn:
                    peer = conn.split("#", 1)[1].split("-", 1)[1].split("~", 1)[0]
                    self.times[index].setdefault(peer, float(ev["time"]))

    def close(self) -> None:
        for c in self.clients:
            with suppress(Exception):
                c.close()


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s) + 0.5) - 1))]


def run_one(count: int, hold: bool) -> dict[str, Any]:
    conf = SEED_PRIVATE_OR_CLEAR
    if hold:
        conf = conf.replace("    negotiationshunt=passthrough\n", "    negotiationshunt=hold\n")
    with mesh(count) as m:
        for n in m.nodes:
            m.write_config(n, FAST_RETRANSMIT + conf, {"private-or-clear": ["0.0.0.0/0"]})
        m.start()
        before = {n.index: m.usage(n) for n in m.nodes}  # start-up (self-tests, config) is not counted
        listen = UpTimes(m.nodes)
        time.sleep(0.5)
        t0 = time.time()
        pings = m.ping_all(count=1, wait=5.0 if hold else 1.0)
        st = m.settled(120.0)
        t_end = time.time()
        listen.close()
        ups = listen.times
        # per pair: from the first of its two first packets to its IKE SA (the two sides log it ms apart)
        firsts: list[float] = []
        for i, a in enumerate(m.nodes):
            for b in m.nodes[i + 1:]:
                up = min(ups[a.index].get(b.address, float("inf")), ups[b.index].get(a.address, float("inf")))
                if up != float("inf"):
                    start = min(pings[(a.index, b.index)][0], pings[(b.index, a.index)][0])
                    firsts.append(max(0.0, up - start))
        ike = sum(sum(1 for sa in s["ike_sas"] if sa["state"] == "established") for s in st.values()) // 2
        last_up = max((t for u in ups.values() for t in u.values()), default=t_end)
        usage = [(m.usage(n)[0] - before[n.index][0], m.usage(n)[1]) for n in m.nodes]
        lost = sum(1 for (_, r) in pings.values() if r == 0)
        return {
            "nodes": count, "pairs": count * (count - 1) // 2, "ike_sas": ike,
            "negotiationshunt": "hold" if hold else "passthrough",
            "first_delivery_s_per_pair": {"median": round(statistics.median(firsts), 3) if firsts else None,
                                          "p95": round(percentile(firsts, 95), 3) if firsts else None,
                                          "measured": len(firsts)},
            "tunnels_per_s": round(ike / max(1e-3, last_up - t0), 2),
            "cpu_s_per_node_after_start": {"median": round(statistics.median(u[0] for u in usage), 2),
                                           "max": round(max(u[0] for u in usage), 2)},
            "rss_kib_per_node": {"median": int(statistics.median(u[1] for u in usage)),
                                 "max": max(u[1] for u in usage)},
            "first_packets_lost": lost, "first_packets": len(pings),
            "delivered_means": "IKE SA + Child SA negotiated and handed to the kernel (this host's kernel has no ESP)",
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.mesh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--nodes", default="8", help="comma-separated mesh sizes (default 8)")
    ap.add_argument("--hold", action="store_true", help="negotiationshunt=hold instead of the seed's passthrough")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.nodes.split(",") if x.strip()]
    results = [run_one(n, args.hold) for n in sizes]
    if args.json:
        print(json.dumps({"benchmark": "mesh", "results": results}, indent=1))
        return 0
    print(f"{'nodes':>5} {'pairs':>5} {'IKE SAs':>7} {'first median':>12} {'p95':>7} {'tunnels/s':>9} "
          f"{'CPU s/node':>10} {'RSS MiB':>7} {'lost':>9}")
    for r in results:
        f = r["first_delivery_s_per_pair"]
        print(f"{r['nodes']:>5} {r['pairs']:>5} {r['ike_sas']:>7} {f['median']!s:>12} {f['p95']!s:>7} "
              f"{r['tunnels_per_s']:>9} {r['cpu_s_per_node_after_start']['median']:>10} "
              f"{r['rss_kib_per_node']['median'] / 1024:>7.1f} {r['first_packets_lost']:>4}/{r['first_packets']}")
    print("first delivery = ping start -> the pair's IKE SA + Child SA negotiated (this host's kernel has no ESP, "
          "so every first ping is lost here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
