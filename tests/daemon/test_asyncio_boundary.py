"""fipsike.daemon is the only asyncio code in fipsike: the engine stays sans-I/O and the kernel
backend blocking, so both are tested (and reused) without an event loop."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_only_fipsike_daemon_imports_asyncio() -> None:
    offenders = []
    for path in sorted((ROOT / "fipsike").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == "asyncio" or n.startswith("asyncio.") for n in names) and not rel.startswith("fipsike/daemon/"):
                offenders.append(rel)
    assert offenders == []
    assert (ROOT / "fipsike" / "daemon" / "runtime.py").read_text().count("import asyncio") == 1
