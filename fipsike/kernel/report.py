"""The redacted kernel report: SAs and policies like `ip xfrm state` / `ip xfrm policy`, and as JSON.

It formats SaState / PolicyState, which never hold key bytes: the netlink
decoder (xfrm_messages.py) already turned every key into its length and a
keyed fingerprint. `ip xfrm state` prints keys in hex; this report prints
`<redacted 20 octets fp 1a2b...>`. The reveal path exists only outside the
FIPS profile and labels every revealed key loudly.
"""

from __future__ import annotations

from typing import Any

from fipsike.kernel.types import Direction, KeyDigest, Mode, PolicyAction, PolicyState, SaState, TrafficSelector

REVEAL_BANNER = ("WARNING: --reveal-keys prints live ESP keys. Anyone who sees this output can decrypt "
                 "the traffic of these SAs. Not available in FIPS mode.")


def _key(d: KeyDigest) -> str:
    if d.blanked_by_kernel:
        return f"<redacted {d.octets} octets, blanked by the kernel (lockdown)>"
    fp = f" fp {d.fingerprint}" if d.fingerprint else ""
    return f"<redacted {d.octets} octets{fp}>"


def _num(v: int | None) -> str:
    return "(INF)" if v is None else str(v)


def _sel(sel: TrafficSelector) -> str:
    text = f"src {sel.src} dst {sel.dst}"
    if sel.proto:
        text += f" proto {sel.proto}"
        if sel.src_port:
            text += f" sport {sel.src_port}"
        if sel.dst_port:
            text += f" dport {sel.dst_port}"
    return text


def sa_text(s: SaState) -> str:
    mode = "tunnel" if s.mode is Mode.TUNNEL else "transport"
    lines = [f"src {s.src} dst {s.dst}",
             f"\tproto esp spi {s.spi:#010x} reqid {s.reqid} mode {mode}",
             f"\treplay-window {s.replay_window}" + (" flag esn" if s.esn else "")]
    if s.mark != (0, 0):
        lines.append(f"\tmark {s.mark[0]:#x}/{s.mark[1]:#x}")
    revealed = dict(s.revealed)
    for alg in s.algorithms:
        bits = f" {alg.bits}" if alg.bits else ""
        shown = _key(alg.key)
        if alg.name in revealed:
            shown = f"0x{revealed[alg.name]} [REVEALED]"
        lines.append(f"\t{alg.kind} {alg.name} {shown}{bits}")
    if s.larval:
        lines.append("\t(larval: SPI allocated, no keys yet)")
    if s.encap is not None:
        oa = s.encap.original_address or "%any"
        lines.append(f"\tencap type espinudp sport {s.encap.src_port} dport {s.encap.dst_port} addr {oa}")
    lt = s.lifetime
    lines.append(f"\tlifetime config: soft {_num(lt.soft_bytes)}(bytes), hard {_num(lt.hard_bytes)}(bytes), "
                 f"soft {_num(lt.soft_packets)}(packets), hard {_num(lt.hard_packets)}(packets)")
    lines.append(f"\tlifetime current: {s.bytes}(bytes), {s.packets}(packets)")
    if s.selector is not None:
        lines.append(f"\tsel {_sel(s.selector)}")
    return "\n".join(lines)


def policy_text(p: PolicyState) -> str:
    direction = {Direction.IN: "in", Direction.OUT: "out", Direction.FWD: "fwd"}[p.direction]
    action = " action block" if p.action in (PolicyAction.DROP, PolicyAction.HOLD) else ""
    lines = [_sel(p.selector), f"\tdir {direction}{action} priority {p.priority} index {p.index}"]
    if p.mark != (0, 0):
        lines.append(f"\tmark {p.mark[0]:#x}/{p.mark[1]:#x}")
    for t in p.templates:
        src = t.src or "%any"
        dst = t.dst or "%any"
        mode = "tunnel" if t.mode is Mode.TUNNEL else "transport"
        lines.append(f"\ttmpl src {src} dst {dst}\n\t\tproto esp reqid {t.reqid} mode {mode}")
    return "\n".join(lines)


def render_text(sas: list[SaState], policies: list[PolicyState], reveal: bool = False) -> str:
    parts = [REVEAL_BANNER] if reveal else []
    parts.append(f"SAD ({len(sas)} SAs)")
    parts.extend(sa_text(s) for s in sas)
    parts.append(f"SPD ({len(policies)} policies)")
    parts.extend(policy_text(p) for p in policies)
    return "\n".join(parts) + "\n"


def _sel_json(sel: TrafficSelector | None) -> dict[str, Any] | None:
    if sel is None:
        return None
    return {"src": str(sel.src), "dst": str(sel.dst), "proto": sel.proto, "sport": sel.src_port,
            "dport": sel.dst_port}


def sa_json(s: SaState) -> dict[str, Any]:
    lt = s.lifetime
    revealed = dict(s.revealed)
    algs = []
    for a in s.algorithms:
        entry: dict[str, Any] = {"kind": a.kind, "name": a.name, "bits": a.bits,
                                 "key": {"octets": a.key.octets, "fingerprint": a.key.fingerprint,
                                         "blanked_by_kernel": a.key.blanked_by_kernel}}
        if a.name in revealed:
            entry["key"]["revealed_hex"] = revealed[a.name]
        algs.append(entry)
    return {
        "src": str(s.src), "dst": str(s.dst), "spi": f"{s.spi:#010x}", "proto": s.proto, "reqid": s.reqid,
        "mode": s.mode.name.lower(), "selector": _sel_json(s.selector), "algorithms": algs,
        "replay_window": s.replay_window, "esn": s.esn, "larval": s.larval,
        "encap": None if s.encap is None else {"sport": s.encap.src_port, "dport": s.encap.dst_port,
                                               "oa": str(s.encap.original_address or "")},
        "lifetime": {"soft_bytes": lt.soft_bytes, "hard_bytes": lt.hard_bytes, "soft_packets": lt.soft_packets,
                     "hard_packets": lt.hard_packets, "soft_seconds": lt.soft_seconds,
                     "hard_seconds": lt.hard_seconds},
        "current": {"bytes": s.bytes, "packets": s.packets, "add_time": s.add_time},
        "mark": {"value": s.mark[0], "mask": s.mark[1]},
    }


def policy_json(p: PolicyState) -> dict[str, Any]:
    return {
        "selector": _sel_json(p.selector), "dir": p.direction.name.lower(), "action": p.action.value,
        "priority": p.priority, "index": p.index, "mark": {"value": p.mark[0], "mask": p.mark[1]},
        "templates": [{"src": str(t.src or ""), "dst": str(t.dst or ""), "reqid": t.reqid,
                       "mode": t.mode.name.lower(), "proto": t.proto} for t in p.templates],
    }


def render_json(sas: list[SaState], policies: list[PolicyState], netns: str | None, owned_only: bool,
                reveal: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"netns": netns, "owned_only": owned_only, "sas": [sa_json(s) for s in sas],
                           "policies": [policy_json(p) for p in policies]}
    if reveal:
        out["warning"] = REVEAL_BANNER
    return out
