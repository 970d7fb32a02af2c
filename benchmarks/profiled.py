"""Run `python -m fipsike ...` (the daemon) under cProfile with CPU time, or under tracemalloc, for
`benchmarks.daemon --profile DIR / --tracemalloc DIR --peer fipsike`.

    python -m benchmarks.profiled OUT.prof daemon --config ...        cProfile: the stats go to OUT.prof
                                                                      once the daemon returns (SIGTERM)
    python -m benchmarks.profiled --tracemalloc OUT.json daemon ...   tracemalloc (4 frames): the first
        SIGUSR2 starts tracing (the start-up and its self-test untraced: they are slow under it), the
        second writes to OUT.json the allocations made since and still live, by site (the innermost frame
        that is not generated code), largest first
"""

from __future__ import annotations

import cProfile
import json
import signal
import sys
import time
import tracemalloc
from pathlib import Path
from types import FrameType


class Growth:
    """SIGUSR2: start tracing, then the live allocations made since (the daemon's own SIGUSR2 is not used)."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if not tracemalloc.is_tracing():
            tracemalloc.start(4)
            self.out.with_suffix(".base").write_text("tracing\n")
            return
        snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        tracemalloc.stop()
        sites: dict[str, list[int]] = {}
        for stat in snap.statistics("traceback"):
            frames = [f for f in stat.traceback if f.filename != "<string>"] or list(stat.traceback)
            where = f"{frames[-1].filename}:{frames[-1].lineno}"  # innermost last
            site = sites.setdefault(where, [0, 0])
            site[0] += stat.size
            site[1] += stat.count
        total = sum(v[0] for v in sites.values())
        top = sorted(sites.items(), key=lambda kv: -kv[1][0])[:40]
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"growth_kib": round(total / 1024, 1), "top": [
            {"kib": round(size / 1024, 1), "count": count, "where": where} for where, (size, count) in top]}))
        tmp.replace(self.out)


def main(argv: list[str]) -> int:
    from fipsike.cli import main as fipsike_main

    if argv[0] == "--tracemalloc":
        signal.signal(signal.SIGUSR2, Growth(Path(argv[1])))
        return fipsike_main(argv[2:])
    out, rest = argv[0], argv[1:]
    prof = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
    prof.enable()
    try:
        return fipsike_main(rest)
    finally:
        prof.disable()
        prof.dump_stats(out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
