"""The opportunistic policies in this host's real XFRM, in throw-away network namespaces.

The host kernel has policies, ACQUIRE events and shunts, not ESP: packets here either hit a
trap (and raise an ACQUIRE), pass in the clear, or are dropped. Left is 192.0.2.1, right is
192.0.2.2 (a veth pair); the opportunistic node is left.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fipsike.kernel.types import Acquire, Direction, IPAddress, PolicyAction
from fipsike.kernel.xfrm import XfrmKernel
from fipsike.oe.actions import Initiate, OeAction, RemovePolicy
from fipsike.oe.groups import PolicyGroup, group_of
from fipsike.oe.kernel_side import apply_policies
from fipsike.oe.opportunistic import DEFAULT_SHUNT_LIFETIME, NegotiationShunt, Opportunistic
from providers import open_router
from tests.kernel.netns import netns_pair, ping, sh
from tests.oe.test_opportunistic import REQ_POC, REQ_PRIV, conns

pytestmark = pytest.mark.netns

LEFT, RIGHT = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2")
ROOT = Path(__file__).resolve().parents[2]
ACQ_EXPIRES = 1


@pytest.fixture
def pair() -> Iterator[tuple[str, str, XfrmKernel]]:
    with netns_pair() as (left, right), XfrmKernel(open_router("default"), netns=left) as k:
        # the larval ACQUIRE state blocks new ACQUIREs for its flow for xfrm_acq_expires (30 s by default,
        # far shorter than the 900 s shunt lifetime); 1 s lets a test see the retry without waiting
        sh("ip", "netns", "exec", left, "sysctl", "-q", "-w", f"net.core.xfrm_acq_expires={ACQ_EXPIRES}")
        try:
            yield left, right, k
        finally:
            k.flush_owned()


def node(k: XfrmKernel, groups: dict[PolicyGroup, list[str]], **kw: object) -> Opportunistic:
    o = Opportunistic(conns(**kw), groups, [LEFT])  # type: ignore[arg-type]
    rest, errors = apply_policies(k, o.install())
    assert errors == [] and rest == []
    return o


def carry(k: XfrmKernel, actions: list[OeAction]) -> list[OeAction]:
    rest, errors = apply_policies(k, actions)
    assert errors == []
    return rest


def acquires(k: XfrmKernel, timeout: float = 3.0) -> list[Acquire]:
    deadline = time.monotonic() + timeout
    found: list[Acquire] = []
    while not found and time.monotonic() < deadline:
        found = [e for e in k.read_events(0.2) if isinstance(e, Acquire)]
    return found


def ping_left(left: str, count: int = 2) -> int:
    return ping(left, str(LEFT), str(RIGHT), count, 1.0)


def ping_right(right: str, count: int = 2) -> int:
    return ping(right, str(RIGHT), str(LEFT), count, 1.0)


def test_group_policies_are_in_the_kernel_most_specific_first(pair: tuple[str, str, XfrmKernel]) -> None:
    left, _, k = pair
    groups = {PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.PRIVATE: ["198.51.100.0/24"],
              PolicyGroup.CLEAR_OR_PRIVATE: ["198.51.100.128/25"], PolicyGroup.BLOCK: ["203.0.113.0/24"],
              PolicyGroup.CLEAR: ["192.0.2.2/32", "198.51.100.7/32"]}
    o = node(k, groups)
    got = {(p.selector, p.direction): p for p in k.list_policies()}
    want = {(r.spec.selector, r.spec.direction): r for r in o.table}
    assert set(got) == set(want)
    assert all(group_of(p, o.table) is want[key] for key, p in got.items())  # each kernel policy named
    for key, row in want.items():
        p = got[key]
        assert p.priority == row.priority
        if row.spec.action is PolicyAction.TRAP:  # read back as allow + template
            assert p.action is PolicyAction.IPSEC and p.templates[0].reqid == row.spec.template.reqid  # type: ignore[union-attr]
        else:
            assert p.action is row.spec.action
    # `fipsike xfrm --json` shows the same policies; sorted by priority, the most specific come first
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "fipsike", "xfrm", "--json", "--netns", left], capture_output=True,
                       text=True, env=env, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = [p for p in json.loads(r.stdout)["policies"] if p["dir"] == "out"]
    ranked = sorted(out, key=lambda p: p["priority"])
    assert [int(p["selector"]["dst"].split("/")[1]) for p in ranked] == [32, 32, 25, 24, 24, 0]
    assert {p["selector"]["dst"] for p in ranked[:2]} == {"192.0.2.2/32", "198.51.100.7/32"}
    assert ranked[1]["priority"] < ranked[2]["priority"] < ranked[3]["priority"] < ranked[5]["priority"]


def test_a_packet_to_a_private_or_clear_peer_raises_an_acquire_and_instantiates(
        pair: tuple[str, str, XfrmKernel]) -> None:
    left, _, k = pair
    o = node(k, {PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"]}, neg=NegotiationShunt.HOLD)
    assert ping_left(left, 1) == 0  # the trap holds the first packet: nothing answered in the clear
    (acq,) = acquires(k)[:1]
    assert acq.reqid == REQ_POC and acq.selector.dst == ipaddress.ip_network(RIGHT)
    rest = carry(k, o.on_acquire(acq, now=0.0))
    (init,) = [a for a in rest if isinstance(a, Initiate)]
    assert init.connection.remote_addrs == (str(RIGHT),) and init.connection.allow_null


def test_passthrough_negotiation_then_failure_shunt_then_expiry_and_retry(pair: tuple[str, str, XfrmKernel]) -> None:
    left, _, k = pair
    o = node(k, {PolicyGroup.PRIVATE_OR_CLEAR: ["192.0.2.0/24"]})  # negotiation + failure: passthrough
    ping_left(left, 1)
    (acq,) = acquires(k)[:1]
    rest = carry(k, o.on_acquire(acq, now=0.0))
    name = next(a for a in rest if isinstance(a, Initiate)).connection.name
    assert ping_left(left) == 2  # negotiating: passthrough lets traffic out in the clear
    assert acquires(k, 0.5) == []
    carry(k, o.on_failed(name, now=10.0))
    (shunt,) = [p for p in k.list_policies() if p.selector.dst == ipaddress.ip_network(RIGHT)]
    assert shunt.action is PolicyAction.PASS
    assert ping_left(left) == 2  # failed: the bare passthrough shunt keeps it in the clear
    assert o.status(10.0)[0]["kind"] == "bare-shunt"
    expired = o.timer(10.0 + DEFAULT_SHUNT_LIFETIME)
    assert any(isinstance(a, RemovePolicy) for a in expired)
    carry(k, expired)
    assert [p.selector.dst for p in k.list_policies()] == [ipaddress.ip_network("192.0.2.0/24")]
    time.sleep(ACQ_EXPIRES + 0.5)
    ping_left(left, 1)
    (again,) = acquires(k)[:1]  # the trap is back: the next packet tries again
    assert any(isinstance(a, Initiate) for a in carry(k, o.on_acquire(again, now=1000.0)))


@pytest.mark.parametrize("cidr", ["192.0.2.0/24", "192.0.2.2/32"])
def test_private_failure_drops_then_the_trap_returns(pair: tuple[str, str, XfrmKernel], cidr: str) -> None:
    left, _, k = pair
    o = node(k, {PolicyGroup.PRIVATE: [cidr]})  # private: negotiationshunt=hold, failureshunt=drop
    ping_left(left, 1)
    (acq,) = acquires(k)[:1]
    assert acq.reqid == REQ_PRIV
    name = next(a for a in carry(k, o.on_acquire(acq, now=0.0)) if isinstance(a, Initiate)).connection.name
    carry(k, o.on_failed(name, now=1.0))
    assert ping_left(left) == 0 and acquires(k, 0.5) == []  # dropped, and no new ACQUIRE either
    carry(k, o.timer(1.0 + DEFAULT_SHUNT_LIFETIME))
    (pol,) = [p for p in k.list_policies() if p.direction is Direction.OUT]
    assert pol.action is PolicyAction.IPSEC and pol.templates[0].reqid == REQ_PRIV  # the trap, restored
    time.sleep(ACQ_EXPIRES + 0.5)
    ping_left(left, 1)
    assert acquires(k)


@pytest.mark.parametrize(("groups", "passes"), [
    ({PolicyGroup.PRIVATE_OR_CLEAR: ["0.0.0.0/0"], PolicyGroup.CLEAR: ["192.0.2.2/32"]}, True),
    ({PolicyGroup.BLOCK: ["192.0.2.0/24"], PolicyGroup.CLEAR: ["192.0.2.2/32"]}, True),
    ({PolicyGroup.CLEAR: ["192.0.2.0/24"], PolicyGroup.BLOCK: ["192.0.2.2/32"]}, False),
    ({PolicyGroup.PRIVATE: ["192.0.2.0/24"], PolicyGroup.BLOCK: ["192.0.2.2/32"]}, False),
    ({PolicyGroup.CLEAR_OR_PRIVATE: ["192.0.2.0/24"]}, True),
])
def test_block_drops_and_clear_passes_in_both_directions(pair: tuple[str, str, XfrmKernel],
                                                         groups: dict[PolicyGroup, list[str]], passes: bool) -> None:
    left, right, k = pair
    node(k, groups)
    assert (ping_left(left) == 2) is passes
    assert (ping_right(right) == 2) is passes  # inbound: the in policy of block / clear decides too
    assert acquires(k, 0.3) == []  # the /32 outranks any trap: nothing negotiates


def send_udp(ns: str, src: IPAddress, dst: IPAddress, port: int, bypass: bool) -> subprocess.CompletedProcess[str]:
    """Send one datagram from a socket in `ns`, with or without the IKE sockets' per-socket policy
    bypass (IP_XFRM_POLICY, allow, no template: what fipsike's daemon sets on UDP 500/4500)."""
    code = textwrap.dedent(f"""
        import socket, sys
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("{src}", 0))
        if {bypass}:
            for direction in (0, 1):
                info = bytearray(168)  # struct xfrm_userpolicy_info: selector family at 40,
                info[40:42] = socket.AF_INET.to_bytes(2, sys.byteorder)  # dir at 160, action (allow=0) at 161
                info[160] = direction
                s.setsockopt(socket.IPPROTO_IP, 17, bytes(info))  # IP_XFRM_POLICY
        s.sendto(b"ike", ("{dst}", {port}))
    """)
    return sh("ip", "netns", "exec", ns, sys.executable, "-c", code)


def test_ike_sockets_with_policy_bypass_are_never_trapped(pair: tuple[str, str, XfrmKernel]) -> None:
    left, right, k = pair
    node(k, {PolicyGroup.PRIVATE: ["0.0.0.0/0"]})
    listener = subprocess.Popen(
        ["ip", "netns", "exec", right, sys.executable, "-c",
         "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(('0.0.0.0',500));"
         "s.settimeout(4);print('ready',flush=True)\n"
         "try:\n  print(s.recvfrom(64)[0].decode(),flush=True)\nexcept TimeoutError:\n  print('timeout')"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
        send_udp(left, LEFT, RIGHT, 500, bypass=False)
        assert acquires(k)  # an ordinary socket's datagram to UDP 500 hits the trap ...
        send_udp(left, LEFT, RIGHT, 500, bypass=True)
        out, _ = listener.communicate(timeout=10)
    finally:
        listener.kill()
    assert out.split()[-1] == "ike"  # ... the IKE socket's goes out in the clear
    assert acquires(k, 0.3) == []


@pytest.mark.parametrize(("larval_drop", "delivered"), [(0, 1), (1, 0)])
def test_hold_queues_the_first_packet_until_a_policy_decides(pair: tuple[str, str, XfrmKernel], larval_drop: int,
                                                             delivered: int) -> None:
    """negotiationshunt=hold leaves the trap in place: with net.core.xfrm_larval_drop=0 the kernel queues
    the first packet while the larval state waits, and sends it as soon as a policy lets it through (here
    the passthrough failure shunt; with ESP, the instance's tunnel). With the default larval_drop=1 the
    kernel drops it instead, so the daemon must set larval_drop=0 for hold to keep the first packet."""
    left, _, k = pair
    sh("ip", "netns", "exec", left, "sysctl", "-q", "-w", f"net.core.xfrm_larval_drop={larval_drop}")
    o = node(k, {PolicyGroup.PRIVATE_OR_CLEAR: ["192.0.2.0/24"]}, neg=NegotiationShunt.HOLD)
    pinger = subprocess.Popen(["ip", "netns", "exec", left, "ping", "-n", "-q", "-c1", "-W6", "-I", str(LEFT),
                               str(RIGHT)], stdout=subprocess.PIPE, text=True)
    try:
        (acq,) = acquires(k)[:1]
        name = next(a for a in carry(k, o.on_acquire(acq, now=0.0)) if isinstance(a, Initiate)).connection.name
        time.sleep(0.5)  # "negotiating"
        carry(k, o.on_failed(name, now=0.5))  # private-or-clear fails to passthrough
        out, _ = pinger.communicate(timeout=15)
    finally:
        pinger.kill()
    assert f"1 packets transmitted, {delivered} received" in out


def test_our_own_address_inside_a_private_cidr_is_not_trapped(pair: tuple[str, str, XfrmKernel]) -> None:
    """0.0.0.0/0 in private covers our own address too; local delivery goes through lo, whose
    disable_xfrm/disable_policy keep the SPD out of it, so the table needs no exception for it."""
    left, _, k = pair
    node(k, {PolicyGroup.PRIVATE: ["0.0.0.0/0"]})
    assert ping(left, str(LEFT), str(LEFT), 2, 1.0) == 2
    assert acquires(k, 0.3) == []


@pytest.mark.parametrize(("extra", "passes"), [({}, False), ({PolicyGroup.CLEAR: ["2001:db8::2/128"]}, True)])
def test_ipv6_trap_acquire_and_a_slash128_in_clear(extra: dict[PolicyGroup, list[str]], passes: bool) -> None:
    l6, r6 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")
    with netns_pair(str(l6), str(r6), "fd00:1::1", "fd00:2::1") as (left, _), \
            XfrmKernel(open_router("default"), netns=left) as k:
        try:
            groups = {PolicyGroup.PRIVATE_OR_CLEAR: ["::/0"], **extra}
            o = Opportunistic(conns(neg=NegotiationShunt.HOLD), groups, [l6])
            carry(k, o.install())
            assert (ping(left, str(l6), str(r6), 2, 1.0) == 2) is passes
            got = acquires(k, 2.0 if not passes else 0.3)
            if passes:
                assert got == []
            else:
                assert got[0].selector.dst == ipaddress.ip_network(r6)  # a /128
                (init,) = [a for a in carry(k, o.on_acquire(got[0], 0.0)) if isinstance(a, Initiate)]
                assert init.connection.name == f"private-or-clear#{l6}-{r6}"
        finally:
            k.flush_owned()
