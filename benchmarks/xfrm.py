"""XFRM backend rates on this host's kernel, in a throw-away network namespace:
policy installs (UPDPOLICY), SPI allocations (ALLOCSPI), a full dump, and the clean-up.

    python -m benchmarks.xfrm [--json] [--policies N] [--spis N]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import time

from fipsike.kernel.types import Direction, Ownership, PolicyAction, PolicySpec, Template, TrafficSelector
from fipsike.kernel.xfrm import XfrmKernel
from providers import open_router


def run(policies: int, spis: int) -> dict[str, float]:
    ns = f"fipsike-bench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        k = XfrmKernel(open_router("default"), netns=ns, events=False)
        own = Ownership()
        a1, a2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
        t0 = time.perf_counter()
        for i in range(policies):
            sel = TrafficSelector.parse(f"10.{i // 250}.{i % 250}.0/24", "10.250.0.0/16")
            k.install_policy(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC,
                                        Template(a1, a2, own.reqid_min + i % 0xFFFF)))
        t1 = time.perf_counter()
        for i in range(spis):
            k.alloc_spi(a2, a1, own.reqid_min + i % 0xFFFF)
        t2 = time.perf_counter()
        n = len(k.list_policies()) + len(k.list_sas())
        t3 = time.perf_counter()
        report = k.flush_owned()
        t4 = time.perf_counter()
        k.close()
        assert report.policies_removed == policies and report.sas_removed == spis
        return {"policy_installs_per_s": policies / (t1 - t0), "allocspi_per_s": spis / (t2 - t1),
                "dump_entries_per_s": n / (t3 - t2), "flush_entries_per_s": n / (t4 - t3)}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--policies", type=int, default=2000)
    p.add_argument("--spis", type=int, default=500)
    args = p.parse_args()
    result = run(args.policies, args.spis)
    if args.json:
        print(json.dumps({"benchmark": "xfrm", "policies": args.policies, "spis": args.spis, **result}))
    else:
        print(f"{'operation':<24}{'rate':>12}")
        for name, value in result.items():
            print(f"{name:<24}{value:>12.0f}")


if __name__ == "__main__":
    main()
