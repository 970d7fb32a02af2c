"""A test PKI built once per session through the Router (software keys), written
to PEM files so `openssl verify` can judge the same bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.testpki import P256, P384, RSA_3072, Issued, TestPki, legacy_sha1_chain, rsa1024_public_key
from providers import open_router

# The injected "now" of every validation test (and -attime for openssl).
NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


@dataclass
class Pki:
    dir: Path
    pki: TestPki
    root: Issued
    inter: Issued
    other_root: Issued
    pathlen0_root: Issued
    certs: dict[str, Issued] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    crls: dict[str, x509.CertificateRevocationList] = field(default_factory=dict)

    def pem(self, name: str, obj: Any) -> Path:
        path = self.dir / f"{name}.pem"
        path.write_bytes(obj.public_bytes(Encoding.PEM))
        self.files[name] = path
        return path


@pytest.fixture(scope="session")
def fips_router() -> Any:
    return open_router("fips")


@pytest.fixture(scope="session")
def default_router() -> Any:
    return open_router("default")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory, fips_router: Any) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    t = TestPki(fips_router, NOW)
    root = t.root("Test Root CA", RSA_3072)
    inter = t.intermediate("Test Intermediate CA", root, P384)
    other_root = t.root("Other Root CA", P256)
    pathlen0 = t.root("Pathlen0 Root CA", P256, pathlen=0)
    p = Pki(d, t, root, inter, other_root, pathlen0)
    c = p.certs
    c["direct"] = t.end_entity("direct.example", root, RSA_3072, sans=("DNS:direct.example", "IP:192.0.2.10"))
    c["via-inter"] = t.end_entity("gw.example", inter, P256,
                                  sans=("DNS:gw.example", "email:ike@gw.example", "IP:2001:db8::10"))
    c["p384"] = t.end_entity("p384.example", inter, P384)
    c["expired"] = t.end_entity("expired.example", inter, P256, not_before=NOW - timedelta(days=400),
                                not_after=NOW - timedelta(days=35))
    c["not-yet-valid"] = t.end_entity("future.example", inter, P256, not_before=NOW + timedelta(days=3))
    c["wrong-ca"] = t.end_entity("stranger.example", other_root, P256)
    c["ca-false-inter"] = t.intermediate("Not A CA", root, P256, ca=False)
    c["under-ca-false"] = t.end_entity("under-nonca.example", c["ca-false-inter"], P256)
    c["pathlen-inter"] = t.intermediate("Pathlen Intermediate CA", pathlen0, P256)
    c["pathlen-ee"] = t.end_entity("deep.example", c["pathlen-inter"], P256)  # root pathlen 0: exceeded
    c["pathlen-ok-ee"] = t.end_entity("shallow.example", pathlen0, P256)
    c["no-digsig"] = t.end_entity("nodigsig.example", inter, RSA_3072, digital_signature=False)
    c["revoked"] = t.end_entity("revoked.example", inter, P256)
    c["rsa1024"] = t.end_entity("rsa1024.example", root, public_key=rsa1024_public_key())
    nc = x509.NameConstraints(permitted_subtrees=[x509.DNSName("allowed.example")], excluded_subtrees=None)
    c["nc-inter"] = t.intermediate("Constrained CA", root, P256, name_constraints=nc)
    c["nc-ok"] = t.end_entity("gw.allowed.example", c["nc-inter"], P256)
    c["nc-bad"] = t.end_entity("gw.elsewhere.example", c["nc-inter"], P256)
    for name, issued in [("root", root), ("inter", inter), ("other-root", other_root),
                         ("pathlen0-root", pathlen0), *c.items()]:
        p.pem(name, issued.cert)
    # a certificate whose signature was altered (last octet flipped)
    der = bytearray(c["direct"].cert.public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    p.pem("bad-signature", x509.load_der_x509_certificate(bytes(der)))
    p.crls["inter"] = t.crl(inter, [c["revoked"]])
    p.crls["inter-stale"] = t.crl(inter, [], this_update=NOW - timedelta(days=30),
                                  next_update=NOW - timedelta(days=23))
    p.crls["root"] = t.crl(root, [])
    for name, crl in p.crls.items():
        p.pem(f"crl-{name}", crl)
    sha1_root, sha1_ee = legacy_sha1_chain(d / "sha1", NOW)
    p.files["sha1-root"], p.files["sha1-ee"] = sha1_root, sha1_ee
    return p
