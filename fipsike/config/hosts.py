"""Where the loader learns about this host: its addresses, its default route, and names.

Injected (tests give fixed answers); the system versions read the kernel's addresses through
pyroute2, the default route through a connected UDP socket (a route lookup: no packet is sent),
/etc/hosts, and DNS only when it answers.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class HostAddresses(Protocol):
    def local_addresses(self) -> frozenset[str]: ...

    def default_route_address(self, version: int) -> str | None: ...


class Resolver(Protocol):
    def resolve(self, name: str) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class StaticHost:
    """Fixed answers, for tests and for `check-config` run on another machine."""

    addresses: frozenset[str] = frozenset()
    default4: str | None = None
    default6: str | None = None

    def local_addresses(self) -> frozenset[str]:
        return self.addresses | {a for a in (self.default4, self.default6) if a}

    def default_route_address(self, version: int) -> str | None:
        return self.default4 if version == 4 else self.default6


@dataclass(frozen=True)
class StaticResolver:
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def resolve(self, name: str) -> tuple[str, ...]:
        return self.names.get(name.lower(), ())


class SystemHost:
    def local_addresses(self) -> frozenset[str]:
        try:
            from pyroute2 import IPRoute

            with IPRoute() as ipr:
                return frozenset(str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr()
                                 if a.get_attr("IFA_ADDRESS"))
        except Exception:  # noqa: BLE001 - no netlink (a container without it): no local addresses known
            return frozenset()

    def default_route_address(self, version: int) -> str | None:
        family, probe = (socket.AF_INET, "192.0.2.1") if version == 4 else (socket.AF_INET6, "2001:db8::1")
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))  # RFC 5737 / RFC 3849 documentation address: a route lookup only
                addr: str = s.getsockname()[0]
                return addr
        except OSError:
            return None


class SystemResolver:
    def __init__(self, hosts_file: Path = Path("/etc/hosts")) -> None:
        self.hosts_file = hosts_file

    def resolve(self, name: str) -> tuple[str, ...]:
        found = hosts_lookup(self.hosts_file, name)
        if found:
            return found
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_UDP)
        except (OSError, UnicodeError):
            return ()
        return tuple(dict.fromkeys(str(i[4][0]) for i in infos))


def hosts_lookup(path: Path, name: str) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    out: list[str] = []
    for line in text.splitlines():
        fields = line.partition("#")[0].split()
        if len(fields) >= 2 and name.lower() in (f.lower() for f in fields[1:]):
            try:
                out.append(str(ipaddress.ip_address(fields[0])))
            except ValueError:
                continue
    return tuple(dict.fromkeys(out))
