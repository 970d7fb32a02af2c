"""One line per event on stderr, for journald: `LEVEL EVENT [CONN] message`.

EVENT is a stable, machine-friendly name (the engine's Log tags, and the daemon's own below);
CONN is the connection's name or "-". Messages come from code that never puts key material,
PINs or pre-shared keys in them (the canary sweep in tests/daemon checks the whole stream).
Unexpected exceptions are logged by type only: their text is not vetted for secrets.
"""

from __future__ import annotations

import sys
from typing import TextIO

LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class EventLog:
    def __init__(self, stream: TextIO | None = None, level: str = "info") -> None:
        self.stream = stream or sys.stderr
        self.threshold = LEVELS.get(level, 1)

    def __call__(self, level: str, event: str, conn: str | None, message: str = "") -> None:
        if LEVELS.get(level, 1) < self.threshold:
            return
        line = f"{level} {event} [{conn or '-'}]" + (f" {message}" if message else "")
        try:
            self.stream.write(line.replace("\n", " ") + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # stderr closed: the daemon's work goes on

    def unexpected(self, where: str, exc: BaseException, conn: str | None = None) -> None:
        self("error", "internal-error", conn, f"{where}: {type(exc).__name__}")
