"""Path validation table, each row judged by us and by `openssl verify` on the same files.

OpenSSL runs with -attime (the injected time), -purpose sslclient (so it checks
the end entity's keyUsage as we do: RFC 4945 5.1.3.2) and, for the fips profile,
-auth_level 2 (112-bit security: no SHA-1 signatures, no RSA below 2048), which
is OpenSSL's nearest equivalent of our fips rules.

Rows that differ from plain `openssl verify` ON PURPOSE (documented here):
- sha1-fips: the fips profile refuses SHA-1 signatures (SP 800-131A r2 section 9;
  RFC 8247). Plain openssl accepts; with -auth_level 2 it refuses too.
- rsa1024-*: both of our profiles refuse RSA below 2048 bits (SP 800-131A r2
  section 3). Plain openssl accepts a 1024-bit end-entity key; with -auth_level 2
  it refuses too.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certs.keyid import key_identifier
from certs.testpki import P256 as P_DECOY
from certs.testpki import Issued
from certs.validation import PathValidator, Reason, resolve_required_ca
from providers.algorithms import HashAlg
from tests.certs.conftest import NOW, Pki


@dataclass(frozen=True)
class Row:
    id: str
    ee: str
    anchors: tuple[str, ...] = ("root",)
    untrusted: tuple[str, ...] = ()
    crls: tuple[str, ...] = ()
    profile: str = "fips"
    reason: Reason = Reason.VALID
    openssl_errors: tuple[int, ...] = ()  # X509_V_ERR_* OpenSSL reports; () = OpenSSL accepts
    plain_openssl_accepts: bool = False  # documented difference: plain openssl (no -auth_level) says OK


# X509_V_ERR codes (openssl/x509_vfy.h): 7 cert signature failure, 9 not yet valid, 10 expired,
# 12 CRL has expired, 20 unable to get local issuer, 23 revoked, 24/79 invalid CA, 25 path length
# exceeded, 26 unsupported purpose, 47 permitted subtree violation, 66 EE key too small,
# 68 CA md too weak.
ROWS = [
    Row("good-direct", "direct"),
    Row("good-via-intermediate", "via-inter", untrusted=("inter",)),
    Row("good-p384", "p384", untrusted=("inter",)),
    Row("good-default-profile", "via-inter", untrusted=("inter",), profile="default"),
    Row("expired", "expired", untrusted=("inter",), reason=Reason.EXPIRED, openssl_errors=(10,)),
    Row("not-yet-valid", "not-yet-valid", untrusted=("inter",), reason=Reason.NOT_YET_VALID,
        openssl_errors=(9,)),
    Row("wrong-ca", "wrong-ca", reason=Reason.ISSUER_NOT_FOUND, openssl_errors=(20,)),
    Row("wrong-ca-untrusted-root", "wrong-ca", untrusted=("other-root",), reason=Reason.UNTRUSTED_ROOT,
        openssl_errors=(2, 19, 20)),
    Row("missing-intermediate", "via-inter", reason=Reason.ISSUER_NOT_FOUND, openssl_errors=(20,)),
    Row("intermediate-ca-false", "under-ca-false", untrusted=("ca-false-inter",), reason=Reason.NOT_A_CA,
        openssl_errors=(24, 79)),
    Row("pathlen-exceeded", "pathlen-ee", anchors=("pathlen0-root",),
        untrusted=("pathlen-inter",), reason=Reason.PATH_LENGTH_EXCEEDED, openssl_errors=(25,)),
    Row("pathlen-within", "pathlen-ok-ee", anchors=("pathlen0-root",)),
    Row("ee-without-digitalsignature", "no-digsig", untrusted=("inter",),
        reason=Reason.END_ENTITY_KEY_USAGE, openssl_errors=(26,)),
    Row("crl-not-revoked", "via-inter", untrusted=("inter",), crls=("crl-inter",)),
    Row("revoked-by-crl", "revoked", untrusted=("inter",), crls=("crl-inter",), reason=Reason.REVOKED,
        openssl_errors=(23,)),
    Row("crl-expired", "via-inter", untrusted=("inter",), crls=("crl-inter-stale",), reason=Reason.CRL_EXPIRED,
        openssl_errors=(12,)),
    Row("crl-missing-for-leaf", "via-inter", untrusted=("inter",), crls=("crl-root",),
        reason=Reason.CRL_UNAVAILABLE, openssl_errors=(3,)),
    Row("bad-signature", "bad-signature", reason=Reason.BAD_SIGNATURE, openssl_errors=(7,)),
    Row("name-constraints-ok", "nc-ok", untrusted=("nc-inter",)),
    Row("name-constraints-violated", "nc-bad", untrusted=("nc-inter",), reason=Reason.NAME_CONSTRAINTS,
        openssl_errors=(47,)),
    Row("sha1-fips", "sha1-ee", anchors=("sha1-root",), reason=Reason.SIGNATURE_ALGORITHM_NOT_ALLOWED,
        openssl_errors=(68,), plain_openssl_accepts=True),
    Row("sha1-default", "sha1-ee", anchors=("sha1-root",), profile="default"),
    Row("rsa1024-fips", "rsa1024", reason=Reason.KEY_NOT_ALLOWED, openssl_errors=(66,), plain_openssl_accepts=True),
    Row("rsa1024-default", "rsa1024", profile="default", reason=Reason.KEY_NOT_ALLOWED, openssl_errors=(66,),
        plain_openssl_accepts=True),
]


def _load(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _bundle(pki: Pki, names: tuple[str, ...], tag: str) -> Path:
    out = pki.dir / f"bundle-{tag}-{'+'.join(names)}.pem"
    out.write_bytes(b"".join(pki.files[n].read_bytes() for n in names))
    return out


def openssl_verify(pki: Pki, row: Row, auth_level: int | None) -> tuple[bool, list[int], str]:
    cmd = ["openssl", "verify", "-attime", str(int(NOW.timestamp())), "-purpose", "sslclient",
           "-CAfile", str(_bundle(pki, row.anchors, "ca"))]
    if auth_level is not None:
        cmd += ["-auth_level", str(auth_level)]
    if row.untrusted:
        cmd += ["-untrusted", str(_bundle(pki, row.untrusted, "untrusted"))]
    if row.crls:
        cmd += ["-crl_check", "-CRLfile", str(_bundle(pki, row.crls, "crl"))]
    cmd.append(str(pki.files[row.ee]))
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    out = res.stdout + res.stderr
    errors = [int(n) for n in re.findall(r"error (\d+) at \d+ depth", out)]
    return res.returncode == 0, errors, out


def ours(pki: Pki, row: Row, routers: dict[str, Any]) -> Any:
    crls = [x509.load_pem_x509_crl(pki.files[n].read_bytes()) for n in row.crls]
    anchors = [c for n in row.anchors for c in _load(pki.files[n])]
    validator = PathValidator(routers[row.profile], anchors, crls=crls, require_crl=bool(row.crls))
    untrusted = [c for n in row.untrusted for c in _load(pki.files[n])]
    return validator.validate(_load(pki.files[row.ee])[0], NOW, untrusted)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_validation_table_agrees_with_openssl(pki: Pki, row: Row, fips_router: Any, default_router: Any) -> None:
    verdict = ours(pki, row, {"fips": fips_router, "default": default_router})
    assert verdict.reason is row.reason, str(verdict)
    assert verdict.detail  # every verdict says why
    ok, errors, out = openssl_verify(pki, row, 2 if row.profile == "fips" or row.openssl_errors == (66,) else None)
    assert ok is verdict.ok, f"openssl disagrees: {out}"
    if not ok:
        assert set(errors) & set(row.openssl_errors), f"openssl gave {errors}, expected one of {row.openssl_errors}"
    if row.plain_openssl_accepts:
        plain_ok, _, plain_out = openssl_verify(pki, row, None)
        assert plain_ok, f"documented difference no longer holds: {plain_out}"


def test_refusal_names_the_certificate_and_the_rule(pki: Pki, fips_router: Any) -> None:
    row = next(r for r in ROWS if r.id == "pathlen-exceeded")
    verdict = ours(pki, row, {"fips": fips_router})
    assert "Pathlen0 Root CA" in verdict.detail and "pathlen" in verdict.detail
    assert verdict.as_dict()["reason"] == "path-length-exceeded"
    assert not verdict.ok and str(verdict).startswith("REFUSED (path-length-exceeded)")


def test_sha1_refusal_comes_from_the_router_policy(pki: Pki, fips_router: Any) -> None:
    verdict = ours(pki, next(r for r in ROWS if r.id == "sha1-fips"), {"fips": fips_router})
    assert "sha1WithRSAEncryption" in verdict.detail and "fips" in verdict.detail


def test_chain_is_reported_end_entity_first(pki: Pki, fips_router: Any) -> None:
    verdict = ours(pki, next(r for r in ROWS if r.id == "good-via-intermediate"), {"fips": fips_router})
    names = [c.subject.rfc4514_string() for c in verdict.chain]
    assert names[0].startswith("CN=gw.example") and "Intermediate" in names[1] and "Root" in names[2]


def test_intermediate_pool_with_a_decoy(pki: Pki, fips_router: Any) -> None:
    """A same-name CA with another key is skipped by AKI/SKI; the real one builds the path."""
    decoy = pki.pki.intermediate("Test Intermediate CA", pki.other_root, P_DECOY)
    v = PathValidator(fips_router, [pki.root.cert], [decoy.cert, pki.inter.cert])
    assert v.validate(pki.certs["via-inter"].cert, NOW).ok


def test_rightca_same(pki: Pki, fips_router: Any) -> None:
    own = pki.certs["p384"].cert  # our certificate, issued by the intermediate
    required = resolve_required_ca("%same", own.issuer)
    v = PathValidator(fips_router, [pki.root.cert, pki.other_root.cert], [pki.inter.cert])
    assert v.validate(pki.certs["via-inter"].cert, NOW, required_ca=required).ok
    refused = v.validate(pki.certs["wrong-ca"].cert, NOW, required_ca=required)
    assert refused.reason is Reason.CA_MISMATCH
    assert resolve_required_ca("%any", own.issuer) is None
    assert resolve_required_ca("C=US, O=fipsike test, CN=Test Root CA", None) == pki.root.cert.subject
    with pytest.raises(ValueError):
        resolve_required_ca("%same", None)


def test_naive_time_is_rejected(pki: Pki, fips_router: Any) -> None:
    v = PathValidator(fips_router, [pki.root.cert])
    with pytest.raises(ValueError):
        v.validate(pki.certs["direct"].cert, NOW.replace(tzinfo=None))



def test_v1_root_anchor_is_trusted_by_configuration(tmp_path: Path, fips_router: Any) -> None:
    """A version 1 root (no basicConstraints) configured as the anchor is accepted, as by OpenSSL."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=60)

    (tmp_path / "ee.cnf").write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                                     "subjectAltName=DNS:v1-child.example\n")
    for name in ("r", "e"):
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key")
    run("req", "-new", "-key", "r.key", "-subj", "/CN=V1 Root", "-out", "r.csr")
    run("x509", "-req", "-in", "r.csr", "-signkey", "r.key", "-days", "30", "-out", "r.pem")
    run("req", "-new", "-key", "e.key", "-subj", "/CN=v1-child.example", "-out", "e.csr")
    run("x509", "-req", "-in", "e.csr", "-CA", "r.pem", "-CAkey", "r.key", "-days", "30", "-extfile", "ee.cnf",
        "-out", "e.pem")
    root, ee = _load(tmp_path / "r.pem")[0], _load(tmp_path / "e.pem")[0]
    assert root.version is x509.Version.v1
    at = ee.not_valid_before_utc + timedelta(minutes=1)
    assert PathValidator(fips_router, [root]).validate(ee, at).ok
    res = subprocess.run(["openssl", "verify", "-attime", str(int(at.timestamp())), "-CAfile", "r.pem", "e.pem"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def test_crl_with_an_unknown_critical_extension_is_not_used(pki: Pki, fips_router: Any) -> None:
    """RFC 5280 5.2: a delta CRL (critical deltaCRLIndicator) is not taken for a complete CRL."""
    delta = pki.pki.crl(pki.inter, [], extensions=[(x509.DeltaCRLIndicator(1), True)])
    v = PathValidator(fips_router, [pki.root.cert], [pki.inter.cert], [delta], require_crl=True)
    verdict = v.validate(pki.certs["revoked"].cert, NOW)
    assert verdict.reason is Reason.CRL_UNSUPPORTED and "2.5.29.27" in verdict.detail


def test_crl_signed_by_another_key_is_refused(pki: Pki, fips_router: Any) -> None:
    """A CRL carrying the intermediate's name but signed by another CA's key."""
    impostor = pki.pki.intermediate("Test Intermediate CA", pki.other_root, P_DECOY)
    crl = pki.pki.crl(impostor, [])
    v = PathValidator(fips_router, [pki.root.cert], [pki.inter.cert], [crl], require_crl=True)
    verdict = v.validate(pki.certs["via-inter"].cert, NOW)
    assert verdict.reason is Reason.CRL_BAD_SIGNATURE, str(verdict)


def test_path_building_is_bounded(pki: Pki, fips_router: Any) -> None:
    """Ten re-issued certificates of one self-issued CA (same name, same key: each can issue every
    other) give 10!/2! candidate paths of depth 8; a hostile peer could send them. The search stops
    after MAX_CANDIDATE_PATHS and answers at once."""
    key = fips_router.generate_keypair(P_DECOY)
    ski = key_identifier(fips_router, key.public_key())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Loop CA")])
    loop = []
    for serial in range(1, 11):
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(serial).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=9))
             .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier(ski, None, None), critical=False))
        loop.append(fips_router.issue_certificate(b, key, HashAlg.SHA256))
    ee = pki.pki.end_entity("victim.example", Issued("Loop CA", loop[0], key), P_DECOY)
    v = PathValidator(fips_router, [pki.root.cert])
    start = time.monotonic()
    verdict = v.validate(ee.cert, NOW, loop)
    assert time.monotonic() - start < 5
    assert verdict.reason in (Reason.PATH_TOO_LONG, Reason.UNTRUSTED_ROOT)
