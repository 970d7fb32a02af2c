"""`fipsike demo` end to end in the guest kernel (which has ESP): the tunnel comes up, three pings
come back through it, the counters show them, and nothing is left behind."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.daemon.harness import ROOT

pytestmark = [pytest.mark.guest, pytest.mark.netns, pytest.mark.softhsm]


def test_demo_pings_through_the_negotiated_tunnel() -> None:
    r = subprocess.run([sys.executable, "-m", "fipsike", "demo"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-2000:])
    assert '"demo": established: Child SA demo established' in r.stdout
    assert "3 packets transmitted, 3 received" in r.stdout
    counters = re.search(r"inPackets=(\d+), outPackets=(\d+)", r.stdout)
    assert counters is not None and int(counters.group(1)) >= 3 and int(counters.group(2)) >= 3
    assert "fdemo" not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
