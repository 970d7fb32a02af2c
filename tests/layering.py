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
FORBIDDEN_OUTSIDE_PROVIDERS = (
    "pkcs11", "hashlib", "hmac", "secrets", "random", "_hashlib", "Crypto", "nacl",
    "ssl", "_ssl", "uuid", "ctypes", "cffi",  # RAND_bytes, uuid4 (urandom), a libcrypto loaded by hand
)
# Methods that compute with a key or a hash although they hang off allowed types
# (x509 objects, key types): calling them outside providers/ skips the policy.
FORBIDDEN_CALLS = (
    "urandom", "getrandom", "generate_private_key", "exchange", "verify_directly_issued_by",
    "is_signature_valid", "from_public_key", "from_issuer_public_key", "fingerprint", "encapsulate",
    "decapsulate", "derive_private_key",
)
# Dynamic imports are judged by their literal argument; a computed name is refused outright.
DYNAMIC_IMPORTS = ("import_module", "__import__")


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


def _calls(tree: ast.AST) -> list[tuple[int, str, ast.Call]]:
    found: list[tuple[int, str, ast.Call]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name:
                found.append((node.lineno, name, node))
    return found


def _dynamic_import_target(call: ast.Call) -> str | None:
    """The literal module name of importlib.import_module("x") / __import__("x"), or None if computed."""
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    if call.args and isinstance(call.args[0], ast.JoinedStr):
        head = call.args[0].values[0] if call.args[0].values else None
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value  # f"fipsike.commands.{name}": judged by its fixed prefix
    return None


def _judge(module: str, name: str) -> str | None:
    top = module.split(".")[0]
    if top in FORBIDDEN_OUTSIDE_PROVIDERS:
        return f"{module} outside providers/"
    if module in ("cryptography", "cryptography.hazmat") and name.split(".")[-1] in ("hazmat", "primitives"):
        return f"{name} outside providers/"
    if module.startswith("cryptography.hazmat") and not (
        module.startswith(CRYPTOGRAPHY_ALLOWED) or name.startswith(CRYPTOGRAPHY_ALLOWED)
    ):
        return f"{name} outside providers/"
    return None


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
                problem = _judge(module, name)
                if problem:
                    violations.append(Violation(rel, line, problem))
            if layer == "providers":
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr == "hazmat":
                    violations.append(Violation(rel, node.lineno, "cryptography.hazmat reached by attribute"))
            for line, called, call in _calls(tree):
                if called in FORBIDDEN_CALLS:
                    violations.append(Violation(rel, line, f"{called}() outside providers/"))
                elif called in DYNAMIC_IMPORTS:
                    target = _dynamic_import_target(call)
                    if target is None:
                        violations.append(Violation(rel, line, f"{called}() of a computed name outside providers/"))
                        continue
                    top = target.split(".")[0]
                    if top in LAYERS and LAYERS.index(top) > layer_index:
                        violations.append(Violation(rel, line, f"{layer} imports {target}: an upward import"))
                    problem = _judge(target, target)
                    if problem:
                        violations.append(Violation(rel, line, problem))
    return violations
