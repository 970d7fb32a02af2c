"""Bounded fuzzing in the regular suite: only the codec's typed errors may escape.

The long run is scripts/fuzz-codec.py over the same targets.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from providers.router import Router
from tests.ike.codec.fuzz_targets import Targets, seeds

SEEDS = seeds()
FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def targets(default_router: Router) -> Targets:
    return Targets(default_router)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == 2:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif data:  # a length field: keep the header's Length consistent sometimes
            data[pos] ^= 0xFF
            if draw(st.booleans()) and len(data) >= 28:
                data[24:28] = len(data).to_bytes(4, "big")
    return bytes(data)


def test_seeds_exist() -> None:
    assert len(SEEDS) >= 28


@FAST
@given(st.binary(max_size=400))
def test_parse_random_bytes(targets: Targets, data: bytes) -> None:
    targets.parse(data)


@FAST
@given(st.binary(min_size=28, max_size=400).map(
    lambda b: b[:17] + b"\x20" + b[18:24] + len(b).to_bytes(4, "big") + b[28:]))
def test_parse_random_bytes_with_valid_header(targets: Targets, data: bytes) -> None:
    targets.parse(data)


@FAST
@given(mutated())
def test_parse_mutated_captures(targets: Targets, data: bytes) -> None:
    targets.parse(data)


@FAST
@given(mutated())
def test_decrypt_mutated_captures(targets: Targets, data: bytes) -> None:
    targets.decrypt(data)


@FAST
@given(st.binary(max_size=300), st.integers(0, 7))
def test_authentic_random_plaintext(targets: Targets, plaintext: bytes, which: int) -> None:
    targets.inner(plaintext, which)


def test_random_mutation_sweep(targets: Targets) -> None:
    """A plain random sweep over every seed (cheap, many executions)."""
    rng = random.Random(1234)
    for _ in range(3000):
        data = bytearray(rng.choice(SEEDS))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        targets.parse(bytes(data))
        targets.decrypt(bytes(data))


@FAST
@given(st.binary(max_size=200))
def test_capture_reader(targets: Targets, blob: bytes) -> None:
    targets.capture(b"\xd4\xc3\xb2\xa1" + blob)
    targets.capture(b"\x0a\x0d\x0d\x0a" + blob)
    targets.capture(blob)
