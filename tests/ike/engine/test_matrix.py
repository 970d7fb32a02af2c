"""The proposal matrix over the fips allowlist times the authentication methods: each combination
establishes an IKE SA and a Child SA between two engines, with matching keys on both sides."""

from __future__ import annotations

import itertools

import pytest

from fipsike.ike.payloads import Authentication
from fipsike.ike.registry import AuthMethod
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import paired
from tests.ike.engine.test_establish import opened

ENCR = ["aes128gcm16", "aes256gcm16", "aes128-sha256", "aes256-sha384", "aes256-sha512"]
PRF = ["prfsha256", "prfsha384", "prfsha512"]
GROUPS = ["modp2048", "modp3072", "ecp256", "ecp384", "ecp521"]
ESP = ["aes128gcm16", "aes256gcm16", "aes128-sha256", "aes256-sha512"]
# (key in the test PKI, "signature" = RFC 7427 method 14, "legacy" = RFC 4754 methods 9/10/11)
AUTH = [("p256", "signature", 14), ("p384", "signature", 14), ("p521", "signature", 14),
        ("rsa3072", "signature", 14), ("p256", "legacy", 9), ("p384", "legacy", 10), ("p521", "legacy", 11)]

SUITES = [(e, p, g) for e, p, g in itertools.product(ENCR, PRF, GROUPS)]
CASES = [(e, p, g, a) for (e, p, g), a in itertools.product(SUITES, range(len(AUTH)))]


def _case_ids() -> list[str]:
    return [f"{e}-{p}-{g}-{AUTH[a][0]}-{AUTH[a][1]}" for e, p, g, a in CASES]


@pytest.mark.parametrize(("encr", "prf", "group", "auth"), CASES, ids=_case_ids())
def test_ike_suite(pair: PairFactory, encr: str, prf: str, group: str, auth: int) -> None:
    """Every IKE suite of the fips allowlist times every authentication method (the ESP proposal
    cycles through the ESP allowlist)."""
    n = CASES.index((encr, prf, group, auth))
    key, style, method = AUTH[auth]
    esp = ESP[n % len(ESP)]
    ike = [f"{encr}-{prf}-{group}"]
    net = pair(ike=ike, key=key, signature_auth=style, child_esp=[esp])
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    m3 = opened(net.b, net)
    assert m3.get(Authentication).method == method
    net.run()
    sa_a, sa_b = net.a.the_ike_sa(), net.b.the_ike_sa()
    assert str(sa_a.suite) == str(sa_b.suite)
    assert sa_a.suite.prf.name.endswith(prf[-3:]) and sa_a.suite.ke.name.endswith(group[-3:] if "ecp" in group
                                                                                    else group[-4:])
    assert paired(net)
    (x,) = net.a.kernel.values()
    ra, rb = net.a.engine.router, net.b.engine.router
    (y,) = net.b.kernel.values()
    assert ra.keyed_fingerprint(ra.release_esp_key(x.outbound.encr_key, "t")) == \
        rb.keyed_fingerprint(rb.release_esp_key(y.inbound.encr_key, "t"))
    if x.outbound.integ_key is not None:
        assert ra.keyed_fingerprint(ra.release_esp_key(x.outbound.integ_key, "t")) == \
            rb.keyed_fingerprint(rb.release_esp_key(y.inbound.integ_key, "t"))


@pytest.mark.parametrize(("key", "style", "method"), AUTH, ids=[f"{k}-{s}" for k, s, _ in AUTH])
def test_auth_methods_both_ways(pair: PairFactory, key: str, style: str, method: int) -> None:
    net = pair(key=key, signature_auth=style)
    net.initiate(net.b, "gw")
    net.step_message()
    net.step_message()
    m3 = opened(net.a, net)
    assert m3.get(Authentication).method == method
    net.step_message()
    m4 = opened(net.b, net)
    assert m4.get(Authentication).method == method
    net.run()
    assert paired(net) and len(net.a.kernel) == 1


def test_rsa_signs_pss(pair: PairFactory) -> None:
    """RSA keys sign RSASSA-PSS (RFC 8247 3) inside the RFC 7427 AUTH."""
    from fipsike.ike.auth import parse_algorithm_identifier

    net = pair(key="rsa3072")
    net.initiate(net.a, "gw")
    net.step()
    net.step()
    auth = opened(net.b, net).get(Authentication)
    assert auth.method == AuthMethod.DIGITAL_SIGNATURE
    assert parse_algorithm_identifier(auth.data[1:1 + auth.data[0]]).name == "RSA_PSS_SHA256"


@pytest.fixture(scope="module")
def token_certs(pki):  # type: ignore[no-untyped-def]
    """moon certificates for keys made outside the router (so they can be moved onto the token)."""
    from datetime import UTC, datetime

    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    from certs.testpki import TestPki
    from providers import open_router

    t = TestPki(open_router("fips"), datetime.now(UTC))
    out = {}
    for name, obj in (("p256", ec.generate_private_key(ec.SECP256R1())),
                      ("rsa3072", rsa.generate_private_key(65537, 3072))):
        issued = t.end_entity("moon.test", pki.ca, public_key=obj.public_key(),
                              sans=("DNS:moon.test", "IP:10.99.0.1"))
        out[name] = (issued.cert, obj)
    return out


@pytest.mark.softhsm
@pytest.mark.parametrize("key", ["p256", "rsa3072"])
def test_private_key_on_the_token(pair: PairFactory, token_certs, router_hsm, key: str) -> None:  # type: ignore[no-untyped-def]
    """moon's AUTH is signed on the SoftHSM2 token (Router.sign routes by the key's owner)."""
    from fipsike.ike.engine import Engine

    cert, obj = token_certs[key]
    token_key = router_hsm.import_private_key(obj, label=f"moon-{key}", key_id=key.encode(), to_token=True)
    assert token_key.owner.startswith("pkcs11")
    net = pair(key=key)
    conn = net.a.engine.connections["gw"]
    conn.private_key, conn.certificate = token_key, cert
    net.a.engine = Engine(router_hsm, [conn])
    net.initiate(net.a, "gw")
    net.run()
    assert paired(net) and len(net.a.kernel) == 1
