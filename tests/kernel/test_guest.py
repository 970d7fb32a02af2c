"""Runs tests/kernel/guest inside the user-mode-linux guest (a kernel with ESP) as part of the normal suite."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_esp_tests_pass_in_the_uml_guest() -> None:
    env = dict(os.environ)
    r = subprocess.run([str(ROOT / "scripts" / "guest-run.sh")], capture_output=True,
                       text=True, timeout=600, env=env, cwd=ROOT)
    output = r.stdout + r.stderr
    assert r.returncode == 0, f"guest run failed (exit {r.returncode}):\n{output[-6000:]}"
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None and int(passed.group(1)) >= 9, output[-3000:]
    assert "skipped" not in output and "failed" not in output, output[-3000:]


def test_a_guest_that_never_boots_fails_loudly() -> None:
    env = dict(os.environ, GUEST_TIMEOUT="1")
    r = subprocess.run([str(ROOT / "scripts" / "guest-run.sh")], capture_output=True, text=True, timeout=120,
                       env=env, cwd=ROOT)
    assert r.returncode == 99, r.stdout + r.stderr
    assert "did not boot" in r.stderr or "produced no result" in r.stderr
