"""The NETLINK_XFRM socket: sequence numbers, ACKs, NLMSG_ERROR, dumps and multicast groups.

pyroute2 provides the socket (with `pyroute2.netns.create_socket` for a named
network namespace) and the message classes (xfrm_messages.py). The framing is
ours, not pyroute2's asyncio NetlinkSocket, for three reasons:
- received buffers that may hold SA keys (GETSA/dump replies) are bytearrays
  we zero right after parsing, instead of immutable bytes in a queue;
- NETLINK_CAP_ACK stops the kernel echoing a failed NEWSA (keys included)
  back in its NLMSG_ERROR, and NETLINK_EXT_ACK gives the kernel's reason
  ("Requested AEAD algorithm not found") for the error message;
- the daemon's asyncio loop can watch `fileno()` of the event socket directly,
  with no second event loop running inside pyroute2.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from pyroute2.netlink import nlmsg

from fipsike.kernel.types import KernelError
from fipsike.kernel.xfrm_messages import MSG_CLASSES, NETLINK_XFRM, struct_size

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
_HDR = struct.Struct("=IHHII")

T = TypeVar("T")


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, f"errno {code}")


def _wipe(buf: bytearray, n: int) -> None:
    buf[0:n] = bytes(n)


def _align4(n: int) -> int:
    return (n + 3) & ~3


def netns_exists(name: str) -> bool:
    return os.path.exists(os.path.join("/run/netns", name))


class XfrmSocket:
    """One NETLINK_XFRM socket. Requests are serialised by a lock; replies are matched by sequence number."""

    def __init__(self, netns: str | None = None, groups: Iterable[int] = (), timeout: float = 5.0,
                 rcvbuf: int = 1 << 20) -> None:
        self.netns = netns
        self.timeout = timeout
        try:
            if netns is not None:
                if "/" in netns or not netns_exists(netns):
                    raise KernelError("open", "ENOENT", f"network namespace {netns!r} not found")
                from pyroute2 import netns as pyroute2_netns

                self._sock = pyroute2_netns.create_socket(
                    netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM, flags=0)
            else:
                self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_XFRM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self._sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self._sock.bind((0, 0))
            for group in groups:
                self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        except OSError as exc:
            raise KernelError("open NETLINK_XFRM socket", errno_name(exc.errno or 0),
                              f"netns {netns}" if netns else "") from None
        self.port: int = int(self._sock.getsockname()[0])
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._buf = bytearray(1 << 16)

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def close(self) -> None:
        _wipe(self._buf, len(self._buf))
        self._sock.close()

    # --- requests -----------------------------------------------------------------------------------

    def request(self, operation: str, msg: nlmsg, msg_type: int, flags: int,
                parse: Callable[[int, nlmsg], T | None]) -> list[T]:
        """Send one request and collect the parsed replies until the ACK, DONE or the single answer.

        The encoded request (which may hold keys) is zeroed once sent.
        """
        with self._lock:
            seq = next(self._seq) & 0xFFFF_FFFF
            msg["header"]["type"] = msg_type
            msg["header"]["flags"] = flags
            msg["header"]["sequence_number"] = seq
            msg["header"]["pid"] = self.port
            msg.reset()
            try:
                msg.encode()
                data = msg.data
                try:
                    self._sock.send(data)
                except OSError as exc:
                    raise KernelError(operation, errno_name(exc.errno or 0)) from None
            finally:
                _wipe(msg.data, len(msg.data))
                msg.data = bytearray()
            return self._collect(operation, seq, flags, parse)

    def _recv(self, operation: str) -> int:
        ready, _, _ = select.select([self._sock], [], [], self.timeout)
        if not ready:
            raise KernelError(operation, "ETIMEDOUT", f"no answer from the kernel in {self.timeout} s")
        try:
            size = self._sock.recv_into(bytearray(16), 16, socket.MSG_PEEK | socket.MSG_TRUNC)
            if size > len(self._buf):
                _wipe(self._buf, len(self._buf))
                self._buf = bytearray(_align4(size))
            return int(self._sock.recv_into(self._buf, len(self._buf)))
        except OSError as exc:
            raise KernelError(operation, errno_name(exc.errno or 0)) from None

    def _collect(self, operation: str, seq: int, flags: int, parse: Callable[[int, nlmsg], T | None]) -> list[T]:
        results: list[T] = []
        dump = flags & NLM_F_DUMP == NLM_F_DUMP
        while True:
            n = self._recv(operation)
            try:
                done = False
                offset = 0
                while offset + _HDR.size <= n:
                    length, mtype, mflags, mseq, _ = _HDR.unpack_from(self._buf, offset)
                    if length < _HDR.size or offset + length > n:
                        break
                    if mseq != seq:
                        offset += _align4(length)
                        continue  # a late answer to an earlier, timed-out request
                    if mtype == NLMSG_ERROR:
                        self._raise_if_error(operation, offset, length, mflags)
                        done = True
                    elif mtype == NLMSG_DONE:
                        if length >= _HDR.size + 4:
                            (code,) = struct.unpack_from("=i", self._buf, offset + _HDR.size)
                            if code < 0:
                                raise KernelError(operation, errno_name(-code))
                        done = True
                    elif mtype != NLMSG_NOOP:
                        cls = MSG_CLASSES.get(mtype)
                        if cls is not None:
                            item = self._parse(operation, cls, offset, mtype, parse)
                            if item is not None:
                                results.append(item)
                        if not dump and not mflags & NLM_F_MULTI and not flags & NLM_F_ACK:
                            done = True
                    offset += _align4(length)
                if done:
                    return results
            finally:
                _wipe(self._buf, n)

    def _parse(self, operation: str, cls: type[nlmsg], offset: int, mtype: int,
               parse: Callable[[int, nlmsg], T | None]) -> T | None:
        """Decode one message and turn it into a typed value while the buffer still holds it."""
        (length,) = struct.unpack_from("=I", self._buf, offset)
        if length < _HDR.size + struct_size(cls.fields):
            raise KernelError(operation, "EPROTO", f"XFRM message type {mtype:#x} shorter than its struct")
        try:
            m = cls(self._buf, offset=offset)
            m.decode()
            return parse(mtype, m)
        except (ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
            raise KernelError(operation, "EPROTO", f"malformed XFRM message type {mtype:#x}: "
                                                   f"{type(exc).__name__}") from None

    def _raise_if_error(self, operation: str, offset: int, length: int, mflags: int) -> None:
        (code,) = struct.unpack_from("=i", self._buf, offset + _HDR.size)
        if code == 0:
            return
        detail = ""
        if mflags & NLM_F_ACK_TLVS:
            # with NETLINK_CAP_ACK: error code, then only the original header, then TLVs
            pos = offset + _HDR.size + 4 + _HDR.size
            end = offset + length
            while pos + 4 <= end:
                tlen, ttype = struct.unpack_from("=HH", self._buf, pos)
                if tlen < 4:
                    break
                if ttype & 0x3FFF == NLMSGERR_ATTR_MSG:
                    raw = bytes(self._buf[pos + 4:pos + tlen])
                    detail = raw.split(b"\0", 1)[0].decode("ascii", "replace")
                pos += _align4(tlen)
        raise KernelError(operation, errno_name(-code), detail)

    # --- multicast events ---------------------------------------------------------------------------

    def read_events(self, parse: Callable[[int, nlmsg], T | None], timeout: float | None = 0.0,
                    on_overflow: Callable[[], T] | None = None) -> list[T]:
        """Read what the kernel multicast so far (waiting up to `timeout` seconds for the first)."""
        out: list[T] = []
        wait = timeout
        while True:
            ready, _, _ = select.select([self._sock], [], [], wait)
            if not ready:
                return out
            wait = 0.0
            try:
                n = self._sock.recv_into(self._buf, len(self._buf), socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as exc:
                if exc.errno == errno.ENOBUFS and on_overflow is not None:
                    out.append(on_overflow())
                    continue
                raise KernelError("read XFRM events", errno_name(exc.errno or 0)) from None
            try:
                offset = 0
                while offset + _HDR.size <= n:
                    length, mtype, _, _, _ = _HDR.unpack_from(self._buf, offset)
                    if length < _HDR.size or offset + length > n:
                        break
                    cls = MSG_CLASSES.get(mtype)
                    if cls is not None:
                        item = self._parse("read XFRM events", cls, offset, mtype, parse)
                        if item is not None:
                            out.append(item)
                    offset += _align4(length)
            finally:
                _wipe(self._buf, n)
