"""Fixtures for the engine tests: one test PKI per session (keys are slow), and a factory
for a pair of engines back to back."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from certs.testpki import P256, P384, P521, RSA_3072, Issued, TestPki
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.engine import Engine
from fipsike.ike.proposals import Protocol, parse_proposals
from fipsike.ike.ts import ts_from_cidr
from providers import open_router
from tests.ike.engine.harness import Net, Side

MOON = "10.99.0.1"
SUN = "10.99.0.2"


@dataclasses.dataclass
class Pki:
    ca: Issued
    moon: dict[str, Issued]
    sun: dict[str, Issued]
    other_ca: Issued
    stranger: Issued


@pytest.fixture(scope="session")
def pki() -> Pki:
    router = open_router("fips")
    t = TestPki(router, datetime.now(UTC))
    ca = t.root("Test CA", P256)
    other = t.root("Other CA", P256)
    specs = {"p256": P256, "p384": P384, "p521": P521, "rsa3072": RSA_3072}
    moon = {k: t.end_entity("moon.test", ca, s, sans=("DNS:moon.test", f"IP:{MOON}")) for k, s in specs.items()}
    sun = {k: t.end_entity("sun.test", ca, s, sans=("DNS:sun.test", f"IP:{SUN}")) for k, s in specs.items()}
    stranger = t.end_entity("sun.test", other, P256, sans=("DNS:sun.test",))
    # a two-level chain: Test CA -> Sub CA (P-384) -> moon (P-256); peers trust only Test CA
    sub = t.intermediate("Sub CA", ca, P384)
    moon["via-sub"] = t.end_entity("moon.test", sub, P256, sans=("DNS:moon.test", f"IP:{MOON}"))
    return Pki(ca, moon, sun, other, stranger)


def make_conn(pki: Pki, me: str, key: str = "p256", **kw: Any) -> Connection:
    """moon <-> sun, 10.1.0.0/24 behind moon and 10.2.0.0/24 behind sun."""
    mine, peer = (pki.moon, "sun.test") if me == "moon" else (pki.sun, "moon.test")
    local, remote = (MOON, SUN) if me == "moon" else (SUN, MOON)
    lnet, rnet = ("10.1.0.0/24", "10.2.0.0/24") if me == "moon" else ("10.2.0.0/24", "10.1.0.0/24")
    child_kw = {k[6:]: kw.pop(k) for k in list(kw) if k.startswith("child_")}
    esp = child_kw.pop("esp", None)
    lts = child_kw.pop("local_ts", (ts_from_cidr(lnet),))
    rts = child_kw.pop("remote_ts", (ts_from_cidr(rnet),))
    child = ChildConfig("net", lts, rts, **child_kw)
    if esp is not None:
        child.esp_proposals = parse_proposals(esp, Protocol.ESP)
    ike = kw.pop("ike", None)
    kw.setdefault("local_id", f"{me}.test")
    kw.setdefault("remote_id", peer)
    kw.setdefault("intermediates", tuple(mine[key].chain()[:-1]))
    c = Connection(name="gw", local_addrs=(local,), remote_addrs=(remote,), private_key=mine[key].key,
                   certificate=mine[key].cert, trust_anchors=(pki.ca.cert,), children=(child,), **kw)
    if ike is not None:
        c.ike_proposals = parse_proposals(ike, Protocol.IKE)
    return c


PairFactory = Callable[..., Net]


@pytest.fixture
def pair(pki: Pki) -> PairFactory:
    def build(moon_kw: dict[str, Any] | None = None, sun_kw: dict[str, Any] | None = None,
              profile: str = "fips", **common: Any) -> Net:
        mk = {**common, **(moon_kw or {})}
        sk = {**common, **(sun_kw or {})}
        a = Side("moon", Engine(open_router(profile), [make_conn(pki, "moon", **mk)]), MOON)
        b = Side("sun", Engine(open_router(profile), [make_conn(pki, "sun", **sk)]), SUN)
        return Net(a, b)

    return build
