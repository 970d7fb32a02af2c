"""Software integrity test (FIPS 140-3 section 7.10.2; ISO 19790 7.10.2; IG 10.3.A).

At install or build time `fipsike selftest --write-manifest` records an HMAC-SHA2-256 of every
installed file of the four packages (providers, certs, compliance, fipsike: every file of any kind,
except the interpreter's __pycache__ folders and the manifest itself) plus an HMAC over the whole
list, so an added, removed or changed file is caught: an added extension module (.so) or .pyc next
to a .py would be imported instead of it, so a file the manifest does not list fails the test. At
start the self-test recomputes them through the provider.

The HMAC key below is an INTEGRITY key, not a secret: FIPS 140-3 allows the integrity technique to
be an approved MAC with a key embedded in the module (IG 10.3.A / ISO 19790 7.10.2 do not require
the key to be secret). Knowing it lets someone forge a manifest for modified code, which is why the
manifest only proves the files are the ones the installer wrote, and the installation directory must
be write-protected (SECURITY.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.algorithms import Prf

PACKAGES = ("providers", "certs", "compliance", "fipsike")
MANIFEST_NAME = "integrity-manifest.json"
MANIFEST_VERSION = 1
INTEGRITY_KEY = b"fipsike software integrity key v1 - FIPS 140-3 7.10.2 - not a secret"
PRF = Prf.PRF_HMAC_SHA2_256


class IntegrityError(Exception):
    """The installed files do not match the manifest (or there is no manifest)."""


@dataclass(frozen=True)
class IntegrityResult:
    files: int
    root: str
    manifest: str


def package_root() -> Path:
    """The directory that holds the four packages (site-packages, or the source tree)."""
    return Path(__file__).resolve().parent.parent


def default_manifest(root: Path | None = None) -> Path:
    return (root or package_root()) / "compliance" / MANIFEST_NAME


def covered_files(root: Path, manifest: Path | None = None) -> list[str]:
    """Every file under the package trees (any suffix: .so, .pyc, .pth and data files shadow or
    change code too), except __pycache__ folders (written by the interpreter at run time) and the
    manifest (default name, or `manifest` when it lies inside the trees)."""
    skip = manifest.resolve() if manifest is not None else None
    out: list[str] = []
    for pkg in PACKAGES:
        base = root / pkg
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            rel = path.relative_to(root)
            if "__pycache__" in rel.parts or path.is_dir():
                continue
            if path.name == MANIFEST_NAME or (skip is not None and path.resolve() == skip):
                continue
            out.append(rel.as_posix())  # files, symlinks, fifos...: anything else present counts
    return sorted(out)


def _mac(p: Any, data: bytes) -> str:
    key = p.import_secret(INTEGRITY_KEY, "software integrity key")
    try:
        return str(p.prf(PRF, key, data).hex())
    finally:
        key.wipe()


def _list_mac(p: Any, files: dict[str, str]) -> str:
    canonical = json.dumps(files, sort_keys=True, separators=(",", ":")).encode()
    return _mac(p, b"fipsike manifest v1\n" + canonical)


def _file_mac(p: Any, root: Path, rel: str) -> str:
    path = root / rel
    if not path.is_file():  # a fifo or dangling link: not something an installer writes
        raise IntegrityError(f"not a regular file in the package tree: {rel}")
    return _mac(p, path.read_bytes())


def compute(p: Any, root: Path, manifest: Path | None = None) -> dict[str, str]:
    return {rel: _file_mac(p, root, rel) for rel in covered_files(root, manifest)}


def write_manifest(p: Any, root: Path | None = None, manifest: Path | None = None) -> Path:
    root = root or package_root()
    manifest = manifest or default_manifest(root)
    files = compute(p, root, manifest)
    doc = {"version": MANIFEST_VERSION, "algorithm": "HMAC-SHA2-256", "files": files,
           "mac": _list_mac(p, files)}
    manifest.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def verify(p: Any, root: Path | None = None, manifest: Path | None = None) -> IntegrityResult:
    """Raises IntegrityError naming the first problem (a path, never a MAC value)."""
    root = root or package_root()
    manifest = manifest or default_manifest(root)
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        recorded: dict[str, str] = dict(doc["files"])
        recorded_mac = str(doc["mac"])
    except FileNotFoundError:
        raise IntegrityError(f"no integrity manifest at {manifest} "
                             "(run `fipsike selftest --write-manifest` at install time)") from None
    except OSError as exc:
        raise IntegrityError(f"cannot read the integrity manifest {manifest}: "
                             f"{exc.strerror or type(exc).__name__}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{manifest}: not a valid manifest ({type(exc).__name__})") from None
    if _list_mac(p, recorded) != recorded_mac:
        raise IntegrityError(f"{manifest}: the manifest's own MAC does not verify (manifest edited)")
    present = set(covered_files(root, manifest))
    missing = sorted(set(recorded) - present)
    if missing:
        raise IntegrityError(f"file missing since the manifest was written: {missing[0]}")
    extra = sorted(present - set(recorded))
    if extra:
        raise IntegrityError(f"file not in the manifest: {extra[0]}")
    for rel in sorted(recorded):
        if _file_mac(p, root, rel) != recorded[rel]:
            raise IntegrityError(f"file modified since the manifest was written: {rel}")
    return IntegrityResult(len(recorded), str(root), str(manifest))
