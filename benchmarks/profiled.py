"""Run `python -m fipsike ...` (the daemon) under cProfile with CPU time, for `benchmarks.daemon
--profile DIR --peer fipsike`: the stats go to the file named first once the daemon returns (SIGTERM).

    python -m benchmarks.profiled OUT.prof daemon --config ... (the fipsike CLI's arguments)
"""

from __future__ import annotations

import cProfile
import sys
import time


def main(argv: list[str]) -> int:
    out, rest = argv[0], argv[1:]
    from fipsike.cli import main as fipsike_main

    prof = cProfile.Profile(time.process_time)  # CPU, not wall time: the machine is shared
    prof.enable()
    try:
        return fipsike_main(rest)
    finally:
        prof.disable()
        prof.dump_stats(out)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
