"""A small test PKI for the tests and the demo: roots, intermediates and end
entities (RSA-3072, ECDSA P-256 / P-384) with the SANs and key usages IKE
peers expect, CRLs, PEM files and PKCS#12 bundles, and the deliberately bad
certificates the validation tests need.

Keys come from `router.generate_keypair`; certificates and CRLs are signed by
`router.issue_certificate` / `router.sign_crl`, so nothing here touches a
primitive. What the Router must not do is made with the `openssl` command line:
keys that go into a PKCS#12 (the Router's keys never leave it:
`end_entity_with_key_file`, `write_pkcs12`), and the two bad cases its policy
refuses in every profile, a SHA-1 signature and an RSA-1024 key
(`legacy_sha1_chain`, `rsa1024_public_key`).

Time is injected: every validity window is relative to `now`.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_public_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.keyid import key_identifier
from providers.algorithms import HashAlg, KeySpec

RSA_3072 = KeySpec("rsa", 3072)
P256 = KeySpec("ec", 256, "secp256r1")
P384 = KeySpec("ec", 384, "secp384r1")
P521 = KeySpec("ec", 521, "secp521r1")

SERVER_CLIENT_AUTH = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)


@dataclass
class Issued:
    """A certificate and its private key handle (None when only the public key is known)."""

    name: str
    cert: x509.Certificate
    key: Any = None
    issuer: Issued | None = None

    def chain(self) -> list[x509.Certificate]:
        """Issuer certificates above this one, nearest first, the root last."""
        out: list[x509.Certificate] = []
        node = self.issuer
        while node is not None:
            out.append(node.cert)
            node = node.issuer if node.issuer is not node else None
        return out


def hash_for(spec: KeySpec) -> HashAlg:
    return {384: HashAlg.SHA384, 521: HashAlg.SHA512}.get(spec.size, HashAlg.SHA256) \
        if spec.kind == "ec" else HashAlg.SHA256


def general_name(text: str) -> x509.GeneralName:
    """'DNS:x', 'IP:192.0.2.1', 'email:a@b' (openssl's subjectAltName syntax)."""
    kind, _, value = text.partition(":")
    kind = kind.lower()
    if kind == "dns":
        return x509.DNSName(value)
    if kind == "ip":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "email":
        return x509.RFC822Name(value)
    if kind == "uri":
        return x509.UniformResourceIdentifier(value)
    raise ValueError(f"unknown subjectAltName type in {text!r}")


class TestPki:
    """Builds certificates at a fixed time `now`."""

    __test__ = False  # not a pytest class

    def __init__(self, router: Any, now: datetime, org: str = "fipsike test") -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.router = router
        self.now = now
        self.org = org

    # --- helpers ------------------------------------------------------------------
    def _serial(self) -> int:
        # 20 octets max (RFC 5280 4.1.2.2), positive: 159 random bits, never zero
        return (int.from_bytes(self.router.random(20), "big") >> 1) | 1

    def _name(self, cn: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])

    def _builder(self, subject: x509.Name, issuer: x509.Name, public_key: Any, not_before: datetime | None,
                 not_after: datetime | None, days: int) -> x509.CertificateBuilder:
        nb = not_before if not_before is not None else self.now - timedelta(days=1)
        na = not_after if not_after is not None else nb + timedelta(days=days)
        ski = key_identifier(self.router, public_key)
        return (x509.CertificateBuilder()
                .subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(self._serial()).not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.SubjectKeyIdentifier(ski), critical=False))

    def _sign(self, builder: x509.CertificateBuilder, issuer: Issued | None, own_key: Any,
              hash_alg: HashAlg | None) -> x509.Certificate:
        signer = issuer.key if issuer is not None else own_key
        if issuer is not None:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier(
                key_identifier(self.router, issuer.cert.public_key()), None, None), critical=False)
        h = hash_alg or hash_for(signer.spec)
        cert: x509.Certificate = self.router.issue_certificate(builder, signer, h)
        return cert

    @staticmethod
    def _ku(**bits: bool) -> x509.KeyUsage:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{n: bits.get(n, False) for n in names})

    # --- CAs ---------------------------------------------------------------------------
    def root(self, cn: str, spec: KeySpec = RSA_3072, *, pathlen: int | None = None, days: int = 3650,
             not_before: datetime | None = None, not_after: datetime | None = None,
             hash_alg: HashAlg | None = None) -> Issued:
        key = self.router.generate_keypair(spec, label=cn)
        name = self._name(cn)
        b = (self._builder(name, name, key.public_key(), not_before, not_after, days)
             .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
             .add_extension(self._ku(key_cert_sign=True, crl_sign=True), critical=True))
        issued = Issued(cn, self._sign(b, None, key, hash_alg), key)
        issued.issuer = None
        return issued

    def intermediate(self, cn: str, issuer: Issued, spec: KeySpec = P384, *, pathlen: int | None = None,
                     ca: bool = True, key_cert_sign: bool = True, days: int = 1825,
                     not_before: datetime | None = None, not_after: datetime | None = None,
                     name_constraints: x509.NameConstraints | None = None,
                     hash_alg: HashAlg | None = None) -> Issued:
        """A sub-CA; `ca=False` gives the bad 'intermediate with CA:FALSE' case."""
        key = self.router.generate_keypair(spec, label=cn)
        b = (self._builder(self._name(cn), issuer.cert.subject, key.public_key(), not_before, not_after, days)
             .add_extension(x509.BasicConstraints(ca=ca, path_length=pathlen if ca else None), critical=True)
             .add_extension(self._ku(key_cert_sign=key_cert_sign, crl_sign=key_cert_sign,
                                     digital_signature=not key_cert_sign), critical=True))
        if name_constraints is not None:
            b = b.add_extension(name_constraints, critical=True)
        return Issued(cn, self._sign(b, issuer, None, hash_alg), key, issuer)

    # --- end entities ----------------------------------------------------------------------
    def end_entity(self, cn: str, issuer: Issued, spec: KeySpec = P256, *, sans: Sequence[str] = (),
                   digital_signature: bool = True, eku: Sequence[x509.ObjectIdentifier] = SERVER_CLIENT_AUTH,
                   days: int = 365, not_before: datetime | None = None, not_after: datetime | None = None,
                   public_key: Any = None, hash_alg: HashAlg | None = None) -> Issued:
        """An IKE peer certificate: SAN DNS:<cn> unless `sans` says otherwise,
        keyUsage digitalSignature (or keyEncipherment only, the bad case), EKU
        serverAuth + clientAuth. `public_key` certifies a key made elsewhere
        (then the result has no private key handle)."""
        key = None
        if public_key is None:
            key = self.router.generate_keypair(spec, label=cn)
            public_key = key.public_key()
        names = [general_name(s) for s in (sans or (f"DNS:{cn}",))]
        ku = self._ku(digital_signature=True) if digital_signature else self._ku(key_encipherment=True)
        b = (self._builder(self._name(cn), issuer.cert.subject, public_key, not_before, not_after, days)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(ku, critical=True)
             .add_extension(x509.SubjectAlternativeName(names), critical=False))
        if eku:
            b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
        return Issued(cn, self._sign(b, issuer, None, hash_alg), key, issuer)

    # --- CRLs ------------------------------------------------------------------------------------
    def crl(self, issuer: Issued, revoked: Iterable[Issued] = (), *, this_update: datetime | None = None,
            next_update: datetime | None = None, hash_alg: HashAlg | None = None,
            extensions: Sequence[tuple[x509.ExtensionType, bool]] = ()) -> x509.CertificateRevocationList:
        tu = this_update if this_update is not None else self.now - timedelta(hours=1)
        nu = next_update if next_update is not None else tu + timedelta(days=7)
        b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
             .last_update(tu).next_update(nu)
             .add_extension(x509.AuthorityKeyIdentifier(
                 key_identifier(self.router, issuer.cert.public_key()), None, None), critical=False)
             .add_extension(x509.CRLNumber(1), critical=False))
        for ext, critical in extensions:
            b = b.add_extension(ext, critical=critical)
        for r in revoked:
            b = b.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(r.cert.serial_number)
                .revocation_date(tu - timedelta(minutes=5)).build())
        crl: x509.CertificateRevocationList = self.router.sign_crl(
            b, issuer.key, hash_alg or hash_for(issuer.key.spec))
        return crl

    # --- files -------------------------------------------------------------------------------------
    @staticmethod
    def write_pem(cert: x509.Certificate | x509.CertificateRevocationList, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(cert.public_bytes(Encoding.PEM))
        return path

    def end_entity_with_key_file(self, cn: str, issuer: Issued, spec: KeySpec, key_path: Path,
                                 **kw: Any) -> Issued:
        """An end entity whose key is made by `openssl genpkey` into `key_path` (PEM, mode 0600):
        the one kind of test key that must leave a process (to go into a PKCS#12), which the
        Router's keys by design never do."""
        return self.end_entity(cn, issuer, spec, public_key=openssl_keypair(spec, key_path), **kw)

    @staticmethod
    def write_pkcs12(issued: Issued, key_path: Path, path: Path, password: str,
                     friendly_name: str | None = None, with_chain: bool = True) -> Path:
        """`openssl pkcs12 -export` of the key file, the certificate and (by default) its CA chain."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as d:
            cert = Path(d) / "cert.pem"
            cert.write_bytes(issued.cert.public_bytes(Encoding.PEM))
            args = ["pkcs12", "-export", "-inkey", str(key_path), "-in", str(cert), "-name",
                    friendly_name or issued.name, "-passout", "env:FIPSIKE_TESTPKI_P12_PASSWORD", "-out", str(path)]
            chain = issued.chain() if with_chain else []
            if chain:
                (Path(d) / "chain.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
                args += ["-certfile", str(Path(d) / "chain.pem")]
            _openssl(*args, cwd=Path(d), env={"FIPSIKE_TESTPKI_P12_PASSWORD": password})
        path.chmod(0o600)
        return path


# --- the two cases the Router refuses to make (openssl command line) ---------------------------------
def _openssl(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    full_env = {**os.environ, **env} if env else None
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120, env=full_env)


def openssl_keypair(spec: KeySpec, key_path: Path) -> Any:
    """`openssl genpkey` into `key_path` (0600); returns the public key. Also makes the keys the
    Router refuses to generate (RSA-1024, other curves) for the refusal tests."""
    if spec.kind == "rsa":
        gen = ["-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{spec.size}"]
    else:
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(spec.curve, spec.curve)
        gen = ["-algorithm", "EC", "-pkeyopt", f"ec_paramgen_curve:{curve}"]
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    _openssl("genpkey", *gen, "-out", str(key_path), cwd=key_path.parent)
    with tempfile.TemporaryDirectory() as d:
        _openssl("pkey", "-in", str(key_path), "-pubout", "-out", "pub.pem", cwd=Path(d))
        return load_pem_public_key((Path(d) / "pub.pem").read_bytes())


def rsa1024_public_key() -> Any:
    """A fresh RSA-1024 public key (for the 'key too small' case); the private half is discarded."""
    with tempfile.TemporaryDirectory() as d:
        return openssl_keypair(KeySpec("rsa", 1024), Path(d) / "k.pem")


def legacy_sha1_chain(directory: Path, now: datetime) -> tuple[Path, Path]:
    """(root PEM, end-entity PEM): an RSA-3072 root (SHA-256 self-signature) and a
    P-256 end entity it signed with sha1WithRSAEncryption, valid around `now`.
    `openssl ca` because it takes explicit validity dates (time injected)."""
    directory.mkdir(parents=True, exist_ok=True)
    start = (now - timedelta(days=1)).strftime("%Y%m%d%H%M%SZ")
    end = (now + timedelta(days=365)).strftime("%Y%m%d%H%M%SZ")
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("1001\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca=test\n"
        "[test]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\npolicy=any\nunique_subject=no\n"
        "[any]\ncountryName=optional\norganizationName=optional\ncommonName=supplied\n"
        "[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        "subjectKeyIdentifier=hash\n"
        "[ee]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:sha1.example\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    ca = ("ca", "-batch", "-config", "ca.cnf", "-notext", "-startdate", start, "-enddate", end)
    run = [("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", "sha1-root.key"),
           ("req", "-new", "-key", "sha1-root.key", "-subj", "/C=US/O=fipsike test/CN=SHA1 Test Root",
            "-out", "sha1-root.csr"),
           (*ca, "-selfsign", "-keyfile", "sha1-root.key", "-in", "sha1-root.csr", "-md", "sha256",
            "-extensions", "root", "-out", "sha1-root.pem"),
           ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sha1-ee.key"),
           ("req", "-new", "-key", "sha1-ee.key", "-subj", "/C=US/O=fipsike test/CN=sha1.example",
            "-out", "sha1-ee.csr"),
           (*ca, "-cert", "sha1-root.pem", "-keyfile", "sha1-root.key", "-in", "sha1-ee.csr", "-md", "sha1",
            "-extensions", "ee", "-out", "sha1-ee.pem")]
    for args in run:
        _openssl(*args, cwd=directory)
    return directory / "sha1-root.pem", directory / "sha1-ee.pem"


# --- a whole PKI on disk, for tests and the demo -------------------------------------------------
@dataclass
class PeerFiles:
    cert: Path
    key: Path  # PEM, 0600 (it goes into the PKCS#12; import it onto a token with `fipsike import`)
    p12: Path
    chain: Path  # intermediate + root, PEM


@dataclass
class PkiFiles:
    directory: Path
    root: Path
    intermediate: Path
    crl: Path
    peers: dict[str, PeerFiles]


DEMO_PEERS: dict[str, tuple[KeySpec, tuple[str, ...]]] = {
    "east": (RSA_3072, ("DNS:east.example", "IP:192.0.2.1", "email:ike@east.example")),
    "west": (P256, ("DNS:west.example", "IP:192.0.2.2")),
    "north": (P384, ("DNS:north.example", "IP:2001:db8::3")),
}


def build_pki(router: Any, directory: Path, now: datetime, password: str,
              peers: dict[str, tuple[KeySpec, tuple[str, ...]]] | None = None) -> PkiFiles:
    """Root (RSA-3072) -> intermediate (P-384) -> one end entity per peer, written as
    ca/root.pem, ca/intermediate.pem, crl/intermediate.pem (empty CRL) and
    peers/<name>.{pem,key,p12} + peers/<name>-chain.pem."""
    pki = TestPki(router, now)
    root = pki.root("fipsike Test Root CA", RSA_3072)
    inter = pki.intermediate("fipsike Test Intermediate CA", root, P384)
    out = PkiFiles(directory, pki.write_pem(root.cert, directory / "ca" / "root.pem"),
                   pki.write_pem(inter.cert, directory / "ca" / "intermediate.pem"),
                   pki.write_pem(pki.crl(inter), directory / "crl" / "intermediate.pem"), {})
    for name, (spec, sans) in (peers or DEMO_PEERS).items():
        d = directory / "peers"
        key = d / f"{name}.key"
        issued = pki.end_entity_with_key_file(sans[0].partition(":")[2] or name, inter, spec, key, sans=sans)
        chain = d / f"{name}-chain.pem"
        chain.write_bytes(inter.cert.public_bytes(Encoding.PEM) + root.cert.public_bytes(Encoding.PEM))
        out.peers[name] = PeerFiles(pki.write_pem(issued.cert, d / f"{name}.pem"), key,
                                    pki.write_pkcs12(issued, key, d / f"{name}.p12", password, friendly_name=name),
                                    chain)
    return out


def main(argv: list[str] | None = None) -> int:
    """python -m certs.testpki DIR: writes the demo PKI (PKCS#12 password from FIPSIKE_P12_PASSWORD)."""
    import argparse
    from datetime import UTC

    from providers import open_router

    p = argparse.ArgumentParser(prog="python -m certs.testpki", description=main.__doc__)
    p.add_argument("directory", type=Path)
    p.add_argument("--now", help="ISO 8601 time the certificates are valid around (default: now)")
    args = p.parse_args(argv)
    password = os.environ.get("FIPSIKE_P12_PASSWORD")
    if not password:
        print("python -m certs.testpki: set FIPSIKE_P12_PASSWORD", file=sys.stderr)
        return 2
    now = datetime.fromisoformat(args.now.replace("Z", "+00:00")) if args.now else datetime.now(UTC)
    files = build_pki(open_router("fips"), args.directory, now, password)
    print(f"root {files.root}\nintermediate {files.intermediate}\ncrl {files.crl}")
    for name, f in files.peers.items():
        print(f"{name}: {f.cert} {f.p12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
