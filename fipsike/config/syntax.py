"""ipsec.conf version 2 syntax, as libreswan's ipsec.conf(5) and its scanner delimit it.

- A section starts at column 0: `config setup` or `conn NAME` (NAME is one token, quoted or not, and
  may hold `=` and other punctuation). `version 2` and `include PATTERN` also sit at column 0.
- A parameter line is indented (spaces or tabs) and belongs to the section above it:
  `key=value`, blanks allowed around `=`. A value is one token: `"double quoted"` (no newline inside),
  `{braced}`, or a run of non-blank characters. An empty value (`key=`) is allowed.
- `#` starts a comment on a line of its own, or after blanks following a value; inside a token it is
  part of the value (`leftid=@a#b`), as in libreswan.
- `include` takes a glob pattern; a relative one is relative to the including file's directory. An
  include ends the current section. Includes nest at most MAX_INCLUDE_DEPTH deep; a cycle is an error.
- `x-...`/`X_...` keys are comments: ignored with a warning (libreswan does the same).

The parser collects every problem it finds (so check-config can list them all) and raises one
ConfigError; it never raises anything else for any input text.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from fipsike.config.errors import ConfigError, ConfigUnreadable, Diagnostic, Location

MAX_INCLUDE_DEPTH = 10  # libreswan's limit on nested includes
MAX_FILE_BYTES = 4 * 1024 * 1024

_KEY = r'[^"=\s]+'
_VALUE = r'"[^"\n]*"|\{[^"\n}]*\}|[^"\s][^\s]*'
_PARAM = re.compile(rf'^[ \t]+(?P<key>{_KEY})[ \t]*=[ \t]*(?P<value>{_VALUE})?[ \t]*(?:#.*)?$')
_HEADER = re.compile(rf'^(?P<word>version|config|conn|include)(?:[ \t]+(?P<arg>{_VALUE}))?'
                     rf'(?:[ \t]+(?P<arg2>{_VALUE}))?[ \t]*(?:#.*)?$')
_XKEY = re.compile(r"^[Xx][-_]")


@dataclass(frozen=True)
class Setting:
    key: str
    value: str
    location: Location


@dataclass
class Section:
    kind: str  # "setup" or "conn"
    name: str  # conn name; "config setup" for the setup section
    location: Location
    settings: list[Setting] = field(default_factory=list)


@dataclass
class ParsedConfig:
    sections: list[Section] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def setup(self) -> list[Section]:
        return [s for s in self.sections if s.kind == "setup"]

    def conns(self) -> list[Section]:
        return [s for s in self.sections if s.kind == "conn"]


def unquote(token: str) -> str:
    if len(token) >= 2 and ((token[0] == token[-1] == '"') or (token[0] == "{" and token[-1] == "}")):
        return token[1:-1]
    return token


def read_text(path: Path, loc: Location) -> str:
    """A config file's text, or ConfigUnreadable naming where it was asked for."""
    try:
        st = path.stat()
        if not path.is_file():
            raise ConfigUnreadable(Diagnostic(loc, f"{path}: not a regular file"))
        if st.st_size > MAX_FILE_BYTES:
            raise ConfigUnreadable(Diagnostic(loc, f"{path}: larger than {MAX_FILE_BYTES} bytes"))
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigUnreadable(Diagnostic(loc, f"{path}: {exc.strerror or type(exc).__name__}")) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(Diagnostic(Location(str(path), line), "not valid UTF-8")) from None


class _Parser:
    def __init__(self) -> None:
        self.out = ParsedConfig()
        self.errors: list[Diagnostic] = []
        self.stack: list[str] = []

    def parse_file(self, path: Path, asked_at: Location, depth: int) -> None:
        key = os.path.realpath(path)
        if key in self.stack:
            self.errors.append(Diagnostic(asked_at, f"include of {path} is recursive", "", "include"))
            return
        if depth > MAX_INCLUDE_DEPTH:
            self.errors.append(Diagnostic(asked_at, f"includes nested deeper than {MAX_INCLUDE_DEPTH}",
                                          "", "include"))
            return
        text = read_text(path, asked_at)
        self.out.files.append(str(path))
        self.stack.append(key)
        try:
            self.parse_text(text, str(path), depth)
        finally:
            self.stack.pop()

    def parse_text(self, text: str, name: str, depth: int) -> None:
        current: Section | None = None
        seen_section = False
        for n, raw in enumerate(text.split("\n"), 1):
            loc = Location(name, n)
            line = raw.rstrip("\r")
            stripped = line.strip(" \t")
            if not stripped or stripped.startswith("#"):
                continue
            if "\x00" in line:
                self.errors.append(Diagnostic(loc, "NUL character in line"))
                continue
            if line[0] in " \t":
                if _XKEY.match(stripped):
                    # libreswan's scanner takes the rest of an x-/X_ line as the comment, '=' or not
                    self.out.warnings.append(Diagnostic(loc, "x- style comment ignored", _conn_of(current),
                                                        re.split(r"[\s=]", stripped, maxsplit=1)[0]))
                    continue
                m = _PARAM.match(line)
                if m is None:
                    self.errors.append(Diagnostic(loc, _param_problem(stripped), _conn_of(current)))
                    continue
                key, value = m.group("key"), unquote(m.group("value") or "")
                if current is None:
                    self.errors.append(Diagnostic(loc, "parameter outside a 'config setup' or 'conn' section",
                                                  "", key))
                    continue
                current.settings.append(Setting(key, value, loc))
                continue
            m = _HEADER.match(line)
            if m is None:
                self.errors.append(Diagnostic(loc, "expected 'config setup', 'conn NAME', 'include FILE' or an "
                                                   "indented parameter"))
                current = None
                continue
            word, arg, arg2 = m.group("word"), m.group("arg"), m.group("arg2")
            if word == "version":
                if seen_section or arg is None or arg2 is not None or unquote(arg) not in ("2", "2.0"):
                    self.errors.append(Diagnostic(loc, "only 'version 2' is understood, before any section"))
                current = None
            elif word == "config":
                if arg != "setup" or arg2 is not None:
                    self.errors.append(Diagnostic(loc, "expected 'config setup'"))
                    current = None
                    continue
                current = Section("setup", "config setup", loc)
                self.out.sections.append(current)
            elif word == "conn":
                if arg is None or arg2 is not None or not unquote(arg):
                    self.errors.append(Diagnostic(loc, "expected one connection name after 'conn'"))
                    current = None
                    continue
                current = Section("conn", unquote(arg), loc)
                self.out.sections.append(current)
            else:  # include
                current = None
                if arg is None or arg2 is not None:
                    self.errors.append(Diagnostic(loc, "expected one file name or pattern after 'include'",
                                                  "", "include"))
                    continue
                self.include(unquote(arg), Path(name).parent, loc, depth)
            seen_section = True

    def include(self, pattern: str, base: Path, loc: Location, depth: int) -> None:
        full = pattern if os.path.isabs(pattern) else str(base / pattern)
        if glob.has_magic(full):
            matches = sorted(glob.glob(full))
            if not matches:
                self.out.warnings.append(Diagnostic(loc, f"pattern {full} matches no file", "", "include"))
            for m in matches:
                self.parse_file(Path(m), loc, depth + 1)
        else:
            self.parse_file(Path(full), loc, depth + 1)


def _conn_of(section: Section | None) -> str:
    if section is None:
        return ""
    return "config setup" if section.kind == "setup" else section.name


def _param_problem(stripped: str) -> str:
    if "=" not in stripped:
        return f"expected key=value, got {stripped.split()[0][:40]!r} without '='"
    if stripped.startswith("="):
        return "missing keyword before '='"
    return "expected key=value with one value (quote a value that holds blanks)"


def parse_config(path: Path | str) -> ParsedConfig:
    """Parse ipsec.conf and everything it includes. Raises ConfigError (or ConfigUnreadable)."""
    p = _Parser()
    p.parse_file(Path(path), Location(str(path), 0), 0)
    if p.errors:
        raise ConfigError(p.errors)
    return p.out


def parse_string(text: str, name: str = "<string>") -> ParsedConfig:
    """Parse text as if read from the file `name` (includes resolve from its directory)."""
    p = _Parser()
    p.parse_text(text, name, 0)
    if p.errors:
        raise ConfigError(p.errors)
    return p.out
