"""The product's translation of engine actions into kernel state (fipsike.daemon.installer), on the
in-memory kernel: SAs both ways, policies per selector pair, rekeys that keep the policies, traps
that come back after a routed connection's SA goes, and failures that undo themselves."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from fipsike.daemon.installer import Installer, Trap, selectors
from fipsike.ike.actions import DeleteChildSa, InstallChildSa, SaDirection, TrafficSelectorSpec
from fipsike.kernel.memory import MemoryKernel
from fipsike.kernel.types import Direction, KernelError, Mode, PolicyAction, PolicySpec, TrafficSelector
from providers import Encryption, open_router

L, R = "192.0.2.1", "192.0.2.2"
REQID = 0x4649_8000


def _install(spi_in: int = 0x1111, spi_out: int = 0x2222, rekey_of: int | None = None,
             encap: tuple[int, int] | None = None, mode: str = "tunnel") -> InstallChildSa:
    router = open_router("default")

    def key() -> object:
        return router.import_secret(b"\x07" * 36, "ESP key")

    d_in = SaDirection(spi_in, R, L, Encryption.ENCR_AES_GCM_16, 256, key(), None, None)  # type: ignore[arg-type]
    d_out = SaDirection(spi_out, L, R, Encryption.ENCR_AES_GCM_16, 256, key(), None, None)  # type: ignore[arg-type]
    return InstallChildSa("a/b", "gw", "net", REQID, mode, d_in, d_out,
                          (TrafficSelectorSpec("10.1.0.0", "10.1.0.255"),),
                          (TrafficSelectorSpec("10.2.0.0", "10.2.0.255"),), 3000.0, 3300.0, encap=encap,
                          rekey_of=rekey_of)


def _delete(a: InstallChildSa, keep: bool = False) -> DeleteChildSa:
    return DeleteChildSa("a/b", "gw", "net", REQID, a.inbound.spi, a.outbound.spi, L, R, "test", keep)


def test_install_puts_both_sas_and_three_tunnel_policies() -> None:
    k = MemoryKernel()
    inst = Installer(k)
    a = _install(encap=(4500, 4500))
    inst.install(a)
    sas = {(str(s.dst), s.spi): s for s in k.list_sas()}
    assert set(sas) == {(L, 0x1111), (R, 0x2222)}
    assert sas[(L, 0x1111)].encap is not None and sas[(R, 0x2222)].lifetime.hard_seconds == 3300
    pols = {(str(p.selector), p.direction) for p in k.list_policies()}
    out = TrafficSelector.parse("10.1.0.0/24", "10.2.0.0/24")
    assert pols == {(str(out), Direction.OUT), (str(out.reversed()), Direction.IN),
                    (str(out.reversed()), Direction.FWD)}
    assert all(p.templates[0].reqid == REQID for p in k.list_policies())
    assert inst.inbound_spi_of(ipaddress.ip_address(R), 0x2222) == 0x1111
    inst.remove(_delete(a))
    assert k.list_sas() == [] and k.list_policies() == []


def test_transport_mode_has_no_fwd_policy_and_a_selector_on_the_sa() -> None:
    k = MemoryKernel()
    Installer(k).install(_install(mode="transport"))
    assert {p.direction for p in k.list_policies()} == {Direction.IN, Direction.OUT}
    assert all(s.selector is not None and s.mode is Mode.TRANSPORT for s in k.list_sas())


def test_rekey_keeps_the_policies_and_removes_only_the_old_sas() -> None:
    k = MemoryKernel()
    inst = Installer(k)
    old = _install()
    inst.install(old)
    new = _install(0x3333, 0x4444, rekey_of=0x1111)
    inst.install(new)
    inst.remove(_delete(old, keep=True))
    assert {s.spi for s in k.list_sas()} == {0x3333, 0x4444}
    assert len(k.list_policies()) == 3


def test_a_rekey_responder_sends_on_the_old_sa_until_it_is_deleted() -> None:
    """defer_outbound: the new outbound SA waits (XFRM would send on it at once, before the initiator
    can receive on it) and takes over just before the old SAs go; a successor deleted first leaves
    nothing behind."""
    k = MemoryKernel()
    inst = Installer(k)
    old = _install()
    inst.install(old)
    new = dataclasses.replace(_install(0x3333, 0x4444, rekey_of=0x1111), defer_outbound=True)
    inst.install(new)
    assert {s.spi for s in k.list_sas()} == {0x1111, 0x2222, 0x3333}  # receives on both, sends on the old
    assert inst.counters(inst.children[0x3333])["out"] == {"bytes": 0, "packets": 0}
    inst.remove(_delete(old, keep=True))
    assert {s.spi for s in k.list_sas()} == {0x3333, 0x4444}
    assert len(k.list_policies()) == 3
    # the successor goes first (a lost collision, a failed IKE SA): its held SA is never installed
    newer = dataclasses.replace(_install(0x5555, 0x6666, rekey_of=0x3333), defer_outbound=True)
    inst.install(newer)
    inst.remove(_delete(newer, keep=True))
    inst.remove(_delete(new))
    assert k.list_sas() == [] and k.list_policies() == []


def test_a_routed_connection_gets_its_trap_back() -> None:
    k = MemoryKernel()
    inst = Installer(k)
    trap = Trap("gw", "net", REQID, ipaddress.ip_address(L), ipaddress.ip_address(R), Mode.TUNNEL,
                (TrafficSelectorSpec("10.1.0.0", "10.1.0.255"),), (TrafficSelectorSpec("10.2.0.0", "10.2.0.255"),))
    inst.route(trap)
    # XFRM has no separate trap action: an outbound policy with a template and no SA raises ACQUIRE
    assert [(p.direction, p.templates[0].reqid) for p in k.list_policies()] == [(Direction.OUT, REQID)]
    a = _install()
    inst.install(a)
    assert {p.action for p in k.list_policies()} == {PolicyAction.IPSEC} and len(k.list_policies()) == 3
    inst.remove(_delete(a))
    assert [(p.direction, p.templates[0].reqid) for p in k.list_policies()] == [(Direction.OUT, REQID)]
    assert k.send_packet(ipaddress.ip_address("10.1.0.5"), ipaddress.ip_address("10.2.0.9")) == "acquire"
    inst.unroute(REQID)
    assert k.list_policies() == []


def test_a_refused_sa_leaves_nothing_behind() -> None:
    k = MemoryKernel()
    inst = Installer(k)
    first = _install()
    inst.install(first)
    clash = dataclasses.replace(_install(0x5555, 0x2222))  # outbound SPI already in the SAD
    with pytest.raises(KernelError):
        inst.install(clash)
    assert {s.spi for s in k.list_sas()} == {0x1111, 0x2222}
    assert 0x5555 not in inst.children


def test_ranges_become_covering_prefixes_of_one_family() -> None:
    sels = selectors((TrafficSelectorSpec("10.0.0.1", "10.0.0.6"), TrafficSelectorSpec("::", "::ffff")),
                     (TrafficSelectorSpec("10.2.0.0", "10.2.0.255"),))
    assert [str(s.src) for s in sels] == ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
    assert {str(s.dst) for s in sels} == {"10.2.0.0/24"}


class _CountingKernel(MemoryKernel):
    """The in-memory kernel, counting SPD writes."""

    def __init__(self) -> None:
        super().__init__()
        self.policy_writes = 0

    def install_policy(self, spec: PolicySpec, replace: bool = True) -> None:
        self.policy_writes += 1
        super().install_policy(spec, replace)


def test_child_sas_with_the_same_policies_share_them_until_the_last_goes() -> None:
    """Many peers' Child SAs of one connection need the same three policies: they are written once
    and stay until the last Child SA using them is deleted."""
    k = _CountingKernel()
    inst = Installer(k)
    kids = [_install(0x1000 + 2 * i, 0x2000 + 2 * i) for i in range(5)]
    for a in kids:
        inst.install(a)
    assert k.policy_writes == 3 and len(k.list_policies()) == 3
    assert [inst.inbound_spi_of(ipaddress.ip_address(R), a.outbound.spi) for a in kids] == \
        [a.inbound.spi for a in kids]
    for a in kids[:-1]:
        inst.remove(_delete(a))
        assert len(k.list_policies()) == 3
    inst.remove(_delete(kids[-1]))
    assert k.list_policies() == [] and k.list_sas() == []
    assert inst.inbound_spi_of(ipaddress.ip_address(L), kids[0].inbound.spi) is None
    inst.install(_install())  # nothing remembered from before: written again
    assert k.policy_writes == 6 and len(k.list_policies()) == 3


def test_a_policy_replaced_by_a_shunt_is_written_again() -> None:
    k = _CountingKernel()
    inst = Installer(k)
    inst.install(_install())
    out = TrafficSelector.parse("10.1.0.0/24", "10.2.0.0/24")
    k.install_policy(PolicySpec(out, Direction.OUT, PolicyAction.DROP))
    inst.policy_replaced(out, Direction.OUT)
    inst.install(_install(0x3333, 0x4444))
    assert k.get_policy(out, Direction.OUT).action is PolicyAction.IPSEC


def test_a_different_template_on_the_same_selector_replaces_the_policy() -> None:
    """Another peer (other tunnel endpoints) with the same selectors: its template wins, as before."""
    k = _CountingKernel()
    inst = Installer(k)
    inst.install(_install())
    other = _install(0x3333, 0x4444)
    far = "192.0.2.9"
    other = dataclasses.replace(other, inbound=dataclasses.replace(other.inbound, src=far),
                                outbound=dataclasses.replace(other.outbound, dst=far))
    inst.install(other)
    out = TrafficSelector.parse("10.1.0.0/24", "10.2.0.0/24")
    assert str(k.get_policy(out, Direction.OUT).templates[0].dst) == far
    inst.install(_install(0x5555, 0x6666))  # back to the first endpoints: written again
    assert str(k.get_policy(out, Direction.OUT).templates[0].dst) == R
