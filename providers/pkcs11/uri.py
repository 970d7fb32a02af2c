"""PKCS#11 URIs (RFC 7512): our own parser and formatter.

    pkcs11:token=fipsike;object=ike-signing;type=private?pin-source=file:/etc/fipsike/pin

Strict: a repeated attribute, a bad percent-escape, an attribute name or a
character outside the RFC 7512 section 2.3 grammar is an error, never ignored.
Names that are not RFC 7512 attributes are vendor attributes (pk11-v-pattr /
pk11-v-qattr) and are kept in `vendor`; the key lookup refuses a URI carrying
one, since it cannot honour it. Values are percent-decoded; `id` stays bytes, every other
value is UTF-8 text. `module-path` is only *parsed* here: whether it may be
loaded is decided against Pkcs11Config.allowed_modules.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from typing import Final

from providers.errors import ProviderError

SCHEME: Final = "pkcs11:"

# RFC 7512 section 2.3 ABNF: pk11-pchar and pk11-qchar (besides pct-encoded)
_UNRESERVED: Final = frozenset(string.ascii_letters + string.digits + "-._~")
_RES_AVAIL: Final = frozenset(":[]@!$'()*+,=")  # pk11-res-avail
_PCHAR: Final = _UNRESERVED | _RES_AVAIL | frozenset("&")  # pk11-path-res-avail
_QCHAR: Final = _UNRESERVED | _RES_AVAIL | frozenset("/?|")  # pk11-query-res-avail

PATH_ATTRIBUTES: Final = (
    "token", "manufacturer", "serial", "model", "library-manufacturer", "library-version",
    "library-description", "object", "type", "id", "slot-description", "slot-manufacturer", "slot-id",
)
QUERY_ATTRIBUTES: Final = ("pin-source", "pin-value", "module-name", "module-path")
OBJECT_TYPES: Final = ("public", "private", "cert", "secret-key", "data")


class Pkcs11UriError(ProviderError, ValueError):
    """A PKCS#11 URI that does not follow RFC 7512."""


@dataclass(frozen=True)
class Pkcs11Uri:
    """The attributes of one URI; None = absent. `vendor` holds x- attributes (path and query)."""

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    library_manufacturer: str | None = None
    library_version: str | None = None
    library_description: str | None = None
    object: str | None = None
    type: str | None = None
    id: bytes | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None
    slot_id: int | None = None
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)
    module_name: str | None = None
    module_path: str | None = None
    vendor: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:
        # never show pin-value; keep the URI otherwise readable
        return f"Pkcs11Uri({format_uri(self, redact_pin=True)!r})"

    __str__ = __repr__


_VENDOR_NAME_CHARS: Final = frozenset(string.ascii_letters + string.digits + "-_")  # pk11-v-attr-nm-char


def _vendor_name(name: str) -> str:
    if not name or any(c not in _VENDOR_NAME_CHARS for c in name):
        raise Pkcs11UriError(f"attribute name {name!r} is not valid (RFC 7512 section 2.3)")
    return name


def _pct_decode(raw: str, allowed: frozenset[str], what: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "%":
            pair = raw[i + 1:i + 3]
            if len(pair) != 2 or any(ch not in string.hexdigits for ch in pair):
                raise Pkcs11UriError(f"{what}: bad percent-escape at offset {i}")
            out.append(int(pair, 16))
            i += 3
            continue
        if c not in allowed:
            shown = "a character" if "pin-value" in what else f"character {c!r}"  # never a PIN character
            raise Pkcs11UriError(f"{what}: {shown} must be percent-encoded (RFC 7512 section 2.3)")
        out.extend(c.encode("ascii"))
        i += 1
    return bytes(out)


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise Pkcs11UriError(f"{what}: value is not UTF-8") from None


def parse_uri(uri: str) -> Pkcs11Uri:
    """Parse a PKCS#11 URI; raises Pkcs11UriError."""
    if not uri[: len(SCHEME)].lower() == SCHEME:
        raise Pkcs11UriError("not a PKCS#11 URI (must start with 'pkcs11:')")
    rest = uri[len(SCHEME):]
    path, sep, query = rest.partition("?")
    fields: dict[str, object] = {}
    vendor: list[tuple[str, str]] = []
    seen: set[str] = set()

    def attr_pairs(part: str, sep_char: str) -> list[tuple[str, str]]:
        if not part:
            return []
        pairs = []
        where = "path" if sep_char == ";" else "query"
        for n, item in enumerate(part.split(sep_char), 1):
            name, eq, value = item.partition("=")
            if not eq or not name:
                # not quoted: a mistyped "pin-value" would bring the PIN along
                raise Pkcs11UriError(f"{where} attribute number {n} is not name=value")
            pairs.append((name.lower(), value))
        return pairs

    for name, raw in attr_pairs(path, ";"):
        what = f"path attribute {name}"
        if name in seen:
            raise Pkcs11UriError(f"{what} appears twice (RFC 7512 section 2.3)")
        seen.add(name)
        value = _pct_decode(raw, frozenset(_PCHAR), what)
        if name not in PATH_ATTRIBUTES:
            if name in QUERY_ATTRIBUTES:
                raise Pkcs11UriError(f"{name} belongs in the query part (after '?')")
            vendor.append((_vendor_name(name), _text(value, what)))
        elif name == "id":
            fields["id"] = value
        elif name == "slot-id":
            text = _text(value, what)
            if not text.isdigit():
                raise Pkcs11UriError(f"{what} must be a decimal number")
            fields["slot_id"] = int(text)
        elif name == "type":
            text = _text(value, what)
            if text not in OBJECT_TYPES:
                raise Pkcs11UriError(f"{what} must be one of {', '.join(OBJECT_TYPES)}")
            fields["type"] = text
        elif name == "library-version":
            text = _text(value, what)
            major, _, minor = text.partition(".")
            if not major.isdigit() or (minor and not minor.isdigit()):
                raise Pkcs11UriError(f"{what} must be M or M.N")
            fields["library_version"] = text
        else:
            fields[name.replace("-", "_")] = _text(value, what)

    if sep:
        for name, raw in attr_pairs(query, "&"):
            what = f"query attribute {name}"
            if name in seen:
                raise Pkcs11UriError(f"{what} appears twice (RFC 7512 section 2.3)")
            seen.add(name)
            text = _text(_pct_decode(raw, frozenset(_QCHAR), what), what)
            if name in QUERY_ATTRIBUTES:
                fields[name.replace("-", "_")] = text
            elif name in PATH_ATTRIBUTES:
                raise Pkcs11UriError(f"{name} belongs in the path part (before '?')")
            else:
                vendor.append((_vendor_name(name), text))
        if "pin_source" in fields and "pin_value" in fields:
            raise Pkcs11UriError("pin-source and pin-value must not both be given")
    return Pkcs11Uri(vendor=tuple(vendor), **fields)  # type: ignore[arg-type]


def _pct_encode(value: bytes, allowed: frozenset[str]) -> str:
    return "".join(chr(b) if chr(b) in allowed and b < 0x80 else f"%{b:02X}" for b in value)


def format_uri(uri: Pkcs11Uri, redact_pin: bool = False) -> str:
    """The URI text (attributes in RFC 7512 order); `redact_pin` replaces pin-value with ***."""
    path: list[str] = []
    for name in PATH_ATTRIBUTES:
        value = getattr(uri, name.replace("-", "_"))
        if value is None:
            continue
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        allowed = frozenset() if name == "id" else frozenset(_PCHAR)
        path.append(f"{name}={_pct_encode(raw, allowed)}")
    query: list[str] = []
    for name in QUERY_ATTRIBUTES:
        value = getattr(uri, name.replace("-", "_"))
        if value is None:
            continue
        if name == "pin-value" and redact_pin:
            query.append("pin-value=***")
            continue
        query.append(f"{name}={_pct_encode(str(value).encode('utf-8'), _QCHAR)}")
    for name, value in uri.vendor:
        path.append(f"{name}={_pct_encode(value.encode('utf-8'), frozenset(_PCHAR - {'&'}))}")
    text = SCHEME + ";".join(path)
    return text + ("?" + "&".join(query) if query else "")


def printable_uri(uri: str) -> str:
    """A URI as given (config, command line), fit for a message or a log: pin-value redacted.

    A URI that does not parse still has every pin-value attribute cut, so a typo elsewhere in
    it cannot bring its PIN along into the error that reports the typo."""
    try:
        return format_uri(parse_uri(uri), redact_pin=True)
    except Pkcs11UriError:
        return re.sub(r"(?i)(pin-value)=[^&;]*", r"\1=***", uri)
