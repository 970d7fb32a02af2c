"""The SpiAllocator seam (fipsike.ike.spis): inbound Child SA SPIs come from the injected allocator
(the daemon's kernel), are installed as allocated, and are released when the exchange that offered
them ends without a Child SA."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fipsike.ike.actions import ChildSaFailed, IkeSaFailed
from fipsike.ike.config import ChildConfig
from fipsike.ike.engine import Engine
from fipsike.ike.payloads import KeyExchangePayload, SecurityAssociation
from fipsike.ike.registry import ExchangeType, NotifyType
from fipsike.ike.sa import IkeState
from fipsike.ike.spis import SpiRequest, SpiUnavailable
from fipsike.ike.ts import ts_from_cidr
from providers import open_router
from tests.ike.engine.conftest import MOON, SUN, Pki, make_conn
from tests.ike.engine.harness import Net, Side
from tests.ike.engine.test_establish import opened


class RecordingSpis:
    """An allocator that records what it hands out; `failing` makes it refuse like a kernel would."""

    def __init__(self, base: int) -> None:
        self._next = itertools.count(base)
        self.requests: dict[int, SpiRequest] = {}
        self.released: list[int] = []
        self.failing = False

    def allocate(self, request: SpiRequest) -> int:
        if self.failing:
            raise SpiUnavailable("ALLOCSPI refused (test)")
        spi = next(self._next)
        self.requests[spi] = request
        return spi

    def release(self, request: SpiRequest, spi: int) -> None:
        assert self.requests[spi] == request
        self.released.append(spi)

    @property
    def reserved(self) -> set[int]:
        return set(self.requests) - set(self.released)


def build(pki: Pki, moon_kw: dict[str, Any] | None = None,
          sun_kw: dict[str, Any] | None = None) -> tuple[Net, RecordingSpis, RecordingSpis]:
    ms, ss = RecordingSpis(0x1111_0000), RecordingSpis(0x2222_0000)
    a = Side("moon", Engine(open_router("fips"), [make_conn(pki, "moon", **(moon_kw or {}))], spis=ms), MOON)
    b = Side("sun", Engine(open_router("fips"), [make_conn(pki, "sun", **(sun_kw or {}))], spis=ss), SUN)
    return Net(a, b), ms, ss


def offered_spis(net: Net, side: Side, exchange: ExchangeType) -> list[int]:
    """Our SPIs in the SA payload of the request `side` just sent (first on the wire, left there)."""
    assert net.wire[0].src[0] == side.ip
    msg = opened(net.b if side is net.a else net.a, net)  # read with the receiver's keys
    assert msg.exchange == exchange
    sa_p = msg.get(SecurityAssociation)
    assert sa_p is not None
    return sorted({int.from_bytes(p.spi, "big") for p in sa_p.proposals})  # one SPI, in every proposal


def test_negotiated_spis_are_the_allocated_ones(pki: Pki) -> None:
    net, ms, ss = build(pki)
    net.initiate(net.a, "gw")
    net.step()  # IKE_SA_INIT request
    net.step()  # its response: moon sends IKE_AUTH with its Child SA's offer
    assert offered_spis(net, net.a, ExchangeType.IKE_AUTH) == list(ms.requests) and ms.reserved == set(ms.requests)
    net.run()
    (mi,), (si,) = net.a.kernel.values(), net.b.kernel.values()
    assert mi.inbound.spi in ms.requests and si.inbound.spi in ss.requests
    assert mi.outbound.spi == si.inbound.spi and si.outbound.spi == mi.inbound.spi
    req = ms.requests[mi.inbound.spi]
    assert (req.local, req.remote, req.reqid, req.transport) == (MOON, SUN, mi.reqid, False)
    assert ms.released == [] and ss.released == []  # installed, so kept: the kernel SA is the larval one


def test_child_refused_in_ike_auth_releases_the_offered_spi(pki: Pki) -> None:
    net, ms, ss = build(pki, sun_kw={"child_remote_ts": (ts_from_cidr("192.0.2.0/24"),)})
    net.initiate(net.a, "gw")
    net.run()
    assert net.a.the_ike_sa().state == IkeState.ESTABLISHED and not net.a.kernel
    assert [e.notify for e in net.a.of(ChildSaFailed)] == ["TS_UNACCEPTABLE"]
    assert len(ms.requests) == 1 and ms.released == list(ms.requests)
    assert ss.requests == {}  # the responder allocates only for a Child SA it accepts


def test_ike_auth_timeout_releases_the_offered_spi(pki: Pki) -> None:
    net, ms, _ = build(pki)
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    assert len(ms.reserved) == 1
    for _ in range(400):  # every IKE_AUTH (and its retransmissions) lost until moon gives up
        net.wire.clear()
        net.advance(1.0)
        if not net.a.ike_sas():
            break
    assert net.a.of(IkeSaFailed) and not net.a.ike_sas()
    assert ms.reserved == set() and ms.released == list(ms.requests)


def test_create_child_and_rekey_release_only_what_is_not_installed(pki: Pki) -> None:
    net, ms, _ = build(pki, moon_kw={"child_esp": ["aes256gcm16-ecp256-ecp384"]},
                       sun_kw={"child_esp": ["aes256gcm16-ecp384"]})
    net.initiate(net.a, "gw")
    net.run()
    (old,) = net.a.kernel
    # a rekey whose first try is refused (INVALID_KE_PAYLOAD): the first SPI goes, the retry's is installed
    net.take(net.a, net.a.engine.rekey_child(old, net.now))
    first = offered_spis(net, net.a, ExchangeType.CREATE_CHILD_SA)
    net.step()
    net.step()  # the INVALID_KE_PAYLOAD answer: moon retries with a new SPI
    assert ms.released == first
    assert opened(net.b, net).get(KeyExchangePayload).group == 20
    net.run()
    (new,) = net.a.kernel
    assert new != old and new in ms.requests and new not in ms.released
    # a second Child SA the responder refuses: its SPI is released, the installed one stays
    conn = net.a.engine.connections["gw"]
    conn.children = (*conn.children, ChildConfig("bad", (ts_from_cidr("192.0.2.0/24"),),
                                                 (ts_from_cidr("198.51.100.0/24"),)))
    net.take(net.a, net.a.engine.initiate("gw", net.now, child="bad"))
    bad = offered_spis(net, net.a, ExchangeType.CREATE_CHILD_SA)
    net.run()
    assert ms.released == first + bad and ms.reserved == {new, old}  # `old`: deleted as a Child SA, not released


@pytest.mark.parametrize("where", ["ike-auth", "create-child"])
def test_responder_without_an_spi_refuses_the_child_only(pki: Pki, where: str) -> None:
    net, ms, ss = build(pki)
    if where == "ike-auth":
        ss.failing = True
    net.initiate(net.a, "gw")
    net.run()
    if where == "create-child":
        ss.failing = True
        for side, (lo, rr) in ((net.a, ("10.1.1.0/24", "10.2.1.0/24")), (net.b, ("10.2.1.0/24", "10.1.1.0/24"))):
            conn = side.engine.connections["gw"]
            conn.children = (*conn.children, ChildConfig("two", (ts_from_cidr(lo),), (ts_from_cidr(rr),)))
        net.take(net.a, net.a.engine.initiate("gw", net.now, child="two"))
        net.step()
        assert opened(net.a, net).notify(NotifyType.TEMPORARY_FAILURE) is not None
        net.run()
    else:
        assert [e.notify for e in net.a.of(ChildSaFailed)] == ["NO_PROPOSAL_CHOSEN"]
    assert net.a.the_ike_sa().state == IkeState.ESTABLISHED and net.b.the_ike_sa().state == IkeState.ESTABLISHED
    assert len(net.b.kernel) == (1 if where == "create-child" else 0)
    assert ms.reserved == set(net.a.kernel)  # moon's offered SPI for the refused Child SA was released


def test_initiator_without_an_spi_fails_the_ike_sa_before_ike_auth(pki: Pki) -> None:
    net, ms, _ = build(pki)
    ms.failing = True
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["no inbound SPI"]
    assert not net.a.ike_sas() and not net.wire
    assert any(log.event == "spi-unavailable" for log in net.a.logs)
