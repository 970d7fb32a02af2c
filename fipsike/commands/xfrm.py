"""`fipsike xfrm`: the kernel's SAs and policies, keys redacted (length + keyed fingerprint)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compliance.modes import ENV_MODE, FipsMode, ModeDecision, ModeError, parse_mode
from fipsike.commands.selftest import add_fips_mode_option, decide_mode, start_module
from fipsike.kernel.types import KernelError, PolicyState

REVEAL_REFUSED = ("--reveal-keys is refused in the FIPS profile: key material never leaves the module "
                  "for display (only with --fips-mode off, outside FIPS deployments)")


def kernel_fips_enabled() -> bool:
    """A kernel booted with fips=1 is a FIPS deployment whatever our profile says: no reveal there either."""
    try:
        with open("/proc/sys/crypto/fips_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def reveal_refusal(decision: ModeDecision, env: Mapping[str, str] | None = None) -> str:
    """Why --reveal-keys is refused here, or "" when it may run: only in FIPS mode off, and not
    on a host whose environment or kernel declares a FIPS deployment."""
    env = os.environ if env is None else env
    if decision.mode is not FipsMode.OFF:
        return f"{REVEAL_REFUSED}; FIPS mode is {decision.explain()}"
    if env.get(ENV_MODE):
        try:
            declared = parse_mode(env[ENV_MODE], ENV_MODE)
        except ModeError:
            declared = FipsMode.REQUIRED  # unreadable: assume the strictest
        if declared is not FipsMode.OFF:
            # --fips-mode off on the command line outranks the environment for everything else;
            # it does not make a host the administrator declared FIPS show its keys
            return f"{REVEAL_REFUSED}; {ENV_MODE}={env[ENV_MODE]} declares a FIPS deployment"
    if kernel_fips_enabled():
        return f"{REVEAL_REFUSED}; the kernel runs with fips_enabled=1"
    return ""


def opportunistic_groups(ctl: str, policies: list[PolicyState]) -> dict[int, str]:
    """policy index -> the group the daemon's table says it came from (selector, direction and priority
    agree, as fipsike.oe.groups.group_of matches them)."""
    from fipsike.daemon.client import ControlClient, ControlError

    try:
        with ControlClient(Path(ctl), 30) as c:
            res = c.call("status")
    except ControlError as exc:
        print(f"fipsike xfrm: warning: no group names ({exc})", file=sys.stderr)
        return {}
    oe = res.get("opportunistic") if isinstance(res, dict) else None
    rows = oe.get("policies", []) if isinstance(oe, dict) else []
    table = {(r["src"], r["dst"], r["dir"], r["priority"]): r["group"] for r in rows if isinstance(r, dict)}
    out: dict[int, str] = {}
    for p in policies:
        g = table.get((str(p.selector.src), str(p.selector.dst), p.direction.name.lower(), p.priority))
        if g is not None and not p.selector.proto:
            out[p.index] = str(g)
    return out


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "xfrm", help="show the kernel's IPsec SAs and policies (keys redacted)",
        description="Read the kernel's SAD and SPD over XFRM netlink and print them like `ip xfrm state` / "
                    "`ip xfrm policy`, with every key shown as its length and a keyed fingerprint.")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--netns", metavar="NAME", help="read the XFRM state of network namespace NAME")
    p.add_argument("--all", action="store_true", help="include SAs and policies fipsike does not own")
    p.add_argument("--ctl", metavar="PATH", help="name each opportunistic policy's group (private, clear, ...), "
                                                 "asking the daemon on this control socket for its group table")
    p.add_argument("--flush-owned", action="store_true",
                   help="remove every SA and policy fipsike owns (clean-up after a crash), then report")
    add_fips_mode_option(p, profile_alias=True)
    p.add_argument("--reveal-keys", action="store_true",
                   help="print live keys in hex: FIPS mode off only (never when FIPSIKE_FIPS_MODE or the "
                        "kernel declare FIPS), for debugging, loudly labelled")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fipsike.kernel import xfrm_messages
    from fipsike.kernel.report import REVEAL_BANNER, render_json, render_text
    from fipsike.kernel.xfrm import XfrmKernel

    try:
        decision = decide_mode(args)
    except ModeError as exc:
        print(f"fipsike xfrm: error: {exc}", file=sys.stderr)
        return 2
    refused = reveal_refusal(decision) if args.reveal_keys else ""
    if refused:
        print(f"fipsike xfrm: error: {refused}", file=sys.stderr)
        return 2
    module = start_module(args, "xfrm")  # self-tests first, like every verb that uses the module
    if isinstance(module, int):
        return module
    router = module.router
    if args.reveal_keys and (router.policy.profile != "default" or module.mode.mode is not FipsMode.OFF):
        print(f"fipsike xfrm: error: {REVEAL_REFUSED}", file=sys.stderr)  # belt and braces
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
    groups = opportunistic_groups(args.ctl, policies) if args.ctl else {}  # policy index -> group
    if args.json:
        out = render_json(sas, policies, args.netns, owned_only, reveal=args.reveal_keys)
        for pol in out["policies"]:
            if pol["index"] in groups:
                pol["group"] = groups[pol["index"]]
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
        if args.ctl:
            print(f"Opportunistic groups ({len(groups)} of these policies, from the daemon at {args.ctl}):")
            for p in policies:
                if p.index in groups:
                    print(f"  index {p.index}: {groups[p.index]:<17} {p.direction.name.lower():<3} "
                          f"{p.selector.src} -> {p.selector.dst} priority {p.priority}")
    return 1 if cleanup is not None and cleanup.errors else 0
