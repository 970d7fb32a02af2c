"""ID_KEY_ID (`@#hex`, RFC 7296 3.5) is bound to the peer certificate's subject key identifier,
as certs.store resolves `@#hex` for our own side (issue 11, fix 1)."""

from __future__ import annotations

from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed
from tests.ike.engine.conftest import PairFactory, Pki


def _ski(pki: Pki, who: str) -> str:
    from cryptography import x509

    cert = pki.sun["p256"].cert if who == "sun" else pki.moon["p256"].cert
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()


def test_key_id_of_another_certificate_refused(pair: PairFactory, pki: Pki) -> None:
    """sun holds an ordinary certificate from the same CA and claims @#0badc0de, which moon expects:
    moon (initiator) refuses sun's AUTH; no IKE SA comes up on either side."""
    assert _ski(pki, "sun") != "0badc0de"
    net = pair(moon_kw={"remote_id": "@#0badc0de"}, sun_kw={"local_id": "@#0badc0de"})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert not net.a.of(IkeSaEstablished) and not net.a.kernel
    assert any("not bound" in log.message for log in net.a.logs)


def test_key_id_claimed_by_initiator_refused(pair: PairFactory) -> None:
    """The same as responder: moon claims @#0badc0de, sun expects it and answers AUTHENTICATION_FAILED."""
    net = pair(moon_kw={"local_id": "@#0badc0de"}, sun_kw={"remote_id": "@#0badc0de"})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert [e.reason for e in net.a.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert not net.b.of(IkeSaEstablished)


def test_key_id_of_the_certificate_accepted(pair: PairFactory, pki: Pki) -> None:
    """The certificate's own subject key identifier is a good ID_KEY_ID, both ways."""
    moon_id, sun_id = "@#" + _ski(pki, "moon"), "@#" + _ski(pki, "sun")
    net = pair(moon_kw={"local_id": moon_id, "remote_id": sun_id},
               sun_kw={"local_id": sun_id, "remote_id": moon_id})
    net.initiate(net.a, "gw")
    net.run()
    assert [e.remote_id for e in net.a.of(IkeSaEstablished)] == [sun_id]
    assert [e.remote_id for e in net.b.of(IkeSaEstablished)] == [moon_id]
    assert len(net.a.kernel) == 1 and len(net.b.kernel) == 1
