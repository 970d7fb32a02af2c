"""Instances, negotiation and failure shunts, expiry, collisions and NULL auth, with a fake clock."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from fipsike.ike.config import ChildConfig, Connection
from fipsike.kernel.types import Acquire, Direction, IPAddress, PolicyAction, TrafficSelector
from fipsike.oe.actions import (
    AbandonInitiation,
    AcceptPeer,
    Forget,
    IgnorePeer,
    Initiate,
    InstallPolicy,
    OeAction,
    RemovePolicy,
    Terminate,
    WakeAt,
)
from fipsike.oe.groups import PolicyGroup
from fipsike.oe.opportunistic import (
    DEFAULT_SHUNT_LIFETIME,
    FailureShunt,
    GroupConn,
    NegotiationShunt,
    OeError,
    Opportunistic,
    instantiate,
    keeps_initiator_role,
)
from fipsike.oe.trigger import trigger_from_acquire, trigger_from_addresses

ME = ipaddress.ip_address("192.0.2.1")
PEER = ipaddress.ip_address("192.0.2.77")
# group traps take reqids the engine does not allocate (it counts up from 0x4649_0001)
REQ_POC, REQ_PRIV, REQ_COP = 0x4649_FF01, 0x4649_FF02, 0x4649_FF03


def template(name: str, null: bool) -> Connection:
    kw: dict[str, Any] = {"local_auth": "null", "remote_auth": "null", "local_id": "%null",
                          "remote_id": "%null"} if null else {"local_id": "%fromcert", "remote_id": "%fromcert"}
    return Connection(name=name, local_addrs=("%defaultroute",), remote_addrs=("%opportunisticgroup",),
                      children=(ChildConfig(name, (), ()),), **kw)


def conns(neg: NegotiationShunt = NegotiationShunt.PASSTHROUGH,
          fail: FailureShunt = FailureShunt.PASSTHROUGH) -> list[GroupConn]:
    return [GroupConn(PolicyGroup.PRIVATE_OR_CLEAR, template("private-or-clear", True), REQ_POC, fail, neg),
            GroupConn(PolicyGroup.PRIVATE, template("private", False), REQ_PRIV, FailureShunt.DROP,
                      NegotiationShunt.HOLD),
            GroupConn(PolicyGroup.CLEAR_OR_PRIVATE, template("clear-or-private", True), REQ_COP,
                      FailureShunt.PASSTHROUGH, NegotiationShunt.PASSTHROUGH)]


def oe(groups: dict[PolicyGroup, list[str]] | None = None, local: IPAddress = ME, **kw: Any) -> Opportunistic:
    return Opportunistic(conns(**kw), groups or {PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]}, [local])


def acquire(local: IPAddress, remote: IPAddress, reqid: int = REQ_POC) -> Acquire:
    sel = TrafficSelector(ipaddress.ip_network(local), ipaddress.ip_network(remote), 1)
    return Acquire(sel, local, remote, reqid, Direction.OUT, 8, 1)


def of(actions: list[OeAction], cls: type) -> list[Any]:
    return [a for a in actions if isinstance(a, cls)]


def test_acquire_instantiates_a_host_to_host_instance_with_its_negotiation_shunt() -> None:
    o = oe()
    acts = o.on_acquire(acquire(ME, PEER), now=100.0)
    (init,) = of(acts, Initiate)
    conn = init.connection
    assert conn.name == f"private-or-clear#{ME}-{PEER}"
    assert conn.local_addrs == (str(ME),) and conn.remote_addrs == (str(PEER),)
    (child,) = conn.children
    assert [(t.start, t.end) for t in child.local_ts] == [(str(ME), str(ME))]
    assert [(t.start, t.end) for t in child.remote_ts] == [(str(PEER), str(PEER))]
    (shunt,) = of(acts, InstallPolicy)  # passthrough while negotiating, outranking the 0/0 trap
    assert shunt.spec.action is PolicyAction.PASS and shunt.spec.direction is Direction.OUT
    assert shunt.spec.selector == TrafficSelector.host_to_host(ME, PEER)
    assert shunt.spec.priority < o.table[0].priority
    assert acts.index(shunt) < acts.index(init)  # the shunt is in before the negotiation starts
    deadline = o.next_deadline()
    assert deadline is not None and of(acts, WakeAt)[-1].at == deadline > 100.0
    # a second ACQUIRE for the same peer (the larval state expired, another flow) starts nothing
    assert not of(o.on_acquire(acquire(ME, PEER), now=101.0), Initiate)
    (row,) = o.status(101.0)
    assert row["kind"] == "instance" and row["group"] == "private-or-clear" and row["shunt"] == "passthrough"


def test_hold_negotiation_shunt_leaves_the_trap_to_the_kernel() -> None:
    o = oe(neg=NegotiationShunt.HOLD)
    acts = o.on_acquire(acquire(ME, PEER), now=0.0)
    assert len(of(acts, Initiate)) == 1 and not of(acts, InstallPolicy) and not of(acts, RemovePolicy)


def test_failure_shunt_lives_for_the_shunt_lifetime_then_the_next_packet_retries() -> None:
    o = oe()
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    acts = o.on_failed(name, now=5.0)
    (shunt,) = of(acts, InstallPolicy)
    assert shunt.spec.action is PolicyAction.PASS and shunt.spec.selector == TrafficSelector.host_to_host(ME, PEER)
    assert of(acts, Forget) == [Forget(name)]
    (row,) = o.status(5.0)
    assert row["kind"] == "bare-shunt" and row["shunt"] == "passthrough"
    assert row["expires_in"] == DEFAULT_SHUNT_LIFETIME
    assert o.next_deadline() == 5.0 + DEFAULT_SHUNT_LIFETIME
    assert not of(o.on_acquire(acquire(ME, PEER), now=6.0), Initiate)  # shunted: no retry yet
    assert o.timer(5.0 + DEFAULT_SHUNT_LIFETIME - 0.1) == [WakeAt(5.0 + DEFAULT_SHUNT_LIFETIME)]  # not yet
    expired = o.timer(5.0 + DEFAULT_SHUNT_LIFETIME)
    assert of(expired, RemovePolicy) == [RemovePolicy(shunt.spec.selector, Direction.OUT)]
    assert o.status(1000.0) == [] and o.next_deadline() is None
    assert len(of(o.on_acquire(acquire(ME, PEER), now=1000.0), Initiate)) == 1  # retried


@pytest.mark.parametrize(("fail", "action"), [(FailureShunt.DROP, PolicyAction.DROP),
                                              (FailureShunt.REJECT, PolicyAction.DROP),
                                              (FailureShunt.PASSTHROUGH, PolicyAction.PASS)])
def test_failure_shunt_kinds(fail: FailureShunt, action: PolicyAction) -> None:
    o = oe(fail=fail, neg=NegotiationShunt.HOLD)
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    (shunt,) = of(o.on_failed(name, now=1.0), InstallPolicy)
    assert shunt.spec.action is action
    assert o.status(1.0)[0]["shunt"] == fail.value


def test_failureshunt_none_removes_the_negotiation_shunt_and_keeps_no_entry() -> None:
    o = oe(fail=FailureShunt.NONE)
    acts = o.on_acquire(acquire(ME, PEER), now=0.0)
    neg = of(acts, InstallPolicy)[0].spec
    out = o.on_failed(of(acts, Initiate)[0].connection.name, now=1.0)
    assert of(out, RemovePolicy) == [RemovePolicy(neg.selector, Direction.OUT)] and not of(out, InstallPolicy)
    assert o.status(1.0) == []


def test_a_negotiation_that_never_ends_is_failed_at_its_deadline() -> None:
    o = oe()
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    deadline = o.next_deadline()
    assert deadline is not None and deadline > 60
    acts = o.timer(deadline)
    assert of(acts, AbandonInitiation) == [AbandonInitiation(name)]
    assert of(acts, InstallPolicy)[0].spec.action is PolicyAction.PASS
    assert o.status(deadline)[0]["kind"] == "bare-shunt"


def test_success_keeps_the_instance_until_its_ike_lifetime_and_rekeys_refresh_it() -> None:
    o = oe()
    conn = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection
    acts = o.on_established(conn.name, now=2.0)
    # the tunnel's own /32-/32 policy replaced the negotiation shunt in the kernel: nothing to remove
    assert not of(acts, RemovePolicy) and not of(acts, InstallPolicy)
    (row,) = o.status(2.0)
    assert row["state"] == "established" and row["expires_in"] == conn.life_time and "shunt" not in row
    o.on_established(conn.name, now=1000.0)  # IkeSaRekeyed
    assert o.next_deadline() == 1000.0 + conn.life_time
    acts = o.timer(1000.0 + conn.life_time)
    assert of(acts, Terminate) == [Terminate(conn.name)] and of(acts, Forget) == [Forget(conn.name)]
    assert o.status(1e9) == []


def test_down_takes_out_a_negotiation_shunt_that_a_refused_child_sa_left_behind() -> None:
    """The kernel refused the Child SA (no ESP, say): the passthrough shunt was never replaced. When the
    instance goes, so does the shunt (an ENOENT when the tunnel had replaced it is fine)."""
    o = oe()
    conn = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection
    o.on_established(conn.name, now=1.0)
    out = o.on_down(conn.name, now=5.0)
    (rm,) = of(out, RemovePolicy)
    assert (rm.selector, rm.direction) == (TrafficSelector.host_to_host(ME, PEER), Direction.OUT)
    assert o.status(5.0) == []


def test_down_forgets_the_instance_and_restores_a_slash32_group_policy_it_replaced() -> None:
    o = oe({PolicyGroup.CLEAR_OR_PRIVATE: [f"{PEER}/32"], PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]})
    acts = o.on_peer_initiated(ME, PEER, now=0.0)
    (accept,) = of(acts, AcceptPeer)
    assert accept.connection.name.startswith("clear-or-private#")
    o.on_established(accept.connection.name, now=1.0)
    out = o.on_down(accept.connection.name, now=50.0)
    restored = {(a.spec.direction, a.spec.action) for a in of(out, InstallPolicy)}
    assert restored == {(Direction.OUT, PolicyAction.PASS), (Direction.IN, PolicyAction.PASS)}
    assert of(out, Forget) == [Forget(accept.connection.name)] and o.status(50.0) == []


def test_an_expired_bare_shunt_on_a_slash32_group_entry_puts_the_trap_back() -> None:
    o = oe({PolicyGroup.PRIVATE: [f"{PEER}/32"]})
    name = of(o.on_acquire(acquire(ME, PEER, REQ_PRIV), now=0.0), Initiate)[0].connection.name
    (drop,) = of(o.on_failed(name, now=1.0), InstallPolicy)
    assert drop.spec.action is PolicyAction.DROP  # private: failureshunt=drop
    out = o.timer(1.0 + DEFAULT_SHUNT_LIFETIME)
    assert not of(out, RemovePolicy)  # XFRM replaced the trap with the shunt (same selector) ...
    (trap,) = of(out, InstallPolicy)  # ... so the trap is installed again, not a hole left
    assert trap.spec.action is PolicyAction.TRAP and trap.spec.template.reqid == REQ_PRIV


def test_acquires_outside_trapping_groups_start_nothing() -> None:
    o = oe({PolicyGroup.PRIVATE_OR_CLEAR: ["10.0.0.0/8"], PolicyGroup.CLEAR: ["10.1.0.0/16"]})
    for peer in ("10.1.0.5", "172.16.0.1"):
        assert not of(o.on_acquire(acquire(ME, ipaddress.ip_address(peer)), now=0.0), Initiate)
    assert of(o.on_acquire(acquire(ME, ipaddress.ip_address("10.2.0.5")), now=0.0), Initiate)


@pytest.mark.parametrize(("group", "accepted"), [(PolicyGroup.PRIVATE, True), (PolicyGroup.PRIVATE_OR_CLEAR, True),
                                                 (PolicyGroup.CLEAR_OR_PRIVATE, True), (PolicyGroup.CLEAR, False),
                                                 (PolicyGroup.BLOCK, False)])
def test_responder_instantiates_for_groups_that_answer_ike(group: PolicyGroup, accepted: bool) -> None:
    o = oe({group: ["192.0.2.0/24"]})
    acts = o.on_peer_initiated(ME, PEER, now=0.0)
    if accepted:
        (a,) = of(acts, AcceptPeer)
        assert a.connection.name.startswith(f"{group.value}#") and o.status(0.0)[0]["role"] == "responder"
    else:
        assert of(acts, IgnorePeer) and o.status(0.0) == []


def test_a_peer_initiating_during_a_failure_shunt_is_answered_but_the_shunt_holds_till_the_tunnel() -> None:
    o = oe()
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    o.on_failed(name, now=1.0)
    acts = o.on_peer_initiated(ME, PEER, now=2.0)
    assert of(acts, AcceptPeer) and not of(acts, RemovePolicy) and not of(acts, InstallPolicy)
    (row,) = o.status(2.0)
    assert row["kind"] == "instance" and row["role"] == "responder" and row["shunt"] == "passthrough"
    # the answer fails (or was spoofed): the shunt, still in the kernel, holds on with its old deadline
    answer = of(acts, AcceptPeer)[0].connection.name
    out = o.on_failed(answer, now=3.0)
    assert not of(out, RemovePolicy) and not of(out, InstallPolicy) and of(out, Forget) == [Forget(answer)]
    (row,) = o.status(3.0)
    assert row["kind"] == "bare-shunt" and row["expires_in"] == 1.0 + DEFAULT_SHUNT_LIFETIME - 3.0
    # answered again, and this time the tunnel comes up: it replaced the shunt, nothing to remove
    answer = of(o.on_peer_initiated(ME, PEER, now=4.0), AcceptPeer)[0].connection.name
    assert not of(o.on_established(answer, now=5.0), RemovePolicy)
    assert o.status(5.0)[0]["state"] == "established"


def ike_sas_after_simultaneous_acquires(a_addr: IPAddress, b_addr: IPAddress) -> int:
    """Both nodes ACQUIRE at once, each IKE_SA_INIT crosses the other's on the wire. An IKE SA comes
    up for an initiation that its initiator did not abandon and its responder accepted."""
    groups = {PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0" if a_addr.version == 4 else "::/0"]}
    a, b = (Opportunistic(conns(), groups, [x]) for x in (a_addr, b_addr))
    a_init = of(a.on_acquire(acquire(a_addr, b_addr), 0.0), Initiate)
    b_init = of(b.on_acquire(acquire(b_addr, a_addr), 0.0), Initiate)
    assert len(a_init) == len(b_init) == 1
    at_a = a.on_peer_initiated(a_addr, b_addr, 0.1)  # B's IKE_SA_INIT reaches A
    at_b = b.on_peer_initiated(b_addr, a_addr, 0.1)  # A's reaches B
    a_alive = not of(at_a, AbandonInitiation)
    b_alive = not of(at_b, AbandonInitiation)
    for node, at, own in ((a, at_a, a_init[0].connection.name), (b, at_b, b_init[0].connection.name)):
        if of(at, AbandonInitiation):
            # the engine reports the abandoned initiation as failed: that must not shunt the peer
            assert of(at, Forget) == [Forget(own)] and node.on_failed(own, 0.2) == []
            assert node.status(0.2)[0]["state"] == "negotiating"
    return int(a_alive and bool(of(at_b, AcceptPeer))) + int(b_alive and bool(of(at_a, AcceptPeer)))


@pytest.mark.parametrize(("x", "y"), [("192.0.2.1", "192.0.2.2"), ("192.0.2.200", "10.0.0.1"),
                                      ("2001:db8::1", "2001:db8::ff")])
def test_simultaneous_acquires_end_with_one_ike_sa(x: str, y: str) -> None:
    a, b = ipaddress.ip_address(x), ipaddress.ip_address(y)
    assert ike_sas_after_simultaneous_acquires(a, b) == 1
    assert ike_sas_after_simultaneous_acquires(b, a) == 1
    assert keeps_initiator_role(a, b) != keeps_initiator_role(b, a)


def test_null_auth_only_on_instances_of_null_groups() -> None:
    gcs = {gc.group: gc for gc in conns()}
    null = instantiate(gcs[PolicyGroup.PRIVATE_OR_CLEAR], ME, PEER)
    assert (null.local_auth, null.remote_auth, null.allow_null) == ("null", "null", True)
    assert (null.local_id, null.remote_id) == ("%null", "%null")
    cert = instantiate(gcs[PolicyGroup.PRIVATE], ME, PEER)
    assert (cert.local_auth, cert.remote_auth, cert.allow_null) == ("pubkey", "pubkey", False)
    assert not gcs[PolicyGroup.PRIVATE_OR_CLEAR].template.allow_null  # the template itself never allows it
    with pytest.raises(OeError):
        GroupConn(PolicyGroup.CLEAR, template("clear", False), REQ_COP)


def test_status_text_names_groups_and_time_left() -> None:
    o = oe()
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    assert o.render_status(0.0)[0].startswith(f"{name} from group private-or-clear: negotiating")
    o.on_failed(name, now=0.0)
    assert o.render_status(100.0) == [f"bare shunt {ME} -> {PEER} passthrough (private-or-clear), 800s left"]


def test_oe_initiate_trigger() -> None:
    t = trigger_from_addresses("192.0.2.1", " 192.0.2.77 ")
    assert (t.local, t.remote) == (ME, PEER) and t.as_dict() == {"local": str(ME), "remote": str(PEER)}
    assert trigger_from_acquire(acquire(ME, PEER)) == t
    o = oe()
    assert len(of(o.on_trigger(t.local, t.remote, 0.0), Initiate)) == 1
    for local, remote, msg in (("x", "192.0.2.2", "--local 'x' is not an IP address"),
                               ("192.0.2.1", "2001:db8::1", "different address families"),
                               ("192.0.2.1", "192.0.2.1", "both"), ("0.0.0.0", "192.0.2.1", "unspecified"),
                               ("192.0.2.1", "224.0.0.5", "multicast")):
        with pytest.raises(OeError, match=msg):
            trigger_from_addresses(local, remote)


def test_reload_installs_the_changes_before_removing_what_went() -> None:
    o = oe({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.CLEAR: ["10.1.0.0/16"]})
    kept = next(r.spec for r in o.table if r.group is PolicyGroup.PRIVATE_OR_CLEAR)
    acts = o.reload({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.BLOCK: ["10.1.0.0/16"]})
    installs, removes = of(acts, InstallPolicy), of(acts, RemovePolicy)
    assert {(a.spec.direction, a.spec.action) for a in installs} == {(Direction.OUT, PolicyAction.DROP),
                                                                     (Direction.IN, PolicyAction.DROP)}
    assert removes == [] and all(a.spec != kept for a in installs)  # same selectors: replaced in place
    assert max(acts.index(a) for a in installs) < min((acts.index(a) for a in removes), default=len(acts))
    acts = o.reload({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]})
    assert not of(acts, InstallPolicy) and len(of(acts, RemovePolicy)) == 2


def test_acquires_are_routed_by_reqid() -> None:
    o = oe()
    assert o.owns_reqid(REQ_POC) and o.owns_reqid(REQ_PRIV)
    assert not o.owns_reqid(REQ_COP) and not o.owns_reqid(0x4649_0999)  # clear-or-private never traps


def test_a_failed_answer_installs_no_shunt_and_answers_are_capped() -> None:
    o = Opportunistic(conns(), {PolicyGroup.PRIVATE: ["192.0.2.0/24"]}, [ME], max_answering=2)
    name = of(o.on_peer_initiated(ME, PEER, now=0.0), AcceptPeer)[0].connection.name
    out = o.on_failed(name, now=1.0)  # e.g. a spoofed IKE_SA_INIT that never authenticated
    assert not of(out, InstallPolicy) and o.status(1.0) == []
    for last in (1, 2):
        assert of(o.on_peer_initiated(ME, ipaddress.ip_address(f"192.0.2.{last}0"), now=2.0), AcceptPeer)
    assert of(o.on_peer_initiated(ME, ipaddress.ip_address("192.0.2.30"), now=2.0), IgnorePeer)


def test_a_refused_child_sa_fails_an_established_instance_whole_and_later_events_leave_the_shunt_alone() -> None:
    o = oe()
    name = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    o.on_established(name, 1.0)
    acts = o.on_child_refused(name, 1.0)
    assert of(acts, Terminate) == [Terminate(name)] and of(acts, Forget) == [Forget(name)]
    assert acts.index(Terminate(name)) < acts.index(Forget(name))  # the IKE SA goes before its conn
    (shunt,) = of(acts, InstallPolicy)
    assert shunt.spec.action is PolicyAction.PASS  # failureshunt=passthrough
    assert [r["kind"] for r in o.status(1.0)] == ["bare-shunt"]
    # what the engine says next about that IKE SA changes nothing
    assert o.on_established(name, 1.1) == [] and o.on_down(name, 1.2) == [] and o.on_failed(name, 1.2) == []
    assert [r["kind"] for r in o.status(1.2)] == ["bare-shunt"]
    # once a Child SA is up, a later refused one (a rekey's) does not end the instance
    other = ipaddress.ip_address("192.0.2.78")
    n2 = of(o.on_acquire(acquire(ME, other), now=2.0), Initiate)[0].connection.name
    o.on_established(n2, 2.1)
    o.on_child_installed(n2)
    assert o.on_child_refused(n2, 2.2) == [] and o.on_failed(n2, 2.2) == []
    # the peer refusing the IKE_AUTH's Child SA (ChildSaFailed after IkeSaEstablished) is the same failure
    third = ipaddress.ip_address("192.0.2.79")
    n3 = of(o.on_acquire(acquire(ME, third), now=3.0), Initiate)[0].connection.name
    o.on_established(n3, 3.1)
    assert of(o.on_failed(n3, 3.1), Terminate) == [Terminate(n3)]


def test_reload_tears_down_entries_the_new_groups_no_longer_give_to_their_group() -> None:
    o = oe({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]})
    far = ipaddress.ip_address("198.51.100.9")
    n1 = of(o.on_acquire(acquire(ME, PEER), now=0.0), Initiate)[0].connection.name
    o.on_established(n1, 1.0)
    o.on_child_installed(n1)
    n2 = of(o.on_acquire(acquire(ME, far), now=0.0), Initiate)[0].connection.name
    assert o.on_failed(n2, 1.0)  # a bare shunt for `far`
    # PEER's /32 to clear; `far` stays in private-or-clear
    acts = o.reload({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.CLEAR: [f"{PEER}/32"]}, now=2.0)
    assert of(acts, Terminate) == [Terminate(n1)]
    assert [r["remote"] for r in o.status(2.0)] == [str(far)]
    # the clear /32 is put back again once the engine has removed the instance's own policies
    late = o.on_down(n1, 3.0)
    assert {(a.spec.direction, a.spec.action) for a in of(late, InstallPolicy)} == \
        {(Direction.OUT, PolicyAction.PASS), (Direction.IN, PolicyAction.PASS)}
    assert o.on_down(n1, 3.1) == []  # once
    # the group conn removed: its bare shunt goes, with its policy
    acts = o.reload({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]}, conns=[], now=4.0)
    assert o.status(4.0) == [] and not of(acts, Terminate)
    assert any(isinstance(a, RemovePolicy) and a.selector.dst == ipaddress.ip_network(far) for a in acts)
    assert o.owns_reqid(REQ_POC) is False


def test_the_collision_rule_rests_on_the_initiator_spis_and_yields_to_a_rewritten_port() -> None:
    a, b, n = (ipaddress.ip_address(x) for x in ("10.0.0.1", "10.0.0.2", "10.0.0.200"))
    low, high = bytes.fromhex("01" * 8), bytes.fromhex("f0" * 8)
    # across a NAT: A sees (a, b), B sees (b, n); the addresses alone would have both keep initiating
    assert keeps_initiator_role(a, b) and keeps_initiator_role(b, n)
    assert [keeps_initiator_role(a, b, low, high), keeps_initiator_role(b, n, high, low)] == [True, False]
    assert [keeps_initiator_role(a, b, high, low), keeps_initiator_role(b, n, low, high)] == [False, True]
    # the peer's port rewritten: answer it, whatever the SPIs
    assert not keeps_initiator_role(b, n, low, high, peer_port=40500)
