"""Configuration diagnostics: every one names its file and line (and the conn and keyword when known).

The text form is the one `fipsike check-config` prints, one line each:
`FILE:LINE: conn NAME: keyword: message`. A message never quotes a secret: secrets-file problems say
which entry is wrong, never what it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Location:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


NOWHERE = Location("<none>", 0)


@dataclass(frozen=True)
class Diagnostic:
    """One error or warning. `conn` is "" outside a conn, "config setup" in the setup section."""

    location: Location
    message: str
    conn: str = ""
    keyword: str = ""

    def __str__(self) -> str:
        parts = [str(self.location)]
        if self.conn:
            parts.append(self.conn if self.conn == "config setup" else f"conn {self.conn}")
        if self.keyword:
            parts.append(self.keyword)
        parts.append(self.message)
        return ": ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.location.file, "line": self.location.line, "conn": self.conn,
                "keyword": self.keyword, "message": self.message, "text": str(self)}


class ConfigError(ValueError):
    """The configuration is refused. `diagnostics` holds every error found (at least one)."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic) -> None:
        self.diagnostics = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    @property
    def first(self) -> Diagnostic:
        return self.diagnostics[0]


class ConfigUnreadable(ConfigError):
    """A file could not be read at all (missing, permission, not a regular file): exit status 2."""


def error(loc: Location, message: str, conn: str = "", keyword: str = "") -> ConfigError:
    return ConfigError(Diagnostic(loc, message, conn, keyword))
