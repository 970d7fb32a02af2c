"""Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA: ESP proposals under
the policy, traffic selectors with narrowing (RFC 7296 2.9), the mode
(USE_TRANSPORT_MODE, 1.3.1) and KEYMAT (2.17)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fipsike.ike import ts as tsmod
from fipsike.ike import wire
from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.config import ChildConfig
from fipsike.ike.context import IkeContext
from fipsike.ike.keymat import derive_followup_child_keys
from fipsike.ike.message import Message
from fipsike.ike.payloads import (
    Notify,
    Payload,
    SecurityAssociation,
    TrafficSelectorInitiator,
    TrafficSelectorResponder,
)
from fipsike.ike.proposals import (
    ADDKE_TYPES,
    EspSuite,
    NoProposalChosen,
    Proposal,
    ProposalSpec,
    Protocol,
    TransformType,
    esp_suite,
    verify_choice,
)
from fipsike.ike.registry import NotifyType
from fipsike.ike.sa import ChildSa, Exchange, IkeSa
from fipsike.ike.spis import SpiUnavailable
from providers.handles import SecretKey


class ChildError(Exception):
    """The Child SA cannot be made; `notify` is what RFC 7296 says to answer."""

    def __init__(self, notify: NotifyType, detail: str, data: bytes = b"") -> None:
        super().__init__(detail)
        self.notify = notify
        self.data = data


def _strip_ke(spec: ProposalSpec) -> ProposalSpec:
    # no KE, so no additional key exchange either (RFC 9370 2.2.3: none for IKE_AUTH's Child SA)
    return ProposalSpec(spec.protocol, tuple(t for t in spec.transforms
                                             if t.type != TransformType.KE and t.type not in ADDKE_TYPES))


def _specs(cfg: ChildConfig, in_ike_auth: bool, pfs: bool = True) -> list[ProposalSpec]:
    # the Child SA of IKE_AUTH takes its keys from the IKE SA's exchange: no KE of its own (RFC 7296 1.2)
    if in_ike_auth or not pfs:
        return [_strip_ke(s) for s in cfg.esp_proposals]
    return list(cfg.esp_proposals)


def default_ts(sa: IkeSa, cfg: ChildConfig) -> tuple[tuple[TrafficSelectorSpec, ...], tuple[TrafficSelectorSpec, ...]]:
    local = cfg.local_ts or (tsmod.for_address(sa.local[0]),)
    remote = cfg.remote_ts or (tsmod.for_address(sa.remote[0]),)
    return local, remote


def pfs_group(cfg: ChildConfig) -> int | None:
    for spec in cfg.esp_proposals:
        groups = [g for g in spec.ke_groups() if g]
        if groups:
            return groups[0]
    return None


def request_payloads(ctx: IkeContext, sa: IkeSa, ex: Exchange, cfg: ChildConfig, in_ike_auth: bool,
                     local_ts: tuple[TrafficSelectorSpec, ...] | None = None,
                     remote_ts: tuple[TrafficSelectorSpec, ...] | None = None) -> tuple[list[Payload], list[Payload]]:
    """(notifies and SA, TSi/TSr): the caller puts Nonce/KE between them as RFC 7296 orders them."""
    ex.child_cfg = cfg
    ex.spi_in = ctx.new_child_spi(sa, cfg)  # SpiUnavailable: the caller gives up this Child SA
    spi = ex.spi_in.to_bytes(4, "big")
    ex.esp_proposals = tuple(s.to_proposal(i + 1, spi) for i, s in enumerate(_specs(cfg, in_ike_auth)))
    dl, dr = default_ts(sa, cfg)
    ex.local_ts = local_ts or dl
    ex.remote_ts = remote_ts or dr
    ex.transport = cfg.mode == "transport"
    head: list[Payload] = []
    if ex.transport:
        head.append(Notify.use_transport_mode())
    head.append(wire.to_wire_sa(ex.esp_proposals))
    tail: list[Payload] = [TrafficSelectorInitiator(wire.to_wire_ts(ex.local_ts)),
                           TrafficSelectorResponder(wire.to_wire_ts(ex.remote_ts))]
    return head, tail


@dataclass
class Negotiated:
    cfg: ChildConfig
    proposal: Proposal
    local_ts: tuple[TrafficSelectorSpec, ...]
    remote_ts: tuple[TrafficSelectorSpec, ...]
    transport: bool


def negotiate(ctx: IkeContext, sa: IkeSa, msg: Message, in_ike_auth: bool,
              only: ChildConfig | None = None) -> Negotiated:
    """Responder: pick the child config, narrow the selectors, choose a proposal. Raises ChildError."""
    sa_p = msg.get(SecurityAssociation)
    tsi_p = msg.get(TrafficSelectorInitiator)
    tsr_p = msg.get(TrafficSelectorResponder)
    if sa_p is None or tsi_p is None or tsr_p is None:
        raise ChildError(NotifyType.INVALID_SYNTAX, "Child SA request without SA, TSi or TSr")
    transport = msg.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    # The outcome depends on the offer without its SPIs, the selectors, the mode, the configuration
    # and our addresses (default selectors): a peer repeats all of them, so it is remembered; only
    # the chosen proposal's SPI is filled in per request.
    key = ("child-choice", tuple((p.number, p.protocol, len(p.spi), p.transforms) for p in sa_p.proposals),
           tsi_p.selectors, tsr_p.selectors, transport, in_ike_auth, sa.local[0], sa.remote[0],
           tuple(_config_key(ctx, c) for c in ([only] if only is not None else sa.conn.children)))
    got = ctx.memo(key, lambda: _negotiate(ctx, sa, sa_p, tsi_p.selectors, tsr_p.selectors, transport,
                                           in_ike_auth, only))
    if isinstance(got, ChildError):
        raise ChildError(got.notify, str(got), got.data)
    c = got.proposal
    spi = next(p.spi for p in sa_p.proposals if p.number == c.number and p.protocol == c.protocol)
    return Negotiated(got.cfg, Proposal(c.number, c.protocol, spi, c.transforms), got.local_ts, got.remote_ts,
                      got.transport)


def _config_key(ctx: IkeContext, cfg: ChildConfig) -> tuple[Any, ...]:
    """What of a child config the negotiation reads, by object identity (so a config edited in
    place, by assigning new tuples, is not matched with an old outcome)."""
    return (ctx.ident(cfg), ctx.ident(cfg.esp_proposals), ctx.ident(cfg.local_ts), ctx.ident(cfg.remote_ts),
            cfg.mode)


def _negotiate(ctx: IkeContext, sa: IkeSa, sa_p: SecurityAssociation, tsi_sel: tuple[Any, ...],
               tsr_sel: tuple[Any, ...], transport: bool, in_ike_auth: bool,
               only: ChildConfig | None) -> Negotiated | ChildError:
    try:
        return _negotiate_raising(ctx, sa, sa_p, tsi_sel, tsr_sel, transport, in_ike_auth, only)
    except ChildError as e:
        return e


def _negotiate_raising(ctx: IkeContext, sa: IkeSa, sa_p: SecurityAssociation, tsi_sel: tuple[Any, ...],
                       tsr_sel: tuple[Any, ...], transport: bool, in_ike_auth: bool,
                       only: ChildConfig | None) -> Negotiated:
    tsi = wire.from_wire_ts(tsi_sel)
    tsr = wire.from_wire_ts(tsr_sel)
    offered = wire.from_wire_sa(sa_p)
    if in_ike_auth:
        offered = [Proposal(p.number, p.protocol, p.spi,
                            tuple(t for t in p.transforms if t.type != TransformType.KE
                                  and t.type not in ADDKE_TYPES)) for p in offered]
    cfgs = [only] if only is not None else list(sa.conn.children)
    ts_found = False
    for cfg in cfgs:
        local, remote = default_ts(sa, cfg)
        # the peer's TSi is its side: our remote selectors; its TSr our local ones
        n_remote = tsmod.narrow(tsi, remote)
        n_local = tsmod.narrow(tsr, local)
        if not n_remote or not n_local:
            continue
        ts_found = True
        try:
            # a CREATE_CHILD_SA can run IKE_FOLLOWUP_KE exchanges (RFC 9370 2.2.4)
            chosen = ctx.select(offered, _specs(cfg, in_ike_auth), Protocol.ESP, additional=not in_ike_auth)
        except NoProposalChosen:
            continue
        if len(chosen.spi) != 4:
            raise ChildError(NotifyType.INVALID_SYNTAX, "ESP proposal without a 4-octet SPI")
        return Negotiated(cfg, chosen, tuple(n_local), tuple(n_remote), transport and cfg.mode == "transport")
    if not ts_found:
        raise ChildError(NotifyType.TS_UNACCEPTABLE, "no configured Child SA fits the traffic selectors")
    raise ChildError(NotifyType.NO_PROPOSAL_CHOSEN, "no acceptable ESP proposal")


def responder_spi(ctx: IkeContext, sa: IkeSa, cfg: ChildConfig, notify: NotifyType) -> int:
    """Responder: our inbound SPI, or ChildError(notify) when none can be had."""
    try:
        return ctx.new_child_spi(sa, cfg)
    except SpiUnavailable as e:
        raise ChildError(notify, f"no inbound SPI: {e}") from None


def response_payloads(n: Negotiated, spi_in: int) -> tuple[list[Payload], list[Payload]]:
    head: list[Payload] = []
    if n.transport:
        head.append(Notify.use_transport_mode())
    p = n.proposal
    head.append(wire.to_wire_sa([Proposal(p.number, p.protocol, spi_in.to_bytes(4, "big"), p.transforms)]))
    # TSi is the initiator's side (our remote), TSr ours
    tail: list[Payload] = wire.ts_payloads(n.remote_ts, n.local_ts)
    return head, tail


def make_child(ctx: IkeContext, sa: IkeSa, cfg: ChildConfig, proposal: Proposal, spi_in: int, spi_out: int,
               local_ts: tuple[TrafficSelectorSpec, ...], remote_ts: tuple[TrafficSelectorSpec, ...],
               transport: bool, ni: bytes, nr: bytes, shared: SecretKey | None, initiator: bool, now: float,
               reqid: int = 0, additional: Sequence[SecretKey] = ()) -> ChildSa:
    assert sa.keys is not None and sa.suite is not None
    suite: EspSuite = ctx.memo(("esp-suite", proposal.transforms), lambda: esp_suite(proposal))
    # with IKE_FOLLOWUP_KE: prf+(SK_d, SK(0) | Ni | Nr | SK(1..n)) (RFC 9370 2.2.4), else RFC 7296 2.17
    keys = derive_followup_child_keys(ctx.router, sa.suite.prf, sa.keys.sk_d, suite.encr, suite.encr_key_bits,
                                      suite.integ, ni, nr, shared, additional)
    return ChildSa(config=cfg, reqid=reqid or ctx.reqid(sa.conn.name, cfg.name, cfg.reqid), suite=suite,
                   spi_in=spi_in, spi_out=spi_out, mode="transport" if transport else "tunnel",
                   local_ts=local_ts, remote_ts=remote_ts, keys=keys, installed_at=now,
                   rekey_at=now + cfg.rekey_time, expire_at=now + cfg.life_time, initiator=initiator,
                   nonces=(ni, nr))


def complete(ctx: IkeContext, sa: IkeSa, ex: Exchange, msg: Message, ni: bytes, nr: bytes, shared: SecretKey | None,
             now: float, reqid: int = 0, additional: Sequence[SecretKey] = ()) -> ChildSa:
    """Initiator: check the responder's choice and selectors, derive the keys. Raises ChildError."""
    sa_p = msg.get(SecurityAssociation)
    tsi_p = msg.get(TrafficSelectorInitiator)
    tsr_p = msg.get(TrafficSelectorResponder)
    if sa_p is None or tsi_p is None or tsr_p is None:
        raise ChildError(NotifyType.INVALID_SYNTAX, "Child SA response without SA, TSi or TSr")
    try:
        chosen = verify_choice(wire.from_wire_sa(sa_p), ex.esp_proposals, ctx.allowed)
        suite = esp_suite(chosen)
    except (NoProposalChosen, ValueError) as e:
        raise ChildError(NotifyType.NO_PROPOSAL_CHOSEN, str(e)) from None
    if len(chosen.spi) != 4:
        raise ChildError(NotifyType.INVALID_SYNTAX, "responder's ESP SPI is not 4 octets")
    tsi = tuple(wire.from_wire_ts(tsi_p.selectors))
    tsr = tuple(wire.from_wire_ts(tsr_p.selectors))
    if not tsmod.all_within(tsi, ex.local_ts) or not tsmod.all_within(tsr, ex.remote_ts):
        raise ChildError(NotifyType.TS_UNACCEPTABLE, "responder's selectors are not within ours")
    transport = msg.notify(NotifyType.USE_TRANSPORT_MODE) is not None
    if ex.transport and not transport:
        raise ChildError(NotifyType.NO_PROPOSAL_CHOSEN, "we need transport mode; the responder chose tunnel")
    del suite
    assert ex.child_cfg is not None
    return make_child(ctx, sa, ex.child_cfg, chosen, ex.spi_in, int.from_bytes(chosen.spi, "big"), tsi, tsr,
                      transport, ni, nr, shared, True, now, reqid, additional)
