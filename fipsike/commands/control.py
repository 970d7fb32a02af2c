"""The operator's verbs on the daemon's control socket: up, down, status, trafficstatus, listen,
reload, rekey, route, unroute (`--ctl PATH` or FIPSIKE_CTL). Every status verb has --json
(schemas in docs/daemon-json.md); errors are one line and exit status 1."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from fipsike.commands.opportunistic import render_status as render_opportunistic
from fipsike.daemon.client import ENV_CTL, ControlClient, ControlError, ctl_path


def _ctl(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ctl", metavar="PATH", help=f"the daemon's control socket (default ${ENV_CTL} or "
                                                 "/run/fipsike/ctl)")


def register(subparsers: Any) -> None:
    def verb(name: str, help_: str, func: Callable[[argparse.Namespace], int], named: bool = False,
             json_opt: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_, description=help_ + ".")
        if named:
            p.add_argument("name", metavar="NAME", help="the connection's name (conn NAME)")
        if json_opt:
            p.add_argument("--json", action="store_true", help="JSON on stdout (docs/daemon-json.md)")
        _ctl(p)
        p.set_defaults(func=func)
        return p

    up = verb("up", "negotiate a connection's IKE and Child SA and wait until it is established or has failed",
              run_up, named=True)
    up.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="give up after (default 30)")
    verb("down", "delete a connection's IKE SAs (and their Child SAs)", run_simple("down"), named=True)
    verb("status", "list the loaded connections and their IKE and Child SAs", run_status, json_opt=True)
    verb("trafficstatus", "bytes and packets in and out per Child SA, from the kernel's counters",
         run_trafficstatus, json_opt=True)
    verb("listen", "stream the daemon's events, one line each, until interrupted", run_listen, json_opt=True)
    verb("reload", "reload the configuration: added connections loaded, removed torn down, changed replaced",
         run_reload)
    rk = verb("rekey", "rekey a connection's Child SAs (or, with --ike, its IKE SA) now", run_rekey, named=True)
    rk.add_argument("--ike", action="store_true", help="rekey the IKE SA instead of the Child SAs")
    verb("route", "install the connection's trap policies: the first matching packet negotiates it",
         run_simple("route"), named=True)
    verb("unroute", "remove the connection's trap policies", run_simple("unroute"), named=True)


def _client(args: argparse.Namespace, timeout: float | None = 60.0) -> ControlClient:
    return ControlClient(ctl_path(args.ctl), timeout)


def _fail(args: argparse.Namespace, exc: ControlError) -> int:
    print(f"{getattr(args, '_prog', 'fipsike')}: error: {exc}", file=sys.stderr)
    return 1


def run_up(args: argparse.Namespace) -> int:
    try:
        with _client(args, args.timeout + 10) as c:
            res = c.call("up", name=args.name, timeout=args.timeout)
    except ControlError as exc:
        return _fail(args, exc)
    assert isinstance(res, dict)
    ok = bool(res.get("established"))
    print(f"\"{args.name}\": {'established' if ok else 'failed'}: {res.get('reason', '')}")
    return 0 if ok else 1


def run_simple(cmd: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            with _client(args) as c:
                res = c.call(cmd, name=args.name)
        except ControlError as exc:
            return _fail(args, exc)
        done = {"down": "deleting {ike_sas} IKE SA(s)", "route": "routed", "unroute": "unrouted"}[cmd]
        print(f"\"{args.name}\": " + done.format(**res if isinstance(res, dict) else {}))
        return 0
    return run


def run_reload(args: argparse.Namespace) -> int:
    try:
        with _client(args) as c:
            res = c.call("reload")
    except ControlError as exc:
        return _fail(args, exc)
    assert isinstance(res, dict)
    for key in ("added", "removed", "changed"):
        names = res.get(key) or []
        print(f"{key}: {', '.join(names) if names else '-'}")
    return 0


def run_rekey(args: argparse.Namespace) -> int:
    try:
        with _client(args) as c:
            res = c.call("rekey", name=args.name, ike=args.ike)
    except ControlError as exc:
        return _fail(args, exc)
    assert isinstance(res, dict)
    print(f"\"{args.name}\": rekeying {res['rekeyed']} {'IKE' if args.ike else 'Child'} SA(s)")
    return 0


def _fetch(args: argparse.Namespace, cmd: str) -> dict[str, Any] | int:
    try:
        with _client(args) as c:
            res = c.call(cmd)
    except ControlError as exc:
        return _fail(args, exc)
    assert isinstance(res, dict)
    return res


def run_status(args: argparse.Namespace) -> int:
    res = _fetch(args, "status")
    if isinstance(res, int):
        return res
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(render_status(res), end="")
    return 0


def render_status(res: dict[str, Any]) -> str:
    """swanctl --list-conns / --list-sas in one, as a strongSwan or libreswan operator reads them."""
    lines = ["Connections:"]
    for c in res["connections"]:
        lines.append(f"{c['name']}: {','.join(c['local'])}...{','.join(c['remote'])}  IKEv2, auto={c['auto']}"
                     + (", routed" if c["routed"] else ""))
        lines.append(f"  local:  '{c['local_id']}'")
        lines.append(f"  remote: '{c['remote_id']}'")
        for k in c["children"]:
            lines.append(f"  {k['name']}: {k['mode'].upper()}, reqid {k['reqid']:#x}")
            lines.append(f"    local:  {' '.join(k['local_ts'])}")
            lines.append(f"    remote: {' '.join(k['remote_ts'])}")
    lines.append(f"Security Associations ({len(res['ike_sas'])} IKE):")
    for sa in res["ike_sas"]:
        lines.append(f"{sa['connection']}: {sa['name']}, {str(sa['state']).upper()}, IKEv2, "
                     f"{'initiator' if sa['initiator'] else 'responder'}")
        lines.append(f"  local  '{sa['local_id'] or '-'}' @ {sa['local']}")
        lines.append(f"  remote '{sa['remote_id'] or '-'}' @ {sa['remote']}")
        if sa.get("suite"):
            lines.append(f"  {sa['suite']}")
        times = []
        if sa.get("established_for") is not None:
            times.append(f"established {sa['established_for']:.0f}s ago")
        if sa.get("rekey_in") is not None:
            times.append(f"rekeying in {sa['rekey_in']:.0f}s")
        if times:
            lines.append("  " + ", ".join(times))
        for ch in sa["children"]:
            lines.append(f"  {ch['name']}: reqid {ch['reqid']:#x}, {str(ch['state']).upper()}, "
                         f"{str(ch['mode']).upper()}, ESP:{ch['suite']}")
            extra = []
            if ch.get("rekey_in") is not None:
                extra.append(f"rekeying in {ch['rekey_in']:.0f}s")
            if ch.get("expire_in") is not None:
                extra.append(f"expires in {ch['expire_in']:.0f}s")
            if extra:
                lines.append("    " + ", ".join(extra))
            lines.append(f"    in  {ch['spi_in']}")
            lines.append(f"    out {ch['spi_out']}")
            lines.append(f"    local  {' '.join(ch['local_ts'])}")
            lines.append(f"    remote {' '.join(ch['remote_ts'])}")
    lines.extend(render_opportunistic(res))  # instances, bare shunts, the group policy table
    return "\n".join(lines) + "\n"


def run_trafficstatus(args: argparse.Namespace) -> int:
    res = _fetch(args, "trafficstatus")
    if isinstance(res, int):
        return res
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    # libreswan's `ipsec trafficstatus` line, with packets too
    for c in res["child_sas"]:
        print(f"\"{c['connection']}/{c['child']}\", type=ESP, {c['local']}...{c['remote']}, "
              f"spi_in={c['spi_in']}, spi_out={c['spi_out']}, inBytes={c['in']['bytes']}, "
              f"outBytes={c['out']['bytes']}, inPackets={c['in']['packets']}, outPackets={c['out']['packets']}")
    return 0


def run_listen(args: argparse.Namespace) -> int:
    try:
        with _client(args, None) as c:
            for ev in c.events():
                if args.json:
                    print(json.dumps(ev), flush=True)
                else:
                    print(f"{ev.get('level')} {ev.get('event')} [{ev.get('connection') or '-'}] "
                          f"{ev.get('message', '')}", flush=True)
    except ControlError as exc:
        return _fail(args, exc)
    return 0
