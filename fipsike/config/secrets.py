"""ipsec.secrets: pre-shared keys and the HSM PIN, never shown.

Accepted lines (libreswan's ipsec.secrets(5), the parts fipsike uses):
    : PSK "secret"                    a PSK for any pair of IDs
    @a @b 192.0.2.1 : PSK "secret"    a PSK for these IDs (addresses, @fqdn, DNs in quotes)
    : PSK 0x6b6579...                 hex (0s base64 is refused: ambiguous with libreswan's)
    : PIN "1234"                      the PKCS#11 token's user PIN
    include FILE-OR-GLOB              relative to the including file
RSA/ECDSA/XAUTH/PPK entries are refused by name (private keys live in the store or on the token).

A secrets file that its group or others can read or write is refused, as OpenSSH refuses such a key.
No error, warning, repr or str ever holds a secret's text: messages name the file, line and kind only.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from certs.identity import Identity, IdentityError
from fipsike.config.errors import ConfigError, ConfigUnreadable, Diagnostic, Location
from providers.pkcs11.config import PinUnavailable

MAX_DEPTH = 10


class Secret:
    """Secret bytes that never show themselves."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"Secret(<{len(self._value)} bytes, redacted>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SecretEntry:
    kind: str  # "PSK" or "PIN"
    ids: tuple[str, ...]  # the named IDs; empty and not any_id: a default for every pair
    secret: Secret = field(repr=False)
    location: Location
    any_id: bool = False  # the line names %any (or 0.0.0.0, ::): a wildcard ID

    def matches(self, local_id: str, remote_id: str) -> bool:
        return _score(self, local_id, remote_id) > 0


# libreswan's PSK selection (ipsec.secrets(5); pluto's secret lookup, read for its behaviour): each line
# scores by what its IDs match; the highest score wins, the first line on a tie. Matching only the
# local ID among several IDs, or only the remote one without %any, is no match for a PSK.
_DEFAULT, _ANY, _REMOTE, _LOCAL = 1, 2, 4, 8
_ACCEPTED = frozenset({_DEFAULT, _ANY, _LOCAL | _DEFAULT, _LOCAL | _ANY, _REMOTE | _ANY, _LOCAL | _REMOTE})


def _same_id(a: str, b: str) -> bool:
    if a == b:
        return True
    try:  # as the ID payloads compare (FQDNs case-insensitively); both ways, so a DN wildcard is no joker
        ia, ib = Identity.parse(a), Identity.parse(b)
        return bool(ia.matches(ib) and ib.matches(ia))
    except (IdentityError, ValueError):
        return False


def _score(e: SecretEntry, local_id: str, remote_id: str) -> int:
    if not e.ids and not e.any_id:
        return _DEFAULT
    match = _ANY if e.any_id else 0
    for i in e.ids:
        if _same_id(i, local_id):
            match |= _LOCAL
        if _same_id(i, remote_id):
            match |= _REMOTE
    if match == _LOCAL and len(e.ids) == 1 and not e.any_id:
        match |= _DEFAULT  # our ID alone on the line: for any peer
    return match if match in _ACCEPTED else 0


@dataclass
class Secrets:
    entries: list[SecretEntry] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def psk_for(self, local_id: str, remote_id: str) -> SecretEntry | None:
        """The PSK for this ID pair as libreswan picks it: both IDs named, then our ID with %any (or
        alone), the peer's with %any, a line of %any, then a line without IDs; the first line on a tie."""
        best: tuple[int, SecretEntry] | None = None
        for e in self.entries:
            if e.kind != "PSK":
                continue
            score = _score(e, local_id, remote_id)
            if score and (best is None or score > best[0]):
                best = (score, e)
        return best[1] if best else None

    def pin(self) -> SecretEntry | None:
        return next((e for e in self.entries if e.kind == "PIN"), None)


_REFUSED_KINDS = {"RSA": "private keys live in the certificate store or on the token (fipsike import)",
                  "ECDSA": "private keys live in the certificate store or on the token (fipsike import)",
                  "XAUTH": "XAUTH is IKEv1; fipsike speaks IKEv2 only",
                  "PPK": "postquantum preshared keys (RFC 8784) are not implemented",
                  "EAP": "EAP is not implemented", "NTLM": "not supported"}


def check_mode(path: Path, loc: Location) -> None:
    """Refuse a file its group or others may read or write (the check OpenSSH makes for keys)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigUnreadable(Diagnostic(loc, f"{path}: {exc.strerror or type(exc).__name__}")) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigUnreadable(Diagnostic(loc, f"{path}: not a regular file"))
    if st.st_mode & 0o077:
        raise ConfigError(Diagnostic(Location(str(path), 0), f"permissions {stat.S_IMODE(st.st_mode):04o} are too "
                                     "open: a secrets file must not be readable or writable by group or others "
                                     "(chmod 600)"))


def _read(path: Path, loc: Location) -> str:
    check_mode(path, loc)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigUnreadable(Diagnostic(loc, f"{path}: {exc.strerror or type(exc).__name__}")) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(Diagnostic(Location(str(path), 0), "not valid UTF-8")) from None


def _secret_value(text: str) -> bytes:
    """The secret token's bytes, or ValueError with a message that quotes nothing of it."""
    t = text.strip()
    if t[:1] in ("\"", "'"):
        end = t.find(t[0], 1)
        if end < 0:
            raise ValueError("the quoted secret has no closing quote")
        tail = t[end + 1:].strip()
        if tail and not tail.startswith("#"):
            raise ValueError("unexpected text after the quoted secret")
        return t[1:end].encode("utf-8")
    token, _, tail = t.partition(" ")
    if tail.strip() and not tail.strip().startswith("#"):
        raise ValueError("expected one secret: in double quotes, or 0x hex")
    if token.lower().startswith("0x"):
        try:
            return bytes.fromhex(token[2:].replace("_", ""))
        except ValueError:
            raise ValueError("the hex secret is not valid hexadecimal") from None
    if token.startswith("0s"):
        raise ValueError("base64 (0s...) secrets are not supported: write the secret in quotes or as 0x hex")
    return token.encode("utf-8")


_ENTRY = re.compile(r'^(?P<ids>[^:"]*(?:"[^"]*"[^:"]*)*):\s*(?P<kind>[A-Za-z]+)\b(?P<rest>.*)$', re.DOTALL)


def _ids(text: str) -> tuple[tuple[str, ...], bool]:
    """The named IDs, and whether the line names a wildcard too."""
    out: list[str] = []
    wildcard = False
    for m in re.finditer(r'"([^"]*)"|(\S+)', text):
        ident = m.group(1) if m.group(1) is not None else m.group(2)
        if ident in ("%any", "%any6", "0.0.0.0", "::"):  # noqa: S104 - the "any" IDs, not a bind
            wildcard = True
        else:
            out.append(ident)
    return tuple(out), wildcard


def parse_secrets(path: Path | str, *, _depth: int = 0, _asked: Location | None = None,
                  _into: Secrets | None = None, _errors: list[Diagnostic] | None = None,
                  _stack: tuple[str, ...] = ()) -> Secrets:
    p = Path(path)
    real = os.path.realpath(p)
    if real in _stack and _errors is not None and _asked is not None:
        _errors.append(Diagnostic(_asked, f"include of {p} is recursive", "", "include"))
        return _into if _into is not None else Secrets()
    out = _into if _into is not None else Secrets()
    errors: list[Diagnostic] = _errors if _errors is not None else []
    text = _read(p, _asked or Location(str(p), 0))
    out.files.append(str(p))
    # a secret may continue on indented lines (libreswan); join them first, keeping the first line number
    logical: list[tuple[int, str]] = []
    for n, line in enumerate(text.split("\n"), 1):
        body = line.rstrip("\r")
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        if body[0] in " \t" and logical:
            logical[-1] = (logical[-1][0], logical[-1][1] + " " + body.strip())
        else:
            logical.append((n, body.strip()))
    for n, line in logical:
        loc = Location(str(p), n)
        if line.startswith("include") and (len(line) == 7 or line[7] in " \t"):
            pattern = line[7:].strip()
            full = pattern if os.path.isabs(pattern) else str(p.parent / pattern)
            if _depth >= MAX_DEPTH:
                errors.append(Diagnostic(loc, f"includes nested deeper than {MAX_DEPTH}", "", "include"))
                continue
            for f in sorted(glob.glob(full)) if glob.has_magic(full) else [full]:
                parse_secrets(f, _depth=_depth + 1, _asked=loc, _into=out, _errors=errors,
                              _stack=_stack + (real,))
            continue
        m = _ENTRY.match(line)
        if m is None:
            errors.append(Diagnostic(loc, "expected 'IDS : PSK \"secret\"', ': PIN \"pin\"' or 'include FILE'"))
            continue
        kind = m.group("kind").upper()
        if kind in _REFUSED_KINDS:
            errors.append(Diagnostic(loc, f"{kind} entries are not supported by fipsike: {_REFUSED_KINDS[kind]}",
                                     "", kind))
            continue
        if kind not in ("PSK", "PIN"):
            errors.append(Diagnostic(loc, f"unknown secret kind {kind[:12]!r} (PSK or PIN)"))
            continue
        try:
            value = _secret_value(m.group("rest"))
        except ValueError as exc:
            errors.append(Diagnostic(loc, str(exc), "", kind))
            continue
        if not value:
            errors.append(Diagnostic(loc, "empty secret", "", kind))
            continue
        ids, wildcard = _ids(m.group("ids"))
        out.entries.append(SecretEntry(kind, ids, Secret(value), loc, wildcard))
    if errors and _errors is None:
        raise ConfigError(errors)
    return out


def read_pin_file(path: Path | str) -> Secret:
    """The token PIN from a file of its own (mode 0600: never on the command line)."""
    p = Path(path)
    text = _read(p, Location(str(p), 0))
    pin = text.strip("\r\n")
    if not pin or "\n" in pin:
        raise ConfigError(Diagnostic(Location(str(p), 1), "a PIN file holds one line: the PIN"))
    return Secret(pin.encode("utf-8"))


class SecretsFilePin:
    """The token PIN of an ipsec.secrets `: PIN "..."` entry (libreswan's way to give it), as a
    providers PinSource: the file is read again when the token session opens, so the PIN is held
    nowhere in between. Errors name the file and line only (parse_secrets' rule)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def read_pin(self) -> str:
        try:
            entry = parse_secrets(self.path).pin()
        except ConfigError as exc:
            raise PinUnavailable(f"cannot read the PIN from {self.path}: {exc}") from None
        if entry is None:
            raise PinUnavailable(f"{self.path} has no ': PIN' entry")
        try:
            return entry.secret.reveal().decode("utf-8")
        except UnicodeDecodeError:
            # the codec's message would quote a byte of the PIN
            raise PinUnavailable(f"{entry.location}: the PIN is not UTF-8") from None

    def __repr__(self) -> str:
        return f"SecretsFilePin({str(self.path)!r})"

    def __str__(self) -> str:
        return f"{self.path} (': PIN' entry)"
