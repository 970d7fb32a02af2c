"""The synchronous control-socket client behind `fipsike up/down/status/...` (no asyncio here)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from fipsike.daemon.config_seam import DEFAULT_CTL

ENV_CTL = "FIPSIKE_CTL"


class ControlError(Exception):
    """The daemon could not be reached, or refused the request: one line for the operator."""


def ctl_path(given: str | None) -> Path:
    return Path(given or os.environ.get(ENV_CTL) or DEFAULT_CTL)


class ControlClient:
    def __init__(self, path: Path, timeout: float | None = 60.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise ControlError(f"cannot reach the daemon at {path}: {exc.strerror or type(exc).__name__}") from None
        self._buf = b""
        self._seq = 0

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> dict[str, object]:
        while b"\n" not in self._buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise ControlError(f"no answer from the daemon at {self.path}") from None
            if not chunk:
                raise ControlError("the daemon closed the control connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            obj = json.loads(line)
        except ValueError:
            raise ControlError("the daemon sent a reply that is not JSON") from None
        if not isinstance(obj, dict):
            raise ControlError("the daemon sent a reply that is not a JSON object")
        return obj

    def call(self, cmd: str, **args: object) -> object:
        """The request's result; ControlError with the daemon's reason when it refuses."""
        self._seq += 1
        self.sock.sendall(json.dumps({"id": self._seq, "cmd": cmd, "args": args}).encode() + b"\n")
        reply = self._line()
        if not reply.get("ok"):
            raise ControlError(str(reply.get("error", "request refused")))
        return reply.get("result")

    def events(self) -> Iterator[dict[str, object]]:
        """`listen`: the daemon's events, one dict each, until it closes."""
        self.sock.settimeout(None)
        self.call("listen")
        while True:
            try:
                yield self._line()
            except ControlError:
                return
