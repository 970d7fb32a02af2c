"""The user-mode-linux guest (a kernel with ESP): its boot check, the XSAVE shim that lets it boot on hosts
whose CPU has AMX, and the ESP tests of tests/kernel/guest run inside it as part of the normal suite."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUEST_RUN = str(ROOT / "scripts" / "guest-run.sh")
CACHE = Path(os.environ.get("UML_WORK", "/var/cache/fipsike-uml"))
HAS_AMX = "amx_tile" in Path("/proc/cpuinfo").read_text()


# guest-run.sh waits this long (GUEST_LOCK_WAIT, its default read from the script) for another run's guest
_LOCK_WAIT_DEFAULT = re.search(r"GUEST_LOCK_WAIT:-(\d+)", Path(GUEST_RUN).read_text())
LOCK_WAIT_DEFAULT = int(_LOCK_WAIT_DEFAULT.group(1)) if _LOCK_WAIT_DEFAULT else 900
LOCK_MARGIN = 30.0  # the script's own start-up before and after the wait


def lock_wait(env: dict[str, str]) -> float:
    """The seconds guest-run.sh may wait for the guest lock under this environment."""
    return float(env.get("GUEST_LOCK_WAIT") or os.environ.get("GUEST_LOCK_WAIT") or LOCK_WAIT_DEFAULT)


def guest_run(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess[str]:
    """scripts/guest-run.sh. `timeout`: what the run may take once it holds the guest lock; the wait for
    the lock (other engineers' runs queue on it) comes on top, so a queued run is not killed while waiting."""
    return subprocess.run([GUEST_RUN, *args], capture_output=True, text=True,
                          timeout=timeout + lock_wait(env) + LOCK_MARGIN, env=dict(os.environ, **env), cwd=ROOT)


def test_guest_run_waits_out_the_guest_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run queued behind another one may wait GUEST_LOCK_WAIT before its own time starts (no guest here)."""
    seen: list[float] = []

    def fake_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        timeout = kw["timeout"]
        assert isinstance(timeout, int | float)
        seen.append(float(timeout))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.delenv("GUEST_LOCK_WAIT", raising=False)
    monkeypatch.setattr(subprocess, "run", fake_run)
    script_wait = int(re.search(r'flock -w "\$\{GUEST_LOCK_WAIT:-(\d+)\}"', Path(GUEST_RUN).read_text())[1])
    guest_run()
    guest_run("--boot-check", timeout=180)
    guest_run(GUEST_LOCK_WAIT="2700", timeout=120)
    monkeypatch.setenv("GUEST_LOCK_WAIT", "60")
    guest_run(timeout=100)
    assert seen[0] > script_wait + 600 and seen[1] > script_wait + 180
    assert seen[2] > 2700 + 120 and 100 + 60 < seen[3] < script_wait


def test_the_guest_boots_with_every_module() -> None:
    r = guest_run("--boot-check", timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert re.search(r"boot check ok: kernel 6\.\d+\.\d+, \d+ modules", r.stdout), r.stdout


def test_esp_tests_pass_in_the_uml_guest() -> None:
    r = guest_run()
    output = r.stdout + r.stderr
    assert r.returncode == 0, f"guest run failed (exit {r.returncode}):\n{output[-6000:]}"
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None and int(passed.group(1)) >= 9, output[-3000:]
    assert "skipped" not in output and "failed" not in output, output[-3000:]


def test_a_guest_that_never_boots_fails_loudly_with_its_cause() -> None:
    r = guest_run(GUEST_TIMEOUT="1", timeout=120)
    assert r.returncode == 99, r.stdout + r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("guest-run: the UML guest did not boot: "), line
    assert "timeout 1 s" in line, line


def _probe(tmp_path: Path) -> Path:
    exe = tmp_path / "xstate_probe"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(ROOT / "tests" / "kernel" / "xstate_probe.c")], check=True)
    return exe


def _fields(out: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", out)}


def test_the_xsave_shim_completes_a_short_setregset(tmp_path: Path) -> None:
    """Host-independent proof of the fix: UML's fixed FPU buffer is shorter than the host's XSAVE area on an AMX
    host; the probe makes the same short PTRACE_SETREGSET on any x86-64 host (576 bytes, smaller than every
    XSAVE area with AVX), which the host refuses with EFAULT (Linux >= 5.16) unless the shim is preloaded."""
    assert guest_run("--boot-check", timeout=180).returncode == 0  # builds the cached shim
    exe = _probe(tmp_path)
    bare = _fields(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)
    shimmed = _fields(subprocess.run([str(exe)], capture_output=True, text=True, check=True,
                                     env=dict(os.environ, LD_PRELOAD=str(CACHE / "uml_xstate_shim.so"))).stdout)
    assert bare["size"] > bare["short"] == 576
    release = tuple(int(x) for x in re.findall(r"\d+", os.uname().release)[:2])
    if release >= (5, 16):
        assert (bare["set"], bare["errno"], bare["roundtrip"]) == (-1, 14, 0), bare
    assert (shimmed["set"], shimmed["errno"], shimmed["roundtrip"]) == (0, 0, 1), shimmed


def test_without_the_shim_the_boot_check_names_the_xsave_failure_on_amx_hosts() -> None:
    r = guest_run("--boot-check", FIPSIKE_UML_NO_SHIM="1", timeout=180)
    if HAS_AMX:
        assert r.returncode == 99, r.stdout + r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert "FPU/XSAVE state" in line and "not preloaded" in line and "host CPU has AMX" in line, line
    else:  # UML's buffer fits a host XSAVE area without AMX: it boots bare
        assert r.returncode == 0, r.stdout + r.stderr[-3000:]


@pytest.fixture
def cache_without_esp4(tmp_path: Path) -> Path:
    """A guest cache whose module tree lacks esp4 (a symlink farm over the real cache, re-indexed by depmod)."""
    assert guest_run("--boot-check", timeout=180).returncode == 0
    work = tmp_path / "uml-work"
    (work / "uml" / "usr" / "lib" / "uml" / "modules").mkdir(parents=True)
    (work / "uml" / "usr" / "bin").symlink_to(CACHE / "uml" / "usr" / "bin")
    kver = next((CACHE / "uml" / "usr" / "lib" / "uml" / "modules").iterdir()).name
    mods = work / "uml" / "usr" / "lib" / "uml" / "modules" / kver
    subprocess.run(["cp", "-rs", str(CACHE / "uml" / "usr" / "lib" / "uml" / "modules" / kver), str(mods)],
                   check=True)
    (mods / "kernel" / "net" / "ipv4" / "esp4.ko").unlink()
    for f in mods.glob("modules.*"):
        f.unlink()
    shutil.copy(CACHE / "uml_xstate_shim.so", work)
    shutil.copy(CACHE / "uml_xstate_shim.sum", work)
    return work


def test_a_missing_module_is_named(cache_without_esp4: Path) -> None:
    r = guest_run("--boot-check", UML_WORK=str(cache_without_esp4), timeout=180)
    assert r.returncode == 99, r.stdout + r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert "missing module(s): esp4 " in line, line
