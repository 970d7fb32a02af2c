"""Daemon-level IKEv2 responder cost, fipsike beside strongSwan's charon in one run.

One load generator (benchmarks.loadgen: fipsike's Engine as initiator, its own process in its own
network namespace) initiates N IKE SAs, each with its first Child SA, over real UDP against a
responder in another namespace; the same generator and suite run against each responder in turn:

- `charon`: Debian's charon-systemd (dos_protection = no; kernel-libipsec, or kernel-netlink with --kernel xfrm);
- `fipsike`: `fipsike daemon --kernel memory|xfrm` (when the daemon is in this tree);
- `fipsike-engine`: fipsike's Engine behind a minimal asyncio UDP loop (benchmarks.responder), the
  stand-in while the daemon is not.

Figures per responder, from its own /proc/PID/stat and /proc/PID/status:
  cpu_ms_per_sa    (utime + stime) growth / SAs established
  sas_per_s        SAs established per second of wall time (both sides share this machine's cores)
  kib_per_sa       RSS growth / live IKE SAs (each with its Child SA)
  cpu_ms_first_1k  CPU per new SA over the first 1,000 (or N) and over the last 1,000
  cpu_ms_last_1k
  retransmits      datagrams the generator sent again byte for byte
and the floor: the responder's primitive operations for one handshake of the ECDSA suite, straight
through `cryptography` (benchmarks.handshake.floor_op / floor_op_rsa), timed in the same run.

Suites: ecdsa (ECDSA P-256, aes256gcm16-prfsha384-ecp256), rsa (RSA-3072 RSA-PSS, aes256-sha256-modp3072)
and hybrid (ECP-384 + ML-KEM-1024 as ADDKE1 in IKE_INTERMEDIATE; fipsike only, charon 5.9.8 has no RFC 9370).
The JSON carries the load averages at start and end (the machine's cores are shared) and the kernel
release the run saw. The host kernel here has XFRM netlink but no ESP: --kernel xfrm runs inside the
UML guest (GUEST_CMD=... scripts/guest-run.sh).

The generator fills the responder's caches with a few SAs that it then deletes, before the
baseline is read; it runs in batches (100 SAs, or 1,000 past 20,000) and the responder is read
between them, which gives the CPU-per-new-SA and RSS curves (`--plot`).

    python -m benchmarks.daemon [--json] [--peer charon|fipsike|fipsike-engine ...] [--sas N]
                                [--suite ecdsa|rsa|hybrid] [--kernel memory|xfrm] [--plot FILE]
                                [--profile DIR] [--tracemalloc DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ikebench import SUITES, Suite, TwoHosts, make_pki, netns_cmd, sample
from benchmarks.peers import ROOT, CharonResponder, DaemonResponder, EngineResponder, Responder, _python_env

PEERS = ("charon", "fipsike", "fipsike-engine")
WARM = 10


class Generator:
    """benchmarks.loadgen in the initiators' namespace, driven line by line."""

    def __init__(self, netns: str, pki_dir: Path, suite: Suite, concurrency: int, rate: float,
                 extra: tuple[str, ...] = ()) -> None:
        argv = [sys.executable, "-m", "benchmarks.loadgen", "--pki", str(pki_dir), "--suite", suite.name,
                "--concurrency", str(concurrency), "--rate", str(rate), *extra]
        self.proc = subprocess.Popen(netns_cmd(netns, argv), cwd=ROOT, env=_python_env(), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        hello = self._read()
        self.pid = int(hello["pid"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator exited ({self.proc.wait()})")
        return dict(json.loads(line))

    def ask(self, cmd: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.ask("quit")
            except (RuntimeError, BrokenPipeError, ValueError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class PeerRun:
    name: str
    kernel: str
    sas: int
    established: int = 0
    ike_up: int = 0
    child_up: int = 0
    failed: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    rss0_kib: int = 0
    rss_kib: int = 0
    generator_cpu_s: float = 0.0
    retransmits: int = 0
    datagrams: int = 0
    stopped_by: str = ""  # why fewer than N were asked for (a stall, the wall-time cap)
    count_error: str = ""
    xfrm_states: int | None = None  # the responder namespace's kernel SAD and SPD, on the XFRM kernel
    xfrm_policies: int | None = None
    curve: list[tuple[int, float, int]] = field(default_factory=list)  # (live SAs, CPU s since base, RSS KiB)

    def window_ms(self, first: bool) -> float | None:
        """CPU per new SA over the first (or last) min(1000, N) SAs, from the batch curve."""
        w = min(1000, self.sas)
        pts = [(0, 0.0, self.rss0_kib), *self.curve]
        if first:
            end = next((p for p in pts if p[0] >= w), pts[-1])
            return 1000 * end[1] / end[0] if end[0] else None
        start = next((p for p in reversed(pts) if p[0] <= pts[-1][0] - w), pts[0])
        n = pts[-1][0] - start[0]
        return 1000 * (pts[-1][1] - start[1]) / n if n else None

    def figures(self) -> dict[str, Any]:
        est = max(self.established, 1)
        return {
            "kernel": self.kernel,
            "sas": self.sas,
            "established": self.established,
            "ike_sas_up": self.ike_up,
            "child_sas_up": self.child_up,
            "failed": self.failed,
            "failures": self.failures,
            "responder_cpu_ms": round(1000 * self.cpu_s / est, 3),
            "sas_per_s": round(self.established / self.wall_s, 1) if self.wall_s else None,
            "kib_per_sa": round((self.rss_kib - self.rss0_kib) / est, 2),
            "rss_start_kib": self.rss0_kib,
            "rss_end_kib": self.rss_kib,
            "cpu_ms_first_1k": _r(self.window_ms(True)),
            "cpu_ms_last_1k": _r(self.window_ms(False)),
            "retransmits": self.retransmits,
            "retransmit_pct": round(100 * self.retransmits / self.datagrams, 3) if self.datagrams else 0.0,
            "generator_cpu_ms": round(1000 * self.generator_cpu_s / est, 3),
            **({"stopped_by": self.stopped_by} if self.stopped_by else {}),
            **({"count_error": self.count_error} if self.count_error else {}),
            **({"xfrm_states": self.xfrm_states, "xfrm_policies": self.xfrm_policies}
               if self.xfrm_states is not None else {}),
            "curve": self.curve,
        }


def _xfrm_count(netns: str, what: str) -> int:
    """`ip xfrm state|policy count` in the namespace: what the kernel holds, not what the daemon says."""
    out = subprocess.run(["ip", "-n", netns, "xfrm", what, "count"], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return sum(int(w) for w in out.split() if w.isdigit())  # "SAD count N" / "SPD IN a OUT b FWD c"


def _loadavg() -> list[float]:
    """1, 5 and 15 minute load averages (uptime's)."""
    return [round(x, 2) for x in os.getloadavg()]


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def batch_size(n: int) -> int:
    if n >= 1000:
        return 100 if n <= 20000 else 1000
    return max(1, n // 10)


def measure(responder: Responder, hosts: TwoHosts, pki_dir: Path, suite: Suite, n: int, concurrency: int,
            rate: float, max_wall: float = 0.0) -> PeerRun:
    run = PeerRun(responder.name, responder.kernel, n)
    t0 = time.monotonic()
    responder.start()
    gen: Generator | None = None
    try:
        gen = Generator(hosts.initiator, pki_dir, suite, concurrency, rate)
        gen.ask("warm", n=WARM)
        time.sleep(0.5)
        mark = getattr(responder, "tracemalloc_mark", None) if getattr(responder, "trace", None) else None
        if mark is not None:
            mark()
        base = sample(responder.pid)
        g0 = gen.ask("status")
        run.rss0_kib = base.rss_kib
        done, batch = 0, batch_size(n)
        while done < n:
            k = min(batch, n - done)
            reply = gen.ask("run", n=k)
            s = sample(responder.pid)
            done += k
            run.wall_s += reply["t_end"] - reply["t_start"]
            run.curve.append((reply["child_sas"] - g0["child_sas"], round(s.cpu_s - base.cpu_s, 3), s.rss_kib))
            if reply["completed"] < k:
                run.stopped_by = f"stalled: {reply['completed']} of a batch of {k} came up"
                break  # report what came up
            if max_wall and done < n and time.monotonic() - t0 > max_wall:
                run.stopped_by = f"--max-wall {max_wall:g} s reached"
                break
        end = sample(responder.pid)
        if mark is not None:
            mark()
        g1 = gen.ask("status")
        run.cpu_s, run.rss_kib = end.cpu_s - base.cpu_s, end.rss_kib
        run.established = g1["child_sas"] - g0["child_sas"]
        run.failed = (g1["ike_failed"] - g0["ike_failed"]) + (g1["child_failed"] - g0["child_failed"])
        run.failures = g1["failures"]
        run.generator_cpu_s = g1["cpu_total_s"] - g0["cpu_total_s"]
        run.retransmits = g1["retransmits"] - g0["retransmits"]
        run.datagrams = g1["datagrams"] - g0["datagrams"]
        try:
            run.ike_up, run.child_up = responder.counts()
        except (subprocess.TimeoutExpired, TimeoutError, OSError, ValueError) as exc:
            # `fipsike status --json` lists every SA: at 100,000 of them it outlasts its timeout. The
            # generator's counts (each IKE SA up with its Child SA, failures) stand on their own.
            run.ike_up = run.child_up = -1
            run.count_error = f"the responder's own count failed: {type(exc).__name__}"
        if responder.kernel.startswith("xfrm"):
            run.xfrm_states, run.xfrm_policies = (_xfrm_count(hosts.responder, what) for what in ("state", "policy"))
    finally:
        if gen is not None:
            gen.close()
        responder.stop()
    return run


def floor_ms(suite: str, rounds: int = 200) -> float:
    """The suite's responder primitives through `cryptography`, median ms (benchmarks.handshake)."""
    from benchmarks.handshake import floor_op, floor_op_rsa

    once = floor_op_rsa() if suite == "rsa" else floor_op(hybrid=suite == "hybrid")
    if suite == "rsa":
        rounds = 50  # MODP-3072 and RSA-3072: tens of ms each time
    for _ in range(rounds // 10):
        once()
    # the mean of batches of 10 (median of those): a kernel that counts CPU time in whole ticks (the UML
    # guest's) reads 0 for most single rounds
    return statistics.median(sum(once() for _ in range(10)) / 10 for _ in range(rounds // 10))


def runs_from_json(result: dict[str, Any]) -> list[PeerRun]:
    """The curves of an earlier run's JSON, enough to plot them again."""
    return [PeerRun(name, f["kernel"], f["sas"], rss0_kib=f["rss_start_kib"],
                    curve=[(int(a), float(b), int(c)) for a, b, c in f["curve"]])
            for name, f in result["peers"].items()]


def plot(runs: list[PeerRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for r in runs:
        pts = [(0, 0.0, r.rss0_kib), *r.curve]
        xs = [p[0] for p in pts[1:]]
        steps = zip(pts, pts[1:], strict=False)
        per_sa = [1000 * (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0 for a, b in steps]
        ax1.plot(xs, per_sa, marker=".", label=f"{r.name} ({r.kernel})")
        ax2.plot([p[0] for p in pts], [(p[2] - r.rss0_kib) / 1024 for p in pts], marker=".", label=r.name)
    ax1.set(xlabel="live SAs", ylabel="responder CPU per new SA (ms)", title="CPU per new SA")
    ax2.set(xlabel="live SAs", ylabel="responder RSS growth (MiB)", title="memory")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--peer", action="append", choices=PEERS,
                    help="responder(s) to measure (repeatable; default: charon, fipsike when its daemon is "
                         "in this tree, else fipsike-engine)")
    ap.add_argument("--sas", type=int, default=1000, help="IKE SAs to establish (default 1000)")
    ap.add_argument("--suite", default="ecdsa", choices=sorted(SUITES))
    # 8: below the responders' per-source half-open limits (fipsike 10; charon's block_threshold 5 when
    # its dos_protection is on): one generator address stands for many peers, and more in flight
    # from it would measure the DoS guard, not the handshake
    ap.add_argument("--concurrency", type=int, default=8, help="IKE SAs in flight at most (default 8)")
    ap.add_argument("--rate", type=float, default=0.0, help="new SAs per second at most (default 0: unlimited)")
    ap.add_argument("--kernel", choices=("memory", "xfrm"), default="memory",
                    help="the responders' SA backend: fipsike's in-memory kernel (charon: kernel-libipsec), or "
                         "XFRM for both (charon: kernel-netlink; needs a kernel with ESP, e.g. the UML guest of "
                         "scripts/guest-run.sh: the host's has none)")
    ap.add_argument("--plot", type=Path, help="draw CPU per new SA and RSS against live SAs (SVG or PNG)")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="run the responders under cProfile (CPU time): the daemon's daemon.prof, the engine "
                         "responder's responder.prof in DIR (their CPU figures are then the profiler's, not "
                         "comparable)")
    ap.add_argument("--tracemalloc", type=Path, metavar="DIR",
                    help="trace the responders' allocations: the daemon's growth from the baseline to N SAs "
                         "by site in DIR/daemon-tracemalloc.json, the engine responder's live allocations in "
                         "DIR/responder-tracemalloc.json (slows them down too)")
    ap.add_argument("--max-wall", type=float, default=0.0, metavar="S",
                    help="stop asking a responder for more SAs after S seconds (0: never); its figures are "
                         "then over what it reached")
    ap.add_argument("--replot", type=Path, metavar="JSON",
                    help="only draw --plot from an earlier run's --json output (a guest run cannot write here)")
    args = ap.parse_args(argv)
    if args.replot:
        if not args.plot:
            ap.error("--replot needs --plot")
        plot(runs_from_json(json.loads(args.replot.read_text())), args.plot)
        return 0
    suite = SUITES[args.suite]
    for d in (args.profile, args.tracemalloc):
        if d:
            d.mkdir(parents=True, exist_ok=True)
    peers = list(dict.fromkeys(args.peer or ["charon", "fipsike" if DaemonResponder.available() is None
                                             else "fipsike-engine"]))
    if not suite.charon and "charon" in peers:
        peers.remove("charon")
        print(f"note: charon 5.9.8 cannot run suite {suite.name}; fipsike only", file=sys.stderr)
    if not peers:
        print(f"error: no responder can run suite {suite.name}", file=sys.stderr)
        return 2
    if "fipsike" in peers and (why := DaemonResponder.available()):
        print(f"error: {why}; use --peer fipsike-engine", file=sys.stderr)
        return 2
    runs: list[PeerRun] = []
    load0 = _loadavg()
    with tempfile.TemporaryDirectory(prefix="fipsike-bench-") as tmp, TwoHosts() as hosts:
        work = Path(tmp)
        pki = make_pki(work / "pki", suite)
        floors = [floor_ms(suite.name)]
        for name in peers:
            d = work / name
            d.mkdir()
            responder: Responder
            if name == "charon":
                responder = CharonResponder(d, hosts.responder, pki, suite, xfrm=args.kernel == "xfrm")
            elif name == "fipsike":
                responder = DaemonResponder(d, hosts.responder, pki, suite, kernel=args.kernel,
                                            profile=args.profile / "daemon.prof" if args.profile else None,
                                            trace=args.tracemalloc / "daemon-tracemalloc.json"
                                            if args.tracemalloc else None)
            else:
                responder = EngineResponder(args.profile or args.tracemalloc or d, hosts.responder, work / "pki",
                                            suite, profile=args.profile is not None,
                                            trace=args.tracemalloc is not None)
            runs.append(measure(responder, hosts, work / "pki", suite, args.sas, args.concurrency, args.rate,
                                args.max_wall))
        floors.append(floor_ms(suite.name))  # before and after: the machine's load moves
    result = report(runs, suite, args.sas, statistics.median(floors) if floors else None)
    # the 2 cores are shared: the load beside the figures, and the host kernel they ran on
    result["loadavg_start"], result["loadavg_end"] = load0, _loadavg()
    result["kernel_release"] = os.uname().release
    result["command"] = "python3 -m benchmarks.daemon " + " ".join(sys.argv[1:] if argv is None else argv)
    if not suite.charon:
        result["charon_note"] = f"charon 5.9.8 cannot run suite {suite.name}: fipsike only"
    if args.plot:
        plot(runs, args.plot)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    ok = all(r.established == args.sas for r in runs)
    return 0 if ok else 1


def report(runs: list[PeerRun], suite: Suite, n: int, floor: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"sas": n, "suite": f"{suite.ike} / esp {suite.esp} / {suite.key_type} "
                                                 f"{suite.key_size} certificates",
                           "floor_cpu_ms": _r(floor), "peers": {r.name: r.figures() for r in runs}}
    by = {r.name: r for r in runs}
    fip = by.get("fipsike") or by.get("fipsike-engine")
    for prefix, r in (("charon", by.get("charon")), ("fipsike", fip)):
        if r is None:
            continue
        f = r.figures()
        for key in ("responder_cpu_ms", "kib_per_sa", "cpu_ms_first_1k", "cpu_ms_last_1k", "sas_per_s",
                    "retransmits", "kernel", "established"):
            out[f"{prefix}_{key}"] = f[key]
    if fip is not None:
        out["fipsike_measured_as"] = fip.name  # "fipsike" (the daemon) or "fipsike-engine" (the stand-in)
        if "charon" in by:
            out["fipsike_over_charon"] = round(out["fipsike_responder_cpu_ms"] / out["charon_responder_cpu_ms"], 2)
        if floor:
            out["fipsike_over_floor"] = round(out["fipsike_responder_cpu_ms"] / floor, 2)
    if floor and "charon" in by:
        out["charon_over_floor"] = round(out["charon_responder_cpu_ms"] / floor, 2)
    return out


def table(result: dict[str, Any]) -> str:
    rows = [("responder", "kernel", "est.", "CPU ms/SA", "SAs/s", "KiB/SA", "ms/SA 1st 1k", "ms/SA last 1k",
             "retx", "gen ms/SA")]
    for name, f in result["peers"].items():
        rows.append((name, f["kernel"].split(" ")[0], f"{f['established']}/{f['sas']}", str(f["responder_cpu_ms"]),
                     str(f["sas_per_s"]), str(f["kib_per_sa"]), str(f["cpu_ms_first_1k"]),
                     str(f["cpu_ms_last_1k"]), str(f["retransmits"]), str(f["generator_cpu_ms"])))
    if result["floor_cpu_ms"] is not None:
        rows.append(("floor", "-", "-", str(result["floor_cpu_ms"]), "-", "-", "-", "-", "-", "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"suite: {result['suite']}, {result['sas']} SAs"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    for k in ("fipsike_over_charon", "fipsike_over_floor", "charon_over_floor"):
        if k in result:
            lines.append(f"{k} = {result[k]}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
