"""The IKE sockets in a network namespace: the local address learned per datagram (PKTINFO) and
used as the reply's source, the non-ESP marker and NAT keepalives on 4500, and the socket
policy bypass (a tunnel policy covering the peer does not capture IKE)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from fipsike.daemon.udp import NAT_KEEPALIVE, NON_ESP_MARKER, USERPOLICY_INFO_SIZE, IkeSocket, bypass_policy
from tests.kernel.netns import netns_pair, sh

pytestmark = [pytest.mark.netns]
T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run fn in a thread that joined netns `name` (sockets stay in the namespace they were made in)."""
    out: list[T] = []
    err: list[BaseException] = []

    def run() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
            try:
                assert libc.setns(fd, CLONE_NEWNET) == 0
            finally:
                os.close(fd)
            out.append(fn())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            err.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    """left (192.0.2.1 and .3 on its veth) and right (192.0.2.2)."""
    with netns_pair() as (left, right):
        dev = sh("ip", "-n", left, "-o", "link", "show", "type", "veth").stdout.split(":")[1].strip().split("@")[0]
        sh("ip", "-n", left, "addr", "add", "192.0.2.3/24", "dev", dev)
        yield left, right


def _recv(s: IkeSocket, timeout: float = 2.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = s.receive()
        if d is not None:
            return d
        time.sleep(0.01)
    return None


def test_bypass_policy_layout() -> None:
    raw = bypass_policy(socket.AF_INET6, 1)
    assert len(raw) == USERPOLICY_INFO_SIZE == 168
    assert struct.unpack_from("=H", raw, 40)[0] == socket.AF_INET6
    assert raw[160:162] == b"\x01\x00" and raw.count(0) == 168 - 2  # dir out, action allow, nothing else


def test_local_address_marker_keepalive_and_bypass(pair: tuple[str, str]) -> None:
    left, right = pair

    def peer_socket() -> socket.socket:
        p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        p.bind(("192.0.2.2", 0))
        p.settimeout(2)
        return p

    s500, s4500 = in_netns(left, lambda: (IkeSocket(socket.AF_INET, 500), IkeSocket(socket.AF_INET, 4500)))
    peer = in_netns(right, peer_socket)
    plain = in_netns(left, lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        # a tunnel policy capturing everything from left to the peer's subnet: IKE must pass anyway
        sh("ip", "-n", left, "xfrm", "policy", "add", "src", "192.0.2.0/24", "dst", "192.0.2.0/24", "dir", "out",
           "tmpl", "src", "192.0.2.1", "dst", "192.0.2.2", "proto", "esp", "reqid", "1", "mode", "tunnel")
        peer.sendto(b"ike-500", ("192.0.2.3", 500))
        d = _recv(s500)
        assert d is not None and (d.data, d.dst) == (b"ike-500", ("192.0.2.3", 500))  # type: ignore[attr-defined]
        s500.send(b"reply", "192.0.2.3", d.src)  # type: ignore[attr-defined]
        assert peer.recvfrom(100) == (b"reply", ("192.0.2.3", 500))  # from the address it came to

        peer.sendto(NON_ESP_MARKER + b"ike-4500", ("192.0.2.1", 4500))
        d = _recv(s4500)
        assert d is not None and (d.data, d.dst) == (b"ike-4500", ("192.0.2.1", 4500))  # type: ignore[attr-defined]
        s4500.send(b"answer", "192.0.2.1", d.src)  # type: ignore[attr-defined]
        assert peer.recvfrom(100) == (NON_ESP_MARKER + b"answer", ("192.0.2.1", 4500))
        # UDP_ENCAP_ESPINUDP: the kernel swallows keepalives and ESP-in-UDP; only marked IKE comes up
        peer.sendto(NAT_KEEPALIVE, ("192.0.2.1", 4500))
        peer.sendto(b"\x00\x00\x12\x34" + bytes(40), ("192.0.2.1", 4500))  # ESP, SPI 0x1234: no SA, dropped
        peer.sendto(NON_ESP_MARKER + b"next", ("192.0.2.1", 4500))
        d = _recv(s4500)
        assert d is not None and d.data == b"next"  # type: ignore[attr-defined]

        # the same send from a socket without the bypass is caught by the policy (no SA: dropped)
        plain.bind(("192.0.2.1", 0))
        with contextlib.suppress(OSError):
            plain.sendto(b"captured?", peer.getsockname())
        with pytest.raises(TimeoutError):
            peer.recvfrom(100)
    finally:
        for x in (s500, s4500):
            x.close()
        peer.close()
        plain.close()


def test_ipv6_local_address_and_reply_source() -> None:
    with netns_pair("2001:db8::1", "2001:db8::2", "2001:db8:1::1", "2001:db8:2::1") as (left, right):
        dev = sh("ip", "-n", left, "-o", "link", "show", "type", "veth").stdout.split(":")[1].strip().split("@")[0]
        sh("ip", "-n", left, "addr", "add", "2001:db8::3/64", "dev", dev, "nodad")

        def peer_socket() -> socket.socket:
            p = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            p.bind(("2001:db8::2", 0))
            p.settimeout(2)
            return p

        s500 = in_netns(left, lambda: IkeSocket(socket.AF_INET6, 500))
        peer = in_netns(right, peer_socket)
        try:
            time.sleep(0.2)
            peer.sendto(b"ike6", ("2001:db8::3", 500))
            d = _recv(s500)
            assert d is not None and (d.data, d.dst) == (b"ike6", ("2001:db8::3", 500))  # type: ignore[attr-defined]
            s500.send(b"reply6", "2001:db8::3", d.src)  # type: ignore[attr-defined]
            data, src = peer.recvfrom(100)
            assert (data, src[:2]) == (b"reply6", ("2001:db8::3", 500))
        finally:
            s500.close()
            peer.close()
