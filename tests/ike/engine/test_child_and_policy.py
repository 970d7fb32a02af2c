"""Traffic selector narrowing (RFC 7296 2.9), transport mode (1.3.1), proposal selection under the
policy (2.7), fragmentation of big IKE_AUTH messages (RFC 7383), and secrets kept out of logs."""

from __future__ import annotations

import pytest

from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.payloads import EncryptedFragment, Notify
from fipsike.ike.proposals import (
    NoProposalChosen,
    Protocol,
    Transform,
    TransformType,
    parse_proposal,
    select,
    verify_choice,
)
from fipsike.ike.registry import NotifyType
from fipsike.ike.ts import narrow, ts_from_cidr
from providers import open_router
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import paired, up
from tests.ike.engine.test_establish import opened


def test_narrowing_to_the_responders_policy(pair: PairFactory) -> None:
    """moon asks for 10.1.0.0/16 <-> 10.2.0.0/16; sun allows only the /24s: the Child SA is narrowed."""
    net = pair(moon_kw={"child_local_ts": (ts_from_cidr("10.1.0.0/16"),),
                        "child_remote_ts": (ts_from_cidr("10.2.0.0/16"),)})
    net.initiate(net.a, "gw")
    net.run()
    (a,) = net.a.kernel.values()
    assert a.local_ts == (TrafficSelectorSpec("10.1.0.0", "10.1.0.255"),)
    assert a.remote_ts == (TrafficSelectorSpec("10.2.0.0", "10.2.0.255"),)
    (b,) = net.b.kernel.values()
    assert b.local_ts == a.remote_ts and b.remote_ts == a.local_ts


def test_narrow_ports_and_protocols() -> None:
    tcp443 = TrafficSelectorSpec("10.0.0.0", "10.0.0.255", 6, 443, 443)
    anything = ts_from_cidr("10.0.0.0/8")
    assert narrow([anything], [tcp443]) == [tcp443]
    assert narrow([TrafficSelectorSpec("10.0.0.1", "10.0.0.1", 17, 0, 65535)], [tcp443]) == []
    assert narrow([ts_from_cidr("192.0.2.0/24")], [anything]) == []
    assert narrow([ts_from_cidr("2001:db8::/32")], [anything]) == []


def test_transport_mode(pair: PairFactory) -> None:
    net = pair(child_mode="transport", child_local_ts=(), child_remote_ts=())
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    m3 = opened(net.b, net)
    assert m3.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    net.run()
    (a,) = net.a.kernel.values()
    assert a.mode == "transport"
    assert a.local_ts == (TrafficSelectorSpec("10.99.0.1", "10.99.0.1"),)
    assert next(iter(net.b.kernel.values())).mode == "transport"


def test_transport_refused_by_tunnel_responder(pair: PairFactory) -> None:
    from fipsike.ike.actions import ChildSaFailed

    net = pair(moon_kw={"child_mode": "transport"})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.notify for e in net.a.of(ChildSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    assert not net.a.kernel and not net.b.kernel  # sun's tunnel SA was deleted again
    assert net.a.the_ike_sa() and net.b.the_ike_sa()


def test_child_no_proposal_chosen_keeps_ike_sa(pair: PairFactory) -> None:
    from fipsike.ike.actions import ChildSaFailed

    net = pair(moon_kw={"child_esp": ["aes128-sha256"]}, sun_kw={"child_esp": ["aes256gcm16"]})
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    net.step()
    m4 = opened(net.a, net)
    assert m4.notify(NotifyType.NO_PROPOSAL_CHOSEN) is not None
    net.run()
    assert [e.notify for e in net.a.of(ChildSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    assert net.a.the_ike_sa() and net.b.the_ike_sa() and not net.a.kernel


def test_fragmentation_of_rsa_ike_auth(pair: PairFactory) -> None:
    net = pair(key="rsa3072")
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    frags = [p for p in net.wire if isinstance(p.msg.payloads[-1], EncryptedFragment)]
    assert len(frags) >= 2 and all(len(p.data) <= 1280 - 28 for p in frags)
    net.run()
    assert paired(net) and len(net.a.kernel) == 1


def test_no_fragmentation_unless_both_support_it(pair: PairFactory) -> None:
    net = pair(key="rsa3072", sun_kw={"fragmentation": False})
    net.initiate(net.a, "gw")
    net.step()
    m2 = net.wire[0].msg
    assert m2.notify(NotifyType.IKEV2_FRAGMENTATION_SUPPORTED) is None
    net.step()
    assert len(net.wire) == 1 and len(net.wire[0].data) > 1280
    net.run()
    assert paired(net)


def _allowed_fips(t: Transform) -> bool:
    from fipsike.ike.engine import Engine

    return Engine(open_router("fips")).allowed(t)


def test_select_walks_the_initiators_order() -> None:
    offered = [parse_proposal("aes128-sha256-modp2048", Protocol.IKE).to_proposal(1, b""),
               parse_proposal("aes256gcm16-prfsha384-ecp384", Protocol.IKE).to_proposal(2, b"")]
    local = [parse_proposal("aes256gcm16-prfsha384-ecp384", Protocol.IKE),
             parse_proposal("aes128-sha256-modp2048", Protocol.IKE)]
    chosen = select(offered, local, _allowed_fips, Protocol.IKE)
    assert chosen.number == 1  # the initiator's preference wins among acceptable proposals


def test_policy_refused_transform_never_chosen_even_if_configured() -> None:
    """Local configuration lists SHA-1 and MODP-1024, the fips policy refuses them: no selection."""
    offered = [parse_proposal("aes128-sha1-modp1024", Protocol.IKE).to_proposal(1, b"")]
    local = [parse_proposal("aes128-sha1-modp1024", Protocol.IKE)]
    with pytest.raises(NoProposalChosen):
        select(offered, local, _allowed_fips, Protocol.IKE)
    # ...and a responder that picks one anyway is refused by the initiator
    reply = [parse_proposal("aes128-sha1-modp1024", Protocol.IKE).to_proposal(1, b"")]
    reply = [type(reply[0])(1, Protocol.IKE, b"", tuple(t for t in reply[0].transforms))]
    with pytest.raises(NoProposalChosen):
        verify_choice(reply, offered, _allowed_fips)


def test_3des_and_gcm8_refused() -> None:
    for t in (Transform(TransformType.ENCR, 3, None), Transform(TransformType.ENCR, 18, 128),
              Transform(TransformType.ENCR, 20, 192), Transform(TransformType.KE, 31),
              Transform(TransformType.PRF, 2), Transform(TransformType.INTEG, 2)):
        assert not _allowed_fips(t), t
    for t in (Transform(TransformType.ENCR, 20, 128), Transform(TransformType.ENCR, 12, 256),
              Transform(TransformType.KE, 21), Transform(TransformType.PRF, 7),
              Transform(TransformType.INTEG, 13)):
        assert _allowed_fips(t), t


def test_secrets_stay_out_of_logs_and_events(pair: PairFactory) -> None:
    net, i, r = up(pair, True)
    (x,) = i.kernel.values()
    router = i.engine.router
    canaries = [router.release_esp_key(k, "test").hex() for k in (x.inbound.encr_key, x.outbound.encr_key)]
    text = " ".join(repr(e) + str(e) for s in (net.a, net.b) for e in (*s.events, *s.logs))
    text += " ".join(repr(sa) for s in (net.a, net.b) for sa in s.engine.ike_sas())
    for c in canaries:
        assert c[:16] not in text and c[-16:] not in text
    assert "encr_key=" not in repr(x) and "SecretKey" not in repr(x)  # handles left out of the repr


def test_unsupported_notify_ignored(pair: PairFactory) -> None:
    """An unknown status notify in IKE_SA_INIT is ignored (RFC 7296 3.10.1)."""
    from fipsike.ike.message import Message

    net = pair()
    net.initiate(net.a, "gw")
    pkt = net.wire.pop(0)
    m = Message.parse(pkt.data)
    m2 = m.with_payloads([*m.payloads, Notify.status(50000, b"x")])
    net.take(net.b, net.b.engine.receive(m2.serialize(), pkt.src, pkt.dst, net.now))
    assert net.wire and net.wire[0].msg.response


def test_nat_detected_and_port_4500(pair: PairFactory) -> None:
    """moon sits behind a NAT that maps 10.99.0.1:500 -> 10.99.0.1:40500 (and :4500 -> :44500):
    both sides see it in the NAT_DETECTION hashes, move to port 4500 and ask for UDP encapsulation."""
    net = pair()
    net.initiate(net.a, "gw")

    def nat_out(pkt):  # type: ignore[no-untyped-def]
        port = {500: 40500, 4500: 44500}[pkt.src[1]]
        return type(pkt)(pkt.data, (pkt.src[0], port), pkt.dst)

    def nat_in(pkt):  # type: ignore[no-untyped-def]
        port = {40500: 500, 44500: 4500}[pkt.dst[1]]
        return type(pkt)(pkt.data, pkt.src, (pkt.dst[0], port))

    for _ in range(20):
        if not net.wire:
            break
        pkt = net.wire.pop(0)
        net.deliver(nat_out(pkt) if pkt.src[0] == "10.99.0.1" else nat_in(pkt))
    a, b = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert a.nat_local and not a.nat_remote
    assert b.nat_remote and not b.nat_local
    assert a.remote == ("10.99.0.2", 4500) and b.remote == ("10.99.0.1", 44500)
    (x,) = net.a.kernel.values()
    (y,) = net.b.kernel.values()
    assert x.encap == (4500, 4500) and y.encap == (4500, 44500)


def test_unsupported_critical_payload(pair: PairFactory) -> None:
    """An unknown payload with the critical bit: IKE_SA_INIT gets UNSUPPORTED_CRITICAL_PAYLOAD with the
    payload type as data (RFC 7296 2.5, 3.10.1), and no state is kept."""
    from fipsike.ike.message import Message

    net = pair()
    net.initiate(net.a, "gw")
    pkt = net.wire.pop(0)
    data = bytearray(pkt.data)
    # append a critical payload of unknown type 200 after the last one and fix the lengths
    m = Message.parse(pkt.data)
    last_off = 28
    nxt = data[16]
    while True:
        n2 = data[last_off]
        ln = int.from_bytes(data[last_off + 2:last_off + 4], "big")
        if n2 == 0:
            break
        last_off += ln
        nxt = n2
    del nxt, m
    data[last_off] = 200
    data += bytes([0, 0x80, 0, 8]) + b"abcd"
    data[24:28] = len(data).to_bytes(4, "big")
    net.take(net.b, net.b.engine.receive(bytes(data), pkt.src, pkt.dst, net.now))
    (resp,) = net.wire
    n = resp.msg.notify(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD)
    assert n is not None and n.data == bytes([200])
    assert not net.b.engine.ike_sas()


def test_proposal_with_unknown_transform_type_rejected() -> None:
    """RFC 7296 3.3.6: a proposal carrying a transform type we do not implement (RFC 9370 ADDKE1)
    cannot be accepted as a whole; the next proposal can."""
    base = parse_proposal("aes256gcm16-prfsha384-ecp384", Protocol.IKE)
    with_addke = base.to_proposal(1, b"")
    with_addke = type(with_addke)(1, Protocol.IKE, b"", (*with_addke.transforms, Transform(TransformType.ADDKE1, 36)))
    plain = base.to_proposal(2, b"")
    assert select([with_addke, plain], [base], _allowed_fips, Protocol.IKE).number == 2
    with pytest.raises(NoProposalChosen):
        select([with_addke], [base], _allowed_fips, Protocol.IKE)
    assert "ADDKE1#36" in str(with_addke)
