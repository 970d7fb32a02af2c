"""The IKE sockets: UDP 500 and 4500 (NAT-T, RFC 3948) on IPv4 and IPv6.

- Each datagram's local address comes from IP_PKTINFO / IPV6_RECVPKTINFO, and replies leave from
  that address (the same cmsg on send), so one wildcard socket serves every local address.
- Port 4500 carries the non-ESP marker (four zero octets, RFC 3948 2.2) before IKE; a single 0xFF
  octet is a NAT keepalive (RFC 3948 2.3). UDP_ENCAP_ESPINUDP makes the kernel take ESP-in-UDP off
  this socket itself, so ESP is accepted both encapsulated and bare whenever NAT-T was negotiated.
- The sockets bypass IPsec policy: a per-socket policy (IP_XFRM_POLICY / IPV6_XFRM_POLICY, the
  XFRM form of IP_IPSEC_POLICY, which needs no PF_KEY) that allows without templates, in and out,
  so a tunnel policy covering the peer's address never captures IKE itself.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from dataclasses import dataclass

IKE_PORT = 500
NAT_T_PORT = 4500
NON_ESP_MARKER = b"\x00\x00\x00\x00"
NAT_KEEPALIVE = b"\xff"

# <linux/in.h>, <linux/in6.h>, <linux/udp.h>, <linux/ipsec.h>, <linux/pfkeyv2.h>
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IP_XFRM_POLICY = 17
IPV6_XFRM_POLICY = 35
UDP_ENCAP = 100
UDP_ENCAP_ESPINUDP = 2
XFRM_POLICY_IN, XFRM_POLICY_OUT = 0, 1
XFRM_POLICY_ALLOW = 0
# struct xfrm_userpolicy_info: xfrm_selector (56) + lifetime_cfg (64) + lifetime_cur (32)
# + priority, index (u32 each) + dir, action, flags, share (u8 each) = 164, padded to 168
USERPOLICY_INFO_SIZE = 168
_SEL_FAMILY_OFFSET = 40  # daddr (16) + saddr (16) + dport, dport_mask, sport, sport_mask (u16 each)
_DIR_OFFSET = 56 + 64 + 32 + 8

Address = tuple[str, int]


class SocketSetupError(OSError):
    """A socket option the daemon cannot run without could not be set."""


def bypass_policy(family: int, direction: int) -> bytes:
    """A socket policy that lets this socket's traffic pass whatever the SPD says: action allow,
    no templates, a selector that only names the address family."""
    info = bytearray(USERPOLICY_INFO_SIZE)
    struct.pack_into("=H", info, _SEL_FAMILY_OFFSET, family)
    struct.pack_into("=BB", info, _DIR_OFFSET, direction, XFRM_POLICY_ALLOW)
    return bytes(info)


@functools.lru_cache(maxsize=256)
def _pktinfo(family: int, src: str) -> tuple[int, int, bytes]:
    """The PKTINFO cmsg that sends from local address `src` (one per local address: remembered)."""
    addr = ipaddress.ip_address(src)
    if family == socket.AF_INET6:
        return (socket.IPPROTO_IPV6, IPV6_PKTINFO, addr.packed + struct.pack("=I", 0))
    return (socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, addr.packed, bytes(4)))


@dataclass
class Datagram:
    data: bytes  # IKE octets (marker stripped), or b"" for a keepalive
    src: Address
    dst: Address  # the local address and port it arrived on


class IkeSocket:
    """One bound UDP socket (family x port), non-blocking."""

    def __init__(self, family: int, port: int, bind: str | None = None) -> None:
        self.family = family
        self.port = port
        s = socket.socket(family, socket.SOCK_DGRAM)
        try:
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                level, opt = socket.IPPROTO_IPV6, IPV6_XFRM_POLICY
            else:
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                level, opt = socket.IPPROTO_IP, IP_XFRM_POLICY
            try:
                for direction in (XFRM_POLICY_IN, XFRM_POLICY_OUT):
                    s.setsockopt(level, opt, bypass_policy(family, direction))
            except OSError as exc:
                raise SocketSetupError(exc.errno, f"IPsec policy bypass on UDP {port}: {exc.strerror}") from None
            wildcard = "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104 - IKE answers on every address
            s.bind((bind or wildcard, port))  # noqa: S104 - IKE listens on every address
            if port == NAT_T_PORT:
                try:
                    s.setsockopt(socket.IPPROTO_UDP, UDP_ENCAP, UDP_ENCAP_ESPINUDP)
                except OSError as exc:
                    raise SocketSetupError(exc.errno, f"UDP_ENCAP_ESPINUDP on UDP {port}: {exc.strerror}") from None
        except BaseException:
            s.close()
            raise
        self.sock = s

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> Datagram | None:
        """One datagram, or None when nothing is pending / it is not for IKE (ESP left to the kernel)."""
        try:
            data, anc, _flags, src = self.sock.recvmsg(65535, socket.CMSG_SPACE(20))
        except (BlockingIOError, InterruptedError):
            return None
        local = self._local_address(anc)
        if self.port == NAT_T_PORT:
            if data == NAT_KEEPALIVE:
                return Datagram(b"", (src[0], src[1]), (local, self.port))
            if data[:4] != NON_ESP_MARKER:
                return None  # ESP-in-UDP the kernel did not take: never ours to parse
            data = data[4:]
        return Datagram(data, (src[0], src[1]), (local, self.port))

    def _local_address(self, anc: list[tuple[int, int, bytes]]) -> str:
        for level, kind, raw in anc:
            if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(raw) >= 12:
                return socket.inet_ntop(socket.AF_INET, raw[8:12])  # in_pktinfo.ipi_addr: the header's destination
            if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(raw) >= 16:
                return str(ipaddress.IPv6Address(raw[:16]))  # the compressed form, as the engine's addresses
        return str(self.sock.getsockname()[0])

    def send(self, data: bytes, src: str, dst: Address) -> None:
        """Send from local address `src` (PKTINFO), adding the non-ESP marker on 4500."""
        payload = NON_ESP_MARKER + data if self.port == NAT_T_PORT and data != NAT_KEEPALIVE else data
        self.sock.sendmsg([payload], [_pktinfo(self.family, src)], 0, dst)

    def close(self) -> None:
        self.sock.close()


class IkeSockets:
    """The four sockets: (AF_INET, AF_INET6) x (500, 4500). IPv6 is skipped when the host has none."""

    def __init__(self, ports: tuple[int, int] = (IKE_PORT, NAT_T_PORT)) -> None:
        self.sockets: list[IkeSocket] = []
        self.skipped: list[str] = []
        try:
            for family in (socket.AF_INET, socket.AF_INET6):
                for port in ports:
                    try:
                        self.sockets.append(IkeSocket(family, port))
                    except OSError as exc:
                        if family == socket.AF_INET6 and not isinstance(exc, SocketSetupError) and exc.errno in (
                                97, 99):  # EAFNOSUPPORT, EADDRNOTAVAIL: no IPv6 here
                            self.skipped.append(f"udp6/{port}: {exc.strerror}")
                            continue
                        raise
        except BaseException:
            self.close()
            raise

    def for_send(self, src: Address, dst: Address) -> IkeSocket:
        family = socket.AF_INET6 if ":" in dst[0] else socket.AF_INET
        for s in self.sockets:
            if s.family == family and s.port == src[1]:
                return s
        raise OSError(97, f"no {'IPv6' if family == socket.AF_INET6 else 'IPv4'} socket on port {src[1]}")

    def send(self, data: bytes, src: Address, dst: Address) -> None:
        self.for_send(src, dst).send(data, src[0], dst)

    def close(self) -> None:
        for s in self.sockets:
            s.close()
        self.sockets = []
