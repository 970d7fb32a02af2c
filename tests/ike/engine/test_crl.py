"""The peer's certificate is checked against the engine's CRLs (issue 11, fix 4, engine side): a
revoked certificate fails with AUTHENTICATION_FAILED; with crl_strict (libreswan's crl-strict), a
missing CRL fails too; a new CRL generation is applied at once, remembered verdicts or not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cryptography import x509

from certs.testpki import Issued, TestPki
from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed
from fipsike.ike.engine import Engine
from fipsike.ike.peer_validator import CrlSource
from providers import open_router
from tests.ike.engine.conftest import MOON, SUN, Pki, make_conn
from tests.ike.engine.harness import Net, Side


class ListCrls:
    """A trivial in-test CrlSource: a list the test swaps, and its generation."""

    def __init__(self) -> None:
        self.generation = 0
        self.crls: list[x509.CertificateRevocationList] = []

    def set(self, crls: Sequence[x509.CertificateRevocationList]) -> None:
        self.crls = list(crls)
        self.generation += 1

    def current(self) -> tuple[int, Sequence[x509.CertificateRevocationList]]:
        return self.generation, tuple(self.crls)


def _net(pki: Pki, crls: CrlSource, **sun_kw: object) -> Net:
    a = Side("moon", Engine(open_router("fips"), [make_conn(pki, "moon")]), MOON)
    b = Side("sun", Engine(open_router("fips"), [make_conn(pki, "sun", **sun_kw)], crl_source=crls), SUN)
    return Net(a, b)


def _crl(pki: Pki, revoked: Sequence[Issued] = ()) -> x509.CertificateRevocationList:
    return TestPki(open_router("fips"), datetime.now(UTC)).crl(pki.ca, revoked)


def _connect(net: Net) -> None:
    net.initiate(net.a, "gw")
    net.run()


def test_revoked_peer_certificate_refused(pki: Pki) -> None:
    crls = ListCrls()
    crls.set([_crl(pki, [pki.moon["p256"]])])
    net = _net(pki, crls)
    _connect(net)
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert not net.b.of(IkeSaEstablished) and not net.b.kernel
    assert any("revoked" in lg.message for lg in net.b.logs)


def test_crl_without_the_peer_accepted(pki: Pki) -> None:
    crls = ListCrls()
    crls.set([_crl(pki, [pki.sun["p384"]])])  # another certificate revoked
    net = _net(pki, crls, crl_strict=True)
    _connect(net)
    assert len(net.b.of(IkeSaEstablished)) == 1


def test_crl_strict_needs_a_crl(pki: Pki) -> None:
    crls = ListCrls()
    net = _net(pki, crls, crl_strict=True)
    _connect(net)
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert any("no CRL" in lg.message for lg in net.b.logs)
    # not strict: no CRL is no revocation
    net2 = _net(pki, crls)
    _connect(net2)
    assert len(net2.b.of(IkeSaEstablished)) == 1


def test_new_crl_generation_applies_despite_the_verdict_cache(pki: Pki) -> None:
    """moon authenticates (its verdict is remembered), then its certificate is revoked: the next
    IKE SA is refused although the verdict cache would still hold."""
    crls = ListCrls()
    crls.set([_crl(pki)])
    net = _net(pki, crls)
    _connect(net)
    assert len(net.b.of(IkeSaEstablished)) == 1
    crls.set([_crl(pki, [pki.moon["p256"]])])
    _connect(net)
    assert len(net.b.of(IkeSaEstablished)) == 1
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
