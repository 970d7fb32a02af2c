#!/usr/bin/env python3
"""Long fuzzing run over the IKE codec: the parser, SK / SKF decryption with real keys, authentic
random plaintext (post-decryption parsing and reassembly), and the capture reader.

Engine: atheris (coverage-guided, libFuzzer) when installed (`pip install atheris`), otherwise
random mutation of the stored strongSwan captures. Only the codec's typed errors may escape;
any other exception stops the run with the input saved to --crash-dir.

    python scripts/fuzz-codec.py --seconds 600 [--engine atheris|mutate] [--target all|parse|...]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from providers import open_router  # noqa: E402
from tests.ike.codec.fuzz_targets import Targets, seeds  # noqa: E402

TARGETS = ("parse", "decrypt", "inner", "capture")


def dispatch(targets: Targets, name: str) -> Callable[[bytes], None]:
    if name == "all":
        def run_all(data: bytes) -> None:
            if not data:
                return
            sel, rest = data[0] % 4, data[1:]
            dispatch(targets, TARGETS[sel])(rest)
        return run_all
    if name == "inner":
        return lambda data: targets.inner(data[1:], data[0] if data else 0)
    fn: Callable[[bytes], None] = getattr(targets, name)
    return fn


def mutate(rng: random.Random, pool: list[bytes]) -> bytes:
    data = bytearray(rng.choice(pool))
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1 and data:
            data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
        elif op == 2:
            del data[pos:pos + rng.randint(1, 32)]
        elif op == 3:
            data[pos:pos] = rng.randbytes(rng.randint(1, 32))
        elif op == 4 and len(data) > 8:  # splice two seeds
            other = rng.choice(pool)
            cut = rng.randrange(len(other))
            data[pos:] = other[cut:]
        elif op == 5 and len(data) >= 28:  # keep the header Length consistent
            data[24:28] = len(data).to_bytes(4, "big")
    return bytes(data)


def run_mutate(targets: Targets, target: str, seconds: float, crash_dir: Path, seed: int) -> int:
    """Mutation of the captures: each selected target in turn gets an input of its own shape."""
    rng = random.Random(seed)
    pool = seeds()
    chosen = TARGETS if target == "all" else (target,)
    fns = {name: dispatch(targets, name) for name in chosen}
    deadline = time.monotonic() + seconds
    counts = dict.fromkeys(chosen, 0)
    while time.monotonic() < deadline:
        for name, fn in fns.items():
            for _ in range(50):
                if name == "inner":  # selector octet + random / spliced plaintext
                    data = bytes([rng.randrange(256)]) + mutate(rng, pool)[28:]
                elif name == "capture":
                    data = b"\xd4\xc3\xb2\xa1" + rng.randbytes(20) + mutate(rng, pool)
                else:
                    data = mutate(rng, pool)
                try:
                    fn(data)
                except Exception:  # noqa: BLE001 - anything here is a finding
                    crash_dir.mkdir(parents=True, exist_ok=True)
                    path = crash_dir / f"crash-{name}-{counts[name]}.bin"
                    path.write_bytes(data)
                    traceback.print_exc()
                    print(f"fuzz-codec: crash in {name} after {sum(counts.values())} executions, input saved to "
                          f"{path}", file=sys.stderr)
                    return 1
                counts[name] += 1
    detail = " ".join(f"{k}={v}" for k, v in counts.items())
    print(f"fuzz-codec: engine=mutate executions={sum(counts.values())} ({detail}) seconds={seconds:.0f} crashes=0")
    return 0


def run_atheris(fn: Callable[[bytes], None], target: str, seconds: float, crash_dir: Path) -> int:
    import atheris  # type: ignore[import-untyped,unused-ignore]

    atheris.instrument_all()  # coverage feedback over the codec modules already imported
    corpus = crash_dir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds()):
        (corpus / f"seed-{i}").write_bytes(bytes([i % 4]) + s if target == "all" else s)
    count = [0]

    def one(data: bytes) -> None:
        count[0] += 1
        fn(data)

    def report() -> None:
        print(f"fuzz-codec: engine=atheris target={target} executions={count[0]} seconds={seconds:.0f}")

    import atexit
    atexit.register(report)
    atheris.Setup([sys.argv[0], f"-max_total_time={int(seconds)}", f"-artifact_prefix={crash_dir}/",
                   "-max_len=4096", str(corpus)], one)
    atheris.Fuzz()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    ap.add_argument("--target", choices=("all", *TARGETS), default="all")
    ap.add_argument("--crash-dir", type=Path, default=Path("fuzz-codec-out"))
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "big"))
    args = ap.parse_args()
    targets = Targets(open_router(profile="default"))
    engine = args.engine
    if engine == "auto":
        try:
            import atheris  # noqa: F401  # type: ignore[import-untyped,unused-ignore]
            engine = "atheris"
        except ImportError:
            engine = "mutate"
    if engine == "atheris":
        return run_atheris(dispatch(targets, args.target), args.target, args.seconds, args.crash_dir)
    return run_mutate(targets, args.target, args.seconds, args.crash_dir, args.seed)


if __name__ == "__main__":
    sys.exit(main())
