"""Planted canary keys, and a check that none of their bytes leaked in any common encoding."""

from __future__ import annotations

import base64
import os


def canary(n: int) -> bytes:
    """n random octets with a recognisable prefix (never all-zero, never a repeated byte)."""
    return (b"\xca\x4a\x21" + os.urandom(n))[:n]


def encodings(key: bytes) -> list[bytes]:
    """Ways a key could show up in text: raw, hex (both cases, with separators), base64 (any alignment)."""
    forms = [key, key.hex().encode(), key.hex().upper().encode(), key.hex(":").encode(), key.hex(" ").encode()]
    for shift in range(3):
        b64 = base64.b64encode(key[shift:])
        forms.append(b64[4:-4])  # interior: independent of what precedes/follows the key
        forms.append(base64.urlsafe_b64encode(key[shift:])[4:-4])
    # any 12-octet window, raw and hex: catches a truncated or partial leak
    forms.append(key[4:16])
    forms.append(key[4:16].hex().encode())
    return forms


def assert_no_canary(output: str | bytes, keys: list[bytes], where: str = "output") -> None:
    data = output.encode("utf-8", "surrogateescape") if isinstance(output, str) else output
    latin = output.encode("latin-1", "replace") if isinstance(output, str) else output
    for key in keys:
        for form in encodings(key):
            assert form not in data and form not in latin, f"canary key material leaked into {where}"
