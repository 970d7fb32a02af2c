"""The certificate store: loading, look-ups by nickname / CN / subject / SKI, writing."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certs.identity import parse_dn
from certs.keyid import key_identifier
from certs.store import CertStore, CertStoreError, key_uri
from certs.testpki import P256
from tests.certs.conftest import Pki


@pytest.fixture
def store_dir(pki: Pki, tmp_path: Path) -> Path:
    d = tmp_path / "store"
    d.mkdir()
    for name in ("root", "inter", "via-inter", "direct"):
        shutil.copy(pki.files[name], d / f"{name}.pem")
    (d / "sub").mkdir()
    (d / "sub" / "p384.der").write_bytes(pki.certs["p384"].cert.public_bytes(Encoding.DER))
    shutil.copy(pki.files["crl-inter"], d / "crl-inter.pem")  # a CRL beside the certificates: skipped
    (d / "notes.txt").write_text("not a certificate")
    return d


def test_lookups(pki: Pki, store_dir: Path, fips_router: Any) -> None:
    store = CertStore(store_dir, fips_router)
    assert sorted(e.nickname for e in store) == ["direct", "inter", "p384", "root", "via-inter"]
    gw = pki.certs["via-inter"].cert
    assert store.by_nickname("via-inter").cert == gw  # type: ignore[union-attr]
    assert store.by_nickname("gw.example").cert == gw  # type: ignore[union-attr]  # by CN
    assert store.by_nickname("GW.EXAMPLE").cert == gw  # type: ignore[union-attr]
    assert store.by_nickname("nope") is None
    ski = gw.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert store.by_ski(ski).cert == gw  # type: ignore[union-attr]
    assert [e.cert for e in store.by_subject(parse_dn("C=US, O=FIPSIKE test, CN=gw.example"))] == [gw]
    assert store.find(f"@#{ski.hex()}").cert == gw
    assert store.find("C=US, O=fipsike test, CN=gw.example").cert == gw
    assert store.find("p384").cert == pki.certs["p384"].cert  # DER file in a subdirectory
    with pytest.raises(KeyError):
        store.find("missing")
    assert {c.subject for c in store.ca_certificates()} == {pki.root.cert.subject, pki.inter.cert.subject}


def test_summary_is_public_facts(pki: Pki, store_dir: Path, fips_router: Any) -> None:
    entry = CertStore(store_dir, fips_router).find("via-inter")
    s = entry.summary(None)
    assert s["subject"] == "C=US, O=fipsike test, CN=gw.example"
    assert s["san"] == ["DNS:gw.example", "email:ike@gw.example", "IP:2001:db8::10"]
    assert s["key_type"] == "ECDSA-secp256r1" and s["ca"] is False
    assert s["ski"] == key_identifier(fips_router, entry.cert.public_key()).hex()  # testpki: RFC 7093 method 1
    assert s["not_before"] == "2026-05-31T12:00:00Z"


def test_add_is_idempotent_and_refuses_a_clash(pki: Pki, tmp_path: Path, fips_router: Any) -> None:
    store = CertStore(tmp_path / "new", fips_router)
    assert len(store) == 0
    path = store.add(pki.certs["direct"].cert, "east/../gw")
    assert path.parent == tmp_path / "new" and "/" not in path.name
    assert store.add(pki.certs["direct"].cert, "east/../gw") == path
    with pytest.raises(CertStoreError, match="holds another certificate"):
        store.add(pki.certs["p384"].cert, "east/../gw")
    assert store.find(path.stem).cert == pki.certs["direct"].cert
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_bad_file_names_its_path(tmp_path: Path, fips_router: Any) -> None:
    (tmp_path / "broken.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertStoreError, match=r"broken\.pem: not a PEM or DER certificate"):
        CertStore(tmp_path, fips_router)
    (tmp_path / "broken.pem").unlink()
    (tmp_path / "junk.der").write_bytes(b"\x30\x00")
    with pytest.raises(CertStoreError, match=r"junk\.der"):
        CertStore(tmp_path, fips_router)


def test_key_uri_is_rfc7512() -> None:
    assert key_uri(bytes.fromhex("00ff10")) == "pkcs11:type=private;id=%00%FF%10"


@pytest.mark.softhsm
def test_private_key_by_public_key_match(pki: Pki, tmp_path: Path, router_hsm: Any) -> None:
    """A token key generated with another CKA_ID is still found for its certificate (public-key match),
    and one certificate without a key on the token answers False."""
    key = router_hsm.generate_keypair(P256, label="by-match",
                                      key_id=b"\x01\x02", to_token=True)
    issued = pki.pki.end_entity("match.example", pki.inter, public_key=key.public_key())
    store = CertStore(tmp_path / "s", router_hsm)
    store.add(issued.cert, "match")
    store.add(pki.certs["direct"].cert, "nokey")
    found = store.private_key(store.find("match"))
    assert found.owner.startswith("pkcs11:") and found.key_id == b"\x01\x02"
    assert store.has_private_key(store.find("match")) is True
    assert store.has_private_key(store.find("nokey")) is False
    with pytest.raises(Exception, match="does not belong"):
        store.private_key(store.find("nokey"), uri="pkcs11:type=private;id=%01%02")
