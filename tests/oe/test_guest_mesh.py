"""The opportunistic mesh with ESP on the wire: tests/oe/guest inside the user-mode-linux guest (the host
kernel has no ESP). Guest runs serialize on scripts/guest-run.sh's lock."""

from __future__ import annotations

import re
import sys

import pytest

from tests.kernel.test_guest import guest_run

pytestmark = pytest.mark.netns


def test_opportunistic_mesh_esp_in_the_guest() -> None:
    cmd = f"{sys.executable} -m pytest -p no:cacheprovider -q -s -m guest tests/oe/guest"
    r = guest_run(GUEST_CMD=cmd, GUEST_TIMEOUT="1500", timeout=1800)  # the lock wait comes on top
    output = r.stdout + r.stderr
    assert r.returncode == 0, f"guest run failed (exit {r.returncode}):\n{output[-6000:]}"
    assert re.search(r"\b1 passed", output), output[-3000:]
    assert "first packets lost with negotiationshunt=hold: 0/12" in output, output[-3000:]
