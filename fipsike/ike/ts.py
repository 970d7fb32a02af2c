"""Traffic selectors and their narrowing (RFC 7296 2.9, 3.13.1)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from fipsike.ike.actions import TrafficSelectorSpec

_IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def ts_from_cidr(cidr: str, protocol: int = 0, ports: tuple[int, int] = (0, 65535)) -> TrafficSelectorSpec:
    net = ipaddress.ip_network(cidr, strict=False)
    return TrafficSelectorSpec(str(net.network_address), str(net.broadcast_address), protocol, ports[0],
                               ports[1])


@functools.lru_cache(maxsize=4096)
def _ip(text: str) -> _IP:
    return ipaddress.ip_address(text)


def _range(ts: TrafficSelectorSpec) -> tuple[_IP, _IP]:
    return _ip(ts.start), _ip(ts.end)


def intersect(a: TrafficSelectorSpec, b: TrafficSelectorSpec) -> TrafficSelectorSpec | None:
    a0, a1 = _range(a)
    b0, b1 = _range(b)
    if a0.version != b0.version:
        return None
    lo, hi = max(int(a0), int(b0)), min(int(a1), int(b1))
    if lo > hi:
        return None
    if a.protocol and b.protocol and a.protocol != b.protocol:
        return None
    proto = a.protocol or b.protocol
    p0, p1 = max(a.start_port, b.start_port), min(a.end_port, b.end_port)
    if p0 > p1:
        return None
    mk = ipaddress.IPv4Address if a0.version == 4 else ipaddress.IPv6Address
    return TrafficSelectorSpec(str(mk(lo)), str(mk(hi)), proto, p0, p1)


def narrow(offered: Sequence[TrafficSelectorSpec],
           configured: Sequence[TrafficSelectorSpec]) -> list[TrafficSelectorSpec]:
    """The parts of the peer's selectors our configuration allows, in the peer's order (RFC 7296 2.9:
    the responder narrows to a subset of what was proposed). Empty: answer TS_UNACCEPTABLE."""
    return list(_narrow(tuple(offered), tuple(configured)))


@functools.lru_cache(maxsize=1024)
def _narrow(offered: tuple[TrafficSelectorSpec, ...],
            configured: tuple[TrafficSelectorSpec, ...]) -> tuple[TrafficSelectorSpec, ...]:
    out: list[TrafficSelectorSpec] = []
    for o in offered:
        for c in configured:
            x = intersect(o, c)
            if x is not None and x not in out:
                out.append(x)
    return tuple(out)


def contains(outer: TrafficSelectorSpec, inner: TrafficSelectorSpec) -> bool:
    return intersect(outer, inner) == TrafficSelectorSpec(
        inner.start, inner.end, inner.protocol or outer.protocol, inner.start_port, inner.end_port) and (
        not outer.protocol or inner.protocol == outer.protocol)


def all_within(reply: Sequence[TrafficSelectorSpec], proposed: Sequence[TrafficSelectorSpec]) -> bool:
    """Initiator: every selector in the reply lies inside one we proposed."""
    return bool(reply) and all(any(contains(p, r) for p in proposed) for r in reply)


def for_address(ip: str) -> TrafficSelectorSpec:
    """A /32 or /128 selector for one host (transport mode without configured selectors)."""
    return TrafficSelectorSpec(ip, ip)
