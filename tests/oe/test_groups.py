"""The groups as kernel policies: actions, directions, and the priority order (most specific wins)."""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from fipsike.kernel.types import Direction, IPAddress, Mode, PolicyAction
from fipsike.oe.groups import (
    GroupError,
    GroupPolicy,
    PolicyGroup,
    matching_group,
    parse_cidr,
    policy_table,
    render_table,
)

ME = ipaddress.ip_address("192.0.2.1")
ME6 = ipaddress.ip_address("2001:db8::1")
REQIDS = {PolicyGroup.PRIVATE: 0x4649_0001, PolicyGroup.PRIVATE_OR_CLEAR: 0x4649_0002,
          PolicyGroup.CLEAR_OR_PRIVATE: 0x4649_0003}
PEER = ipaddress.ip_address("10.1.2.3")


def matching_in(table: list[GroupPolicy], local: IPAddress, remote: IPAddress) -> GroupPolicy | None:
    """The inbound row the kernel picks for a packet remote -> local (lowest priority value)."""
    rows = [r for r in table if r.spec.direction is Direction.IN and r.spec.selector.version == remote.version
            and remote in r.spec.selector.src and local in r.spec.selector.dst]
    return min(rows, key=lambda r: r.priority, default=None)


def test_each_group_has_its_action_and_directions() -> None:
    table = policy_table({g: ["10.0.0.0/8"] if g is PolicyGroup.PRIVATE else [f"10.{i}.0.0/16"]
                          for i, g in enumerate(PolicyGroup)}, [ME], REQIDS)
    by_group: dict[PolicyGroup | None, list[GroupPolicy]] = {}
    for row in table:
        by_group.setdefault(row.group, []).append(row)
    for g in (PolicyGroup.PRIVATE, PolicyGroup.PRIVATE_OR_CLEAR):
        (trap,) = by_group[g]  # outbound only, like libreswan's on-demand policies
        assert trap.spec.direction is Direction.OUT and trap.spec.action is PolicyAction.TRAP
        t = trap.spec.template
        assert t is not None and t.reqid == REQIDS[g] and t.mode is Mode.TRANSPORT and t.src is None and t.dst is None
        assert trap.spec.selector.src == ipaddress.ip_network(ME)
    for g, action in ((PolicyGroup.CLEAR_OR_PRIVATE, PolicyAction.PASS), (PolicyGroup.CLEAR, PolicyAction.PASS),
                      (PolicyGroup.BLOCK, PolicyAction.DROP)):
        rows = by_group[g]
        assert {r.spec.direction for r in rows} == {Direction.OUT, Direction.IN}
        assert all(r.spec.action is action and r.spec.template is None for r in rows)
        (inbound,) = [r for r in rows if r.spec.direction is Direction.IN]
        assert inbound.spec.selector.dst == ipaddress.ip_network(ME)  # reversed selector


@pytest.mark.parametrize(("wide", "narrow"), list(itertools.permutations(PolicyGroup, 2)))
def test_a_slash32_in_one_group_overrides_a_slash8_in_another(wide: PolicyGroup, narrow: PolicyGroup) -> None:
    table = policy_table({wide: ["10.0.0.0/8"], narrow: ["10.1.2.3/32"]}, [ME], REQIDS)
    assert matching_group(table, ME, PEER) is narrow
    assert matching_group(table, ME, ipaddress.ip_address("10.9.9.9")) is wide
    # inbound: the never-negotiate groups hold both ways; the /32 wins there too
    got_in = matching_in(table, ME, PEER)
    if narrow.action is not PolicyAction.TRAP:
        assert got_in is not None and got_in.group is narrow
    elif wide.action is not PolicyAction.TRAP:  # a trap has no inbound policy: the wide group's holds
        assert got_in is not None and got_in.group is wide
    else:
        assert got_in is None


@pytest.mark.parametrize(("outer", "middle", "inner"), list(itertools.permutations(PolicyGroup, 3)))
def test_most_specific_wins_through_three_nested_levels(outer: PolicyGroup, middle: PolicyGroup,
                                                          inner: PolicyGroup) -> None:
    table = policy_table({outer: ["0.0.0.0/0"], middle: ["10.1.0.0/16"], inner: ["10.1.2.0/24"]}, [ME], REQIDS)
    for peer, want in (("10.1.2.3", inner), ("10.1.9.9", middle), ("172.16.0.1", outer)):
        assert matching_group(table, ME, ipaddress.ip_address(peer)) is want, peer


def test_priorities_fall_with_prefix_length_and_are_listed_in_kernel_order() -> None:
    table = policy_table({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.PRIVATE: ["10.0.0.0/8"],
                          PolicyGroup.CLEAR: ["10.1.2.3/32", "10.1.0.0/16"]}, [ME], REQIDS)
    out = [r for r in table if r.spec.direction is Direction.OUT]
    assert [r.cidr.prefixlen for r in out] == [32, 16, 8, 0]
    prios = [r.priority for r in out]
    assert prios == sorted(prios) and len(set(prios)) == 4
    lines = render_table(table)
    assert lines[0].startswith("clear") and "10.1.2.3/32" in lines[0] and "prio" in lines[0]
    row = out[0].as_dict()
    assert row["group"] == "clear" and row["action"] == "pass" and row["dir"] == "out"


def test_a_cidr_in_two_groups_is_one_policy_the_most_restrictive_kept() -> None:
    table = policy_table({PolicyGroup.CLEAR: ["10.1.0.0/16"], PolicyGroup.PRIVATE: ["10.1.0.0/16"]}, [ME], REQIDS)
    (row,) = [r for r in table if r.spec.direction is Direction.OUT]
    assert row.group is PolicyGroup.PRIVATE and "also listed in clear" in row.note


def test_families_pair_with_their_own_local_address_and_trap_groups_need_a_conn() -> None:
    table = policy_table({PolicyGroup.PRIVATE: ["10.0.0.0/8", "2001:db8:1::/48"]}, [ME, ME6], REQIDS)
    pairs = {(str(r.spec.selector.src), str(r.cidr)) for r in table if r.group is not None}
    assert pairs == {("192.0.2.1/32", "10.0.0.0/8"), ("2001:db8::1/128", "2001:db8:1::/48")}
    assert policy_table({PolicyGroup.PRIVATE: ["10.0.0.0/8"]}, [ME], {}) == []


def test_bad_cidrs_are_typed_errors() -> None:
    with pytest.raises(GroupError, match="not a CIDR"):
        parse_cidr("10.0.0.1/8")  # host bits set: a typo
    with pytest.raises(GroupError):
        policy_table({PolicyGroup.BLOCK: ["not-an-address"]}, [ME], REQIDS)


def test_ipv6_neighbour_discovery_outranks_every_group_and_only_with_ipv6_traps_or_blocks() -> None:
    table = policy_table({PolicyGroup.PRIVATE_OR_CLEAR: ["::/0"], PolicyGroup.BLOCK: ["2001:db8:9::/48"]},
                         [ME, ME6], REQIDS)
    nd = [r for r in table if r.group is None]
    assert {(r.spec.selector.proto, r.spec.selector.src_port, r.spec.direction) for r in nd} == {
        (58, 135, Direction.OUT), (58, 135, Direction.IN), (58, 136, Direction.OUT), (58, 136, Direction.IN)}
    assert all(r.spec.action is PolicyAction.PASS for r in nd)
    assert max(r.priority for r in nd) < min(r.priority for r in table if r.group is not None)
    assert nd[0].as_dict()["group"] == "ipv6-nd"
    assert matching_group(table, ME6, ipaddress.ip_address("2001:db8:5::1")) is PolicyGroup.PRIVATE_OR_CLEAR
    assert not [r for r in policy_table({PolicyGroup.CLEAR: ["::/0"]}, [ME6], REQIDS) if r.group is None]
    assert not [r for r in policy_table({PolicyGroup.PRIVATE: ["::/0"]}, [ME], REQIDS) if r.group is None]
