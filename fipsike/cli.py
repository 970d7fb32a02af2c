"""The `fipsike` command: one entry point, one module per verb family in fipsike/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# Verb modules, in the order `fipsike --help` lists them. A module that fails to
# import is a packaging bug, so it is not hidden.
COMMAND_MODULES: tuple[str, ...] = (
    "selftest",
    "importp12",
    "cert",
    "xfrm",
    "decode",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fipsike",
        description="An IKEv2 daemon for IPsec, built for FIPS 140-3 deployments.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"fipsike.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fipsike.commands.{name}":
                raise
            continue  # verb not built yet
        module.register(sub)
    return parser


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
    try:
        rc: int = func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        logging.getLogger("fipsike").debug("unhandled error", exc_info=exc)
        print(f"fipsike {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
