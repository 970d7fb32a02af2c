"""`fipsike xfrm`: the kernel's SAs and policies, keys redacted (length + keyed fingerprint)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fipsike.kernel.types import KernelError

REVEAL_REFUSED = ("--reveal-keys is refused in the FIPS profile: key material never leaves the module "
                  "for display (use --profile default outside FIPS deployments)")


def kernel_fips_enabled() -> bool:
    """A kernel booted with fips=1 is a FIPS deployment whatever our profile says: no reveal there either."""
    try:
        with open("/proc/sys/crypto/fips_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "xfrm", help="show the kernel's IPsec SAs and policies (keys redacted)",
        description="Read the kernel's SAD and SPD over XFRM netlink and print them like `ip xfrm state` / "
                    "`ip xfrm policy`, with every key shown as its length and a keyed fingerprint.")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--netns", metavar="NAME", help="read the XFRM state of network namespace NAME")
    p.add_argument("--all", action="store_true", help="include SAs and policies fipsike does not own")
    p.add_argument("--flush-owned", action="store_true",
                   help="remove every SA and policy fipsike owns (clean-up after a crash), then report")
    p.add_argument("--profile", choices=("fips", "default"), default="fips",
                   help="provider profile (default: fips)")
    p.add_argument("--reveal-keys", action="store_true",
                   help="print live keys in hex: non-FIPS profile only, for debugging, loudly labelled")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fipsike.kernel import xfrm_messages
    from fipsike.kernel.report import REVEAL_BANNER, render_json, render_text
    from fipsike.kernel.xfrm import XfrmKernel

    if args.reveal_keys and args.profile == "fips":
        print(f"fipsike xfrm: error: {REVEAL_REFUSED}", file=sys.stderr)
        return 2
    try:
        from providers import open_router

        router = open_router(profile=args.profile)
    except Exception as exc:  # the module refused to start (self-test, gate): one line
        print(f"fipsike xfrm: error: cannot open the crypto module: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.reveal_keys and (router.profile == "fips" or kernel_fips_enabled()):
        print(f"fipsike xfrm: error: {REVEAL_REFUSED}", file=sys.stderr)
        return 2
    try:
        with XfrmKernel(router, netns=args.netns, events=False) as kernel:
            cleanup = kernel.flush_owned() if args.flush_owned else None
            owned_only = not args.all
            if args.reveal_keys:
                print(REVEAL_BANNER, file=sys.stderr)
                with xfrm_messages.reveal_keys():
                    sas = kernel.list_sas(owned_only)
            else:
                sas = kernel.list_sas(owned_only)
            policies = kernel.list_policies(owned_only)
    except KernelError as exc:
        print(f"fipsike xfrm: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        out = render_json(sas, policies, args.netns, owned_only, reveal=args.reveal_keys)
        if cleanup is not None:
            out["cleanup"] = {"sas_removed": cleanup.sas_removed, "policies_removed": cleanup.policies_removed,
                              "errors": list(cleanup.errors)}
        print(json.dumps(out, indent=2))
    else:
        if cleanup is not None:
            print(f"removed {cleanup.sas_removed} SAs and {cleanup.policies_removed} policies owned by fipsike")
            for err in cleanup.errors:
                print(f"  error: {err}")
        sys.stdout.write(render_text(sas, policies, reveal=args.reveal_keys))
    return 1 if cleanup is not None and cleanup.errors else 0
