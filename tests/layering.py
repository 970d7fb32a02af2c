"""The import rules of ARCHITECTURE.md, checked on source text (ast), so a
violation fails the suite even in a module no test imports.

1. Layers: providers <- certs <- compliance <- fipsike. An import may only
   point down this list.
2. The cryptographic boundary: outside providers/, no primitive. Allowed from
   `cryptography`: x509 (parsing), hazmat.primitives.serialization (loading,
   PKCS#12), hazmat.primitives.asymmetric key *types*, and exceptions. Never
   `pkcs11`, and no stdlib hashlib/hmac/secrets/random or os.urandom.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

LAYERS = ("providers", "certs", "compliance", "fipsike")

# What non-provider code may import from `cryptography` (prefix match).
CRYPTOGRAPHY_ALLOWED = (
    "cryptography.x509",
    "cryptography.exceptions",
    "cryptography.hazmat.primitives.serialization",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.types",
    "cryptography.hazmat.primitives.asymmetric.dsa",
    "cryptography.hazmat.primitives.asymmetric.ed25519",
    "cryptography.hazmat.primitives.asymmetric.ed448",
)
FORBIDDEN_OUTSIDE_PROVIDERS = ("pkcs11", "hashlib", "hmac", "secrets", "random", "_hashlib", "Crypto", "nacl")


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _imports(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, module, full name): for `from M import N`, module M and full name M.N."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.extend((node.lineno, node.module, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def _uses_urandom(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("urandom", "getrandom"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("urandom", "getrandom") for a in node.names):
                lines.append(node.lineno)
    return lines


def check_tree(root: Path) -> list[Violation]:
    violations: list[Violation] = []
    for layer_index, layer in enumerate(LAYERS):
        base = root / layer
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            rel = str(path.relative_to(root))
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
            for line, module, name in _imports(tree):
                top = module.split(".")[0]
                if top in LAYERS and LAYERS.index(top) > layer_index:
                    violations.append(Violation(rel, line, f"{layer} imports {module}: an upward import"))
                if layer == "providers":
                    continue
                if top in FORBIDDEN_OUTSIDE_PROVIDERS:
                    violations.append(Violation(rel, line, f"{module} outside providers/"))
                elif module.startswith("cryptography.hazmat") and not (
                    module.startswith(CRYPTOGRAPHY_ALLOWED) or name.startswith(CRYPTOGRAPHY_ALLOWED)
                ):
                    violations.append(Violation(rel, line, f"{name} outside providers/"))
            if layer != "providers":
                for line in _uses_urandom(tree):
                    violations.append(Violation(rel, line, "os.urandom outside providers/"))
    return violations
