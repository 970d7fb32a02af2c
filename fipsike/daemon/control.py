"""The control socket: a Unix stream socket speaking JSON Lines.

Request:  {"cmd": "status", "args": {...}, "id": <anything, echoed>}
Reply:    {"id": ..., "ok": true, "result": ...}  or  {"id": ..., "ok": false, "error": "one line"}
`listen`: one ok reply, then one {"event": NAME, ...} line per event until the client hangs up.

The socket is mode 0600 (0660 with a control group); every caller is checked with SO_PEERCRED:
root, the daemon's own user, or a member of the configured group. A malformed request gets an
error reply and the connection (and the daemon) stay up. docs/daemon-json.md has the schemas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import struct
from pathlib import Path
from typing import Protocol

MAX_REQUEST = 64 * 1024
COMMANDS = ("up", "down", "status", "trafficstatus", "listen", "reload", "rekey", "route", "unroute", "oe-initiate")

JsonObject = dict[str, object]


class RequestError(Exception):
    """A request the daemon refuses: the message is shown to the operator as is."""


class Handler(Protocol):
    async def request(self, cmd: str, args: JsonObject) -> object: ...

    def subscribe(self) -> asyncio.Queue[JsonObject]: ...

    def unsubscribe(self, queue: asyncio.Queue[JsonObject]) -> None: ...

    def unexpected(self, where: str, exc: BaseException) -> None: ...


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end (SO_PEERCRED, struct ucred)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def _groups_of(pid: int) -> set[int]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Groups:"):
                return {int(g) for g in line.split()[1:]}
    except (OSError, ValueError):
        pass
    return set()


def caller_allowed(pid: int, uid: int, gid: int, group: int | None) -> bool:
    if uid == 0 or uid == os.geteuid():
        return True
    return group is not None and (gid == group or group in _groups_of(pid))


class ControlServer:
    def __init__(self, path: Path, handler: Handler, group: int | None = None) -> None:
        self.path = path
        self.handler = handler
        self.group = group
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if not stat.S_ISSOCK(self.path.lstat().st_mode):
                raise OSError(17, f"{self.path} exists and is not a socket")
            if await _answers(self.path):
                raise OSError(98, f"{self.path}: another daemon is listening there")
            self.path.unlink()  # left by a crash
        old = os.umask(0o177)  # born 0600: no window where others could connect
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=MAX_REQUEST)
        finally:
            os.umask(old)
        if self.group is not None:
            os.chown(self.path, -1, self.group)
            os.chmod(self.path, 0o660)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._clients):
                t.cancel()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._clients.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception as exc:  # noqa: BLE001 - one client's trouble never reaches the daemon
            self.handler.unexpected("control client", exc)
        finally:
            if task is not None:
                self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        pid, uid, gid = peer_credentials(sock)
        if not caller_allowed(pid, uid, gid, self.group):
            await _send(writer, {"id": None, "ok": False,
                                 "error": f"permission denied: uid {uid} is not root and not in the control group"})
            return
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial.strip():
                    return
                line = exc.partial
            except asyncio.LimitOverrunError:
                await _send(writer, {"id": None, "ok": False,
                                     "error": f"malformed request: longer than {MAX_REQUEST} octets"})
                return
            if not line.strip():
                continue
            req_id, cmd, args, problem = parse_request(line)
            if problem:
                await _send(writer, {"id": req_id, "ok": False, "error": f"malformed request: {problem}"})
                continue
            if cmd == "listen":
                await _send(writer, {"id": req_id, "ok": True, "result": "listening"})
                await self._stream(reader, writer)
                return
            await _send(writer, await self._answer(req_id, cmd, args))

    async def _answer(self, req_id: object, cmd: str, args: JsonObject) -> JsonObject:
        try:
            return {"id": req_id, "ok": True, "result": await self.handler.request(cmd, args)}
        except RequestError as exc:
            return {"id": req_id, "ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the request fails, the daemon does not
            self.handler.unexpected(f"control {cmd}", exc)
            return {"id": req_id, "ok": False, "error": f"internal error ({type(exc).__name__})"}

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue = self.handler.subscribe()
        eof = asyncio.ensure_future(_until_eof(reader))  # the client hanging up ends the stream
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({get, eof}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    return
                await _send(writer, get.result())
        finally:
            eof.cancel()
            self.handler.unsubscribe(queue)


async def _until_eof(reader: asyncio.StreamReader) -> None:
    """Discard what a listening client sends (nothing is expected) without keeping it."""
    while await reader.read(4096):
        pass


def parse_request(line: bytes) -> tuple[object, str, JsonObject, str]:
    """(id, cmd, args, problem): problem is "" for a well-formed request."""
    try:
        req = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None, "", {}, "not a JSON object"
    if not isinstance(req, dict):
        return None, "", {}, "not a JSON object"
    req_id = req.get("id")
    if isinstance(req_id, dict | list):
        req_id = None
    cmd, args = req.get("cmd"), req.get("args", {})
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        return req_id, "", {}, f"\"cmd\" must be one of {', '.join(COMMANDS)}"
    if not isinstance(args, dict):
        return req_id, cmd, {}, "\"args\" must be an object"
    return req_id, cmd, args, ""


async def _send(writer: asyncio.StreamWriter, obj: JsonObject) -> None:
    writer.write(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    await writer.drain()


async def _answers(path: Path) -> bool:
    try:
        _, w = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
    except (OSError, TimeoutError):
        return False
    w.close()
    return True


