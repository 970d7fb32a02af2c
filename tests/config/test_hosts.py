"""Where names and the host's own addresses come from: /etc/hosts first, DNS only when it answers."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fipsike.config.hosts import StaticHost, SystemHost, SystemResolver, hosts_lookup


def test_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n# 10.9.9.9 east\n192.1.2.23 east east.example # comment\n"
                     "2001:db8:1:2::23 east\nnot-an-address east\n")
    assert hosts_lookup(hosts, "EAST") == ("192.1.2.23", "2001:db8:1:2::23")
    assert hosts_lookup(hosts, "east.example") == ("192.1.2.23",)
    assert hosts_lookup(tmp_path / "missing", "east") == ()
    resolver = SystemResolver(hosts)
    assert resolver.resolve("east") == ("192.1.2.23", "2001:db8:1:2::23")


def test_system_host_answers_with_addresses() -> None:
    host = SystemHost()
    addrs = host.local_addresses()
    assert all(ipaddress.ip_address(a) for a in addrs)
    d = host.default_route_address(4)
    assert d is None or ipaddress.ip_address(d).version == 4


def test_static_host_counts_its_default_route_as_local() -> None:
    h = StaticHost(frozenset({"10.0.0.1"}), "192.0.2.7", None)
    assert h.local_addresses() == {"10.0.0.1", "192.0.2.7"} and h.default_route_address(6) is None
