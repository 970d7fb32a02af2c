"""Start-up after a crash: a killed fipsike leaves policies and SAs; the next one removes all of them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fipsike.kernel.types import Ownership
from fipsike.kernel.xfrm import XfrmKernel
from providers import open_router
from tests.kernel.netns import netns, sh

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import ipaddress, sys, time
    from fipsike.kernel.types import *
    from fipsike.kernel.xfrm import XfrmKernel
    from providers import open_router
    own = Ownership()
    k = XfrmKernel(open_router("default"), netns=sys.argv[1])
    a1, a2 = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
    for i in range(20):
        sel = TrafficSelector.parse(f"10.1.{i}.0/24", f"10.2.{i}.0/24")
        k.install_policy(PolicySpec(sel, Direction.OUT, PolicyAction.IPSEC, Template(a1, a2, own.reqid_min + i)))
        k.install_policy(PolicySpec(sel.reversed(), Direction.IN, PolicyAction.IPSEC,
                                    Template(a2, a1, own.reqid_min + i)))
        k.alloc_spi(a2, a1, own.reqid_min + i)
    k.install_shunt(TrafficSelector.parse("10.9.0.0/16", "10.8.0.0/16"), Shunt.DROP,
                    directions=(Direction.OUT, Direction.IN, Direction.FWD))
    k.install_shunt(TrafficSelector.parse("2001:db8:1::/48", "2001:db8:2::/48"), Shunt.TRAP,
                    Template(None, None, own.reqid_min + 99, Mode.TRANSPORT))
    print("ready", flush=True)
    time.sleep(60)
""")


def test_cleanup_after_a_killed_process_leaves_nothing_owned() -> None:
    with netns("c") as ns:
        # something that is not ours, which must survive
        sh("ip", "-n", ns, "xfrm", "policy", "add", "src", "10.50.0.0/16", "dst", "10.60.0.0/16", "dir", "out",
           "action", "block")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        child = subprocess.Popen([sys.executable, "-c", CHILD, ns], stdout=subprocess.PIPE, text=True, env=env,
                                 cwd=ROOT)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        mask = hex(Ownership().mark_mask)
        assert sh("ip", "-n", ns, "xfrm", "policy").stdout.count(f"mark 0/{mask}") == 44
        assert sh("ip", "-n", ns, "xfrm", "state").stdout.count(f"mark 0/{mask}") == 20

        with XfrmKernel(open_router("default"), netns=ns) as k:
            report = k.flush_owned()
            assert (report.sas_removed, report.policies_removed, report.errors) == (20, 44, ())
            assert k.list_sas() == [] and k.list_policies() == []
        policies = sh("ip", "-n", ns, "xfrm", "policy").stdout
        assert f"/{mask}" not in policies and "10.50.0.0/16" in policies
        assert sh("ip", "-n", ns, "xfrm", "state").stdout.strip() == ""
