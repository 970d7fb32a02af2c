"""benchmarks.mesh's report says what it measured: the same figure (first ping -> the pair's IKE SA up)
means a tunnel ready to carry the first packet where the kernel has ESP (the guest), and a negotiation
alone where it refused every Child SA (this host)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.mesh import ROOT, delivered_means


def test_the_guest_run_is_not_described_as_a_kernel_without_esp() -> None:
    guest = delivered_means({"child-sa-up": 12, "child-sa-install-failed": 0}, hold=True)
    assert "no ESP" not in guest and "installed every Child SA (12)" in guest
    assert "held on the larval state" in guest and "first_packets_lost" in guest
    host = delivered_means({"child-sa-up": 0, "child-sa-install-failed": 56}, hold=False)
    assert "refused every Child SA (56: no ESP)" in host and "no packet went through a tunnel" in host
    mixed = delivered_means({"child-sa-up": 3, "child-sa-install-failed": 1}, hold=False)
    assert "installed 3" in mixed and "refused 1" in mixed


def test_the_stored_guest_results_say_what_was_measured() -> None:
    stored = json.loads((ROOT / "benchmarks" / "results" / "mesh-guest-hold-4-8.json").read_text())
    for r in stored["results"]:
        assert "no ESP" not in r["delivered_means"] and "leave as ESP" in r["delivered_means"], r
    assert Path(ROOT / "benchmarks" / "results" / "mesh-guest-hold-4-8.json").is_file()
