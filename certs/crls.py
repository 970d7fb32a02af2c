"""A folder of CRLs, as libreswan's /etc/ipsec.d/crls: every file in it (PEM or DER, any name),
each CRL's signature verified against the configured CA that issued it (PathValidator.verify_crl,
so through the Router), re-read when the folder changes.

Nothing is fetched over the network. A file that cannot be used (unreadable, not a CRL, from no
configured CA, a bad signature) is reported with its path and the reason and skipped; the other
files still load. Expiry is not judged here: a stale CRL is kept (and listed in `stale`) because
what it lists was revoked all the same; the validator's crl-strict setting decides whether a stale
or missing CRL fails a peer.

No thread watches the folder: the owner calls `current(now)` when it needs the CRLs (the daemon on
its timer, or before validating a peer) and it re-reads the folder only when the set of names, a
size or an mtime has changed. `generation` changes whenever the set of CRLs does, which lets a
holder of the CRLs (the engine's peer validator) rebuild only then.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.identity import name_string
from certs.validation import CrlRejected, PathValidator

_PEM_BEGIN = b"-----BEGIN X509 CRL-----"
_PEM_END = b"-----END X509 CRL-----"
MAX_CRL_OCTETS = 16 * 1024 * 1024  # a CRL file larger than this is refused unread


@dataclass(frozen=True)
class CrlProblem:
    """A file skipped (or a CRL kept but stale), with why: for logs and status output."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class LoadedCrl:
    path: Path
    crl: x509.CertificateRevocationList
    issuer: x509.Certificate  # the configured CA whose key verified it


# (name, size, mtime in ns) of every regular file: what a change on disk changes
_Listing = tuple[tuple[str, int, int], ...]


def parse_crls(data: bytes) -> list[x509.CertificateRevocationList]:
    """Every CRL in a file: one DER CRL, or one or more PEM blocks. Raises ValueError."""
    if _PEM_BEGIN not in data:
        return [x509.load_der_x509_crl(data)]
    out = []
    rest = data
    while _PEM_BEGIN in rest:
        start = rest.index(_PEM_BEGIN)
        end = rest.find(_PEM_END, start)
        if end < 0:
            raise ValueError("a PEM CRL block has no END line")
        end += len(_PEM_END)
        out.append(x509.load_pem_x509_crl(rest[start:end]))
        rest = rest[end:]
    return out


class CrlFolder:
    """The CRLs of one folder, verified against `anchors` and `intermediates` (the CA certificates
    a CRL may come from). Satisfies the engine's CRL source shape: `crls()` and `generation`."""

    def __init__(self, directory: Path | str, router: Any, anchors: Iterable[x509.Certificate],
                 intermediates: Iterable[x509.Certificate] = ()) -> None:
        self.directory = Path(directory)
        self._checker = PathValidator(router, anchors, intermediates)
        self._listing: _Listing | None = None
        self._loaded: list[LoadedCrl] = []
        self._fingerprint: frozenset[bytes] = frozenset()
        self.problems: list[CrlProblem] = []
        self.stale: list[CrlProblem] = []
        self.generation = 0

    def __repr__(self) -> str:
        return (f"CrlFolder({str(self.directory)!r}, crls={len(self._loaded)}, problems={len(self.problems)}, "
                f"generation={self.generation})")

    # --- the engine-side shape ----------------------------------------------------------------
    def crls(self) -> list[x509.CertificateRevocationList]:
        return [c.crl for c in self._loaded]

    # --- reading -------------------------------------------------------------------------------
    def current(self, now: datetime) -> list[x509.CertificateRevocationList]:
        """The CRLs, re-reading the folder first if it changed; `stale` lists those past their
        nextUpdate (or before their thisUpdate) at `now`."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.refresh()
        self.stale = [CrlProblem(c.path, f"the CRL of '{name_string(c.crl.issuer)}' is stale at {_ts(now)} "
                                 f"(thisUpdate {_ts(c.crl.last_update_utc)}, nextUpdate {_ts(c.crl.next_update_utc)})")
                      for c in self._loaded if _stale(c.crl, now)]
        return self.crls()

    def refresh(self) -> bool:
        """Re-read the folder if its listing changed; True when it was re-read."""
        try:
            listing = self._list()
            missing = None
        except _Skip as e:
            listing, missing = (), CrlProblem(self.directory, str(e))
        if listing == self._listing and missing is None:
            return False
        self._listing = listing
        loaded: list[LoadedCrl] = []
        problems: list[CrlProblem] = [missing] if missing is not None else []
        for name, _, _ in listing:
            path = self.directory / name
            try:
                loaded.extend(self._load(path))
            except _Skip as e:
                problems.append(CrlProblem(path, str(e)))
        self._loaded, self.problems = loaded, problems
        fingerprint = frozenset(c.crl.public_bytes(Encoding.DER) for c in loaded)
        if fingerprint != self._fingerprint:  # a touched file with the same CRLs is no new generation
            self._fingerprint = fingerprint
            self.generation += 1
        return True

    def _list(self) -> _Listing:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            raise _Skip("no such folder") from None
        except NotADirectoryError:
            raise _Skip("not a folder") from None
        except OSError as e:
            raise _Skip(f"cannot list: {e.strerror or type(e).__name__}") from None
        out = []
        for entry in entries:
            if entry.name.startswith("."):
                continue  # editors' and tools' temporary files
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                out.append((entry.name, -1, -1))  # reported when it is read
                continue
            out.append((entry.name, st.st_size, st.st_mtime_ns))
        return tuple(sorted(out))

    def _load(self, path: Path) -> list[LoadedCrl]:
        try:
            size = path.stat().st_size
            if size > MAX_CRL_OCTETS:
                raise _Skip(f"{size} octets: larger than {MAX_CRL_OCTETS}")
            data = path.read_bytes()
        except OSError as e:
            raise _Skip(f"cannot read: {e.strerror or type(e).__name__}") from None
        try:
            crls = parse_crls(data)
        except ValueError:
            raise _Skip("not a CRL (neither DER nor PEM 'X509 CRL')") from None
        out = []
        for crl in crls:
            try:
                issuer = self._checker.verify_crl(crl)
            except CrlRejected as e:
                raise _Skip(f"{e.detail} ({e.reason.value})") from None
            out.append(LoadedCrl(path, crl, issuer))
        return out


class _Skip(Exception):
    pass


def _ts(t: datetime | None) -> str:
    return "none" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _stale(crl: x509.CertificateRevocationList, now: datetime) -> bool:
    nxt = crl.next_update_utc
    return now < crl.last_update_utc or (nxt is not None and now > nxt)
