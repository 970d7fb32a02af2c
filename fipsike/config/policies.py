"""The opportunistic policy groups: /etc/ipsec.d/policies/{private,private-or-clear,clear-or-private,
block,clear}, one CIDR per line, `#` comments. A group's members go to the conn of the same name
(with right=%opportunisticgroup); their effect is the opportunistic issue's.

A bad CIDR is a FILE:LINE error. The same CIDR in two groups is an error too (naming both places):
which policy would apply is ambiguous, and fipsike does not run a configuration halfway.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from fipsike.config.errors import ConfigError, Diagnostic, Location
from fipsike.config.syntax import read_text

GROUPS = ("private", "private-or-clear", "clear-or-private", "block", "clear")
# groups whose policy sends cleartext by design (private-or-clear only falls back to it through its
# conn's failure shunt, which FIPS mode overrides)
PASSTHROUGH_GROUPS = ("clear", "clear-or-private")


@dataclass(frozen=True)
class Member:
    network: str
    location: Location


@dataclass
class PolicyGroups:
    groups: dict[str, list[Member]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def members(self, group: str) -> list[str]:
        return [m.network for m in self.groups.get(group, [])]


def parse_group(path: Path, name: str) -> tuple[list[Member], list[Diagnostic]]:
    members: list[Member] = []
    errors: list[Diagnostic] = []
    text = read_text(path, Location(str(path), 0))
    for n, line in enumerate(text.split("\n"), 1):
        body = line.partition("#")[0].strip()
        if not body:
            continue
        loc = Location(str(path), n)
        for item in body.split():
            try:
                net = ipaddress.ip_network(item, strict=True)
            except ValueError as exc:
                errors.append(Diagnostic(loc, f"{item[:60]!r} is not a CIDR ({exc})", "", name))
                continue
            members.append(Member(str(net), loc))
    return members, errors


def load_groups(policies_dir: Path) -> PolicyGroups:
    """Every group file present in `policies_dir` (a missing file is an empty group)."""
    out = PolicyGroups()
    errors: list[Diagnostic] = []
    first: dict[str, tuple[str, Member]] = {}
    for g in GROUPS:
        path = policies_dir / g
        if not path.exists():
            continue
        members, errs = parse_group(path, g)
        errors += errs
        out.groups[g] = members
        out.files.append(str(path))
        for m in members:
            seen = first.get(m.network)
            if seen is not None and seen[0] != g:
                errors.append(Diagnostic(m.location, f"{m.network} is also in group {seen[0]} "
                                                     f"({seen[1].location}): one CIDR, one policy", "", g))
            elif seen is None:
                first[m.network] = (g, m)
    if errors:
        raise ConfigError(errors)
    return out
