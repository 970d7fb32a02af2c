#!/usr/bin/env python3
"""Regenerate tests/data/strongswan/*.pcap and *.keys.csv from two real charons in network namespaces.

Needs root, strongSwan (charon-systemd, swanctl, pki) and tcpdump. Usage:
    python scripts/capture-strongswan.py [--out tests/data/strongswan] [SCENARIO ...]
The key tables are test keys of throwaway SAs between throwaway certificates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.strongswan_harness import SCENARIOS, available, capture_scenario  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "strongswan")
    ap.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"one of {', '.join(sorted(SCENARIOS))}")
    args = ap.parse_args()
    args.scenarios = args.scenarios or sorted(SCENARIOS)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    why = available()
    if why:
        print(f"capture-strongswan: {why}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.scenarios:
        with tempfile.TemporaryDirectory(prefix=f"fipsike-sw-{name}-") as tmp:
            pcap, keys = capture_scenario(name, args.out, Path(tmp))
        print(f"{name}: {pcap} {keys}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
