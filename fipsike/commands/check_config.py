"""`fipsike check-config`: load ipsec.conf, ipsec.secrets and the policy groups as the daemon would, and
show the resolved connections (after also= and %default, proposals expanded, which side is local) and
the warnings; in a FIPS mode the self-test's invariants then run over this configuration.

Exit status: 0 clean (warnings allowed), 1 errors (one line each on stderr:
`FILE:LINE: conn NAME: keyword: message`), 2 a file cannot be read. `--json` prints one object
(docs/check-config.schema.json). No secret is ever printed: secrets show as their kind, IDs and place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from compliance.invariants import check_invariants
from compliance.modes import ModeError
from compliance.proposals import Proposal
from fipsike.commands.selftest import add_fips_mode_option, decide_mode
from fipsike.config.conns import ConnSpec, Side
from fipsike.config.errors import ConfigError, ConfigUnreadable, Diagnostic, Location
from fipsike.config.hosts import HostAddresses, StaticHost, SystemHost
from fipsike.config.load import DEFAULT_CONFIG, LoadedConfig, load

SCHEMA_VERSION = 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check-config", help="check ipsec.conf, ipsec.secrets and the policy groups")
    p.add_argument("--json", action="store_true", help="one JSON object (docs/check-config.schema.json)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="ipsec.conf (default /etc/ipsec.conf)")
    p.add_argument("--secrets", type=Path, default=None,
                   help="ipsec.secrets (default: secretsfile= or /etc/ipsec.secrets)")
    p.add_argument("--ipsecdir", type=Path, default=None,
                   help="the directory holding policies/ (default: ipsecdir= or /etc/ipsec.d)")
    p.add_argument("--local-address", action="append", default=None, metavar="ADDR",
                   help="orient conns as a host with this address (repeatable; default: this host's)")
    p.add_argument("--defaultroute", default=None, metavar="ADDR",
                   help="the address %%defaultroute stands for (with --local-address)")
    add_fips_mode_option(p)
    p.set_defaults(func=run)


def _host(args: argparse.Namespace) -> HostAddresses:
    if args.local_address is None and args.defaultroute is None:
        return SystemHost()
    addrs = frozenset(args.local_address or ())
    d = args.defaultroute
    return StaticHost(addrs, d if d and ":" not in d else None, d if d and ":" in d else None)


def run(args: argparse.Namespace) -> int:
    try:
        decision = decide_mode(args)
    except ModeError as exc:
        print(f"fipsike check-config: {exc}", file=sys.stderr)
        return 2
    errors: list[Diagnostic] = []
    loaded: LoadedConfig | None = None
    status = 0
    try:
        loaded = load(args.config, secrets=args.secrets, ipsecdir=args.ipsecdir, fips_mode=decision.mode,
                      host=_host(args))
    except ConfigUnreadable as exc:
        errors, status = exc.diagnostics, 2
    except ConfigError as exc:
        errors, status = exc.diagnostics, 1
    invariants: list[dict[str, Any]] = []
    if loaded is not None and decision.profile == "fips":
        from providers.router import open_router

        router = open_router(profile=decision.profile)
        for r in check_invariants(loaded.invariant_config(), router):
            invariants.append({"name": r.name, "ok": r.ok, "source": r.source, "findings": list(r.findings)})
            for f in r.findings:
                errors.append(Diagnostic(Location(str(args.config), 0), f, "", f"invariant {r.name}"))
                status = 1
    if args.json:
        print(json.dumps(report(loaded, errors, invariants, decision.mode.value, decision.profile, status),
                         indent=2))
    else:
        if loaded is not None:
            print(text(loaded))
        for e in errors:
            print(str(e), file=sys.stderr)
    return status


# --- rendering --------------------------------------------------------------------------------------
def _proposal(p: Proposal) -> dict[str, Any]:
    return {"text": p.text, "encryption": [{"name": c.alg.name, "key_bits": c.key_bits} for c in p.ciphers],
            "prf": [x.name for x in p.prfs], "integrity": [x.name for x in p.integrity],
            "key_exchange": [x.name for x in p.ke]}


def _side(sd: Side) -> dict[str, Any]:
    return {"host": sd.host, "address": sd.address, "subnets": list(sd.subnets),
            "protoport": {"protocol": sd.protoport[0], "from_port": sd.protoport[1], "to_port": sd.protoport[2]},
            "id": sd.id, "auth": sd.auth, "cert": sd.cert, "ca": sd.ca, "sendcert": sd.sendcert,
            "ikeport": sd.ikeport}


def conn_dict(c: ConnSpec) -> dict[str, Any]:
    conn = c.connection
    return {
        "name": c.name, "file": c.location.file, "line": c.location.line,
        "local": c.local, "oriented": c.oriented, "auto": c.auto, "type": c.type, "authby": c.authby,
        "opportunistic": c.opportunistic, "policy_group": c.policy_group,
        "left": _side(c.left), "right": _side(c.right),
        "local_id": conn.local_id, "remote_id": conn.remote_id,
        "ike": {"text": c.ike, "default": c.ike_default, "proposals": [_proposal(p) for p in c.ike_parsed]},
        "esp": {"text": c.esp, "default": c.esp_default, "proposals": [_proposal(p) for p in c.esp_parsed]},
        "pfs": c.pfs,
        "lifetimes": {"ike": c.ikelifetime, "ipsec": c.ipsec_lifetime, "rekey": c.rekey,
                      "rekeymargin": c.rekeymargin, "rekeyfuzz": c.rekeyfuzz},
        "limits": {"ipsec_max_bytes": c.ipsec_max_bytes, "ipsec_max_packets": c.ipsec_max_packets},
        "shunts": {"negotiation": c.negotiationshunt, "failure": c.failureshunt},
        "children": [{"name": ch.name, "mode": ch.mode, "start_action": ch.start_action,
                      "local_ts": [f"{t.start}-{t.end}" for t in ch.local_ts],
                      "remote_ts": [f"{t.start}-{t.end}" for t in ch.remote_ts]} for ch in conn.children],
        "narrowing": c.narrowing, "encapsulation": c.encapsulation, "reqid": c.reqid,
        "mark_in": list(c.mark_in) if c.mark_in else None, "mark_out": list(c.mark_out) if c.mark_out else None,
    }


def report(loaded: LoadedConfig | None, errors: list[Diagnostic], invariants: list[dict[str, Any]],
           mode: str, profile: str, status: int) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION, "ok": status == 0, "exit_status": status,
        "fips_mode": mode, "profile": profile,
        "files": loaded.files if loaded else [],
        "connections": [conn_dict(c) for c in loaded.conns] if loaded else [],
        "templates": loaded.templates if loaded else [],
        "policy_groups": {g: [m.network for m in ms] for g, ms in loaded.groups.groups.items()} if loaded else {},
        "secrets": [{"kind": e.kind, "ids": list(e.ids), "file": e.location.file, "line": e.location.line}
                    for e in loaded.secrets.entries] if loaded else [],
        "warnings": [w.as_dict() for w in loaded.warnings] if loaded else [],
        "errors": [e.as_dict() for e in errors],
        "invariants": invariants,
    }


def _props(ps: tuple[Proposal, ...]) -> str:
    out = []
    for p in ps:
        parts = ["+".join(str(c) for c in p.ciphers)]
        if p.prfs:
            parts.append("+".join(x.name for x in p.prfs))
        if p.integrity:
            parts.append("+".join(x.name for x in p.integrity))
        if p.ke:
            parts.append("+".join(x.name for x in p.ke))
        out.append("/".join(parts))
    return "; ".join(out) or "(none)"


def text(loaded: LoadedConfig) -> str:
    lines = [f"profile {loaded.profile}: {len(loaded.conns)} connection(s)"]
    for c in loaded.conns:
        loc, rem = c.local_side, c.remote_side
        lines.append(f"conn {c.name} ({c.location}): local side {c.local}"
                     + ("" if c.oriented else " (NOT ORIENTED: neither side is this host)"))
        lines.append(f"  auto={c.auto} type={c.type} authby={c.authby}"
                     + (f" opportunistic group={c.policy_group or '%group'}" if c.opportunistic else ""))
        for label, sd, ident in (("local", loc, c.connection.local_id), ("remote", rem, c.connection.remote_id)):
            addr = f" ({sd.address})" if sd.address and sd.address != sd.host else ""
            extra = ((f" cert={sd.cert}" if sd.cert else "") + (f" ca={sd.ca}" if sd.ca else "")
                     + (f" subnets={','.join(sd.subnets)}" if sd.subnets else ""))
            lines.append(f"  {label}: {sd.host}{addr} id={ident} auth={sd.auth}{extra}")
        lines.append(f"  ike={c.ike}" + (" (default)" if c.ike_default else "") + f": {_props(c.ike_parsed)}")
        lines.append(f"  esp={c.esp}" + (" (default)" if c.esp_default else "")
                     + f": {_props(c.esp_parsed)}; pfs={'yes' if c.pfs else 'no'}")
        lines.append(f"  lifetimes: ike {c.ikelifetime:g} s, ipsec {c.ipsec_lifetime:g} s, rekeymargin "
                     f"{c.rekeymargin:g} s; shunts: negotiation={c.negotiationshunt} failure={c.failureshunt}")
        for ch in c.connection.children:
            lts = ",".join(f"{t.start}-{t.end}" for t in ch.local_ts)
            rts = ",".join(f"{t.start}-{t.end}" for t in ch.remote_ts) or (
                f"policy group {c.policy_group}" if c.policy_group else "any")
            lines.append(f"  child {ch.name}: {lts} <=> {rts} ({ch.mode})")
    for g, ms in loaded.groups.groups.items():
        lines.append(f"policy group {g}: {', '.join(m.network for m in ms) or '(empty)'}")
    for e in loaded.secrets.entries:
        lines.append(f"secret {e.kind} for {' '.join(e.ids) or '(any)'} at {e.location}")
    for w in loaded.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
