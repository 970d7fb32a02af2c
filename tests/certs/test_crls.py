"""The CRL folder (issue 11, fix 4, the certs side): libreswan's /etc/ipsec.d/crls with CRLs made by
the test PKI, verified through the Router, re-read on change, and crl-strict yes/no in the validator."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.crls import CrlFolder, parse_crls
from certs.testpki import P256
from certs.validation import PathValidator, Reason
from tests.certs.conftest import NOW, Pki


@runtime_checkable
class CrlSource(Protocol):
    """The engine-side shape (fipsike/ike), restated here: certs never imports fipsike."""

    @property
    def generation(self) -> int: ...

    def crls(self) -> list[x509.CertificateRevocationList]: ...


def _write(folder: Path, name: str, crl: x509.CertificateRevocationList, encoding: Encoding = Encoding.PEM) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(crl.public_bytes(encoding))
    return path


def _folder(pki: Pki, router: Any, d: Path) -> CrlFolder:
    return CrlFolder(d, router, [pki.root.cert], [pki.inter.cert])


def _validator(pki: Pki, router: Any, crls: list[x509.CertificateRevocationList], strict: bool) -> PathValidator:
    return PathValidator(router, [pki.root.cert], [pki.inter.cert], crls).crl_strict(strict)


def test_a_folder_of_pem_and_der_crls_loads_and_revokes(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    d = tmp_path / "crls"
    _write(d, "inter.pem", pki.crls["inter"])
    _write(d, "root.crl", pki.crls["root"], Encoding.DER)
    folder = _folder(pki, fips_router, d)
    assert isinstance(folder, CrlSource)
    crls = folder.current(NOW)
    assert folder.problems == [] and folder.stale == [] and folder.generation == 1
    assert sorted(c.issuer.rfc4514_string() for c in crls) == [
        pki.inter.cert.subject.rfc4514_string(), pki.root.cert.subject.rfc4514_string()]
    for strict in (True, False):
        v = _validator(pki, fips_router, folder.crls(), strict)
        revoked = v.validate(pki.certs["revoked"].cert, NOW)
        assert revoked.reason is Reason.REVOKED and "revoked.example" in revoked.detail
        assert v.validate(pki.certs["via-inter"].cert, NOW).ok


def test_an_expired_crl_fails_the_peer_only_when_strict(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    d = tmp_path / "crls"
    _write(d, "inter-stale.pem", pki.crls["inter-stale"])
    folder = _folder(pki, fips_router, d)
    crls = folder.current(NOW)
    assert len(crls) == 1 and folder.problems == []  # stale is not bad: it still says who was revoked
    assert [p.path.name for p in folder.stale] == ["inter-stale.pem"] and "stale" in str(folder.stale[0])
    strict = _validator(pki, fips_router, crls, True).validate(pki.certs["via-inter"].cert, NOW)
    assert strict.reason is Reason.CRL_EXPIRED and "nextUpdate" in strict.detail
    assert _validator(pki, fips_router, crls, False).validate(pki.certs["via-inter"].cert, NOW).ok
    # non-strict still honours what a stale CRL lists
    stale_revoking = pki.pki.crl(pki.inter, [pki.certs["revoked"]], this_update=NOW - timedelta(days=30),
                                 next_update=NOW - timedelta(days=23))
    lenient = _validator(pki, fips_router, [stale_revoking], False)
    assert lenient.validate(pki.certs["revoked"].cert, NOW).reason is Reason.REVOKED


def test_a_missing_crl_fails_the_peer_only_when_strict(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    d = tmp_path / "crls"
    _write(d, "root.pem", pki.crls["root"])  # the root's CRL, none from the peer's issuer
    crls = _folder(pki, fips_router, d).current(NOW)
    strict = _validator(pki, fips_router, crls, True).validate(pki.certs["via-inter"].cert, NOW)
    assert strict.reason is Reason.CRL_UNAVAILABLE
    assert _validator(pki, fips_router, crls, False).validate(pki.certs["via-inter"].cert, NOW).ok
    assert _validator(pki, fips_router, [], False).validate(pki.certs["via-inter"].cert, NOW).ok


def test_bad_files_are_reported_and_never_stop_the_others(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    d = tmp_path / "crls"
    _write(d, "good.pem", pki.crls["inter"])
    # the intermediate's name, signed by another CA's key (its AKI names that key)
    impostor = pki.pki.intermediate("Test Intermediate CA", pki.other_root, P256)
    _write(d, "impostor.pem", pki.pki.crl(impostor, [pki.certs["via-inter"]]))
    # a real CA, but not one we trust
    _write(d, "stranger.pem", pki.pki.crl(pki.other_root, []))
    # the right issuer and key identifier, one signature bit flipped
    der = bytearray(pki.crls["root"].public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    (d / "flipped.crl").write_bytes(bytes(der))
    (d / "garbage.crl").write_bytes(b"\x30\x82\x01\x00 not a CRL")
    (d / "truncated.pem").write_bytes(pki.crls["root"].public_bytes(Encoding.PEM)[:-40])
    (d / "notes.txt").write_text("hello")
    (d / "subdir").mkdir()
    (d / ".swp").write_bytes(b"ignored: hidden")

    folder = _folder(pki, fips_router, d)
    crls = folder.current(NOW)
    assert [c.public_bytes(Encoding.DER) for c in crls] == [pki.crls["inter"].public_bytes(Encoding.DER)]
    problems = {p.path.name: p.reason for p in folder.problems}
    assert sorted(problems) == ["flipped.crl", "garbage.crl", "impostor.pem", "notes.txt", "stranger.pem",
                                "truncated.pem"]
    assert "from no configured CA" in problems["impostor.pem"]
    assert "from no configured CA" in problems["stranger.pem"]
    assert "does not verify" in problems["flipped.crl"] and "crl-bad-signature" in problems["flipped.crl"]
    assert "not a CRL" in problems["garbage.crl"] and "not a CRL" in problems["notes.txt"]
    assert all(str(p).startswith(str(d)) for p in folder.problems)
    # the impostor's CRL "revoking" gw.example was not taken
    assert _validator(pki, fips_router, crls, True).validate(pki.certs["via-inter"].cert, NOW).ok


def test_a_change_on_disk_is_picked_up(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    d = tmp_path / "crls"
    d.mkdir()
    folder = _folder(pki, fips_router, d)
    assert folder.current(NOW) == [] and folder.generation == 0
    assert folder.refresh() is False  # nothing changed, nothing read

    path = _write(d, "inter.pem", pki.crls["root"])  # first the root's (empty) CRL
    assert folder.refresh() is True and folder.generation == 1
    v = _validator(pki, fips_router, folder.crls(), True)
    assert v.validate(pki.certs["revoked"].cert, NOW).reason is Reason.CRL_UNAVAILABLE

    # the same name, new content (the intermediate's CRL revoking one certificate)
    path.write_bytes(pki.crls["inter"].public_bytes(Encoding.PEM))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    folder.current(NOW)
    assert folder.generation == 2
    v = _validator(pki, fips_router, folder.crls(), True)
    assert v.validate(pki.certs["revoked"].cert, NOW).reason is Reason.REVOKED

    # touched, same CRLs: re-read, but the set of CRLs (and so the generation) is unchanged
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert folder.refresh() is True and folder.generation == 2

    # a corrupt file arriving does not lose the good one; its removal is picked up too
    (d / "zz-bad.pem").write_text("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n")
    folder.current(NOW)
    assert folder.generation == 2 and len(folder.crls()) == 1 and [p.path.name for p in folder.problems] == [
        "zz-bad.pem"]
    path.unlink()
    folder.current(NOW)
    assert folder.generation == 3 and folder.crls() == []


def test_a_missing_folder_is_a_problem_not_a_crash(pki: Pki, fips_router: Any, tmp_path: Path) -> None:
    folder = _folder(pki, fips_router, tmp_path / "nowhere")
    assert folder.current(NOW) == [] and folder.generation == 0
    assert [p.reason for p in folder.problems] == ["no such folder"]
    (tmp_path / "file").write_text("x")
    f2 = _folder(pki, fips_router, tmp_path / "file")
    f2.refresh()
    assert [p.reason for p in f2.problems] == ["not a folder"]
    with pytest.raises(ValueError, match="timezone-aware"):
        folder.current(NOW.replace(tzinfo=None))


def test_parse_crls_reads_several_pem_blocks(pki: Pki) -> None:
    both = pki.crls["inter"].public_bytes(Encoding.PEM) + b"\n" + pki.crls["root"].public_bytes(Encoding.PEM)
    assert parse_crls(both) == [pki.crls["inter"], pki.crls["root"]]
    with pytest.raises(ValueError):
        parse_crls(b"-----BEGIN X509 CRL-----\nAAAA\n")
