"""The engine reads no clock: certificate validity is judged at the `wall` time the driver passes
to receive(), like `now` (issue 11, restructure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fipsike.ike.actions import IkeSaEstablished, IkeSaFailed
from tests.ike.engine.conftest import PairFactory, Pki


def _never(*_: object) -> datetime:
    raise AssertionError("the engine read its fallback clock although the driver passed `wall`")


def test_wall_passed_in_is_used(pair: PairFactory, pki: Pki) -> None:
    net = pair()
    net.wall_base = datetime.now(UTC)
    for side in (net.a, net.b):
        side.engine.wallclock = _never
    net.initiate(net.a, "gw")
    net.run()
    assert len(net.b.of(IkeSaEstablished)) == 1


def test_certificate_judged_at_the_wall_time_given(pair: PairFactory, pki: Pki) -> None:
    """At a wall time after the peer certificate's notAfter, sun refuses moon (EXPIRED)."""
    net = pair()
    net.wall_base = pki.moon["p256"].cert.not_valid_after_utc + timedelta(days=1)
    net.initiate(net.a, "gw")
    net.run()
    assert [e.reason for e in net.b.of(IkeSaFailed)] == ["AUTHENTICATION_FAILED"]
    assert any("expired" in lg.message for lg in net.b.logs)
