"""Network namespaces for kernel tests: unique names, always deleted."""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

_counter = itertools.count()


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {result.stdout}{result.stderr}")
    return result


def unique_name(tag: str) -> str:
    return f"fxk{os.getpid() % 100000}{tag}{next(_counter)}"


@contextmanager
def netns(tag: str = "n") -> Iterator[str]:
    name = unique_name(tag)
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


@contextmanager
def netns_pair(left_addr: str = "192.0.2.1", right_addr: str = "192.0.2.2",
               left_inner: str = "10.1.0.1", right_inner: str = "10.2.0.1") -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair, each with an inner address on lo and a route to the other's."""
    with netns("L") as left, netns("R") as right:
        vl, vr = f"v{left[-6:]}", f"v{right[-6:]}"
        sh("ip", "link", "add", vl, "type", "veth", "peer", "name", vr)
        sh("ip", "link", "set", vl, "netns", left)
        sh("ip", "link", "set", vr, "netns", right)
        v6 = ":" in left_addr
        plen = "64" if v6 else "24"
        ilen = "128" if v6 else "32"
        for ns, dev, outer, inner, peer_inner, peer_outer in (
                (left, vl, left_addr, left_inner, right_inner, right_addr),
                (right, vr, right_addr, right_inner, left_inner, left_addr)):
            sh("ip", "-n", ns, "addr", "add", f"{outer}/{plen}", "dev", dev, *(["nodad"] if v6 else []))
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "addr", "add", f"{inner}/{ilen}", "dev", "lo", *(["nodad"] if v6 else []))
            sh("ip", "-n", ns, "route", "add", f"{peer_inner}/{ilen}", "via", peer_outer, "src", inner)
        yield left, right


def ping(ns: str, src: str, dst: str, count: int = 3, timeout: float = 1.0) -> int:
    """Replies received."""
    r = sh("ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", str(timeout),
           "-I", src, dst, check=False)
    for line in r.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    return 0
