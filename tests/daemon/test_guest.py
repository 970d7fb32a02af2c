"""tests/daemon/guest, run inside the user-mode-linux guest kernel (which has ESP) as part of the normal
suite: two daemons negotiate, ESP carries pings with the negotiated keys, the counters move, a rekey keeps
the traffic flowing, a clean stop leaves nothing; and `fipsike demo` end to end in the guest."""

from __future__ import annotations

import os
import re
import subprocess

from tests.daemon.harness import ROOT

GUEST_RUN = str(ROOT / "scripts" / "guest-run.sh")


def test_daemon_guest_tests_pass_in_the_uml_guest() -> None:
    r = subprocess.run([GUEST_RUN, "tests/daemon/guest"], capture_output=True, text=True, timeout=3600, cwd=ROOT,
                       env=dict(os.environ, GUEST_TIMEOUT="600", GUEST_LOCK_WAIT="2700"))
    output = r.stdout + r.stderr
    assert r.returncode == 0, f"guest run failed (exit {r.returncode}):\n{output[-6000:]}"
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None and int(passed.group(1)) == 3, output[-3000:]
    assert "skipped" not in output and "failed" not in output and "deselected" not in output, output[-3000:]
