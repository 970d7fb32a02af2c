"""`fipsike selftest` and `fipsike fipsstatus`: the module's self-tests, and which FIPS mode is active.

Other verbs that use cryptography start the module through `start_module(args, verb)` and add the
`--fips-mode` option with `add_fips_mode_option(parser)`, so they refuse to run on a module in error
and every verb decides its FIPS mode the same way (compliance.modes.resolve_mode: --fips-mode, then
FIPSIKE_FIPS_MODE, then the default). `--profile` survives as an alias on the verbs that had it; it
names a mode, never overrides FIPSIKE_FIPS_MODE (a conflict is an error), and the profile always
follows from the mode (off -> default, policy/required -> fips).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compliance import availability, integrity, report
from compliance.modes import (
    ENV_MODE,
    NO_VALIDATED_MODULE,
    FipsMode,
    ModeDecision,
    ModeError,
    fips_provider_status,
    resolve_mode,
)
from compliance.module import OperationalModule, StartupError, startup
from providers.router import open_router

MODES = [m.value for m in FipsMode]


def add_fips_mode_option(parser: argparse.ArgumentParser, profile_alias: bool = False) -> None:
    parser.add_argument("--fips-mode", choices=MODES, default=None,
                        help=f"off, policy (default) or required; overrides {ENV_MODE}. The policy profile "
                             "follows: off -> default, policy/required -> fips")
    if profile_alias:
        parser.add_argument("--profile", choices=("fips", "default"), default=None,
                            help=f"alias: 'default' = --fips-mode off, 'fips' = policy (or required when "
                                 f"{ENV_MODE} says so); never overrides {ENV_MODE}: a conflict is an error")


def requested_mode(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> str | None:
    """The command line's FIPS mode for resolve_mode(): --fips-mode, else what --profile names.
    --profile is an alias only: it may not lower (or raise) a mode set in the environment."""
    mode: str | None = getattr(args, "fips_mode", None)
    profile: str | None = getattr(args, "profile", None)
    if profile is None:
        return mode
    if mode is not None:
        if FipsMode(mode).profile != profile:
            raise ModeError(f"--profile {profile} conflicts with --fips-mode {mode}")
        return mode
    ambient = resolve_mode(None, env)
    if ambient.source != "default":
        if ambient.profile != profile:
            raise ModeError(f"--profile {profile} conflicts with FIPS mode {ambient.explain()}; "
                            "--profile cannot override it")
        return None  # the environment decides
    return FipsMode.OFF.value if profile == "default" else None


def decide_mode(args: argparse.Namespace) -> ModeDecision:
    """The FIPS mode this invocation runs in (ModeError on a bad or conflicting request)."""
    return resolve_mode(requested_mode(args))


def start_module(args: argparse.Namespace, verb: str, **options: Any) -> OperationalModule | int:
    """The operational module, or (after one clear line on stderr) the exit status to return."""
    try:
        return startup(requested_mode(args), **options)
    except ModeError as exc:
        print(f"fipsike {verb}: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"fipsike {verb}: {exc}", file=sys.stderr)
        return exc.exit_status


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "selftest",
        help="run the cryptographic self-tests (KATs, pairwise, integrity, algorithm table, invariants)",
        description="Run every pre-operational self-test through the same Router the daemon uses, print a "
                    "summary and exit non-zero on any failure. --json prints the report as JSON "
                    "(compliance/report.schema.json); --html writes a self-contained report for an auditor. "
                    "--write-manifest records the software-integrity manifest (run it at install time).",
    )
    add_fips_mode_option(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--html", metavar="FILE", help="write the auditor's HTML report to FILE")
    p.add_argument("--write-manifest", action="store_true",
                   help="write the HMAC-SHA2-256 integrity manifest of the installed packages and exit")
    p.add_argument("--manifest", metavar="FILE", help="integrity manifest path (default: inside the package)")
    p.set_defaults(func=run_selftest)

    s: argparse.ArgumentParser = subparsers.add_parser(
        "fipsstatus",
        help="show which FIPS mode is active and why",
        description="Show the FIPS mode and where it came from (--fips-mode, FIPSIKE_FIPS_MODE, configuration "
                    "or the default), the policy profile, and whether the OpenSSL FIPS provider is active under "
                    "cryptography. Exits 1 in required mode when the FIPS provider is not usable.",
    )
    add_fips_mode_option(s)
    s.add_argument("--json", action="store_true", help="print the status as JSON")
    s.set_defaults(func=run_fipsstatus)


def _write_manifest(args: argparse.Namespace) -> int:
    # The HMAC is checked by its KAT before it is trusted to write the manifest.
    module = start_module(args, "selftest", only=["kat-hmac-sha2-256"])
    if isinstance(module, int):
        return module
    target = Path(args.manifest) if args.manifest else integrity.default_manifest()
    try:
        path = integrity.write_manifest(module.router, manifest=target)
    except OSError as exc:
        print(f"fipsike selftest: cannot write the integrity manifest {target}: "
              f"{exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    except integrity.IntegrityError as exc:
        print(f"fipsike selftest: cannot write the integrity manifest: {exc}", file=sys.stderr)
        return 2
    print(f"fipsike selftest: wrote integrity manifest {path} "
          f"({len(integrity.covered_files(integrity.package_root(), path))} files)")
    return 0


def run_selftest(args: argparse.Namespace) -> int:
    if args.write_manifest:
        return _write_manifest(args)
    options: dict[str, Any] = {}
    if args.manifest:
        options["manifest"] = Path(args.manifest)
    failure = ""
    try:
        rep = startup(args.fips_mode, **options).report
    except ModeError as exc:
        print(f"fipsike selftest: {exc}", file=sys.stderr)
        return 2
    except StartupError as exc:
        if exc.report is None:
            print(f"fipsike selftest: {exc}", file=sys.stderr)
            return exc.exit_status
        rep, failure = exc.report, str(exc)
    if args.json:
        print(json.dumps(report.to_json(rep), indent=1))
    else:
        print(report.summary_text(rep))
    if args.html:
        try:
            Path(args.html).write_text(report.to_html(rep), encoding="utf-8")
        except OSError as exc:
            print(f"fipsike selftest: {args.html}: {exc.strerror}", file=sys.stderr)
            return 2
    if failure:
        print(f"fipsike selftest: {failure}", file=sys.stderr)
        return StartupError.exit_status
    return 0


def run_fipsstatus(args: argparse.Namespace) -> int:
    try:
        decision = resolve_mode(args.fips_mode)
    except ModeError as exc:
        print(f"fipsike fipsstatus: {exc}", file=sys.stderr)
        return 2
    router = open_router(profile=decision.profile)
    status = fips_provider_status(router)
    # what this OpenSSL cannot do is disabled at start-up (degraded operation): say so here too
    unavailable = {getattr(a, "name", str(a)): why for (_, a), why in availability.probe(router).items()}
    if decision.mode is FipsMode.REQUIRED:
        verdict = ("the OpenSSL FIPS provider is active; self-tests decide the rest" if not status.problem
                   else f"will refuse to start: {status.problem}")
    elif decision.mode is FipsMode.POLICY:
        verdict = NO_VALIDATED_MODULE
    else:
        verdict = "FIPS mode off: default profile, no FIPS claim"
    out = {"mode": decision.mode.value, "source": decision.source, "profile": decision.profile,
           "verdict": verdict, "fips_provider": status.as_dict(), "disabled": unavailable}
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(f"FIPS mode: {decision.explain()}")
        print(f"policy profile: {decision.profile}")
        print(f"OpenSSL: {status.openssl_version}; FIPS provider active: {'yes' if status.active else 'no'}")
        print(f"OPENSSL_CONF: {status.openssl_conf or '(unset)'}")
        for name, why in unavailable.items():
            print(f"disabled at start-up: {name}: {why}")
        print(verdict)
    return 1 if decision.mode is FipsMode.REQUIRED and status.problem else 0
