"""Smoke test of benchmarks.daemon: 20 SAs against charon and against the engine responder (and
against `fipsike daemon` once it is in the tree), over real UDP between two namespaces. Checks the
plumbing and that the figures are plausible, not the performance (the benchmarks themselves never
run in CI)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.peers import DaemonResponder

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.strongswan, pytest.mark.netns]

N = 20


def test_twenty_sas_each_against_charon_and_the_engine_responder(tmp_path: Path) -> None:
    plot = tmp_path / "plot.svg"
    # matplotlib comes with the `bench` extra, not `test`: the plot is drawn when it is there
    drawing = importlib.util.find_spec("matplotlib") is not None
    peers = ["charon", "fipsike-engine"] + (["fipsike"] if DaemonResponder.available() is None else [])
    res = subprocess.run([sys.executable, "-m", "benchmarks.daemon", "--json", "--sas", str(N),
                          *(a for p in peers for a in ("--peer", p)), *(["--plot", str(plot)] if drawing else [])],
                         cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout)
    assert out["sas"] == N
    # fipsike_* figures are the daemon's when it ran, else the engine responder's
    assert out["fipsike_measured_as"] == ("fipsike" if "fipsike" in peers else "fipsike-engine")
    assert out["charon_kernel"].startswith("kernel-libipsec")
    assert out["fipsike_kernel"] == "memory"
    for name in peers:
        peer = out["peers"][name]
        # every SA came up on both ends: the generator counted N Child SAs, the responder shows N of each
        assert peer["established"] == N and peer["failed"] == 0, peer
        assert peer["ike_sas_up"] == N and peer["child_sas_up"] == N, peer
        # CPU ticks are 10 ms: 20 handshakes cost the responder something, and far less than a second each
        assert 0.05 < peer["responder_cpu_ms"] < 1000, peer
        assert peer["sas_per_s"] > 1
        assert peer["retransmits"] >= 0 and peer["generator_cpu_ms"] > 0
        assert peer["curve"] and peer["curve"][-1][0] == N
    for key in ("charon_responder_cpu_ms", "fipsike_responder_cpu_ms", "fipsike_cpu_ms_first_1k",
                "fipsike_cpu_ms_last_1k", "charon_kib_per_sa", "fipsike_kib_per_sa"):
        assert isinstance(out[key], float), key
    # the floor is a handful of public-key operations: well under 50 ms, well over 10 us
    assert 0.01 < out["floor_cpu_ms"] < 50
    assert out["fipsike_responder_cpu_ms"] > out["floor_cpu_ms"]
    if drawing:
        assert plot.read_text().startswith("<?xml")
