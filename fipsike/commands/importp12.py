"""`fipsike import FILE.p12`: the private key onto the PKCS#11 token (sensitive, not
extractable, CKA_ID = the certificate's key identifier), the certificate and its CA
chain into the certificate store.

The PKCS#12 password comes from --password-file, else the environment variable named by
--password-env (default FIPSIKE_P12_PASSWORD), else a prompt on the terminal. The token
PIN comes from --pin-file or the variable named by --pin-env (default FIPSIKE_PIN).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from certs.pkcs12_import import ImportRefused, import_pkcs12
from certs.store import DEFAULT_STORE_DIR, CertStore, CertStoreError, default_store_dir
from fipsike.commands.selftest import start_module
from providers.errors import ProviderError
from providers.pkcs11.config import SOFTHSM2_MODULE, Pkcs11Config

ENV_P12_PASSWORD = "FIPSIKE_P12_PASSWORD"  # noqa: S105 - the variable's name, not a password
ENV_PIN = "FIPSIKE_PIN"
ENV_MODULE = "FIPSIKE_PKCS11_MODULE"
ENV_TOKEN = "FIPSIKE_TOKEN_LABEL"  # noqa: S105 - a variable name


class CommandError(Exception):
    """One line for stderr; exit status 2 (bad input or configuration)."""


def add_store_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="DIR", type=Path, default=None,
                   help=f"certificate store directory (default: $FIPSIKE_CERT_DIR or {DEFAULT_STORE_DIR})")


def add_profile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=("fips", "default"), default=None,
                   help="policy profile (default: fips; 'default' is FIPS mode off)")
    p.add_argument("--fips-mode", choices=("off", "policy", "required"), default=None, help=argparse.SUPPRESS)


def add_token_options(p: argparse.ArgumentParser, required: bool) -> None:
    g = p.add_argument_group("PKCS#11 token")
    g.add_argument("--module", metavar="PATH", default=None,
                   help=f"PKCS#11 module (default: ${ENV_MODULE} or {SOFTHSM2_MODULE})")
    g.add_argument("--token", metavar="LABEL", default=None,
                   help=f"token label (default: ${ENV_TOKEN})" + ("" if required else "; without one, "
                                                                  "private keys are not looked up"))
    g.add_argument("--pin-file", metavar="FILE", default=None, help="file holding the user PIN")
    g.add_argument("--pin-env", metavar="VAR", default=None,
                   help=f"environment variable holding the user PIN (default: {ENV_PIN})")


def token_config(args: argparse.Namespace, required: bool) -> Pkcs11Config | None:
    label = args.token or os.environ.get(ENV_TOKEN)
    if not label:
        if required:
            raise CommandError(f"no token: give --token LABEL or set {ENV_TOKEN}")
        return None
    module = args.module or os.environ.get(ENV_MODULE) or SOFTHSM2_MODULE
    if args.pin_file:
        return Pkcs11Config(module_path=module, token_label=label, pin_file=args.pin_file)
    return Pkcs11Config(module_path=module, token_label=label, pin_env=args.pin_env or ENV_PIN)


def resolve_fips_mode(args: argparse.Namespace) -> None:
    """--profile default is FIPS mode off; --profile fips is policy (or required if asked)."""
    if args.profile is None:
        return
    if args.profile == "default":
        if args.fips_mode not in (None, "off"):
            raise CommandError(f"--profile default conflicts with --fips-mode {args.fips_mode}")
        args.fips_mode = "off"
    elif args.fips_mode == "off":
        raise CommandError("--profile fips conflicts with --fips-mode off")
    elif args.fips_mode is None:
        args.fips_mode = "policy"


def open_module(args: argparse.Namespace, verb: str, pkcs11: Pkcs11Config | None) -> Any:
    """The operational router (self-tests passed), or an int exit status."""
    resolve_fips_mode(args)
    module = start_module(args, verb, **({"pkcs11": pkcs11} if pkcs11 is not None else {}))
    return module if isinstance(module, int) else module.router


def read_password(args: argparse.Namespace) -> bytes:
    if args.password_file:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except OSError as e:
            raise CommandError(f"cannot read the password file {args.password_file}: {e.strerror}") from None
        return text.rstrip("\r\n").encode("utf-8")
    var = args.password_env or ENV_P12_PASSWORD
    if var in os.environ:
        return os.environ[var].encode("utf-8")
    if not sys.stdin.isatty():
        raise CommandError(f"no password: give --password-file, set {var}, or run on a terminal")
    return getpass.getpass(f"Password for {args.file}: ").encode("utf-8")


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "import",
        help="import a PKCS#12: key onto the token, certificates into the store",
        description="Put the private key of a PKCS#12 onto the PKCS#11 token (sensitive, not extractable, "
                    "labelled, CKA_ID = the certificate's key identifier) and the certificate and its CA "
                    "chain into the certificate store. Keys the profile forbids (fips: RSA < 2048 bits, "
                    "curves other than P-256/384/521) are refused before anything is written.",
    )
    p.add_argument("file", metavar="FILE.p12", type=Path, help="the PKCS#12 to import")
    p.add_argument("--label", help="token label and store nickname (default: the PKCS#12 friendly name, "
                                   "else the certificate's CN)")
    p.add_argument("--password-file", metavar="FILE", help="file holding the PKCS#12 password")
    p.add_argument("--password-env", metavar="VAR",
                   help=f"environment variable holding the PKCS#12 password (default: {ENV_P12_PASSWORD})")
    add_store_option(p)
    add_profile_option(p)
    add_token_options(p, required=True)
    p.add_argument("--json", action="store_true", help="print what was imported as JSON")
    p.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    try:
        try:
            data = args.file.read_bytes()
        except OSError as e:
            raise CommandError(f"cannot read {args.file}: {e.strerror}") from None
        password = read_password(args)
        cfg = token_config(args, required=True)
        router = open_module(args, "import", cfg)
        if isinstance(router, int):
            return router
        store = CertStore(args.store or default_store_dir(), router)
        result = import_pkcs12(data, password, router, store, label=args.label)
    except (CommandError, ImportRefused, CertStoreError, ProviderError, ValueError) as e:
        print(f"fipsike import: {args.file}: {e}", file=sys.stderr)
        return 2 if isinstance(e, CommandError) else 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        for line in result.lines():
            print(line)
    return 0
