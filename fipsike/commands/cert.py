"""`fipsike cert verify` and `fipsike cert list`.

verify: builds and validates a path for CERT against the trust anchors in --ca
(RFC 5280 section 6 as certs.validation implements it, every signature through the
Router), prints the verdict with its specific reason, exits 0 (valid), 1 (refused)
or 2 (bad input).

list: the certificate store (nickname, subject, SANs, SKI, key type, validity, CA or
not, whether the token holds the private key). Public facts only.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509

from certs.store import CertStore, CertStoreError, default_store_dir, load_certificates
from certs.validation import PathValidator, load_crls, utcnow
from compliance.modes import ModeError
from fipsike.commands.importp12 import (
    CommandError,
    add_profile_option,
    add_store_option,
    add_token_options,
    open_module,
    token_config,
)
from providers.errors import ProviderError


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "cert", help="verify certificates, list the certificate store",
        description="Certificate verbs: 'verify' validates a certificate path, 'list' shows the store.")
    sub = p.add_subparsers(dest="cert_command", metavar="VERB")

    v: argparse.ArgumentParser = sub.add_parser(
        "verify", help="validate a certificate against trust anchors",
        description="Build a path from CERT (plus INTERMEDIATE files) to a trust anchor in --ca and check "
                    "signatures (through the cryptographic module), validity, basicConstraints and pathlen, "
                    "keyUsage, name constraints, CRLs (--crl: the end entity's issuer must have one) and "
                    "the profile's algorithm rules. Exit status 0 valid, 1 refused, 2 bad input.")
    v.add_argument("cert", metavar="CERT", type=Path, help="end-entity certificate (PEM/DER; a PEM bundle's "
                                                            "first certificate, the rest are intermediates)")
    v.add_argument("intermediates", metavar="INTERMEDIATE", type=Path, nargs="*",
                   help="files of intermediate CA certificates")
    v.add_argument("--ca", metavar="DIR", type=Path, required=True,
                   help="trust anchors: a directory of PEM/DER files, or one file")
    v.add_argument("--crl", metavar="FILE", type=Path, action="append", default=[], help="a CRL (repeatable)")
    v.add_argument("--at", metavar="TIME", help="validate at this time (ISO 8601, e.g. 2026-06-01T12:00:00Z) "
                                                "instead of now")
    add_profile_option(v)
    v.add_argument("--json", action="store_true", help="print the verdict as JSON")
    v.set_defaults(func=run_verify)

    lst: argparse.ArgumentParser = sub.add_parser(
        "list", help="show the certificate store",
        description="List the certificates in the store with their public facts and whether the token "
                    "holds the private key (only when a token is given). Never prints a private value.")
    add_store_option(lst)
    add_profile_option(lst)
    add_token_options(lst, required=False)
    lst.add_argument("--json", action="store_true", help="print the store as JSON")
    lst.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _certs_in(path: Path) -> list[x509.Certificate]:
    if path.is_dir():
        out: list[x509.Certificate] = []
        for f in sorted(path.iterdir()):
            if f.is_file() and f.suffix.lower() in (".pem", ".crt", ".cer", ".der"):
                out.extend(load_certificates(f))
        return out
    return load_certificates(path)


def _load_crl(path: Path) -> x509.CertificateRevocationList:
    try:
        (crl,) = load_crls([str(path)])
    except OSError as e:
        raise CommandError(f"--crl {path}: {e.strerror or type(e).__name__}") from None
    except ValueError:
        # not the parser's text (Rust ParseError internals): what the operator can act on
        raise CommandError(f"{path}: not a PEM or DER CRL") from None
    return crl


def _parse_time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"--at {text!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        raise CommandError(f"--at {text!r} needs a timezone (e.g. Z)")
    return t


def run_verify(args: argparse.Namespace) -> int:
    try:
        now = _parse_time(args.at) if args.at else utcnow()
        chain = load_certificates(args.cert)
        intermediates = chain[1:] + [c for f in args.intermediates for c in load_certificates(f)]
        if not args.ca.exists():
            raise CommandError(f"--ca {args.ca}: no such file or directory")
        anchors = _certs_in(args.ca)
        if not anchors:
            raise CommandError(f"--ca {args.ca}: no certificates found")
        crls = [_load_crl(p) for p in args.crl]
        router = open_module(args, "cert verify", None)
        if isinstance(router, int):
            return router
        verdict = PathValidator(router, anchors, crls=crls, require_crl=bool(crls)).validate(
            chain[0], now, intermediates)
    except (CommandError, CertStoreError, ProviderError, ModeError) as e:
        print(f"fipsike cert verify: {e}", file=sys.stderr)
        return 2
    if args.json:
        out = verdict.as_dict()
        out.update({"certificate": str(args.cert), "profile": router.policy.profile, "time": now.isoformat()})
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.cert}: {verdict}")
    return 0 if verdict.ok else 1


def run_list(args: argparse.Namespace) -> int:
    try:
        if args.store is not None and not args.store.is_dir():
            # the default store may be absent (nothing imported yet); a store named explicitly may not
            what = "not a directory" if args.store.exists() else "no such directory"
            raise CommandError(f"--store {args.store}: {what}")
        cfg = token_config(args, required=False)
        router = open_module(args, "cert list", cfg)
        if isinstance(router, int):
            return router
        store = CertStore(args.store or default_store_dir(), router)
        rows = [e.summary(store.has_private_key(e) if cfg is not None else None) for e in store]
    except (CommandError, CertStoreError, ProviderError, ModeError) as e:
        print(f"fipsike cert list: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"store": str(store.directory), "certificates": rows}, indent=2))
        return 0
    if not rows:
        print(f"no certificates in {store.directory}")
    for r in rows:
        key = {True: "yes", False: "no", None: "unknown (no token given)"}[r["private_key_on_token"]]
        print(f"{r['nickname']}{'  [CA]' if r['ca'] else ''}")
        print(f"  subject:  {r['subject']}")
        print(f"  issuer:   {r['issuer']}")
        if r["san"]:
            print(f"  SAN:      {', '.join(r['san'])}")
        print(f"  SKI:      {r['ski']}")
        print(f"  key:      {r['key_type']}; private key on token: {key}")
        print(f"  valid:    {r['not_before']} .. {r['not_after']}")
    return 0
