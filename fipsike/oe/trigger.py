"""`fipsike oe-initiate --local ADDR --remote ADDR`: an opportunistic negotiation without a packet.

libreswan's `whack --oppohere/--oppothere` does the same. This is the pure part: the two
addresses become the trigger that an ACQUIRE would have given (Opportunistic.on_trigger).
The verb itself needs the daemon's control socket and is not here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from fipsike.kernel.types import Acquire, IPAddress
from fipsike.oe.opportunistic import OeError


@dataclass(frozen=True)
class Trigger:
    """What starts an instance: our address and the peer's, as in the first packet."""

    local: IPAddress
    remote: IPAddress

    def as_dict(self) -> dict[str, str]:
        return {"local": str(self.local), "remote": str(self.remote)}


def _address(text: str, which: str) -> IPAddress:
    try:
        addr = ipaddress.ip_address(text.strip())
    except ValueError:
        raise OeError(f"--{which} {text!r} is not an IP address") from None
    if addr.is_unspecified or addr.is_multicast or (addr.version == 4 and addr == ipaddress.IPv4Address(
            "255.255.255.255")):
        raise OeError(f"--{which} {addr} cannot be an IPsec peer (unspecified, multicast or broadcast)")
    return addr


def trigger_from_addresses(local: str, remote: str) -> Trigger:
    """Parse and check `--local` / `--remote`; an OeError names the bad argument."""
    loc, rem = _address(local, "local"), _address(remote, "remote")
    if loc.version != rem.version:
        raise OeError(f"--local {loc} and --remote {rem} are of different address families")
    if loc == rem:
        raise OeError(f"--local and --remote are both {loc}")
    return Trigger(loc, rem)


def trigger_from_acquire(acquire: Acquire) -> Trigger:
    return Trigger(acquire.selector.src.network_address, acquire.selector.dst.network_address)
