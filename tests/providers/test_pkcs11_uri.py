"""RFC 7512 PKCS#11 URIs: the RFC's own examples (section 3) and the strictness rules."""

from __future__ import annotations

import pytest

from providers.pkcs11.uri import Pkcs11UriError, format_uri, parse_uri

RFC7512_EXAMPLES = [
    "pkcs11:",
    "pkcs11:object=my-pubkey;type=public",
    "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
    "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;"
    "object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
    "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
    "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
    "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
    "pkcs11:slot-description=Sun%20Metaslot",
    "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
    "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ef%08;object=my-certificate;type=cert",
    "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
    "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
    "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
]


def test_rfc7512_examples_parse() -> None:
    parsed = []
    for text in RFC7512_EXAMPLES:
        parsed.append(parse_uri(text))
    assert dict(parsed[-1].vendor) == {"vendor-aaa": "value-a", "vendor-bbb": "value-b"}
    u = parse_uri(RFC7512_EXAMPLES[3])
    assert u.token == "The Software PKCS#11 Softtoken" and u.manufacturer == "Snake Oil, Inc."
    assert u.id == bytes.fromhex("69953e5cf4bdec91") and u.serial == "" and u.type == "cert"
    assert u.pin_source == "file:/etc/token_pin"
    assert parse_uri(RFC7512_EXAMPLES[9]).id == bytes.fromhex("010203badDef08".lower())
    assert parse_uri(RFC7512_EXAMPLES[10]).token == "A name with a substring %;"
    assert parse_uri(RFC7512_EXAMPLES[11]).token == "Name with a small A with acute: \u00e1"
    assert parse_uri(RFC7512_EXAMPLES[5]).module_path == "/mnt/libmypkcs11.so.1"
    assert parse_uri(RFC7512_EXAMPLES[8]).library_version == "1.23"
    assert len(parsed) == len(RFC7512_EXAMPLES)


def test_round_trip() -> None:
    for text in RFC7512_EXAMPLES[:-1]:
        u = parse_uri(text)
        assert parse_uri(format_uri(u)) == u


def test_vendor_attributes_kept() -> None:
    u = parse_uri("pkcs11:token=t;x-foo=bar?x-baz=1")
    assert dict(u.vendor) == {"x-foo": "bar", "x-baz": "1"}


@pytest.mark.parametrize("bad", [
    "pkcs12:token=x",
    "pkcs11:token=a;token=b",
    "pkcs11:a.b=1",
    "pkcs11:token=x;pin-value=1",
    "pkcs11:?token=x",
    "pkcs11:token=a b",
    "pkcs11:token=%4",
    "pkcs11:token=%zz",
    "pkcs11:type=secret",
    "pkcs11:slot-id=abc",
    "pkcs11:library-version=1.x",
    "pkcs11:object",
    "pkcs11:token=x?pin-source=a&pin-value=b",
    "pkcs11:token=x?pin-source=a&pin-source=b",
    "pkcs11:token=x?bo.gus=1",
    "pkcs11:token=%FF%FE",
    "pkcs11:object=a/b",
])
def test_malformed_refused(bad: str) -> None:
    with pytest.raises(Pkcs11UriError):
        parse_uri(bad)


def test_pin_value_redacted_in_format() -> None:
    u = parse_uri("pkcs11:token=t?pin-value=1234")
    assert "1234" not in format_uri(u, redact_pin=True) and "1234" in format_uri(u)
