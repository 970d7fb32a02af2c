"""The import rules of ARCHITECTURE.md, checked on source text (ast), so a
violation fails the suite even in a module no test imports.

1. Layers: providers <- certs <- compliance <- fipsike. An import may only
   point down this list.
2. The cryptographic boundary: outside providers/, no primitive. Allowed from
   `cryptography`: x509 (parsing), hazmat.primitives.serialization (public
   keys, certificates), hazmat.primitives.asymmetric key *types*, and
   exceptions. Never `pkcs11`, and no stdlib hashlib/hmac/secrets/random or
   os.urandom.
3. Private keys live inside the boundary: outside providers/, no private-key
   parsing (`load_pkcs12`, `load_key_and_certificates`, `load_*_private_key`),
   generation (`generate_private_key`) or export (`private_bytes`), named or
   called; and no `.sign` / `.verify` / `.exchange` on a `cryptography` key
   object (the Router's `sign(key, scheme, data)` is the way). A key object is
   recognised by what it came from (`.public_key()`, a `load_*_key` or
   `from_*` constructor, an annotation or isinstance with a key type) or by
   the cryptography algorithm objects handed to the call (`ECDSA(...)`,
   `PSS(...)`, `hashes.SHA256()`, ...); the one-argument `sign(data)` and
   two-argument `verify(signature, data)` of Ed25519/Ed448 by their arity
   (the Router's take at least three and four). The `openssl` command line counts as a
   primitive too (one named exception, the test PKI: OPENSSL_CLI_EXCEPTIONS).
"""

from __future__ import annotations

import ast
import re
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
    "urandom", "getrandom", "exchange", "verify_directly_issued_by", "is_signature_valid", "from_public_key",
    "from_issuer_public_key", "fingerprint", "encapsulate", "decapsulate",
)
# Private keys: parsing, generation, export and raw construction (rule 3). Matched on any name or
# attribute (a call, an import, a bare reference), so `f = serialization.load_pem_private_key` counts too.
PRIVATE_KEY_NAMES = frozenset((
    "load_pkcs12", "load_key_and_certificates", "serialize_key_and_certificates", "generate_private_key",
    "private_bytes", "private_bytes_raw", "private_numbers", "from_private_bytes", "derive_private_key",
    "RSAPrivateNumbers", "EllipticCurvePrivateNumbers", "DSAPrivateNumbers", "DHPrivateNumbers",
))
PRIVATE_KEY_PATTERN = re.compile(r"^load_\w*_private_key$")
KEY_METHODS = ("sign", "verify", "exchange")
# Where a `cryptography` key object comes from: `x = <...>.public_key()`, `x = load_der_public_key(...)`.
KEY_SOURCES = re.compile(r"^(public_key|load_\w*_(public|private)_key|from_encoded_point|from_public_bytes"
                         r"|from_private_bytes|generate_private_key|derive_private_key)$")
# cryptography's key types, as they appear in annotations and isinstance() (not providers' PrivateKey handle).
KEY_TYPES = re.compile(r"(RSA|EllipticCurve|Ed25519|Ed448|X25519|X448|DSA|DH|MLKEM\w*|MLDSA\w*)(Private|Public)Key"
                       r"|(PrivateKey|PublicKey|CertificatePublicKey|CertificateIssuerPublicKey)Types")
# cryptography's signature / key agreement parameters: their presence in a call's arguments betrays a key object.
ALGORITHM_OBJECTS = frozenset((
    "ECDSA", "ECDH", "PSS", "PKCS1v15", "MGF1", "OAEP", "Prehashed", "SHA1", "SHA224", "SHA256", "SHA384",
    "SHA512", "SHA512_224", "SHA512_256", "SHA3_224", "SHA3_256", "SHA3_384", "SHA3_512", "MD5",
))
# The `openssl` command line is a primitive too (genpkey, dgst, pkcs12 -export). One named exception:
# the test/demo PKI makes the keys that go into PKCS#12 files with it, because a PKCS#12 key must be
# exportable and the Router's keys never are (its CA keys come from router.generate_keypair).
OPENSSL_CLI_EXCEPTIONS = {"certs/testpki.py": "PKCS#12 test keys must leave the process"}
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


def _name_of(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _private_key_names(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names = [a.name.split(".")[-1] for a in node.names] if isinstance(node, ast.Import | ast.ImportFrom) \
            else [_name_of(node)]
        found.extend((getattr(node, "lineno", 0), n) for n in names
                     if n in PRIVATE_KEY_NAMES or PRIVATE_KEY_PATTERN.match(n))
    return found


def _key_objects(tree: ast.AST) -> set[str]:
    """Names (module-wide, on purpose coarse) that hold a `cryptography` key object."""
    held: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Call) \
                and KEY_SOURCES.match(_name_of(node.value.func)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            held.update(t.id for t in targets if isinstance(t, ast.Name))
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None \
                and KEY_TYPES.search(ast.unparse(node.annotation)):
            target = node.arg if isinstance(node, ast.arg) else _name_of(node.target)
            if target:
                held.add(target)
        if isinstance(node, ast.Call) and _name_of(node.func) == "isinstance" and len(node.args) == 2 \
                and isinstance(node.args[0], ast.Name) and KEY_TYPES.search(ast.unparse(node.args[1])):
            held.add(node.args[0].id)
    return held


def _is_key_method_call(call: ast.Call, held: set[str]) -> bool:
    f = call.func
    if not isinstance(f, ast.Attribute) or f.attr not in KEY_METHODS:
        return False
    receiver = f.value
    if isinstance(receiver, ast.Name) and receiver.id in held:
        return True
    if isinstance(receiver, ast.Call) and KEY_SOURCES.match(_name_of(receiver.func)):
        return True  # cert.public_key().verify(...), ec.generate_private_key(c).sign(...)
    for arg in [*call.args, *(k.value for k in call.keywords)]:
        for sub in ast.walk(arg):
            if isinstance(sub, ast.Call) and _name_of(sub.func) in ALGORITHM_OBJECTS:
                return True
    positional = len(call.args) + len(call.keywords)
    return (f.attr == "sign" and positional == 1) or (f.attr == "verify" and positional == 2)


def _openssl_commands(tree: ast.AST) -> list[int]:
    """Lines of `["openssl", ...]` / `("openssl", ...)` argument lists and "openssl ..." shell strings."""
    found: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple) and node.elts and isinstance(node.elts[0], ast.Constant) \
                and node.elts[0].value == "openssl":
            found.append(node.lineno)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("openssl "):
            found.append(node.lineno)
    return found


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
            if rel not in OPENSSL_CLI_EXCEPTIONS:
                violations.extend(Violation(rel, line, "the openssl command line outside providers/")
                                  for line in _openssl_commands(tree))
            for line, name in _private_key_names(tree):
                violations.append(Violation(rel, line, f"{name}: a private key outside providers/"))
            held = _key_objects(tree)
            for line, called, call in _calls(tree):
                if _is_key_method_call(call, held):
                    violations.append(Violation(rel, line, f".{called}() on a cryptography key outside providers/"))
                elif called in FORBIDDEN_CALLS:
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
