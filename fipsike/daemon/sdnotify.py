"""systemd's notify protocol (sd_notify(3)): "KEY=value" lines in one datagram to $NOTIFY_SOCKET.

Written here rather than taken from a library: it is one sendto() on an AF_UNIX datagram socket
(an "@" prefix names an abstract socket)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        ok_pid = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 1e6 / 2 if usec.isdigit() and int(usec) > 0 and ok_pid else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def notify(self, **fields: str) -> None:
        """notify(READY="1", STATUS="...") sends READY=1 and STATUS=...; nothing when not under systemd."""
        if not self.address:
            return
        text = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.sendto(text, self.address)
            except OSError:
                pass  # the manager went away: the daemon keeps running, as sd_notify(3) callers do
