"""What `ip xfrm ...` sends to the kernel, seen with strace (works even when the kernel refuses it)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

_MSG = re.compile(
    r'nlmsg_len=(?P<len>\d+), nlmsg_type=(?P<type>0x[0-9a-f]+|\w+)[^,]*, nlmsg_flags=(?P<flags>[^,]+), '
    r'nlmsg_seq=\d+, nlmsg_pid=\d+\}, "(?P<body>(?:\\x[0-9a-f]{2})*)"')

FLAG_BITS = {"NLM_F_REQUEST": 0x1, "NLM_F_MULTI": 0x2, "NLM_F_ACK": 0x4, "NLM_F_ECHO": 0x8,
             "NLM_F_REPLACE": 0x100, "NLM_F_EXCL": 0x200, "NLM_F_CREATE": 0x400, "NLM_F_APPEND": 0x800,
             "NLM_F_ROOT": 0x100, "NLM_F_MATCH": 0x200, "NLM_F_DUMP": 0x300}


@dataclass(frozen=True)
class SentMessage:
    length: int
    type: int
    flags: int
    body: bytes


def _flags(text: str) -> int:
    value = 0
    for part in text.split("|"):
        part = part.strip()
        value |= int(part, 0) if part.startswith("0x") else FLAG_BITS[part]
    return value


def trace_ip(*args: str) -> tuple[list[SentMessage], subprocess.CompletedProcess[str]]:
    """Run `ip ARGS` under strace; return every netlink message it sent (and ip's own result)."""
    r = subprocess.run(["strace", "-f", "-e", "trace=sendmsg", "-xx", "-s", "65536", "ip", *args],
                       capture_output=True, text=True, timeout=60)
    sent = []
    for m in _MSG.finditer(r.stderr):
        body = bytes.fromhex(m["body"].replace("\\x", ""))
        mtype = int(m["type"], 0) if m["type"].startswith("0x") else -1
        sent.append(SentMessage(int(m["len"]), mtype, _flags(m["flags"]), body))
    return sent, r
