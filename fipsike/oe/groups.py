"""The five opportunistic policy groups and the kernel SPD they become.

An administrator lists CIDRs in /etc/ipsec.d/policies/{private,private-or-clear,
clear-or-private,block,clear}. Each (our address, CIDR) pair becomes XFRM
policies whose action follows the group (libreswan's meaning):

- private, private-or-clear: a TRAP (allow + an ESP template, no SA): the first
  packet to a matching peer raises an ACQUIRE. Outbound only, as libreswan
  installs its on-demand policies; the instance's tunnel adds the inbound side.
- clear-or-private: PASS, both directions; the group conn answers IKE (auto=add).
- block: DROP, both directions.  clear: PASS, both directions.

Priority: XFRM picks the matching policy with the lowest priority value. It is
computed from the prefix lengths (kernel.api.default_priority), so the most
specific CIDR wins whatever its group: a /32 in clear beats a /8 in private and
a /32 in private beats a /8 in clear. libreswan orders by prefix length too, but
puts its 2-bit "base" (static / opportunistic / opportunistic-NULL) above the
prefix bits, so an authby=null group loses to any other group even with a longer
prefix; we keep prefix length first so "most specific wins" holds for every pair.
A CIDR listed in two groups is one kernel policy (XFRM keys policies by selector
and direction), so the most restrictive group keeps it and the table says so.

Our own addresses need no exception when a CIDR covers them: local delivery goes
through lo, whose disable_xfrm/disable_policy keep the SPD out of it. The
daemon's IKE traffic, to peers inside a trapped CIDR too, is kept out of the SPD
by the per-socket bypass policy on the IKE sockets (tests/oe show both on the
real kernel).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fipsike.kernel.api import default_priority
from fipsike.kernel.types import (
    Direction,
    IPAddress,
    IPNetwork,
    Mode,
    PolicyAction,
    PolicySpec,
    PolicyState,
    Template,
    TrafficSelector,
)


class PolicyGroup(enum.Enum):
    """The group files, named as libreswan names them (policies/<value>)."""

    PRIVATE = "private"
    PRIVATE_OR_CLEAR = "private-or-clear"
    CLEAR_OR_PRIVATE = "clear-or-private"
    BLOCK = "block"
    CLEAR = "clear"

    @property
    def traps(self) -> bool:
        """The first packet starts a negotiation (auto=ondemand)."""
        return self in (PolicyGroup.PRIVATE, PolicyGroup.PRIVATE_OR_CLEAR)

    @property
    def answers_ike(self) -> bool:
        """A peer in this group may initiate to us and gets an instance."""
        return self in (PolicyGroup.PRIVATE, PolicyGroup.PRIVATE_OR_CLEAR, PolicyGroup.CLEAR_OR_PRIVATE)

    @property
    def action(self) -> PolicyAction:
        if self.traps:
            return PolicyAction.TRAP
        return PolicyAction.DROP if self is PolicyGroup.BLOCK else PolicyAction.PASS

    @property
    def restrictiveness(self) -> int:
        """Who keeps a CIDR listed in two groups (higher wins): the one that leaks least."""
        return _RESTRICTIVENESS[self]


_RESTRICTIVENESS = {PolicyGroup.BLOCK: 4, PolicyGroup.PRIVATE: 3, PolicyGroup.PRIVATE_OR_CLEAR: 2,
                    PolicyGroup.CLEAR_OR_PRIVATE: 1, PolicyGroup.CLEAR: 0}

# Rank inside one specificity band of default_priority (0..7, lower wins). 0 is the instance's own
# IPsec policy (XfrmKernel's default priority gives IPSEC rank 0); bare shunts for one peer come next, so
# they beat a group policy of the same shape; the groups follow. XFRM replaces a policy with the same
# selector and direction whatever its priority, so equal ranks never have to break a tie in the kernel.
RANK_INSTANCE = 0
RANK_BARE_SHUNT = 1
_GROUP_RANK = {PolicyGroup.BLOCK: 3, PolicyGroup.PRIVATE: 4, PolicyGroup.PRIVATE_OR_CLEAR: 5,
               PolicyGroup.CLEAR_OR_PRIVATE: 6, PolicyGroup.CLEAR: 7}


def oe_priority(selector: TrafficSelector, rank: int) -> int:
    """XFRM priority of an opportunistic policy: longest prefixes first, then `rank`."""
    if not 0 <= rank <= 7:
        raise ValueError(f"rank {rank} outside 0..7")
    return default_priority(selector, rank)


def group_rank(group: PolicyGroup) -> int:
    return _GROUP_RANK[group]


class GroupError(ValueError):
    """A group list that cannot become policies (bad CIDR, no local address of its family)."""


@dataclass(frozen=True)
class GroupPolicy:
    """One row of the opportunistic policy table: a kernel policy and where it came from."""

    spec: PolicySpec
    group: PolicyGroup | None  # None: a rule the table adds itself (IPv6 neighbour discovery)
    cidr: IPNetwork
    note: str = ""  # e.g. "also listed in clear (private kept)"

    @property
    def priority(self) -> int:
        assert self.spec.priority is not None  # every spec in the table carries its priority
        return self.spec.priority

    def as_dict(self) -> dict[str, object]:
        """For `fipsike status --json` / `fipsike xfrm --json`."""
        s = self.spec
        row: dict[str, object] = {
            "group": self.group.value if self.group is not None else "ipv6-nd",
            "cidr": str(self.cidr), "src": str(s.selector.src), "dst": str(s.selector.dst),
            "dir": s.direction.name.lower(), "action": s.action.value, "priority": self.priority,
        }
        if s.template is not None:
            row["reqid"] = s.template.reqid
            row["mode"] = s.template.mode.name.lower()
        if self.note:
            row["note"] = self.note
        return row


def parse_cidr(text: str) -> IPNetwork:
    """A group-file entry: an address or CIDR; host bits must be clear (a typo, not a wish)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise GroupError(f"{text!r} is not a CIDR: {exc}") from None


def _selector(local: IPAddress, cidr: IPNetwork) -> TrafficSelector:
    return TrafficSelector(ipaddress.ip_network(local), cidr)


def _specs(local: IPAddress, cidr: IPNetwork, action: PolicyAction,
           rank: int, reqid: int) -> list[PolicySpec]:
    out_sel = _selector(local, cidr)
    prio = oe_priority(out_sel, rank)
    if action is PolicyAction.TRAP:
        # transport template with no endpoints: the kernel takes them from the packet, so one
        # policy covers every peer of the CIDR and the ACQUIRE names the peer
        return [PolicySpec(out_sel, Direction.OUT, action, Template(None, None, reqid, Mode.TRANSPORT), prio)]
    # never-negotiate groups (and our own addresses) hold in both directions, like libreswan's
    # type=passthrough/drop conns; `in` is what lets a /32 in clear punch through a /8 in block
    return [PolicySpec(out_sel, Direction.OUT, action, None, prio),
            PolicySpec(out_sel.reversed(), Direction.IN, action, None, oe_priority(out_sel.reversed(), rank))]


def policy_table(groups: Mapping[PolicyGroup, Iterable[IPNetwork | str]], local: Sequence[IPAddress],
                 reqids: Mapping[PolicyGroup, int]) -> list[GroupPolicy]:
    """Every kernel policy the groups ask for, most preferred first (as the kernel will match them).

    `local`: our addresses (left=%defaultroute resolved); each CIDR pairs with those of its family.
    `reqids`: the template reqid of each trapping group's conn; a trapping group without one (no
    conn named after it) installs nothing, as a group file without its conn does in libreswan.
    """
    chosen: dict[IPNetwork, tuple[PolicyGroup, list[str]]] = {}
    for group, cidrs in groups.items():
        if group.traps and group not in reqids:
            continue
        for raw in cidrs:
            cidr = raw if isinstance(raw, ipaddress.IPv4Network | ipaddress.IPv6Network) else parse_cidr(raw)
            if cidr in chosen:
                kept, notes = chosen[cidr]
                winner, loser = (group, kept) if group.restrictiveness > kept.restrictiveness else (kept, group)
                notes.append(f"also listed in {loser.value} ({winner.value} kept)")
                chosen[cidr] = (winner, notes)
            else:
                chosen[cidr] = (group, [])
    rows: list[GroupPolicy] = []
    for cidr, (group, notes) in chosen.items():
        locals_ = [a for a in local if a.version == cidr.version]
        for addr in locals_:
            for spec in _specs(addr, cidr, group.action, group_rank(group), reqids.get(group, 0)):
                rows.append(GroupPolicy(spec, group, cidr, "; ".join(notes)))
    if any(c.version == 6 and g.action is not PolicyAction.PASS for c, (g, _) in chosen.items()) \
            and any(a.version == 6 for a in local):
        rows.extend(_nd_bypass())
    rows.sort(key=lambda r: (r.spec.selector.version, r.spec.direction, r.priority, str(r.spec.selector)))
    return rows


# IPv6 neighbour discovery (RFC 4861) must never be trapped or blocked: a ::/0 trap would catch our
# Neighbour Solicitations (sent to a solicited-node multicast address) and the peer could never be
# reached at all, and a block group's inbound policy would drop the peer's Neighbour Advertisements.
# Above every opportunistic priority, below 0xFF00 the band stays free for an administrator's own.
ND_BYPASS_PRIORITY = 0xFF00
ICMPV6 = 58
ND_TYPES = (135, 136)  # Neighbour Solicitation, Neighbour Advertisement (RFC 4861 4.3, 4.4)


def _nd_bypass() -> list[GroupPolicy]:
    anywhere = ipaddress.ip_network("::/0")
    rows = []
    for icmp_type in ND_TYPES:
        # the kernel matches an ICMP type in the selector's source port
        sel = TrafficSelector(anywhere, anywhere, ICMPV6, icmp_type, 0)
        for direction in (Direction.OUT, Direction.IN):
            spec = PolicySpec(sel, direction, PolicyAction.PASS, None, ND_BYPASS_PRIORITY)
            rows.append(GroupPolicy(spec, None, anywhere, f"ICMPv6 type {icmp_type} (neighbour discovery)"))
    return rows


def matching_group(table: Sequence[GroupPolicy], local: IPAddress, remote: IPAddress) -> PolicyGroup | None:
    """The group whose outbound policy the kernel would pick for a packet local -> remote (lowest
    priority value), or None when no group covers the peer."""
    best: GroupPolicy | None = None
    for row in table:
        sel = row.spec.selector
        if row.group is None or row.spec.direction is not Direction.OUT or sel.version != remote.version:
            continue
        if local in sel.src and remote in sel.dst and (best is None or row.priority < best.priority):
            best = row
    return best.group if best is not None else None


def group_of(state: PolicyState, table: Sequence[GroupPolicy]) -> GroupPolicy | None:
    """The table row a policy read back from the kernel came from (selector, direction and priority
    agree), so `fipsike xfrm` / `fipsike status` can name its group; None for any other policy."""
    for row in table:
        s = row.spec
        if s.selector == state.selector and s.direction is state.direction and row.priority == state.priority:
            return row
    return None


def render_table(table: Sequence[GroupPolicy]) -> list[str]:
    """Text lines for `fipsike status`: one policy a line, in the kernel's order."""
    lines = []
    for row in table:
        s = row.spec
        tail = f"  [{row.note}]" if row.note else ""
        group = row.group.value if row.group is not None else "ipv6-nd"
        lines.append(f"{group:<17} {s.direction.name.lower():<3} {s.action.value:<5} prio {row.priority:<6} "
                     f"{s.selector.src} -> {s.selector.dst}{tail}")
    return lines
