"""Benchmarks: `python -m benchmarks.NAME` prints a table, `--json` one JSON object.

Shared helper: `interleaved()` times competing callables in alternating rounds and keeps
each one's best round, so a busy machine slows both sides alike instead of skewing a ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def calibrate(fn: Callable[[], object], target_s: float = 0.05) -> int:
    """Iterations of fn that take about target_s."""
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= target_s or n >= 1 << 24:
            return max(1, int(n * target_s / max(elapsed, 1e-9)))
        n *= 4


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 9, target_s: float = 0.05) -> dict[str, float]:
    """Seconds per call of each fn: the best of `rounds` alternating rounds."""
    counts = {name: calibrate(fn, target_s) for name, fn in fns.items()}
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            n = counts[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / n)
    return best
