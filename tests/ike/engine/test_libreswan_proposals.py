"""libreswan `ike=` / `esp=` values (compliance.proposals' grammar) as the engine's ProposalSpecs.

Each value must give exactly the spec the engine's own parser gives for the equivalent strongSwan
string; an engine configured from one must negotiate; a refused value must fail at config time.
"""

from __future__ import annotations

import pytest

from compliance.proposals import ProposalSyntaxError, check_against_profile, parse_proposals
from fipsike.ike.payloads import KeyExchangePayload
from fipsike.ike.proposals import (
    ProposalSpec,
    Protocol,
    Transform,
    TransformType,
    from_libreswan,
    spec_from_proposal,
)
from fipsike.ike.proposals import parse_proposals as parse_strongswan
from fipsike.ike.registry import NotifyType
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf
from providers.errors import PolicyViolation
from providers.policy import Policy
from tests.ike.engine.conftest import PairFactory
from tests.ike.engine.test_create_child_sa import paired

IKE, ESP = Protocol.IKE, Protocol.ESP

# (libreswan value, protocol, the equivalent strongSwan proposals)
TABLE: list[tuple[str, Protocol, list[str]]] = [
    ("aes_gcm256-sha2_384;dh20", IKE, ["aes256gcm16-prfsha384-ecp384"]),
    ("aes256-sha2_256;modp3072", IKE, ["aes256-sha256-prfsha256-modp3072"]),
    ("aes256-sha2_256-modp3072", IKE, ["aes256-sha256-prfsha256-modp3072"]),  # the older '-' form
    ("ike=aes_gcm256-sha2_512;dh21,aes256-sha2_256;dh19", IKE,
     ["aes256gcm16-prfsha512-ecp521", "aes256-sha256-prfsha256-ecp256"]),
    ("aes_gcm_16_128-sha2_256+sha2_384;dh19+dh20", IKE, ["aes128gcm16-prfsha256-prfsha384-ecp256-ecp384"]),
    ("aes_cbc_128-sha2_512;dh14", IKE, ["aes128-sha512-prfsha512-modp2048"]),
    ("aes_ctr256-sha2_384;ecp_384", IKE, ["aes256ctr-sha384-prfsha384-ecp384"]),
    # defaults: no key length -> 256 then 128; no hash -> SHA2-512, SHA2-256; no group -> ECP-256, MODP-3072
    ("aes_gcm256", IKE, ["aes256gcm16-prfsha512-prfsha256-ecp256-modp3072"]),
    ("aes_gcm-sha2_384;dh20", IKE, ["aes256gcm16-aes128gcm16-prfsha384-ecp384"]),
    ("aes-sha2;dh19", IKE, ["aes256-aes128-sha256-prfsha256-ecp256"]),
    ("aes_gcm_12_256-sha2_256;dh19", IKE, ["aes256gcm12-prfsha256-ecp256"]),
    ("aes_gcm128", ESP, ["aes128gcm16"]),
    ("esp=aes_gcm128", ESP, ["aes128gcm16"]),
    ("phase2alg=aes_gcm256,aes_gcm128", ESP, ["aes256gcm16", "aes128gcm16"]),
    ("aes_gcm256;dh19", ESP, ["aes256gcm16-ecp256"]),  # an explicit PFS group
    ("aes_gcm256-null", ESP, ["aes256gcm16"]),
    ("aes256-sha2_512", ESP, ["aes256-sha512"]),
    ("aes_cbc_128-sha2_256+sha2_384;modp3072", ESP, ["aes128-sha256-sha384-modp3072"]),
    ("aes-sha2_256", ESP, ["aes256-aes128-sha256"]),
    ("aes_ccm_8_128", ESP, ["aes128ccm8"]),
    ("aes256", ESP, ["aes256-sha512-sha256"]),  # no integrity named: SHA2-512, SHA2-256
    ("aes_gcm256;none", ESP, ["aes256gcm16"]),  # `none` alone: no PFS, no KE transform
]


@pytest.mark.parametrize(("value", "protocol", "strongswan"), TABLE, ids=[t[0] for t in TABLE])
def test_same_spec_as_the_strongswan_string(value: str, protocol: Protocol, strongswan: list[str]) -> None:
    assert from_libreswan(value, protocol) == parse_strongswan(strongswan, protocol)


@pytest.mark.parametrize(("value", "protocol", "strongswan"), TABLE, ids=[t[0] for t in TABLE])
def test_fips_self_test_judges_what_the_engine_offers(value: str, protocol: Protocol,
                                                      strongswan: list[str]) -> None:
    """The proposals-fips-approved invariant's verdict and the conversion under the fips policy
    agree, proposal by proposal, and the spec names exactly the parsed transforms."""
    verdicts = check_against_profile(value, "fips", protocol.name.lower())
    if not all(v.allowed for v in verdicts):
        with pytest.raises(PolicyViolation):
            from_libreswan(value, protocol, Policy("fips"))
        specs = from_libreswan(value, protocol)
    else:
        specs = from_libreswan(value, protocol, Policy("fips"))
    assert len(verdicts) == len(specs)
    for v, spec in zip(verdicts, specs, strict=True):
        p = v.proposal
        assert [(t.id, t.key_bits or 0) for t in spec.transforms if t.type == TransformType.ENCR] == \
            [(int(c.alg), c.key_bits) for c in p.ciphers]
        assert [t.id for t in spec.transforms if t.type == TransformType.PRF] == [int(x) for x in p.prfs]
        assert [t.id for t in spec.transforms if t.type == TransformType.INTEG] == \
            [int(x) for x in p.integrity if x is not Integrity.NONE]
        assert [t.id for t in spec.transforms if t.type == TransformType.KE] == \
            [int(x) for x in p.ke if x is not KeyExchange.NONE]


def test_chacha_carries_no_key_length() -> None:
    # RFC 7634 2: no Key Length attribute for ENCR_CHACHA20_POLY1305
    (spec,) = from_libreswan("chacha20_poly1305-sha2_256;dh31", IKE)
    (e,) = [t for t in spec.transforms if t.type == TransformType.ENCR]
    assert e == Transform(TransformType.ENCR, int(Encryption.ENCR_CHACHA20_POLY1305), None)


def test_pfs_groups_fill_an_esp_proposal_without_one() -> None:
    (spec,) = from_libreswan("aes_gcm256", ESP, pfs_groups=(KeyExchange.ECP_384,))
    assert spec.ke_groups() == [int(KeyExchange.ECP_384)]
    (named,) = from_libreswan("aes_gcm256;dh19", ESP, pfs_groups=(KeyExchange.ECP_384,))
    assert named.ke_groups() == [int(KeyExchange.ECP_256)]  # a named group wins
    with pytest.raises(PolicyViolation, match="MODP_1024"):
        from_libreswan("aes_gcm256", ESP, Policy("fips"), pfs_groups=(KeyExchange.MODP_1024,))


def test_none_beside_a_group_offers_the_none_transform() -> None:
    (spec,) = from_libreswan("aes_gcm256;dh19+none", ESP)
    assert spec.ke_groups() == [19, 0]


@pytest.mark.parametrize(("value", "protocol"), [
    ("3des-sha1;modp1024", IKE),
    ("aes_gcm256-sha2_384;dh20,3des-sha1;modp1024", IKE),  # one bad proposal spoils the value
    ("aes_gcm256-sha1;dh19", IKE),
    ("aes128-md5", ESP),
    ("aes_gcm256;modp1024", ESP),
    ("chacha20_poly1305-sha2_256;dh31", IKE),
])
def test_refused_by_the_fips_policy_at_config_time(value: str, protocol: Protocol) -> None:
    with pytest.raises(PolicyViolation) as info:
        from_libreswan(value, protocol, Policy("fips"))
    assert info.value.profile == "fips" and "refused" in str(info.value)
    # the self-test's verdict on the same value agrees
    assert not all(v.allowed for v in check_against_profile(value, "fips", protocol.name.lower()))


def test_refusal_names_every_refused_transform() -> None:
    with pytest.raises(PolicyViolation) as info:
        from_libreswan("3des-sha1;modp1024", IKE, Policy("fips"))
    for name in ("ENCR_3DES", "PRF_HMAC_SHA1", "AUTH_HMAC_SHA1_96", "MODP_1024"):
        assert name in info.value.algorithm
    assert "3des-sha1;modp1024" in str(info.value)


def test_the_default_profile_keeps_what_fips_refuses() -> None:
    # no silent substitution: the transforms are those named, and the default profile takes them
    (spec,) = from_libreswan("aes256-sha1;modp2048", IKE, Policy("default"))
    assert [t.id for t in spec.transforms if t.type == TransformType.PRF] == [int(Prf.PRF_HMAC_SHA1)]


@pytest.mark.parametrize(("value", "protocol", "column"), [
    ("aes_gcm256-sha2_384;dh99x", IKE, 21),
    ("aes_gcm257-sha2_384;dh20", IKE, 1),
    ("aes_gcm256-sha2_384;dh20;dh19", IKE, 0),
    ("aes_gcm256-sha2_384;none", IKE, 0),
    ("", IKE, 0),
    ("aes256-null", ESP, 0),  # a non-AEAD cipher needs integrity
    ("aes_gcm256-sha2_256", ESP, 12),  # an AEAD cipher takes no integrity (RFC 4106 5)
    ("esp=aes_gcm256", IKE, 0),  # the keyword says another protocol
    ("ah=sha2_256", ESP, 0),
])
def test_syntax_errors_are_the_compliance_parsers(value: str, protocol: Protocol, column: int) -> None:
    with pytest.raises(ProposalSyntaxError) as info:
        from_libreswan(value, protocol)
    if column:
        assert info.value.column == column


def test_spec_from_one_parsed_proposal() -> None:
    (p,) = parse_proposals("aes_gcm256-sha2_384;dh20", "ike")
    assert spec_from_proposal(p, IKE) == ProposalSpec(IKE, (
        Transform(TransformType.ENCR, int(Encryption.ENCR_AES_GCM_16), 256),
        Transform(TransformType.PRF, int(Prf.PRF_HMAC_SHA2_384)),
        Transform(TransformType.KE, int(KeyExchange.ECP_384))))
    with pytest.raises(ProposalSyntaxError):
        spec_from_proposal(p, ESP)
    with pytest.raises(ProposalSyntaxError):
        spec_from_proposal(p, Protocol.AH)


def test_handshake_with_the_initiator_configured_from_libreswan(pair: PairFactory) -> None:
    """moon (initiator) from libreswan strings, sun from strongSwan strings: sun accepts only the
    second IKE proposal and its group, so moon's first KE (ECP-521) draws INVALID_KE_PAYLOAD first."""
    moon = {"ike_proposals": from_libreswan("ike=aes_gcm256-sha2_512;dh21,aes256-sha2_256;dh19", IKE,
                                            Policy("fips")),
            "child_esp_proposals": from_libreswan("esp=aes_gcm128", ESP, Policy("fips"))}
    net = pair(moon_kw=moon, sun_kw={"ike": ["aes256-sha256-prfsha256-ecp256"]})
    net.initiate(net.a, "gw")
    ke = net.wire[0].msg.get(KeyExchangePayload)
    assert ke is not None and ke.group == 21
    net.step()
    assert net.wire[0].msg.notify(NotifyType.INVALID_KE_PAYLOAD) is not None
    net.run()
    sa_a, sa_b = net.a.the_ike_sa(), net.b.the_ike_sa()
    for sa in (sa_a, sa_b):
        assert (sa.suite.encr, sa.suite.encr_key_bits, sa.suite.integ, sa.suite.prf, sa.suite.ke) == (
            Encryption.ENCR_AES_CBC, 256, Integrity.AUTH_HMAC_SHA2_256_128, Prf.PRF_HMAC_SHA2_256,
            KeyExchange.ECP_256)
    assert paired(net) and len(net.a.kernel) == 1
    (x,) = net.a.kernel.values()
    assert (x.outbound.encr, x.outbound.encr_key_bits, x.outbound.integ) == (Encryption.ENCR_AES_GCM_16, 128, None)
    assert not x.esn
    (y,) = net.b.kernel.values()
    ra, rb = net.a.engine.router, net.b.engine.router
    assert ra.keyed_fingerprint(ra.release_esp_key(x.outbound.encr_key, "t")) == \
        rb.keyed_fingerprint(rb.release_esp_key(y.inbound.encr_key, "t"))


def test_handshake_both_sides_from_libreswan_defaults(pair: PairFactory) -> None:
    """`ike=aes_gcm` and `esp=aes` on both sides: libreswan's defaults fill the rest, and the first
    of each list is what gets chosen (AES-256, PRF SHA2-512, ECP-256; ESP SHA2-512)."""
    kw = {"ike_proposals": from_libreswan("aes_gcm", IKE, Policy("fips")),
          "child_esp_proposals": from_libreswan("aes", ESP, Policy("fips"))}
    net = pair(**kw)
    net.initiate(net.a, "gw")
    net.run()
    sa = net.a.the_ike_sa()
    assert (sa.suite.encr, sa.suite.encr_key_bits, sa.suite.prf, sa.suite.ke) == (
        Encryption.ENCR_AES_GCM_16, 256, Prf.PRF_HMAC_SHA2_512, KeyExchange.ECP_256)
    assert str(sa.suite) == str(net.b.the_ike_sa().suite)
    assert paired(net)
    (x,) = net.a.kernel.values()
    assert (x.outbound.encr, x.outbound.encr_key_bits, x.outbound.integ) == (
        Encryption.ENCR_AES_CBC, 256, Integrity.AUTH_HMAC_SHA2_512_256)
