"""The certificates of one matrix run, made once with the project's test PKI (certs.testpki).

main root (RSA-3072) -> intermediate (P-384) -> end entities per key type, for fipsike and the peer;
  -> a second intermediate under it -> the "chain2" end entities (a chain with two intermediates);
other root (P-256) -> intermediate -> "otherca" (a peer certificate fipsike must not trust);
"expired" (main intermediate, validity ended yesterday); "intruder" (valid, but the wrong identity).
Every end entity's key is a PEM file (openssl genpkey) so that charon, pluto (PKCS#12 into NSS) and
fipsike (imported into the Router, or onto SoftHSM2) can all load it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certs.testpki import P256, P384, RSA_3072, Issued, TestPki
from providers.algorithms import KeySpec

P12_PASSWORD = "interop-matrix"  # noqa: S105 (a throwaway test PKCS#12, not a secret of any deployment)
KEY_TYPES: dict[str, KeySpec] = {"p256": P256, "p384": P384, "rsa": RSA_3072}


@dataclass
class EndEntity:
    name: str
    identity: str  # the FQDN ID (= the DNS SAN)
    cert: Path
    key: Path
    p12: Path  # friendlyName = name
    chain: tuple[Path, ...]  # intermediates, nearest first
    root: Path
    kind: str  # p256 | p384 | rsa


@dataclass
class MatrixPki:
    directory: Path
    main_root: Path
    other_root: Path
    entities: dict[str, EndEntity] = field(default_factory=dict)

    def __getitem__(self, name: str) -> EndEntity:
        return self.entities[name]


def build(router: Any, directory: Path, now: datetime | None = None) -> MatrixPki:
    now = now or datetime.now(UTC)
    pki = TestPki(router, now, org="fipsike interop")
    root = pki.root("fipsike Matrix Root CA", RSA_3072)
    inter = pki.intermediate("fipsike Matrix Intermediate CA", root, P384, pathlen=1)
    inter2 = pki.intermediate("fipsike Matrix Second Intermediate CA", inter, P384, pathlen=0)
    other = pki.root("Other Root CA", P256)
    other_inter = pki.intermediate("Other Intermediate CA", other, P256)
    out = MatrixPki(directory, pki.write_pem(root.cert, directory / "ca" / "root.pem"),
                    pki.write_pem(other.cert, directory / "ca" / "other-root.pem"))

    def ee(name: str, identity: str, issuer: Issued, kind: str, chain: tuple[Issued, ...], top: Path,
           **kw: Any) -> None:
        d = directory / "ee"
        key = d / f"{name}.key"
        issued = pki.end_entity_with_key_file(identity, issuer, KEY_TYPES[kind], key, sans=(f"DNS:{identity}",), **kw)
        chain_paths = tuple(pki.write_pem(c.cert, directory / "ca" / f"{c.name.replace(' ', '_')}.pem") for c in chain)
        p12 = pki.write_pkcs12(issued, key, d / f"{name}.p12", P12_PASSWORD, friendly_name=name)
        out.entities[name] = EndEntity(name, identity, pki.write_pem(issued.cert, d / f"{name}.pem"), key, p12,
                                       chain_paths, top, kind)

    main = out.main_root
    for kind in KEY_TYPES:
        ee(f"fips-{kind}", "fips.test", inter, kind, (inter,), main)
        ee(f"peer-{kind}", "peer.test", inter, kind, (inter,), main)
    ee("fips-chain2", "fips.test", inter2, "p256", (inter2, inter), main)
    ee("peer-chain2", "peer.test", inter2, "p256", (inter2, inter), main)
    ee("peer-otherca", "peer.test", other_inter, "p256", (other_inter,), out.other_root)
    ee("peer-expired", "peer.test", inter, "p256", (inter,), main,
       not_before=now - timedelta(days=30), not_after=now - timedelta(days=1))
    ee("peer-intruder", "intruder.test", inter, "p256", (inter,), main)
    (directory / "pki.json").write_text(json.dumps(
        {"main_root": str(out.main_root), "other_root": str(out.other_root),
         "entities": {k: {**asdict(v), "chain": [str(c) for c in v.chain]} for k, v in out.entities.items()}},
        default=str, indent=1))
    return out


def load(directory: Path) -> MatrixPki:
    """The PKI `build` wrote into `directory` (made on the host, read by the guest: keygen is faster there)."""
    data = json.loads((directory / "pki.json").read_text())
    out = MatrixPki(directory, Path(data["main_root"]), Path(data["other_root"]))
    for name, e in data["entities"].items():
        out.entities[name] = EndEntity(e["name"], e["identity"], Path(e["cert"]), Path(e["key"]), Path(e["p12"]),
                                       tuple(Path(c) for c in e["chain"]), Path(e["root"]), e["kind"])
    return out
