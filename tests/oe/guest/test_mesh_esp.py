"""Four `fipsike daemon`s on one bridge in the guest kernel (which has ESP): the seed's private-or-clear
conn with negotiationshunt=hold, 0.0.0.0/0 in private-or-clear. Every node pings every other at once:
the first packets wait on the larval state (xfrm_larval_drop=0) and leave as ESP; tcpdump on the bridge
sees ESP and IKE, never ICMP.

Run: scripts/guest-run.sh with GUEST_CMD (tests/oe/test_guest_mesh.py does)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from benchmarks.mesh import FAST_RETRANSMIT, SEED_PRIVATE_OR_CLEAR, mesh
from tests.oe.test_daemon_mesh import established

pytestmark = [pytest.mark.guest, pytest.mark.netns]

HOLD = SEED_PRIVATE_OR_CLEAR.replace("    negotiationshunt=passthrough\n", "    negotiationshunt=hold\n")


def test_four_nodes_first_packets_held_then_carried_by_esp_nothing_in_the_clear(tmp_path: Path) -> None:
    assert HOLD != SEED_PRIVATE_OR_CLEAR
    with mesh(4, workdir=tmp_path) as lab:
        for n in lab.nodes:
            lab.write_config(n, FAST_RETRANSMIT + HOLD, {"private-or-clear": ["0.0.0.0/0"]})
        lab.start(timeout=900)
        cap = tmp_path / "br0.txt"
        with open(cap, "w") as out:
            dump = subprocess.Popen(["ip", "netns", "exec", lab.hub, "tcpdump", "-l", "-n", "-i", "br0",
                                     "icmp or esp or udp port 500 or udp port 4500"], stdout=out,
                                    stderr=subprocess.DEVNULL)
            time.sleep(2.0)
            try:
                first = lab.ping_all(count=1, wait=20.0)
                st = lab.settled(120.0)
                second = lab.ping_all(count=3, wait=5.0)
            finally:
                time.sleep(1.0)
                dump.terminate()
                dump.wait(10)
        wire = cap.read_text()
        lost = sorted(k for k, (_, r) in first.items() if r == 0)
        print(f"first packets lost with negotiationshunt=hold: {len(lost)}/{len(first)} {lost}")
        for a in lab.nodes:
            up = established(st[a.index])
            assert sorted(up) == sorted(b.address for b in lab.nodes if b is not a), (a.index, up)
            assert all(len(v) == 1 for v in up.values()), (a.index, up)
        assert all(r == 3 for _, r in second.values()), second
        assert "ESP" in wire, wire[:3000]
        assert "ICMP" not in wire, [line for line in wire.splitlines() if "ICMP" in line][:10]
        assert lost == [], lost
