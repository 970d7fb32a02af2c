"""The Linux XFRM backend: SAD and SPD over NETLINK_XFRM, ACQUIRE/EXPIRE/POLICY events.

Key bytes leave their SecretKey handles only here, through
`router.release_esp_key`, straight into the NEWSA/UPDSA message; the encoded
message is zeroed once sent. Everything fipsike installs carries its
ownership tags (types.Ownership): a reqid in fipsike's range on every SA and
template, and the ownership mark (value 0 / mask) on every SA and policy, so
clean-up removes all of ours and nothing else.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from pyroute2.netlink import nlmsg

from fipsike.kernel import xfrm_messages as xm
from fipsike.kernel.algorithms import kernel_cipher, kernel_integrity
from fipsike.kernel.api import KeyRouter, default_priority
from fipsike.kernel.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, XfrmSocket
from fipsike.kernel.types import (
    IPPROTO_ESP,
    XFRM_INF,
    Acquire,
    AlgorithmState,
    CleanupReport,
    Direction,
    EventsLost,
    Expire,
    IPAddress,
    KernelError,
    KernelEvent,
    KeyDigest,
    Lifetime,
    Mode,
    Ownership,
    PolicyAction,
    PolicyChanged,
    PolicySpec,
    PolicyState,
    SaSpec,
    SaState,
    Shunt,
    Template,
    TrafficSelector,
    UdpEncap,
)

log = logging.getLogger("fipsike.kernel.xfrm")

_ACTION_RANK = {PolicyAction.IPSEC: 0, PolicyAction.HOLD: 1, PolicyAction.PASS: 2, PolicyAction.DROP: 3,
                PolicyAction.TRAP: 4}

# --- addresses and selectors -------------------------------------------------------------------


def family_of(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


def pack_addr(addr: IPAddress | None) -> bytes:
    """xfrm_address_t: 4 or 16 octets, zero-padded to 16 by the field codec."""
    return b"" if addr is None else addr.packed


def unpack_addr(raw: bytes, family: int) -> IPAddress:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(raw[:4])
    return ipaddress.IPv6Address(raw[:16])


def selector_fields(sel: TrafficSelector, prefix: str = "sel_") -> dict[str, Any]:
    return {
        f"{prefix}daddr": sel.dst.network_address.packed,
        f"{prefix}saddr": sel.src.network_address.packed,
        f"{prefix}dport": sel.dst_port, f"{prefix}dport_mask": 0xFFFF if sel.dst_port else 0,
        f"{prefix}sport": sel.src_port, f"{prefix}sport_mask": 0xFFFF if sel.src_port else 0,
        f"{prefix}family": family_of(sel.version),
        f"{prefix}prefixlen_d": sel.dst.prefixlen, f"{prefix}prefixlen_s": sel.src.prefixlen,
        f"{prefix}proto": sel.proto,
    }


def selector_of(m: dict[str, Any], prefix: str = "sel_", default_family: int = 0) -> TrafficSelector | None:
    family = m.get(f"{prefix}family") or default_family
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    src = unpack_addr(m[f"{prefix}saddr"], family)
    dst = unpack_addr(m[f"{prefix}daddr"], family)
    return TrafficSelector(
        ipaddress.ip_network(f"{src}/{m[f'{prefix}prefixlen_s']}", strict=False),
        ipaddress.ip_network(f"{dst}/{m[f'{prefix}prefixlen_d']}", strict=False),
        m[f"{prefix}proto"],
        m[f"{prefix}sport"] if m[f"{prefix}sport_mask"] else 0,
        m[f"{prefix}dport"] if m[f"{prefix}dport_mask"] else 0,
    )


def _lft(prefix: str, lifetime: Lifetime | None) -> dict[str, Any]:
    lt = lifetime or Lifetime()

    def inf(v: int | None) -> int:
        return XFRM_INF if v is None else v

    return {
        f"{prefix}soft_byte_limit": inf(lt.soft_bytes), f"{prefix}hard_byte_limit": inf(lt.hard_bytes),
        f"{prefix}soft_packet_limit": inf(lt.soft_packets), f"{prefix}hard_packet_limit": inf(lt.hard_packets),
        f"{prefix}soft_add_expires_seconds": lt.soft_seconds or 0,
        f"{prefix}hard_add_expires_seconds": lt.hard_seconds or 0,
    }


def _lifetime_of(m: dict[str, Any], prefix: str = "lft_") -> Lifetime:
    def val(name: str) -> int | None:
        v = int(m[f"{prefix}{name}"])
        return None if v >= XFRM_INF else v

    def secs(name: str) -> int | None:
        v = int(m[f"{prefix}{name}"])
        return v or None

    soft_b, hard_b, soft_p, hard_p = (val("soft_byte_limit"), val("hard_byte_limit"),
                                      val("soft_packet_limit"), val("hard_packet_limit"))
    soft_s, hard_s = secs("soft_add_expires_seconds"), secs("hard_add_expires_seconds")
    # the kernel does not check soft <= hard: report what it holds without Lifetime's check
    return _unchecked_lifetime(soft_b, hard_b, soft_p, hard_p, soft_s, hard_s)


def _unchecked_lifetime(*values: int | None) -> Lifetime:
    lt = object.__new__(Lifetime)
    for name, v in zip(("soft_bytes", "hard_bytes", "soft_packets", "hard_packets", "soft_seconds",
                        "hard_seconds"), values, strict=True):
        object.__setattr__(lt, name, v)
    object.__setattr__(lt, "source", "")
    return lt


# --- message builders (pure: tests compare their bytes with what `ip xfrm` sends) ---------------


def _mark_attr(ownership: Ownership) -> list[Any]:
    return ["XFRMA_MARK", {"v": 0, "m": ownership.mark_mask}]


def build_sa_message(spec: SaSpec, enc_key: bytes, integ_key: bytes | None, ownership: Ownership,
                     msg_class: type[nlmsg] = xm.usersa_info_msg) -> nlmsg:
    """NEWSA/UPDSA body for `spec` with the released key bytes."""
    family = family_of(spec.version)
    m = msg_class()
    if spec.selector is not None:
        m.update(selector_fields(spec.selector))
    m.update({
        "id_daddr": pack_addr(spec.dst), "id_spi": spec.spi, "id_proto": IPPROTO_ESP,
        "saddr": pack_addr(spec.src), "reqid": spec.reqid, "family": family, "mode": int(spec.mode),
    })
    m.update(_lft("lft_", spec.lifetime))
    use_esn_attr = spec.esn or spec.replay_window > 32
    m["replay_window"] = 0 if use_esn_attr else spec.replay_window
    m["flags"] = xm.XFRM_STATE_ESN if spec.esn else 0
    cipher = kernel_cipher(spec.encryption)
    attrs: list[Any] = []
    if cipher.aead:
        attrs.append(["XFRMA_ALG_AEAD", {"alg_name": cipher.name.encode(), "alg_key_len": 8 * len(enc_key),
                                         "alg_icv_len": cipher.icv_bits, "alg_key": enc_key}])
    else:
        if integ_key is not None:
            iname, trunc = kernel_integrity(spec.integrity)
            attrs.append(["XFRMA_ALG_AUTH_TRUNC", {"alg_name": iname.encode(), "alg_key_len": 8 * len(integ_key),
                                                   "alg_trunc_len": trunc, "alg_key": integ_key}])
        attrs.append(["XFRMA_ALG_CRYPT", {"alg_name": cipher.name.encode(), "alg_key_len": 8 * len(enc_key),
                                          "alg_key": enc_key}])
    if spec.encap is not None:
        attrs.append(["XFRMA_ENCAP", {"encap_type": xm.UDP_ENCAP_ESPINUDP, "encap_sport": spec.encap.src_port,
                                      "encap_dport": spec.encap.dst_port,
                                      "encap_oa": pack_addr(spec.encap.original_address)}])
    if use_esn_attr:
        window = max(spec.replay_window, 32)
        attrs.append(["XFRMA_REPLAY_ESN_VAL", {"bmp_len": (window + 31) // 32, "replay_window": window}])
    attrs.append(_mark_attr(ownership))
    m["attrs"] = attrs
    return m


def _template_fields(t: Template, family: int) -> dict[str, Any]:
    return {"id_daddr": pack_addr(t.dst), "id_proto": t.proto, "family": family, "saddr": pack_addr(t.src),
            "reqid": t.reqid, "mode": int(t.mode), "aalgos": 0xFFFF_FFFF, "ealgos": 0xFFFF_FFFF,
            "calgos": 0xFFFF_FFFF}


def build_policy_message(spec: PolicySpec, ownership: Ownership) -> nlmsg:
    """NEWPOLICY/UPDPOLICY body (struct xfrm_userpolicy_info + XFRMA_TMPL + XFRMA_MARK)."""
    m = xm.userpolicy_info_msg()
    m.update(selector_fields(spec.selector))
    m.update(_lft("lft_", None))
    m["priority"] = spec.priority if spec.priority is not None else default_priority(
        spec.selector, _ACTION_RANK[spec.action])
    m["dir"] = int(spec.direction)
    m["action"] = xm.XFRM_POLICY_BLOCK if spec.action in (PolicyAction.DROP, PolicyAction.HOLD) \
        else xm.XFRM_POLICY_ALLOW
    attrs: list[Any] = []
    if spec.template is not None:
        t = spec.template
        family = family_of(t.src.version if t.src is not None else spec.selector.version)
        attrs.append(["XFRMA_TMPL", {"templates": [_template_fields(t, family)]}])
    attrs.append(_mark_attr(ownership))
    m["attrs"] = attrs
    return m


def build_policy_id_message(selector: TrafficSelector, direction: Direction, ownership: Ownership,
                            index: int = 0) -> nlmsg:
    m = xm.userpolicy_id_msg()
    m.update(selector_fields(selector))
    m["index"] = index
    m["dir"] = int(direction)
    m["attrs"] = [_mark_attr(ownership)]
    return m


def build_sa_id_message(dst: IPAddress, spi: int, proto: int, ownership: Ownership | None) -> nlmsg:
    m = xm.usersa_id_msg()
    m.update({"daddr": pack_addr(dst), "spi": spi, "family": family_of(dst.version), "proto": proto})
    m["attrs"] = [_mark_attr(ownership)] if ownership is not None else []
    return m


# --- decoders ------------------------------------------------------------------------------------


def _mark_of(a: dict[str, Any]) -> tuple[int, int]:
    mark = a.get("XFRMA_MARK")
    return (int(mark["v"]), int(mark["m"])) if mark is not None else (0, 0)


def _digest(alg: dict[str, Any]) -> KeyDigest:
    return KeyDigest(int(alg["key_octets"]), alg.get("key_fingerprint"), bool(alg.get("key_blanked")))


def sa_state_of(m: nlmsg) -> SaState:
    a = xm.attrs(m)
    family = m["family"]
    algs: list[AlgorithmState] = []
    revealed: list[tuple[str, str]] = []
    for attr, kind, bits_field in (("XFRMA_ALG_AEAD", "aead", "alg_icv_len"),
                                   ("XFRMA_ALG_CRYPT", "enc", ""),
                                   ("XFRMA_ALG_AUTH_TRUNC", "auth-trunc", "alg_trunc_len"),
                                   ("XFRMA_ALG_AUTH", "auth", "")):
        alg = a.get(attr)
        if alg is None:
            continue
        algs.append(AlgorithmState(kind, alg["alg_name"], _digest(alg), int(alg.get(bits_field, 0) or 0)))
        if "key_hex" in alg:
            revealed.append((alg["alg_name"], alg["key_hex"]))
    encap = None
    if (e := a.get("XFRMA_ENCAP")) is not None:
        oa = e["encap_oa"]
        encap = UdpEncap(e["encap_sport"], e["encap_dport"],
                         unpack_addr(oa, family) if any(oa) else None)
    window = m["replay_window"]
    if (esn := a.get("XFRMA_REPLAY_ESN_VAL")) is not None:
        window = esn["replay_window"]
    return SaState(
        src=unpack_addr(m["saddr"], family), dst=unpack_addr(m["id_daddr"], family),
        spi=m["id_spi"], proto=m["id_proto"], reqid=m["reqid"], mode=Mode(m["mode"]) if m["mode"] < 2 else
        Mode.TUNNEL, selector=selector_of(m, "sel_", family), algorithms=tuple(algs), replay_window=window,
        esn=bool(m["flags"] & xm.XFRM_STATE_ESN), encap=encap, lifetime=_lifetime_of(m),
        bytes=m["cur_bytes"], packets=m["cur_packets"], add_time=m["cur_add_time"], mark=_mark_of(a),
        larval=not algs, revealed=tuple(revealed))


def _templates_of(a: dict[str, Any]) -> tuple[Template, ...]:
    out = []
    for t in (a.get("XFRMA_TMPL") or {}).get("templates", []):
        fam = t["family"]
        src = unpack_addr(t["saddr"], fam) if any(t["saddr"]) else None
        dst = unpack_addr(t["id_daddr"], fam) if any(t["id_daddr"]) else None
        out.append(Template(src, dst, t["reqid"], Mode(t["mode"]) if t["mode"] < 2 else Mode.TUNNEL,
                            t["id_proto"]))
    return tuple(out)


def policy_state_of(m: dict[str, Any], a: dict[str, Any], prefix: str = "") -> PolicyState:
    templates = _templates_of(a)
    block = m[f"{prefix}action"] == xm.XFRM_POLICY_BLOCK
    action = PolicyAction.DROP if block else (PolicyAction.IPSEC if templates else PolicyAction.PASS)
    sel = selector_of(m, f"{prefix}sel_")
    if sel is None:  # family 0 (any): show it as IPv4 any
        sel = TrafficSelector.parse("0.0.0.0/0", "0.0.0.0/0")
    return PolicyState(sel, Direction(m[f"{prefix}dir"] & 3), action, m[f"{prefix}priority"],
                       m[f"{prefix}index"], templates, _mark_of(a))


class XfrmKernel:
    """The Kernel interface over NETLINK_XFRM, optionally inside a named network namespace.

    Blocking calls: from asyncio, run them in a worker thread (asyncio.to_thread);
    watch `fileno()` with loop.add_reader for events.
    """

    def __init__(self, router: KeyRouter | None = None, ownership: Ownership | None = None,
                 netns: str | None = None, events: bool = True, timeout: float = 5.0) -> None:
        self.router = router
        self.ownership = ownership or Ownership()
        self.netns = netns
        self._sock = XfrmSocket(netns, timeout=timeout)
        self._events: XfrmSocket | None = None
        if events:
            self._events = XfrmSocket(netns, groups=(xm.XFRMNLGRP_ACQUIRE, xm.XFRMNLGRP_EXPIRE,
                                                     xm.XFRMNLGRP_POLICY), timeout=timeout)
        self._larval: set[tuple[IPAddress, int]] = set()

    def close(self) -> None:
        self._sock.close()
        if self._events is not None:
            self._events.close()

    def __enter__(self) -> XfrmKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_reqid(self, reqid: int, what: str) -> None:
        if not self.ownership.owns_reqid(reqid):
            raise KernelError(what, "EPERM", f"reqid {reqid:#x} outside fipsike's range "
                                             f"{self.ownership.reqid_min:#x}-{self.ownership.reqid_max:#x}")

    # --- SAD ---------------------------------------------------------------------------------------

    def alloc_spi(self, src: IPAddress, dst: IPAddress, reqid: int, mode: Mode = Mode.TUNNEL,
                  spi_min: int = 0x100, spi_max: int = 0xFFFF_FFFF) -> int:
        self._check_reqid(reqid, "ALLOCSPI")
        m = xm.userspi_info_msg()
        m.update({"id_daddr": pack_addr(dst), "id_proto": IPPROTO_ESP, "saddr": pack_addr(src),
                  "family": family_of(dst.version), "reqid": reqid, "mode": int(mode),
                  "min": spi_min, "max": spi_max})
        m.update(_lft("lft_", None))
        m["attrs"] = [_mark_attr(self.ownership)]
        replies = self._sock.request("ALLOCSPI", m, xm.XFRM_MSG_ALLOCSPI, NLM_F_REQUEST,
                                     lambda t, r: int(r["id_spi"]) if t == xm.XFRM_MSG_NEWSA else None)
        if not replies:
            raise KernelError("ALLOCSPI", "EPROTO", "no SA in the kernel's answer")
        spi = replies[0]
        self._larval.add((dst, spi))
        log.debug("allocated SPI %#x for %s", spi, dst)
        return spi

    def install_sa(self, spec: SaSpec) -> None:
        self._check_reqid(spec.reqid, "install SA")
        update = (spec.dst, spec.spi) in self._larval
        try:
            self._send_sa(spec, xm.XFRM_MSG_UPDSA if update else xm.XFRM_MSG_NEWSA)
        except KernelError as exc:
            if not (update and exc.errno_name == "ENOENT"):
                raise
            self._send_sa(spec, xm.XFRM_MSG_NEWSA)  # the larval SA expired (acq_expires): add afresh
        self._larval.discard((spec.dst, spec.spi))
        log.info("installed SA spi %#x %s -> %s reqid %#x %s", spec.spi, spec.src, spec.dst, spec.reqid,
                 spec.encryption.name)

    def _send_sa(self, spec: SaSpec, msg_type: int) -> None:
        if self.router is None:
            raise KernelError("install SA", "EINVAL", "no router to release the ESP keys")
        op = "UPDSA" if msg_type == xm.XFRM_MSG_UPDSA else "NEWSA"
        detail = f"spi {spec.spi:#x} {spec.src} -> {spec.dst}"
        enc_key: bytes | None = self.router.release_esp_key(spec.encryption_key, f"xfrm {op} {detail} enc")
        integ_key: bytes | None = None
        if spec.integrity_key is not None and not spec.encryption.is_aead:
            integ_key = self.router.release_esp_key(spec.integrity_key, f"xfrm {op} {detail} integ")
        try:
            assert enc_key is not None
            m = build_sa_message(spec, enc_key, integ_key, self.ownership)
        finally:
            enc_key = integ_key = None  # drop our references before the request can fail
        try:
            self._sock.request(op, m, msg_type, NLM_F_REQUEST | NLM_F_ACK, lambda t, r: None)
        except KernelError as exc:
            raise KernelError(exc.operation, exc.errno_name, f"{detail}: {exc.detail}" if exc.detail
                              else detail) from None

    def delete_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> None:
        m = build_sa_id_message(dst, spi, proto, self.ownership)
        self._sock.request("DELSA", m, xm.XFRM_MSG_DELSA, NLM_F_REQUEST | NLM_F_ACK, lambda t, r: None)
        self._larval.discard((dst, spi))

    def _fingerprints(self) -> AbstractContextManager[None]:
        """Keys in the messages decoded now are fingerprinted with this kernel's router (or not at all)."""
        return xm.key_fingerprints(self.router.keyed_fingerprint if self.router is not None else None)

    def get_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> SaState:
        m = build_sa_id_message(dst, spi, proto, self.ownership)
        with self._fingerprints():
            found = self._sock.request("GETSA", m, xm.XFRM_MSG_GETSA, NLM_F_REQUEST,
                                       lambda t, r: sa_state_of(r) if t == xm.XFRM_MSG_NEWSA else None)
        if not found:
            raise KernelError("GETSA", "ENOENT", f"spi {spi:#x} dst {dst}")
        return found[0]

    def list_sas(self, owned_only: bool = True) -> list[SaState]:
        m = xm.empty_msg()
        with self._fingerprints():
            states = self._sock.request("dump SAs", m, xm.XFRM_MSG_GETSA, NLM_F_REQUEST | NLM_F_DUMP,
                                        lambda t, r: sa_state_of(r) if t == xm.XFRM_MSG_NEWSA else None)
        return [s for s in states if not owned_only or self._owns_sa(s)]

    def _owns_sa(self, s: SaState) -> bool:
        return self.ownership.owns_reqid(s.reqid) and self.ownership.owns_mark(*s.mark)

    # --- SPD ---------------------------------------------------------------------------------------

    def install_policy(self, spec: PolicySpec, replace: bool = True) -> None:
        if spec.template is not None:
            self._check_reqid(spec.template.reqid, "install policy")
        m = build_policy_message(spec, self.ownership)
        op, mtype = ("UPDPOLICY", xm.XFRM_MSG_UPDPOLICY) if replace else ("NEWPOLICY", xm.XFRM_MSG_NEWPOLICY)
        try:
            self._sock.request(op, m, mtype, NLM_F_REQUEST | NLM_F_ACK, lambda t, r: None)
        except KernelError as exc:
            raise KernelError(exc.operation, exc.errno_name, f"{spec.selector} dir {spec.direction.name.lower()}"
                              + (f": {exc.detail}" if exc.detail else "")) from None

    def get_policy(self, selector: TrafficSelector, direction: Direction) -> PolicyState:
        m = build_policy_id_message(selector, direction, self.ownership)

        def parse(t: int, r: nlmsg) -> PolicyState | None:
            # dir >= XFRM_POLICY_MAX (3): a per-socket policy (the IKE sockets' bypass), not the SPD's
            if t != xm.XFRM_MSG_NEWPOLICY or r["dir"] >= 3:
                return None
            return policy_state_of(r, xm.attrs(r))

        found = self._sock.request("GETPOLICY", m, xm.XFRM_MSG_GETPOLICY, NLM_F_REQUEST, parse)
        if not found:
            raise KernelError("GETPOLICY", "ENOENT", f"{selector} dir {direction.name.lower()}")
        return found[0]

    def remove_policy(self, selector: TrafficSelector, direction: Direction) -> None:
        m = build_policy_id_message(selector, direction, self.ownership)
        self._sock.request("DELPOLICY", m, xm.XFRM_MSG_DELPOLICY, NLM_F_REQUEST | NLM_F_ACK, lambda t, r: None)

    def list_policies(self, owned_only: bool = True) -> list[PolicyState]:
        m = xm.empty_msg()

        def parse(t: int, r: nlmsg) -> PolicyState | None:
            # dir >= XFRM_POLICY_MAX (3): a per-socket policy (the IKE sockets' bypass), not the SPD's
            if t != xm.XFRM_MSG_NEWPOLICY or r["dir"] >= 3:
                return None
            return policy_state_of(r, xm.attrs(r))

        pols = self._sock.request("dump policies", m, xm.XFRM_MSG_GETPOLICY, NLM_F_REQUEST | NLM_F_DUMP, parse)
        return [p for p in pols if not owned_only or self.ownership.owns_mark(*p.mark)]

    def install_shunt(self, selector: TrafficSelector, shunt: Shunt, template: Template | None = None,
                      directions: Sequence[Direction] = (Direction.OUT,), priority: int | None = None) -> None:
        action = PolicyAction.of_shunt(shunt)
        for direction in directions:
            self.install_policy(PolicySpec(selector if direction == Direction.OUT else selector.reversed(),
                                           direction, action, template if action is PolicyAction.TRAP else None,
                                           priority))

    # --- events ------------------------------------------------------------------------------------

    def fileno(self) -> int:
        if self._events is None:
            raise KernelError("events", "EBADF", "kernel opened without an event socket")
        return self._events.fileno()

    def read_events(self, timeout: float | None = 0.0) -> list[KernelEvent]:
        if self._events is None:
            return []
        with self._fingerprints():
            return self._events.read_events(self._event_of, timeout, on_overflow=EventsLost)

    def _event_of(self, mtype: int, m: nlmsg) -> KernelEvent | None:
        own = self.ownership
        if mtype == xm.XFRM_MSG_ACQUIRE:
            a = xm.attrs(m)
            templates = _templates_of(a)
            reqid = templates[0].reqid if templates else 0
            if not own.owns_reqid(reqid):
                return None
            sel = selector_of(m, "sel_")
            if sel is None:
                return None
            fam = m["sel_family"]
            return Acquire(sel, unpack_addr(m["saddr"], fam) if any(m["saddr"]) else None,
                           unpack_addr(m["id_daddr"], fam) if any(m["id_daddr"]) else None,
                           reqid, Direction(m["pol_dir"] & 3), m["pol_index"], m["seq"])
        if mtype == xm.XFRM_MSG_EXPIRE:
            if not own.owns_reqid(m["reqid"]):
                return None
            fam = m["family"]
            return Expire(unpack_addr(m["saddr"], fam), unpack_addr(m["id_daddr"], fam), m["id_spi"],
                          m["id_proto"], m["reqid"], bool(m["hard"]), m["cur_bytes"], m["cur_packets"])
        kinds = {xm.XFRM_MSG_NEWPOLICY: "new", xm.XFRM_MSG_UPDPOLICY: "update", xm.XFRM_MSG_DELPOLICY: "delete",
                 xm.XFRM_MSG_POLEXPIRE: "expire"}
        if mtype in kinds:
            a = xm.attrs(m)
            if mtype == xm.XFRM_MSG_DELPOLICY:
                inner = a.get("XFRMA_POLICY")
                if inner is None:
                    return PolicyChanged("delete", selector_of(m), Direction(m["dir"] & 3), m["index"], False)
                p = policy_state_of(inner, a)
            else:
                p = policy_state_of(m, a)
            return PolicyChanged(kinds[mtype], p.selector, p.direction, p.index, own.owns_mark(*p.mark))
        if mtype == xm.XFRM_MSG_FLUSHPOLICY:
            return PolicyChanged("flush", None, None, 0, False)
        return None

    # --- clean-up ----------------------------------------------------------------------------------

    def flush_owned(self) -> CleanupReport:
        """Delete every SA and policy carrying fipsike's ownership tags; nothing else is touched."""
        errors: list[str] = []
        sas = pols = 0
        for s in self.list_sas(owned_only=True):
            try:
                spi = s.spi
                if spi == 0:
                    # A kernel ACQUIRE state (a trap or a lost SA was hit): it has no SPI, so DELSA cannot
                    # name it. ALLOCSPI on the same (src, dst, reqid, mode, mark) gives that very state
                    # an SPI (xfrm_find_acq), which DELSA can then remove.
                    spi = self.alloc_spi(s.src, s.dst, s.reqid, s.mode)
                self.delete_sa(s.dst, spi, s.proto)
                sas += 1
            except KernelError as exc:
                if exc.errno_name != "ESRCH" and exc.errno_name != "ENOENT":
                    errors.append(str(exc))
        for p in self.list_policies(owned_only=True):
            try:
                m = build_policy_id_message(p.selector, p.direction, self.ownership, index=p.index)
                self._sock.request("DELPOLICY", m, xm.XFRM_MSG_DELPOLICY, NLM_F_REQUEST | NLM_F_ACK,
                                   lambda t, r: None)
                pols += 1
            except KernelError as exc:
                if exc.errno_name != "ENOENT":
                    errors.append(str(exc))
        self._larval.clear()
        if sas or pols:
            log.info("removed %d fipsike SAs and %d policies", sas, pols)
        return CleanupReport(sas, pols, tuple(errors))
