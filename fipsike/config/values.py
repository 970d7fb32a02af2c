"""Typed values for the keyword table's types. Each parser returns the value or raises ValueError
with a message fit for `FILE:LINE: conn NAME: keyword: message` (values in ipsec.conf are not secret)."""

from __future__ import annotations

import re
from collections.abc import Callable

from fipsike.config.keywords import Keyword

_YES = {"yes": True, "y": True, "no": False, "n": False}
# libreswan's time suffixes (ipsec.conf(5) "deltatime"): s, m, h, d, w; a bare number is seconds
_TIME = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h|d|w)?$")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_BIGNUM = re.compile(r"^(?:(?P<n>[0-9]+)|2\^(?P<e>[0-9]{1,2}))$")


def _range(kw: Keyword, n: float) -> None:
    if kw.low is not None and n < kw.low:
        raise ValueError(f"{n:g} is below the minimum {kw.low}")
    if kw.high is not None and n > kw.high:
        raise ValueError(f"{n:g} is above the maximum {kw.high}")


def yesno(kw: Keyword, v: str) -> bool:
    try:
        return _YES[v.lower()]
    except KeyError:
        raise ValueError(f"expected yes or no, got {v!r}") from None


def choice(kw: Keyword, v: str) -> str:
    if v.lower() not in kw.choices:
        raise ValueError(f"expected one of {', '.join(kw.choices)}, got {v!r}")
    return v.lower()


def seconds(kw: Keyword, v: str, default_unit: str = "s") -> float:
    m = _TIME.match(v.strip())
    if m is None:
        raise ValueError(f"expected a duration (a number with an optional s, m, h, d or w suffix), got {v!r}")
    n = float(m.group("n")) * _UNIT[m.group("unit") or default_unit]
    _range(kw, n / (_UNIT[default_unit]))
    return n


def milliseconds(kw: Keyword, v: str) -> float:
    return seconds(kw, v, "ms")


def percent(kw: Keyword, v: str) -> int:
    m = re.match(r"^([0-9]{1,6})%?$", v.strip())
    if m is None:
        raise ValueError(f"expected a percentage, got {v!r}")
    n = int(m.group(1))
    _range(kw, n)
    return n


def uint(kw: Keyword, v: str) -> int:
    if not re.match(r"^-?[0-9]{1,20}$", v.strip()):
        raise ValueError(f"expected a decimal number, got {v!r}")
    n = int(v)
    _range(kw, n)
    return n


def bignum(kw: Keyword, v: str) -> int:
    """A 64-bit count: decimal, or 2^N as libreswan writes large limits."""
    m = _BIGNUM.match(v.strip())
    if m is None:
        raise ValueError(f"expected a decimal number or 2^N, got {v!r}")
    n = int(m.group("n")) if m.group("n") is not None else 2 ** int(m.group("e"))
    if n >= 2**64:
        raise ValueError(f"{v} does not fit in 64 bits")
    _range(kw, n)
    return n


def mark(kw: Keyword, v: str) -> tuple[int, int]:
    """VALUE[/MASK], decimal or 0x hex, 32 bits each; -1 (libreswan: unique per SA) is refused."""
    value, _, mask = v.partition("/")
    try:
        val = int(value, 0)
        msk = int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        raise ValueError(f"expected VALUE[/MASK] (32-bit numbers), got {v!r}") from None
    if not (0 <= val < 2**32 and 0 <= msk < 2**32):
        raise ValueError(f"mark {v!r}: values are 32-bit unsigned (the unique mark -1 is not supported)")
    return val, msk


def string(kw: Keyword, v: str) -> str:
    return v


TYPES: dict[str, Callable[[Keyword, str], object]] = {
    "yesno": yesno, "choice": choice, "seconds": seconds, "milliseconds": milliseconds, "percent": percent,
    "uint": uint, "bignum": bignum, "mark": mark, "string": string,
}


def convert(kw: Keyword, v: str) -> object:
    """Typed value for the simple types; the structured ones (host, subnets, id, ...) are checked by
    fipsike.config.conns when the conn is resolved, and returned here as the string."""
    fn = TYPES.get(kw.type)
    return v if fn is None else fn(kw, v)
