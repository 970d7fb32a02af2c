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
from certs.store import DEFAULT_STORE_DIR, CertStore, CertStoreError, check_writable, default_store_dir
from fipsike.commands.selftest import add_fips_mode_option, start_module
from providers.errors import ProviderError
from providers.pkcs11.config import SOFTHSM2_MODULE, PinSource, Pkcs11Config

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
    """The shared --fips-mode option, with --profile as its alias (see commands/selftest.py)."""
    add_fips_mode_option(p, profile_alias=True)


def add_token_options(p: argparse.ArgumentParser, required: bool, daemon: bool = False) -> None:
    g = p.add_argument_group("PKCS#11 token")
    g.add_argument("--module", metavar="PATH", default=None,
                   help=f"PKCS#11 module (default: ${ENV_MODULE} or {SOFTHSM2_MODULE})")
    g.add_argument("--token", metavar="LABEL", default=None,
                   help=f"token label (default: ${ENV_TOKEN})" + ("" if required else "; without one, "
                                                                  "private keys are not looked up"))
    g.add_argument("--pin-file", metavar="FILE", default=None, help="file holding the user PIN")
    g.add_argument("--pin-env", metavar="VAR", default=None,
                   help=f"environment variable holding the user PIN (default: {ENV_PIN}"
                        + (", after the secrets file's ': PIN' entry" if daemon else "") + ")")


def token_config(args: argparse.Namespace, required: bool,
                 pin_source: PinSource | None = None) -> Pkcs11Config | None:
    """The token of --token / $FIPSIKE_TOKEN. Its PIN: --pin-file, else --pin-env, else `pin_source` (the
    daemon's ipsec.secrets `: PIN` entry), else $FIPSIKE_PIN."""
    label = args.token or os.environ.get(ENV_TOKEN)
    if not label:
        if required:
            raise CommandError(f"no token: give --token LABEL or set {ENV_TOKEN}")
        return None
    module = args.module or os.environ.get(ENV_MODULE) or SOFTHSM2_MODULE
    check_module(module)
    if args.pin_file:
        return Pkcs11Config(module_path=module, token_label=label, pin_file=args.pin_file)
    if args.pin_env is None and pin_source is not None:
        return Pkcs11Config(module_path=module, token_label=label, pin_source=pin_source)
    return Pkcs11Config(module_path=module, token_label=label, pin_env=args.pin_env or ENV_PIN)


_ELF_MAGIC = b"\x7fELF"


def check_module(path: str) -> None:
    """A PKCS#11 module that cannot be a shared library is a configuration error (exit 2) named
    here, before the loader's own message (which comes back as an untyped exception)."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CommandError(f"cannot load PKCS#11 module {path}: {e.strerror or type(e).__name__}") from None
    if magic != _ELF_MAGIC:
        raise CommandError(f"cannot load PKCS#11 module {path}: not a shared library")


def open_module(args: argparse.Namespace, verb: str, pkcs11: Pkcs11Config | None) -> Any:
    """The operational router (self-tests passed), or an int exit status."""
    try:
        module = start_module(args, verb, **({"pkcs11": pkcs11} if pkcs11 is not None else {}))
    except Exception as exc:
        # python-pkcs11's own exceptions (a library that is no PKCS#11 module, a token that
        # misbehaves) reach us untyped: name the module, not the library's text
        if pkcs11 is not None and type(exc).__module__.split(".")[0] == "pkcs11":
            raise CommandError(f"cannot load PKCS#11 module {pkcs11.module_path}: "
                               f"{type(exc).__name__}") from None
        raise
    return module if isinstance(module, int) else module.router


def read_secret_file(path: str, what: str) -> str:
    """A PIN or password file's text without its line end. Errors never quote the content."""
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as e:
        raise CommandError(f"cannot read the {what} file {path}: {e.strerror or type(e).__name__}") from None
    except UnicodeDecodeError:
        # the codec's message quotes the offending byte: a byte of the secret
        raise CommandError(f"{what} file {path} is not UTF-8") from None


def _utf8(text: str, where: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the environment arrive as surrogate escapes
        raise CommandError(f"{where} is not UTF-8") from None


def read_password(args: argparse.Namespace) -> bytes:
    if args.password_file:
        return _utf8(read_secret_file(args.password_file, "password"), f"password file {args.password_file}")
    var = args.password_env or ENV_P12_PASSWORD
    if var in os.environ:
        return _utf8(os.environ[var], f"environment variable {var}")
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
        store_dir = args.store or default_store_dir()
        check_writable(store_dir)  # before the token is touched: a bad --store leaves nothing behind
        router = open_module(args, "import", cfg)
        if isinstance(router, int):
            return router
        store = CertStore(store_dir, router)
        result = import_pkcs12(data, password, router, store, label=args.label)
    except (CommandError, ImportRefused, CertStoreError, ProviderError) as e:
        print(f"fipsike import: {args.file}: {e}", file=sys.stderr)
        return 2 if isinstance(e, CommandError | CertStoreError) else 1
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        for line in result.lines():
            print(line)
    return 0
