"""`fipsike oe-initiate --local ADDR --remote ADDR [--json]`: an opportunistic negotiation without a
packet (libreswan's `whack --oppohere ADDR --oppothere ADDR`), through the daemon's control socket;
and the opportunistic part of `fipsike status`.

Exit status: 0 established (or already up), 1 failed / not opportunistic / no outcome in time, or an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fipsike.daemon.client import ENV_CTL, ControlClient, ControlError, ctl_path


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "oe-initiate", help="start an opportunistic negotiation to a peer, as its first packet would, and "
                            "report the outcome",
        description="Start the opportunistic negotiation an ACQUIRE for LOCAL -> REMOTE would start (the group "
                    "whose CIDR covers REMOTE decides), wait for the outcome and report it.")
    p.add_argument("--local", required=True, metavar="ADDR", help="our address (as the packet's source)")
    p.add_argument("--remote", required=True, metavar="ADDR", help="the peer's address (the packet's destination)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="give up waiting after "
                                                                                  "(default 30)")
    p.add_argument("--json", action="store_true", help="the outcome as one JSON object")
    p.add_argument("--ctl", metavar="PATH", help=f"the daemon's control socket (default ${ENV_CTL} or "
                                                 "/run/fipsike/ctl)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        with ControlClient(ctl_path(args.ctl), args.timeout + 10) as c:
            res = c.call("oe-initiate", local=args.local, remote=args.remote, timeout=args.timeout)
    except ControlError as exc:
        print(f"{getattr(args, '_prog', 'fipsike oe-initiate')}: error: {exc}", file=sys.stderr)
        return 1
    assert isinstance(res, dict)
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(render_outcome(res))
    return 0 if res.get("outcome") == "established" else 1


def render_outcome(res: dict[str, Any]) -> str:
    head = f"{res.get('local')} -> {res.get('remote')}: {res.get('outcome')}"
    parts = []
    if res.get("group"):
        parts.append(f"group {res['group']}")
    if res.get("name"):
        parts.append(f"instance {res['name']}")
    if res.get("role"):
        parts.append(str(res["role"]))
    if res.get("ike_sa"):
        parts.append(f"IKE SA {res['ike_sa']}")
    if res.get("reason"):
        parts.append(str(res["reason"]))
    if res.get("seconds") is not None:
        parts.append(f"{res['seconds']}s")
    return head + (" (" + ", ".join(parts) + ")" if parts else "")


def render_status(res: dict[str, Any]) -> list[str]:
    """The opportunistic lines of `fipsike status`: instances with their group, bare shunts with their
    kind and time left, then the group policy table in the kernel's order."""
    oe = res.get("opportunistic")
    if not isinstance(oe, dict):
        return []
    entries = oe.get("entries") or []
    lines = [f"Opportunistic ({', '.join(oe.get('group_conns') or []) or 'no group conns'}; "
             f"local {', '.join(oe.get('local') or [])}):"]
    inst = [e for e in entries if e.get("kind") == "instance"]
    shunts = [e for e in entries if e.get("kind") == "bare-shunt"]
    lines.append(f"  instances ({len(inst)}):")
    for e in inst:
        shunt = f", negotiation shunt {e['shunt']}" if e.get("shunt") else ""
        lines.append(f"    {e['name']}: group {e['group']}, {e['state']}, {e.get('role', '')}{shunt}, "
                     f"{e['expires_in']:.0f}s left")
    lines.append(f"  bare shunts ({len(shunts)}):")
    for e in shunts:
        lines.append(f"    {e['local']} -> {e['remote']}: {e['shunt']} (group {e['group']}), "
                     f"{e['expires_in']:.0f}s left")
    lines.append(f"  group policies ({len(oe.get('policies') or [])}):")
    lines.extend(f"    {t}" for t in oe.get("table") or [])
    return lines
