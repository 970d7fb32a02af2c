"""`fipsike demo` on this host (no ESP): it says so in one line and leaves nothing behind; with the
ESP probe forced to pass, every step up to the data path runs for real (namespaces, a SoftHSM2
token holding moon's key, the test PKI, two daemons, IKE) and the kernel's refusal of the ESP SA
is reported. The pings themselves run in the guest (tests/daemon/guest/test_demo_guest.py)."""

from __future__ import annotations

import glob
import subprocess
import sys

import pytest

from tests.daemon.harness import ROOT

pytestmark = [pytest.mark.netns, pytest.mark.softhsm]


def _leftovers() -> tuple[str, list[str]]:
    ns = subprocess.run(["ip", "netns"], capture_output=True, text=True, check=True).stdout
    return "".join(line for line in ns.splitlines(True) if line.startswith("fdemo")), glob.glob("/tmp/fipsike-demo-*")


def test_demo_refuses_without_esp_in_one_line() -> None:
    before = _leftovers()
    r = subprocess.run([sys.executable, "-m", "fipsike", "demo"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith("fipsike demo: error: this kernel has no ESP (Error: Requested type not found.)")
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    assert _leftovers() == before


def test_demo_runs_every_step_up_to_the_data_path() -> None:
    before = _leftovers()
    code = ("import sys; import fipsike.commands.demo as d; d.esp_missing = lambda ns: ''; "
            "from fipsike.cli import main; sys.exit(main(['demo']))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = r.stdout
    assert "moon's key generated on SoftHSM2 token 'fipsike-demo' (non-extractable)" in out, (out, r.stderr)
    assert "two daemons running (self-tests passed); fipsike up demo" in out
    assert '"demo": failed: the kernel refused Child SA demo' in out, out
    assert r.returncode == 1 and r.stderr.strip() == ("fipsike demo: error: the tunnel did not come up "
                                                      "(logs: rerun with --keep)")
    assert _leftovers() == before
