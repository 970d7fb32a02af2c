"""The on-disk test PKI (used by the demo): what it writes, and that strongSwan's `pki --verify`
trusts it as well as we do."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from certs.identity import Identity
from certs.keyid import same_public_key
from certs.testpki import build_pki
from certs.validation import PathValidator


def test_build_pki_files_and_strongswan_agrees(tmp_path: Path, fips_router: Any) -> None:
    now = datetime.now(UTC)  # strongSwan's pki checks against the real clock
    files = build_pki(fips_router, tmp_path, now, "demo password")
    root = x509.load_pem_x509_certificate(files.root.read_bytes())
    inter = x509.load_pem_x509_certificate(files.intermediate.read_bytes())
    crl = x509.load_pem_x509_crl(files.crl.read_bytes())
    validator = PathValidator(fips_router, [root], [inter], [crl], require_crl=True)
    assert set(files.peers) == {"east", "west", "north"}
    kinds = set()
    for name, f in files.peers.items():
        cert = x509.load_pem_x509_certificate(f.cert.read_bytes())
        assert validator.validate(cert, now).ok
        assert Identity.parse(f"@{name}.example").matches_cert(cert)
        bundle = pkcs12.load_pkcs12(f.p12.read_bytes(), b"demo password")
        assert bundle.cert is not None and bundle.cert.certificate == cert and bundle.key is not None
        assert bundle.cert.friendly_name == name.encode()
        assert same_public_key(bundle.key.public_key(), cert.public_key())
        assert [c.certificate for c in bundle.additional_certs] == [inter, root]
        assert f.key.stat().st_mode & 0o077 == 0 and f.p12.stat().st_mode & 0o077 == 0
        kinds.add(type(cert.public_key()).__name__ + str(getattr(cert.public_key(), "key_size", 0)))
        res = subprocess.run(["pki", "--verify", "--in", str(f.cert), "--cacert", str(files.root),
                              "--cacert", str(files.intermediate), "--crl", str(files.crl)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "certificate trusted, lifetimes valid" in res.stdout
        assert "certificate status is good" in res.stderr
    assert len(kinds) == 3  # RSA-3072, P-256, P-384
