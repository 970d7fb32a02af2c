"""Network namespaces for one cell: two hosts joined directly, or through a NAT.

direct:  left 10.99.0.1 <-veth-> right 10.99.0.2
nat:     left 10.98.0.1 <-veth-> middle 10.98.0.254 | 10.99.0.254 <-veth-> right 10.99.0.2
         (middle masquerades what leaves towards right, with iptables; the initiator sits on the left)
Each host also has an "inner" /32 on lo (10.1.0.1 left, 10.2.0.1 right): the traffic selectors,
and what the pings go between. Routes to the other inner /16 exist so a ping reaches the XFRM
policy lookup; without an SA the policy drops it, so a ping that crosses went through ESP.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipsike.kernel.api import KeyRouter
from fipsike.kernel.types import IPPROTO_ESP, KernelError, SaState
from fipsike.kernel.xfrm import XfrmKernel
from tests.interop.peers.common import PeerError, in_netns, run

NAT_CACHE = Path(os.environ.get("LIBRESWAN_WORK", "/var/cache/fipsike-libreswan"))
_COUNTER = itertools.count()
ICMP_ECHO_BYTES = 84  # an IPv4 ICMP echo of ping's default 56 octets of data: what the SA counts


@dataclass
class Host:
    netns: str
    address: str  # on its veth
    inner: str  # /32 on lo
    ifname: str


@dataclass
class Topology:
    kind: str  # "direct" | "nat"
    left: Host
    right: Host
    middle: Host | None = None  # the NAT
    public_nat: str = ""  # the address right sees for left, behind the NAT
    _made: list[str] = field(default_factory=list)

    def seen_from_right(self) -> str:
        """left's address as right sees it (the NAT's public address, or left's own)."""
        return self.public_nat or self.left.address

    def wire(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(netns, interface) of both ends of the path: captured in the outbound direction only, the
        two together see every packet put on the wire, and never the copy of an inbound ESP packet that
        the kernel hands to packet sockets again after decapsulation (it shows as clear text there)."""
        return (self.left.netns, self.left.ifname), (self.right.netns, self.right.ifname)

    def close(self) -> None:
        for ns in reversed(self._made):
            run(["ip", "netns", "del", ns], check=False)
        self._made.clear()


def _ns(topo: Topology, name: str) -> None:
    run(["ip", "netns", "add", name])
    topo._made.append(name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def _veth(a: Host, b: Host, prefix: int = 24) -> None:
    run(["ip", "link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname])
    for h in (a, b):
        run(["ip", "link", "set", h.ifname, "netns", h.netns])
        run(["ip", "-n", h.netns, "addr", "add", f"{h.address}/{prefix}", "dev", h.ifname])
        run(["ip", "-n", h.netns, "link", "set", h.ifname, "up"])


def make(kind: str) -> Topology:
    """A fresh topology with names unique to this process; close() removes every namespace."""
    n = f"{os.getpid() % 10000}{next(_COUNTER)}"
    left = Host(f"mxl{n}", "10.99.0.1", "10.1.0.1", f"mx{n}l")
    right = Host(f"mxr{n}", "10.99.0.2", "10.2.0.1", f"mx{n}r")
    topo = Topology(kind, left, right)
    try:
        for h in (left, right):
            _ns(topo, h.netns)
            run(["ip", "-n", h.netns, "addr", "add", f"{h.inner}/32", "dev", "lo"])
        if kind == "direct":
            _veth(left, right)
            run(["ip", "-n", left.netns, "route", "add", "10.2.0.0/16", "via", right.address])
            run(["ip", "-n", right.netns, "route", "add", "10.1.0.0/16", "via", left.address])
        elif kind == "nat":
            left.address = "10.98.0.1"
            mid_in = Host(f"mxm{n}", "10.98.0.254", "", f"mx{n}a")
            mid_out = Host(mid_in.netns, "10.99.0.254", "", f"mx{n}b")
            _ns(topo, mid_in.netns)
            _veth(left, mid_in)
            _veth(mid_out, right)
            topo.middle = mid_out
            topo.public_nat = mid_out.address
            run(["ip", "-n", left.netns, "route", "add", "default", "via", mid_in.address])
            run(["ip", "-n", right.netns, "route", "add", "10.1.0.0/16", "via", mid_out.address])
            run(in_netns(mid_in.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
            masquerade(mid_in.netns, mid_out.ifname)
        else:
            raise PeerError(f"unknown topology {kind!r}")
    except BaseException:
        topo.close()
        raise
    return topo


def iptables_command() -> tuple[list[str], dict[str, str]]:
    """iptables (legacy x_tables: the guest kernel has iptable_nat but no nft NAT chain type), from the
    machine or else the copy scripts/libreswan-setup.sh unpacked (not installed)."""
    for path in ("/usr/sbin/iptables-legacy", str(NAT_CACHE / "root/usr/sbin/xtables-legacy-multi")):
        if os.access(path, os.X_OK):
            if path.startswith("/usr/"):
                return [path], dict(os.environ)
            root = NAT_CACHE / "root/usr/lib/x86_64-linux-gnu"
            return [path, "iptables"], {**os.environ, "LD_LIBRARY_PATH": str(root),
                                        "XTABLES_LIBDIR": str(root / "xtables")}
    raise PeerError("iptables not found: run scripts/libreswan-setup.sh (it unpacks iptables for the NAT path)")


def masquerade(netns: str, out_if: str) -> None:
    """Source NAT (masquerade) of everything leaving `out_if`: what makes the peers use NAT-T (RFC 3948)."""
    cmd, env = iptables_command()
    run(in_netns(netns, *cmd, "-t", "nat", "-A", "POSTROUTING", "-o", out_if, "-j", "MASQUERADE"), env=env)


# --- traffic ------------------------------------------------------------------------------------
_RX = re.compile(r"(\d+) packets transmitted, (\d+) received")


def ping(netns: str, src: str, dst: str, count: int = 3, interval: float = 0.2) -> int:
    """Replies received for `count` echo requests from src to dst."""
    res = run(in_netns(netns, "ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "1", "-I", src, dst),
              timeout=count * interval + 10, check=False)
    m = _RX.search(res.stdout)
    return int(m.group(2)) if m else 0


class Flow:
    """A ping running while something else happens (a rekey): stop() gives (sent, received)."""

    def __init__(self, netns: str, src: str, dst: str, interval: float = 0.05) -> None:
        self.proc = subprocess.Popen(in_netns(netns, "ping", "-n", "-q", "-i", str(interval), "-W", "1", "-I", src,
                                              dst), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def stop(self) -> tuple[int, int]:
        time.sleep(1.0)  # replies of the last requests are still on their way
        self.proc.send_signal(signal.SIGINT)  # ping prints its summary on SIGINT
        try:
            out, _ = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        m = _RX.search(out or "")
        return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class Capture:
    """tcpdump of what one interface sends (-Q out); `summary()` reads it back and classifies what crossed."""

    def __init__(self, netns: str, ifname: str, path: Path) -> None:
        self.path = path
        # --immediate-mode: without it the last packets wait in a capture block that SIGINT discards
        self.proc = subprocess.Popen(in_netns(netns, "tcpdump", "-i", ifname, "-Q", "out", "--immediate-mode", "-nn",
                                              "-U", "-s", "128", "-Z", "root", "-w", str(path)),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Until tcpdump has written the pcap header (it is listening)."""
        deadline = time.monotonic() + timeout
        while not (self.path.exists() and self.path.stat().st_size > 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise PeerError(f"tcpdump did not start ({self.path.name})")
            time.sleep(0.05)

    def written(self, kind: str, inner: tuple[str, str]) -> int:
        """Packets of one kind in the pcap so far (-U writes each packet as it is captured)."""
        return self._classify(inner)[kind]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def summary(self, inner: tuple[str, str]) -> dict[str, int]:
        """Packets by kind: esp (IP proto 50), esp_in_udp (UDP 4500 without the non-ESP marker),
        ike, clear_inner (anything to or from an inner address: must be 0)."""
        self.stop()
        return self._classify(inner)

    def _classify(self, inner: tuple[str, str]) -> dict[str, int]:
        text = run(["tcpdump", "-r", str(self.path), "-nn"], check=False).stdout
        out = {"esp": 0, "esp_in_udp": 0, "ike": 0, "clear_inner": 0, "other": 0}
        for line in text.splitlines():
            if "UDP-encap" in line or ("ESP(" in line and ".4500" in line):
                out["esp_in_udp"] += 1
            elif "ESP(" in line:
                out["esp"] += 1
            elif "isakmp" in line or ".500 " in line or ".4500 " in line:
                out["ike"] += 1
            elif any(re.search(rf"\b{re.escape(a)}\b", line) for a in inner):
                out["clear_inner"] += 1
            else:
                out["other"] += 1
        return out


# --- kernel counters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaCounter:
    src: str
    dst: str
    spi: int
    bytes: int
    packets: int
    encap: bool

    def as_dict(self) -> dict[str, Any]:
        return {"src": self.src, "dst": self.dst, "spi": f"{self.spi:08x}", "bytes": self.bytes,
                "packets": self.packets, "encap": self.encap}


def open_xfrm(router: KeyRouter, netns: str, tries: int = 3) -> XfrmKernel:
    """fipsike's XFRM socket in `netns`. pyroute2 makes it in a forked helper; in the guest that
    fork failed once in a whole matrix run (an OSError without errno), so it is tried again."""
    for n in range(tries):
        try:
            return XfrmKernel(router, netns=netns, events=False)
        except KernelError:
            if n == tries - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def esp_counters(netns: str, router: KeyRouter) -> dict[int, SaCounter]:
    """Every ESP SA in `netns` (fipsike's or the peer's) by SPI, with its byte and packet counters.

    Read through fipsike's XfrmKernel, whose SaState holds each key only as a length and a keyed
    fingerprint: unlike `ip -s xfrm state`, nothing here can put a key into a log."""
    k = open_xfrm(router, netns)
    try:
        states: list[SaState] = k.list_sas(owned_only=False)
    finally:
        k.close()
    return {s.spi: SaCounter(str(s.src), str(s.dst), s.spi, s.bytes, s.packets, s.encap is not None)
            for s in states if s.proto == IPPROTO_ESP and not s.larval}
