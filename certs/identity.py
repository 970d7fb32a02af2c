"""IKE identities (RFC 7296 section 3.5) and how they match a certificate
(RFC 4945 section 3.1).

`Identity` is the ID payload's (ID Type, Identification Data) pair. Config
strings use the libreswan / strongSwan forms:

    @host.example          ID_FQDN
    @#0a1b2c               ID_KEY_ID (hex)
    user@example.org       ID_RFC822_ADDR
    192.0.2.1 / 2001:db8::1  ID_IPV4_ADDR / ID_IPV6_ADDR
    C=US, O=Example, CN=gw ID_DER_ASN1_DN (RDNs in ASN.1 order, as both daemons print them)
    %null                  ID_NULL (RFC 7619)
    %fromcert              the subject DN of our certificate (resolved with the cert)

A DN attribute value of `*` in a configured identity is a wildcard that matches
any value of that attribute (libreswan's rightid="C=US, O=Example, CN=*").
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID
from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.error import PyAsn1Error
from pyasn1_modules import rfc5280


class IdType(enum.IntEnum):
    """IKEv2 Identification Payload ID Types (IANA registry, RFC 7296 section 3.5, RFC 7619)."""

    ID_IPV4_ADDR = 1
    ID_FQDN = 2
    ID_RFC822_ADDR = 3
    ID_IPV6_ADDR = 5
    ID_DER_ASN1_DN = 9
    ID_DER_ASN1_GN = 10
    ID_KEY_ID = 11
    ID_FC_NAME = 12
    ID_NULL = 13


class IdentityError(ValueError):
    """A config string or ID payload that is not a valid identity."""


# Attribute names accepted in DN strings, beyond RFC 4514's; E/emailAddress as
# both daemons print them.
_DN_ATTRS: dict[str, x509.ObjectIdentifier] = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "SN": NameOID.SURNAME,
    "GN": NameOID.GIVEN_NAME,
    "G": NameOID.GIVEN_NAME,
    "T": NameOID.TITLE,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAIL": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "STREET": NameOID.STREET_ADDRESS,
    "POSTALCODE": NameOID.POSTAL_CODE,
}
_SHORT_NAMES: dict[str, str] = {
    NameOID.COUNTRY_NAME.dotted_string: "C",
    NameOID.STATE_OR_PROVINCE_NAME.dotted_string: "ST",
    NameOID.LOCALITY_NAME.dotted_string: "L",
    NameOID.ORGANIZATION_NAME.dotted_string: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: "OU",
    NameOID.COMMON_NAME.dotted_string: "CN",
    NameOID.SURNAME.dotted_string: "SN",
    NameOID.GIVEN_NAME.dotted_string: "GN",
    NameOID.TITLE.dotted_string: "T",
    NameOID.EMAIL_ADDRESS.dotted_string: "E",
    NameOID.SERIAL_NUMBER.dotted_string: "serialNumber",
    NameOID.DOMAIN_COMPONENT.dotted_string: "DC",
    NameOID.USER_ID.dotted_string: "UID",
    NameOID.STREET_ADDRESS.dotted_string: "STREET",
    NameOID.POSTAL_CODE.dotted_string: "postalCode",
}

WILDCARD = "*"
_PRINTABLE_NO_SPACE = bytes(range(0x21, 0x7F))  # printable ASCII without space and DEL

# A DN as comparable data: RDNs in order, each a sorted tuple of (OID, normalised value).
NormalisedDn = tuple[tuple[tuple[str, str], ...], ...]


@dataclass(frozen=True)
class Identity:
    """An IKE identity: the ID payload's type and Identification Data."""

    id_type: IdType
    data: bytes

    # --- construction ---------------------------------------------------------
    @classmethod
    def parse(cls, text: str, cert: x509.Certificate | None = None) -> Identity:
        """An identity from a config string (see the module docstring).

        `%fromcert` needs `cert`: the ID is then the certificate's subject DN,
        as libreswan derives it.
        """
        s = text.strip()
        if len(s) >= 2 and s[0] == s[-1] == '"':
            s = s[1:-1].strip()
        if not s:
            raise IdentityError("empty identity")
        if s == "%fromcert":
            if cert is None:
                raise IdentityError("%fromcert needs a certificate")
            return cls.from_cert(cert)
        if s == "%null":
            return cls(IdType.ID_NULL, b"")
        if s.startswith("%"):
            raise IdentityError(f"unknown identity keyword {s!r}")
        if s.startswith("@#"):
            try:
                return cls(IdType.ID_KEY_ID, bytes.fromhex(s[2:]))
            except ValueError as e:
                raise IdentityError(f"bad hex key id in {s!r}") from e
        if s.startswith("@"):
            return cls(IdType.ID_FQDN, _ascii(s[1:].rstrip("."), s))
        try:
            addr = ipaddress.ip_address(s)
        except ValueError:
            pass
        else:
            kind = IdType.ID_IPV4_ADDR if addr.version == 4 else IdType.ID_IPV6_ADDR
            return cls(kind, addr.packed)
        if "=" in s:
            return cls(IdType.ID_DER_ASN1_DN, parse_dn(s).public_bytes())
        if "@" in s:
            return cls(IdType.ID_RFC822_ADDR, _ascii(s, s))
        # A bare name is an FQDN, as strongSwan reads it (libreswan would resolve it to an
        # address: identity parsing here never touches DNS).
        return cls(IdType.ID_FQDN, _ascii(s.rstrip("."), s))

    @classmethod
    def from_cert(cls, cert: x509.Certificate) -> Identity:
        """%fromcert: the subject DN (libreswan's choice; RFC 4945 3.1.5)."""
        return cls(IdType.ID_DER_ASN1_DN, cert.subject.public_bytes())

    @classmethod
    def from_payload(cls, id_type: int, data: bytes) -> Identity:
        """From the ID payload fields; checks the data fits the type (RFC 7296 3.5)."""
        try:
            kind = IdType(id_type)
        except ValueError as e:
            raise IdentityError(f"unknown ID type {id_type}") from e
        if kind is IdType.ID_IPV4_ADDR and len(data) != 4:
            raise IdentityError("ID_IPV4_ADDR must be 4 octets")
        if kind is IdType.ID_IPV6_ADDR and len(data) != 16:
            raise IdentityError("ID_IPV6_ADDR must be 16 octets")
        if kind in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            if not data or data.translate(None, _PRINTABLE_NO_SPACE):  # anything left is not allowed
                raise IdentityError(f"{kind.name} must be printable ASCII without spaces")
        if kind is IdType.ID_DER_ASN1_DN:
            normalised_dn(data)  # raises on malformed DER
        if kind is IdType.ID_NULL and data:
            raise IdentityError("ID_NULL carries no data (RFC 7619 section 2)")
        return cls(kind, bytes(data))

    def to_payload(self) -> tuple[int, bytes]:
        """(ID Type, Identification Data) for the ID payload."""
        return int(self.id_type), self.data

    # --- presentation -----------------------------------------------------------
    def __str__(self) -> str:
        t = self.id_type
        if t in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            return str(ipaddress.ip_address(self.data))
        if t is IdType.ID_FQDN:
            return "@" + self.data.decode("ascii", "replace")
        if t is IdType.ID_RFC822_ADDR:
            return self.data.decode("ascii", "replace")
        if t is IdType.ID_DER_ASN1_DN:
            try:
                return dn_string(self.data)
            except IdentityError:
                return "<malformed DN>"
        if t is IdType.ID_KEY_ID:
            return "@#" + self.data.hex()
        if t is IdType.ID_NULL:
            return "%null"
        return f"{t.name}:{self.data.hex()}"

    def __repr__(self) -> str:
        return f"Identity({self.id_type.name}, {str(self)!r})"

    # --- matching (RFC 4945 3.1) -----------------------------------------------
    def matches_cert(self, cert: x509.Certificate) -> bool:
        """True when this identity is bound to the certificate: DN against the
        subject (RFC 4945 3.1.5), the others against the subjectAltName (3.1.1-3.1.4).
        The DN's CN is never taken for an FQDN (RFC 4945 3.1.5)."""
        t = self.id_type
        if t is IdType.ID_DER_ASN1_DN:
            return dn_matches(self.data, cert.subject)
        sans = _sans(cert)
        if t in (IdType.ID_IPV4_ADDR, IdType.ID_IPV6_ADDR):
            addr = ipaddress.ip_address(self.data)
            return any(isinstance(n, x509.IPAddress) and n.value == addr for n in sans)
        if t is IdType.ID_FQDN:
            want = self.data.decode("ascii").lower().rstrip(".")
            return any(isinstance(n, x509.DNSName) and n.value.lower().rstrip(".") == want for n in sans)
        if t is IdType.ID_RFC822_ADDR:
            want_mail = _mailbox(self.data.decode("ascii"))
            return any(isinstance(n, x509.RFC822Name) and _mailbox(n.value) == want_mail for n in sans)
        return False

    def matches(self, other: Identity) -> bool:
        """This (configured, maybe with DN wildcards) identity against a received one."""
        if self.id_type is not other.id_type:
            return False
        if self.id_type is IdType.ID_DER_ASN1_DN:
            return dn_matches(self.data, other.data)
        if self.id_type in (IdType.ID_FQDN, IdType.ID_RFC822_ADDR):
            if self.id_type is IdType.ID_FQDN:
                return self.data.lower().rstrip(b".") == other.data.lower().rstrip(b".")
            return _mailbox(self.data.decode("ascii")) == _mailbox(other.data.decode("ascii"))
        return self.data == other.data


def _ascii(value: str, original: str) -> bytes:
    if not value or not value.isascii() or any(c.isspace() for c in value):
        raise IdentityError(f"identity {original!r} must be ASCII without spaces")
    return value.encode("ascii")


def _mailbox(addr: str) -> tuple[str, str]:
    # RFC 5280 7.5: the local part is case-sensitive, the domain is not.
    local, _, domain = addr.rpartition("@")
    return local, domain.lower()


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


# --- distinguished names --------------------------------------------------------
def parse_dn(text: str) -> x509.Name:
    """A DN string with RDNs in ASN.1 order ("C=US, O=Example, CN=gw"), separated by
    ',' or ';', multi-valued RDNs joined by '+', RFC 4514 escapes and quotes accepted."""
    rdns: list[x509.RelativeDistinguishedName] = []
    for rdn_text in _split_unescaped(text, ",;"):
        attrs: list[x509.NameAttribute[str]] = []
        for ava in _split_unescaped(rdn_text, "+"):
            name, sep, value = ava.partition("=")
            if not sep:
                raise IdentityError(f"DN component {ava.strip()!r} lacks '='")
            key = name.strip()
            oid = _DN_ATTRS.get(key.upper().replace(".", ""))
            if oid is None:
                if re.fullmatch(r"\d+(\.\d+)+", key):
                    oid = x509.ObjectIdentifier(key)
                else:
                    raise IdentityError(f"unknown DN attribute {key!r}")
            val = _unescape(value.strip())
            if not val:
                raise IdentityError(f"empty value for DN attribute {key!r}")
            try:
                attrs.append(x509.NameAttribute(oid, val))
            except ValueError as e:
                raise IdentityError(f"bad value for DN attribute {key!r}: {e}") from e
        rdns.append(x509.RelativeDistinguishedName(attrs))
    if not rdns:
        raise IdentityError("empty DN")
    return x509.Name(rdns)


def _split_unescaped(text: str, seps: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c in seps and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    if quoted:
        raise IdentityError("unbalanced quote in DN")
    parts.append("".join(cur))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    out: list[str] = []
    raw = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            pair = value[i + 1:i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                raw.append(int(pair, 16))  # RFC 4514 hexpair: UTF-8 octets
                i += 3
                continue
            if raw:
                out.append(raw.decode("utf-8", "replace"))
                raw.clear()
            out.append(value[i + 1])
            i += 2
            continue
        if raw:
            out.append(raw.decode("utf-8", "replace"))
            raw.clear()
        out.append(c)
        i += 1
    if raw:
        out.append(raw.decode("utf-8", "replace"))
    return "".join(out)


def _decode_dn(der: bytes) -> list[list[tuple[str, str]]]:
    """[[(OID, value), ...] per RDN] from a DER Name (RFC 5280 4.1.2.4)."""
    try:
        name, rest = der_decoder.decode(der, asn1Spec=rfc5280.Name())
    except PyAsn1Error as e:
        raise IdentityError("malformed DER distinguished name") from e
    if rest:
        raise IdentityError("trailing data after the distinguished name")
    out: list[list[tuple[str, str]]] = []
    for rdn in name.getComponent():
        avas: list[tuple[str, str]] = []
        for ava in rdn:
            oid = str(ava["type"])
            try:
                value, _ = ber_decoder.decode(bytes(ava["value"]))
                text = str(value)
            except (PyAsn1Error, UnicodeDecodeError) as e:
                raise IdentityError("undecodable DN attribute value") from e
            avas.append((oid, text))
        out.append(avas)
    return out


def _norm(value: str) -> str:
    # RFC 5280 7.1 / RFC 4518 in short: case-insensitive, insignificant spaces removed.
    return " ".join(value.split()).casefold()


@functools.lru_cache(maxsize=256)  # pyasn1 is slow; configured and received IDs recur
def normalised_dn(der: bytes) -> NormalisedDn:
    return tuple(tuple(sorted((oid, _norm(v)) for oid, v in rdn)) for rdn in _decode_dn(der))


def normalised_name(name: x509.Name) -> NormalisedDn:
    """normalised_dn of a Name `cryptography` already parsed (no DER round trip)."""
    return tuple(
        tuple(sorted((a.oid.dotted_string, _norm(a.value) if isinstance(a.value, str) else a.value.hex())
                     for a in rdn))
        for rdn in name.rdns)


def dn_matches(pattern_der: bytes, der: bytes | x509.Name) -> bool:
    """Same RDNs in the same order, values compared as RFC 5280 7.1 says; a `*`
    value in the pattern matches any value of that attribute."""
    want = normalised_dn(pattern_der)
    have = normalised_name(der) if isinstance(der, x509.Name) else normalised_dn(der)
    if len(want) != len(have):
        return False
    for w_rdn, h_rdn in zip(want, have, strict=True):
        if len(w_rdn) != len(h_rdn):
            return False
        for (w_oid, w_val), (h_oid, h_val) in zip(w_rdn, h_rdn, strict=True):
            if w_oid != h_oid or (w_val != WILDCARD and w_val != h_val):
                return False
    return True


def dn_string(der: bytes) -> str:
    """"C=US, O=Example, CN=gw" (ASN.1 order, as libreswan and strongSwan print DNs)."""
    rdns = _decode_dn(der)
    return ", ".join("+".join(f"{_SHORT_NAMES.get(oid, oid)}={_escape(v)}" for oid, v in rdn) for rdn in rdns)


def name_string(name: x509.Name) -> str:
    """dn_string of a Name `cryptography` already parsed."""
    return ", ".join(
        "+".join(f"{_SHORT_NAMES.get(a.oid.dotted_string, a.oid.dotted_string)}="
                 f"{_escape(a.value if isinstance(a.value, str) else a.value.hex())}" for a in rdn)
        for rdn in name.rdns)


def _escape(value: str) -> str:
    out = "".join("\\" + c if c in ',+"\\<>;=' else c for c in value)
    if out.startswith((" ", "#")):
        out = "\\" + out
    if out.endswith(" "):
        out = out[:-1] + "\\ "
    return out


def identities_of_cert(cert: x509.Certificate) -> Sequence[Identity]:
    """Every identity the certificate can vouch for: its subject DN, then each SAN
    of a type IKE carries (for `fipsike cert list` and for choosing our own ID)."""
    ids: list[Identity] = [Identity.from_cert(cert)] if len(cert.subject) else []
    for n in _sans(cert):
        if isinstance(n, x509.DNSName):
            ids.append(Identity(IdType.ID_FQDN, n.value.encode("ascii", "replace")))
        elif isinstance(n, x509.RFC822Name):
            ids.append(Identity(IdType.ID_RFC822_ADDR, n.value.encode("ascii", "replace")))
        elif isinstance(n, x509.IPAddress) and isinstance(n.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            kind = IdType.ID_IPV4_ADDR if n.value.version == 4 else IdType.ID_IPV6_ADDR
            ids.append(Identity(kind, n.value.packed))
    return ids
