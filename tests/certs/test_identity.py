"""IKE identities: config strings, ID payload bytes, matching against certificates
(RFC 7296 3.5, RFC 4945 3.1)."""

from __future__ import annotations

import pytest

from certs.identity import Identity, IdentityError, IdType, dn_string, identities_of_cert, parse_dn
from tests.certs.conftest import Pki

# config string -> (IANA ID type number, payload data hex, canonical text)
PARSE_TABLE = [
    ("@gw.example", 2, b"gw.example".hex(), "@gw.example"),
    ("@gw.example.", 2, b"gw.example".hex(), "@gw.example"),
    ("gw.example", 2, b"gw.example".hex(), "@gw.example"),
    ("ike@gw.example", 3, b"ike@gw.example".hex(), "ike@gw.example"),
    ("192.0.2.10", 1, "c000020a", "192.0.2.10"),
    ("2001:db8::10", 5, "20010db8000000000000000000000010", "2001:db8::10"),
    ("@#0a0b0c", 11, "0a0b0c", "@#0a0b0c"),
    ("%null", 13, "", "%null"),
    # DER of SEQUENCE { SET { C=US (PrintableString) }, SET { CN=gw (UTF8String) } }
    ("C=US, CN=gw", 9, "301a310b3009060355040613025553310b300906035504030c026777", "C=US, CN=gw"),
    ('"C=US, CN=gw"', 9, "301a310b3009060355040613025553310b300906035504030c026777", "C=US, CN=gw"),
]


@pytest.mark.parametrize(("text", "id_type", "data_hex", "canonical"), PARSE_TABLE)
def test_parse_and_payload_round_trip(text: str, id_type: int, data_hex: str, canonical: str) -> None:
    ident = Identity.parse(text)
    assert ident.to_payload() == (id_type, bytes.fromhex(data_hex))
    assert str(ident) == canonical
    again = Identity.from_payload(id_type, bytes.fromhex(data_hex))
    assert again == ident
    assert Identity.parse(str(ident)) == ident


def test_iana_numbers() -> None:
    assert [IdType.ID_IPV4_ADDR, IdType.ID_FQDN, IdType.ID_RFC822_ADDR, IdType.ID_IPV6_ADDR, IdType.ID_DER_ASN1_DN,
            IdType.ID_KEY_ID, IdType.ID_NULL] == [1, 2, 3, 5, 9, 11, 13]


@pytest.mark.parametrize(("id_type", "data"), [
    (1, b"\x01\x02\x03"), (5, b"\x00" * 4), (2, b""), (2, b"has space"), (3, b"\xff@x"),
    (9, b"\x30\x03\x31"), (13, b"x"), (99, b"x"),
])
def test_bad_payloads_are_typed_errors(id_type: int, data: bytes) -> None:
    with pytest.raises(IdentityError):
        Identity.from_payload(id_type, data)


@pytest.mark.parametrize("text", ["", "%bogus", "@#zz", "C=US, XX=1", "C=US, =x", "C=USA", "@a b", 'CN="open'])
def test_bad_config_strings(text: str) -> None:
    with pytest.raises(IdentityError):
        Identity.parse(text)


def test_dn_string_order_and_escapes() -> None:
    name = parse_dn(r'C=US, O=Example\, Inc., OU=IPsec+UID=gw1, CN="gw, east"')
    assert [a.value for a in name] == ["US", "Example, Inc.", "IPsec", "gw1", "gw, east"]
    assert dn_string(name.public_bytes()) == r"C=US, O=Example\, Inc., OU=IPsec+UID=gw1, CN=gw\, east"


def test_fromcert_is_the_subject_dn(pki: Pki) -> None:
    cert = pki.certs["via-inter"].cert
    ident = Identity.parse("%fromcert", cert)
    assert ident.id_type is IdType.ID_DER_ASN1_DN
    assert ident.data == cert.subject.public_bytes()
    assert str(ident) == "C=US, O=fipsike test, CN=gw.example"
    with pytest.raises(IdentityError):
        Identity.parse("%fromcert")


# (configured / received ID, certificate key in the PKI fixture, bound?)
MATCH_TABLE = [
    ("@gw.example", "via-inter", True),
    ("@GW.Example", "via-inter", True),  # DNS names are case-insensitive
    ("@other.example", "via-inter", False),
    ("ike@gw.example", "via-inter", True),
    ("ike@GW.EXAMPLE", "via-inter", True),  # domain part case-insensitive (RFC 5280 7.5)
    ("IKE@gw.example", "via-inter", False),  # local part is not
    ("2001:db8::10", "via-inter", True),
    ("2001:db8::11", "via-inter", False),
    ("192.0.2.10", "direct", True),
    ("192.0.2.10", "via-inter", False),
    ("C=US, O=fipsike test, CN=gw.example", "via-inter", True),
    ("C=us, O=FIPSIKE  test, CN=gw.example", "via-inter", True),  # RFC 5280 7.1 comparison
    ("C=US, O=fipsike test, CN=*", "via-inter", True),  # libreswan wildcard
    ("C=US, O=other, CN=*", "via-inter", False),
    ("CN=gw.example, O=fipsike test, C=US", "via-inter", False),  # RDN order matters
    ("C=US, O=fipsike test, CN=direct.example", "via-inter", False),
    ("@#0102", "via-inter", False),  # ID_KEY_ID is never bound to a certificate
    ("%null", "via-inter", False),
]


@pytest.mark.parametrize(("text", "cert_name", "bound"), MATCH_TABLE)
def test_identity_matches_certificate(pki: Pki, text: str, cert_name: str, bound: bool) -> None:
    assert Identity.parse(text).matches_cert(pki.certs[cert_name].cert) is bound


def test_fqdn_never_matches_the_cn(pki: Pki) -> None:
    """RFC 4945 3.1.5: the CN is not a DNS name. nodigsig.example has SAN DNS:nodigsig.example,
    so build the test on a certificate without that SAN."""
    cert = pki.certs["direct"].cert  # CN=direct.example, SAN DNS:direct.example + IP
    assert Identity.parse("@direct.example").matches_cert(cert)
    sans_only_ip = pki.pki.end_entity("cn-only.example", pki.root, sans=("IP:192.0.2.99",)).cert
    assert not Identity.parse("@cn-only.example").matches_cert(sans_only_ip)


def test_configured_against_received() -> None:
    wildcard = Identity.parse("C=US, O=Example, CN=*")
    assert wildcard.matches(Identity.parse("C=US, O=Example, CN=east"))
    assert not wildcard.matches(Identity.parse("@east"))
    assert Identity.parse("@East.example").matches(Identity.from_payload(2, b"east.example"))


def test_identities_of_cert(pki: Pki) -> None:
    ids = [str(i) for i in identities_of_cert(pki.certs["via-inter"].cert)]
    assert ids == ["C=US, O=fipsike test, CN=gw.example", "@gw.example", "ike@gw.example", "2001:db8::10"]


def test_repr_is_readable() -> None:
    assert repr(Identity.parse("@gw")) == "Identity(ID_FQDN, '@gw')"
    assert isinstance(Identity.parse("10.0.0.1").to_payload()[1], bytes)
