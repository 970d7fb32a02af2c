"""The `fipsike` command: one entry point, one module per verb family in fipsike/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Sequence

# Verb modules, in the order `fipsike --help` lists them. A module that fails to
# import is a packaging bug, so it is not hidden.
COMMAND_MODULES: tuple[str, ...] = (
    "selftest",
    "importp12",
    "cert",
    "xfrm",
    "decode",
    # configuration in libreswan's dialect (issue 12)
    "check_config",
    # the daemon and the operator's verbs on its control socket (fipsike.daemon)
    "daemon",
    "control",
    "demo",
    # opportunistic IPsec (issue 14)
    "opportunistic",
)

# 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe (`fipsike ... | head`)
EXIT_BROKEN_PIPE = 141


def _verbose_option(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("-v", "--verbose", action="count", default=default, help="more log output (repeatable)")


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield sub


def _finish_verbs(parser: argparse.ArgumentParser) -> None:
    """Every verb (and sub-verb) accepts -v after its name too, and knows its full name
    ("fipsike cert list") for the error line."""
    for sub in _subparsers(parser):
        if "-v" not in sub._option_string_actions:
            # SUPPRESS: absent after the verb, the count given before it stays
            _verbose_option(sub, argparse.SUPPRESS)
        sub.set_defaults(_prog=sub.prog)
        _finish_verbs(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fipsike",
        description="An IKEv2 daemon for IPsec, built for FIPS 140-3 deployments.",
    )
    _verbose_option(parser, 0)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"fipsike.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fipsike.commands.{name}":
                raise
            continue  # verb not built yet
        module.register(sub)
    _finish_verbs(parser)
    return parser


def _safe_types() -> tuple[type[BaseException], ...]:
    """Exception families whose messages are written to be shown (they name files, settings and
    reasons, never a secret). Anything else may quote its input (a codec error quotes a PIN byte,
    a parser a key cell), so only its type name is printed."""
    from certs.identity import IdentityError
    from certs.pkcs12_import import ImportRefused
    from certs.store import CertStoreError
    from compliance.integrity import IntegrityError
    from compliance.modes import ModeError
    from compliance.module import StartupError
    from fipsike.commands.importp12 import CommandError
    from fipsike.ike.decode import CaptureError
    from fipsike.kernel.types import KernelError
    from providers.errors import ProviderError

    return (ProviderError, CertStoreError, ImportRefused, IdentityError, IntegrityError, ModeError, StartupError,
            CommandError, CaptureError, KernelError)


def describe_error(exc: BaseException) -> str:
    """One line for the last-resort handler: the message only for the known-safe families."""
    if isinstance(exc, OSError):
        what = exc.strerror or type(exc).__name__
        return f"{exc.filename}: {what}" if exc.filename is not None else what
    try:
        safe = _safe_types()
    except Exception:  # noqa: BLE001 - a broken import must not hide the original error
        safe = ()
    if isinstance(exc, safe):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (details withheld: its message may quote its input; run with -vv for where)"


def _quiet_stdout() -> None:
    """The reader went away: point stdout at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    prog = getattr(args, "_prog", "fipsike")
    try:
        rc: int = func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        # where it happened (code lines only: no exception text, which may quote a secret)
        logging.getLogger("fipsike").debug("unhandled %s at:\n%s", type(exc).__name__,
                                           "".join(traceback.format_tb(exc.__traceback__)))
        print(f"{prog}: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
