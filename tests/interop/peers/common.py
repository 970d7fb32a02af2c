"""Small process helpers shared by the peers and the topology."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress


class PeerError(Exception):
    """A peer or a piece of the topology did not do what was asked (one line, no secrets)."""


def run(cmd: Sequence[str], timeout: float = 30, check: bool = True, env: Mapping[str, str] | None = None,
        input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                             env=dict(env) if env is not None else None, input=input_text)
    except subprocess.TimeoutExpired as e:
        raise PeerError(f"{' '.join(cmd[:6])}: no answer in {timeout} s") from e
    if check and res.returncode != 0:
        err = (res.stderr.strip() or res.stdout.strip()).splitlines()
        raise PeerError(f"{' '.join(cmd[:6])}: exit {res.returncode}: {err[-1] if err else ''}")
    return res


def in_netns(netns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", netns, *cmd]


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Seconds it took for `cond` to hold; PeerError naming `what` if it never did."""
    start = time.monotonic()
    while True:
        if cond():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise PeerError(f"{what}: not within {timeout} s")
        time.sleep(step)


def stop_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 5.0) -> None:
    """Signal a process group (started with start_new_session), SIGKILL it if still there after `grace`."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 of the whole group: the daemon gets no chance to send a Delete or flush its SAs."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def in_guest() -> bool:
    """True inside the user-mode-linux guest (scripts/guest-run.sh sets it): kernel ESP is there."""
    return os.environ.get("FIPSIKE_GUEST") == "1"
