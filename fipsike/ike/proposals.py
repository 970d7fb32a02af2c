"""SA proposals and their negotiation under the policy (RFC 7296 2.7, 3.3).

The engine's own model of a proposal (a protocol, an SPI and transforms), apart
from the wire codec. The responder walks the initiator's proposals in the
initiator's order and, within each, the transforms in the initiator's order,
taking the first one that the local configuration lists AND the provider policy
approves. A transform the policy refuses is never selected, whoever offered it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from compliance import proposals as libreswan
from fipsike.ike.registry import ProtocolId as Protocol
from fipsike.ike.registry import TransformType
from providers.algorithms import Encryption, Integrity, KeyExchange, Prf
from providers.errors import PolicyViolation
from providers.policy import Policy

__all__ = ["Protocol", "TransformType", "Transform", "Proposal", "ProposalSpec", "select", "verify_choice",
           "from_libreswan", "spec_from_proposal", "ADDKE_TYPES", "additional_key_exchanges", "offer_order"]

NO_ESN = 0
ESN = 1
# Additional Key Exchange 1..7 (RFC 9370 2.2.1): optional in IKE, AH and ESP, performed in this order.
# Their IDs are Transform Type 4's; NONE (0) offered beside a method makes that exchange optional.
ADDKE_TYPES = (TransformType.ADDKE1, TransformType.ADDKE2, TransformType.ADDKE3, TransformType.ADDKE4,
               TransformType.ADDKE5, TransformType.ADDKE6, TransformType.ADDKE7)


@dataclass(frozen=True)
class Transform:
    type: TransformType
    id: int
    key_bits: int | None = None  # the Key Length attribute (RFC 7296 3.3.5), for variable-length ciphers

    def __str__(self) -> str:
        name = _transform_name(self.type, self.id)
        return f"{name}_{self.key_bits}" if self.key_bits else name


@dataclass(frozen=True)
class Proposal:
    number: int
    protocol: Protocol
    spi: bytes
    transforms: tuple[Transform, ...]

    def of_type(self, t: TransformType) -> list[Transform]:
        return [x for x in self.transforms if x.type == t]

    def __str__(self) -> str:
        return "/".join(str(t) for t in self.transforms)


@dataclass(frozen=True)
class ProposalSpec:
    """A locally configured proposal: for each transform type, the acceptable transforms in order."""

    protocol: Protocol
    transforms: tuple[Transform, ...]

    def to_proposal(self, number: int, spi: bytes, ke_first: int | None = None) -> Proposal:
        ts = list(self.transforms)
        if ke_first is not None:
            # RFC 7296 1.2: the group whose KE payload we send should be the first offered one;
            # after INVALID_KE_PAYLOAD it moves to the front.
            kes = [t for t in ts if t.type == TransformType.KE]
            first = [t for t in kes if t.id == ke_first]
            others = [t for t in ts if t.type != TransformType.KE]
            ts = others + first + [t for t in kes if t.id != ke_first]
        return Proposal(number, self.protocol, spi, tuple(ts))

    def ke_groups(self) -> list[int]:
        return [t.id for t in self.transforms if t.type == TransformType.KE]

    def has_additional(self) -> bool:
        """Does this proposal carry ADDKE transforms (RFC 9370 2.2.1)?"""
        return any(t.type in ADDKE_TYPES for t in self.transforms)

    def additional_optional(self) -> bool:
        """Every ADDKE slot offers NONE: a peer may run none of them (RFC 9370 2.2.1)."""
        slots = {t.type for t in self.transforms if t.type in ADDKE_TYPES}
        return all(Transform(ttype, 0) in self.transforms for ttype in slots)

    def without_additional(self) -> ProposalSpec:
        return ProposalSpec(self.protocol, tuple(t for t in self.transforms if t.type not in ADDKE_TYPES))

    def with_additional_key_exchanges(self, slots: Mapping[int, Sequence[KeyExchange]]) -> ProposalSpec:
        """This proposal plus ADDKE<n> transforms, {n: methods in order} (libreswan's `;addke<n>=`);
        KeyExchange.NONE among the methods makes that exchange optional (RFC 9370 2.2.1)."""
        extra: list[Transform] = []
        for n, methods in sorted(slots.items()):
            if not 1 <= n <= len(ADDKE_TYPES):
                raise ValueError(f"ADDKE{n}: RFC 9370 defines ADDKE1 to ADDKE7")
            extra += [Transform(ADDKE_TYPES[n - 1], int(m)) for m in methods]
        replaced = {ADDKE_TYPES[n - 1] for n in slots}
        return ProposalSpec(self.protocol, tuple(t for t in self.transforms if t.type not in replaced) + tuple(extra))


@dataclass(frozen=True)
class IkeSuite:
    """The negotiated IKE SA transforms."""

    encr: Encryption
    encr_key_bits: int
    prf: Prf
    integ: Integrity | None
    ke: KeyExchange
    additional: tuple[KeyExchange, ...] = ()  # ADDKE1.. as negotiated (RFC 9370), NONE left out

    def __str__(self) -> str:
        parts = [f"{self.encr.name}_{self.encr_key_bits}"]
        if self.integ is not None:
            parts.append(self.integ.name)
        parts += [self.prf.name, "+".join(k.name for k in (self.ke, *self.additional))]
        return "/".join(parts)


@dataclass(frozen=True)
class EspSuite:
    encr: Encryption
    encr_key_bits: int
    integ: Integrity | None
    ke: KeyExchange | None  # None: no PFS
    esn: bool
    additional: tuple[KeyExchange, ...] = ()  # in IKE_FOLLOWUP_KE (RFC 9370 2.2.4)

    def __str__(self) -> str:
        parts = [f"{self.encr.name}_{self.encr_key_bits}"]
        if self.integ is not None:
            parts.append(self.integ.name)
        if self.ke is not None:
            parts.append("+".join(k.name for k in (self.ke, *self.additional)))
        parts.append("ESN" if self.esn else "NO_ESN")
        return "/".join(parts)


Allowed = Callable[[Transform], bool]


class NoProposalChosen(Exception):
    """Nothing acceptable in the peer's SA payload (answer NO_PROPOSAL_CHOSEN, RFC 7296 3.10.1)."""


def _default_variants(t: TransformType, p: Proposal) -> list[Transform]:
    got = p.of_type(t)
    if got:
        return got
    # an absent type stands for NONE (KE: no PFS; INTEG under AEAD) or, for ESN, "no ESN"
    if t == TransformType.ESN:
        return [Transform(TransformType.ESN, NO_ESN)]
    return [Transform(t, 0)]


def _required_types(protocol: Protocol) -> tuple[TransformType, ...]:
    if protocol == Protocol.IKE:
        return (TransformType.ENCR, TransformType.PRF, TransformType.INTEG, TransformType.KE)
    return (TransformType.ENCR, TransformType.INTEG, TransformType.KE, TransformType.ESN)


def _is_aead(t: Transform) -> bool:
    try:
        return Encryption(t.id).is_aead
    except ValueError:
        return False


def select(offered: Sequence[Proposal], local: Sequence[ProposalSpec], allowed: Allowed,
           protocol: Protocol, *, additional: bool = False) -> Proposal:
    """Responder: choose one proposal with one transform per type (RFC 7296 2.7).

    Returns the chosen proposal as the reply carries it: the peer's proposal number and SPI, one
    transform per type (NONE-valued types omitted, except an ADDKE type the peer offered, whose NONE
    is returned as RFC 9370 2.2.1 shows). ADDKE slots take NONE only unless `additional=True`: pass it
    where the additional exchanges can run (IKE_SA_INIT with INTERMEDIATE_EXCHANGE_SUPPORTED from both,
    RFC 9370 2.2.1; CREATE_CHILD_SA with IKE_FOLLOWUP_KE), so a caller that cannot run them never
    agrees to them.
    Raises NoProposalChosen.
    """
    required = set(_required_types(protocol))
    for prop in offered:
        if prop.protocol != protocol:
            continue
        if any(t.type not in required and t.type not in ADDKE_TYPES for t in prop.transforms):
            # a transform type we do not implement: the proposal as a whole is not acceptable (RFC 7296 3.3.6)
            continue
        for spec in local:
            if spec.protocol != protocol:
                continue
            spec_p = Proposal(0, protocol, b"", spec.transforms)
            chosen: list[Transform] = []
            ok = True
            for ttype in _required_types(protocol):
                pick: Transform | None = None
                mine = _default_variants(ttype, spec_p)
                theirs = _default_variants(ttype, prop)
                for t in theirs:
                    if ttype == TransformType.INTEG and t.id == 0:
                        aead = bool(chosen) and _is_aead(chosen[0])
                        if not aead:
                            continue
                    if t in mine and (t.id == 0 and ttype in (TransformType.INTEG, TransformType.KE)
                                      or ttype == TransformType.ESN or allowed(t)):
                        pick = t
                        break
                if pick is None:
                    ok = False
                    break
                # combined-mode ciphers take no integrity transform (RFC 5282 8)
                if ttype == TransformType.INTEG and pick.id != 0 and _is_aead(chosen[0]):
                    ok = False
                    break
                chosen.append(pick)
            addke = _select_additional(prop, spec_p, allowed, additional) if ok else None
            if addke is not None:
                kept = tuple(t for t in chosen
                             if not (t.id == 0 and t.type in (TransformType.INTEG, TransformType.KE)))
                return Proposal(prop.number, protocol, prop.spi, kept + addke)
    raise NoProposalChosen("no acceptable proposal")


def admits(local: Sequence[ProposalSpec], chosen: Proposal) -> bool:
    """Does one of these configured proposals hold every transform of the negotiated one? The test
    that a connection's own policy holds for an SA negotiated before the connection was known."""
    return any(spec.protocol == chosen.protocol and all(_holds(spec, t) for t in chosen.transforms)
               for spec in local)


def _holds(spec: ProposalSpec, t: Transform) -> bool:
    # an ADDKE slot answered NONE is no additional exchange: fine for a proposal without that slot
    return t in spec.transforms or (t.type in ADDKE_TYPES and t.id == 0 and
                                    not any(x.type == t.type for x in spec.transforms))


def _permitted(allowed: Allowed, t: Transform) -> bool:
    """The policy's word on a transform; an ADDKE one is judged as the Key Exchange Method it names."""
    if t.type in ADDKE_TYPES:
        return t.id == 0 or allowed(Transform(TransformType.KE, t.id))
    return t.type == TransformType.ESN or allowed(t)


def _select_additional(prop: Proposal, spec: Proposal, allowed: Allowed,
                       additional: bool) -> tuple[Transform, ...] | None:
    """One value per ADDKE slot that is in the offer AND in the local proposal (a slot either leaves out
    counts as NONE only), approved by the policy, with no method chosen twice (RFC 9370 2.2.1: "the
    responder's choice MUST NOT contain duplicated algorithms ... except for the Transform ID of NONE").
    The offer's order decides among the candidates. None when no assignment exists."""
    slots = [t for t in ADDKE_TYPES if prop.of_type(t) or spec.of_type(t)]
    candidates: list[list[Transform]] = []
    for ttype in slots:
        mine = {t.id for t in _default_variants(ttype, spec)}
        theirs = _default_variants(ttype, prop)
        candidates.append([t for t in theirs if t.id in mine and (t.id == 0 or additional) and _permitted(allowed, t)])

    def assign(i: int, used: frozenset[int]) -> list[Transform] | None:
        if i == len(slots):
            return []
        for t in candidates[i]:
            if t.id and t.id in used:
                continue
            rest = assign(i + 1, used | {t.id} if t.id else used)
            if rest is not None:
                return [t, *rest]
        return None

    picks = assign(0, frozenset())
    if picks is None:
        return None
    # a slot the peer did not offer is NONE and goes unsaid; one it offered is answered, NONE included
    return tuple(t for t in picks if prop.of_type(t.type))


def additional_key_exchanges(p: Proposal) -> tuple[KeyExchange, ...]:
    """The negotiated additional key exchanges of a chosen proposal, in the order they run (ADDKE1
    first, RFC 9370 2.2.1), NONE left out. Unknown methods raise NoProposalChosen."""
    out: list[KeyExchange] = []
    for ttype in ADDKE_TYPES:
        for t in p.of_type(ttype)[:1]:
            if t.id:
                try:
                    out.append(KeyExchange(t.id))
                except ValueError:
                    raise NoProposalChosen(f"{ttype.name} names key exchange method {t.id}, "
                                           "which we do not know") from None
    return tuple(out)


def offer_order(specs: Sequence[ProposalSpec]) -> list[ProposalSpec]:
    """The proposals an initiator sends, in order: as configured, then a copy without ADDKE transforms
    of each proposal whose additional key exchanges are all optional. A responder without RFC 9370
    rejects a proposal with transform types it does not know (RFC 7296 3.3.6), so only such a plain
    copy lets it agree; one that has RFC 9370 meets the hybrid proposal first."""
    plain = [s.without_additional() for s in specs if s.has_additional() and s.additional_optional()]
    out = list(specs)
    out += [p for p in plain if p not in out]
    return out


def verify_choice(reply: Sequence[Proposal], offered: Sequence[Proposal], allowed: Allowed) -> Proposal:
    """Initiator: the responder must return exactly one proposal, one transform of each type, each
    of which we offered in the proposal of that number (RFC 7296 3.3.6)."""
    if len(reply) != 1:
        raise NoProposalChosen("responder returned other than one proposal")
    r = reply[0]
    mine = next((p for p in offered if p.number == r.number and p.protocol == r.protocol), None)
    if mine is None:
        raise NoProposalChosen("responder chose a proposal number we did not offer")
    seen: set[TransformType] = set()
    for t in r.transforms:
        if t.type in seen:
            raise NoProposalChosen("responder chose two transforms of one type")
        seen.add(t.type)
        if t not in mine.transforms:
            raise NoProposalChosen(f"responder chose {t}, which we did not offer")
        if not _permitted(allowed, t):
            raise NoProposalChosen(f"responder chose {t}, which the policy refuses")
    chosen_addke = [t.id for t in r.transforms if t.type in ADDKE_TYPES and t.id]
    if len(set(chosen_addke)) != len(chosen_addke):
        raise NoProposalChosen("responder chose one key exchange method for two ADDKE slots (RFC 9370 2.2.1)")
    for ttype in ADDKE_TYPES:
        # a slot we offered and the reply leaves out was not performed: fine only if NONE was ours to accept
        offered_ids = {t.id for t in mine.of_type(ttype)}
        if offered_ids and ttype not in seen and 0 not in offered_ids:
            raise NoProposalChosen(f"responder left out {ttype.name}, which we require")
    if TransformType.ENCR not in seen:
        raise NoProposalChosen("responder chose no encryption algorithm")
    encr = r.of_type(TransformType.ENCR)[0]
    if not _is_aead(encr) and TransformType.INTEG not in seen:
        raise NoProposalChosen("responder chose no integrity algorithm")
    if r.protocol == Protocol.IKE and not ({TransformType.PRF, TransformType.KE} <= seen):
        raise NoProposalChosen("responder chose no PRF or key exchange")
    return r


def ike_suite(p: Proposal) -> IkeSuite:
    e = p.of_type(TransformType.ENCR)[0]
    integ = p.of_type(TransformType.INTEG)
    return IkeSuite(
        encr=Encryption(e.id),
        encr_key_bits=e.key_bits or _fixed_key_bits(Encryption(e.id)),
        prf=Prf(p.of_type(TransformType.PRF)[0].id),
        integ=Integrity(integ[0].id) if integ and integ[0].id else None,
        ke=KeyExchange(p.of_type(TransformType.KE)[0].id),
        additional=additional_key_exchanges(p),
    )


def esp_suite(p: Proposal) -> EspSuite:
    e = p.of_type(TransformType.ENCR)[0]
    integ = p.of_type(TransformType.INTEG)
    ke = p.of_type(TransformType.KE)
    esn = p.of_type(TransformType.ESN)
    return EspSuite(
        encr=Encryption(e.id),
        encr_key_bits=e.key_bits or _fixed_key_bits(Encryption(e.id)),
        integ=Integrity(integ[0].id) if integ and integ[0].id else None,
        ke=KeyExchange(ke[0].id) if ke and ke[0].id else None,
        esn=bool(esn and esn[0].id == ESN),
        additional=additional_key_exchanges(p),
    )


def _fixed_key_bits(e: Encryption) -> int:
    return {Encryption.ENCR_3DES: 192, Encryption.ENCR_CHACHA20_POLY1305: 256, Encryption.ENCR_NULL: 0,
            Encryption.ENCR_DES: 64}.get(e, 128)


# --- the strongSwan/libreswan-style proposal strings --------------------------------------------
# e.g. "aes256gcm16-prfsha384-ecp256", "aes128-sha256-modp3072", "aes256gcm16-esn-ecp384" (ESP).

_ENCR_RE = re.compile(r"^aes(128|192|256)(gcm(8|12|16)|ccm(8|12|16)|ctr)?$")
_INTEG = {"sha256": Integrity.AUTH_HMAC_SHA2_256_128, "sha384": Integrity.AUTH_HMAC_SHA2_384_192,
          "sha512": Integrity.AUTH_HMAC_SHA2_512_256, "sha1": Integrity.AUTH_HMAC_SHA1_96}
_PRF = {"prfsha256": Prf.PRF_HMAC_SHA2_256, "prfsha384": Prf.PRF_HMAC_SHA2_384,
        "prfsha512": Prf.PRF_HMAC_SHA2_512, "prfsha1": Prf.PRF_HMAC_SHA1}
_KE = {"modp2048": KeyExchange.MODP_2048, "modp3072": KeyExchange.MODP_3072,
       "modp4096": KeyExchange.MODP_4096, "modp6144": KeyExchange.MODP_6144,
       "modp8192": KeyExchange.MODP_8192, "ecp256": KeyExchange.ECP_256, "ecp384": KeyExchange.ECP_384,
       "ecp521": KeyExchange.ECP_521, "curve25519": KeyExchange.CURVE25519, "x25519": KeyExchange.CURVE25519,
       "mlkem512": KeyExchange.ML_KEM_512, "mlkem768": KeyExchange.ML_KEM_768,
       "mlkem1024": KeyExchange.ML_KEM_1024, "modp1024": KeyExchange.MODP_1024}
_PRF_FROM_INTEG = {Integrity.AUTH_HMAC_SHA2_256_128: Prf.PRF_HMAC_SHA2_256,
                   Integrity.AUTH_HMAC_SHA2_384_192: Prf.PRF_HMAC_SHA2_384,
                   Integrity.AUTH_HMAC_SHA2_512_256: Prf.PRF_HMAC_SHA2_512,
                   Integrity.AUTH_HMAC_SHA1_96: Prf.PRF_HMAC_SHA1}


class ProposalSyntaxError(ValueError):
    pass


def parse_proposal(text: str, protocol: Protocol) -> ProposalSpec:
    """Parse one "alg-alg-..." proposal string. Unknown tokens are errors."""
    encrs: list[Transform] = []
    integs: list[Transform] = []
    prfs: list[Transform] = []
    kes: list[Transform] = []
    esns: list[Transform] = []
    for tok in text.strip().lower().split("-"):
        m = _ENCR_RE.match(tok)
        if m:
            bits = int(m.group(1))
            if m.group(3):
                eid = {"8": Encryption.ENCR_AES_GCM_8, "12": Encryption.ENCR_AES_GCM_12,
                       "16": Encryption.ENCR_AES_GCM_16}[m.group(3)]
            elif m.group(4):
                eid = {"8": Encryption.ENCR_AES_CCM_8, "12": Encryption.ENCR_AES_CCM_12,
                       "16": Encryption.ENCR_AES_CCM_16}[m.group(4)]
            elif m.group(2) == "ctr":
                eid = Encryption.ENCR_AES_CTR
            else:
                eid = Encryption.ENCR_AES_CBC
            encrs.append(Transform(TransformType.ENCR, int(eid), bits))
        elif tok in _INTEG:
            integs.append(Transform(TransformType.INTEG, int(_INTEG[tok])))
        elif tok in _PRF:
            prfs.append(Transform(TransformType.PRF, int(_PRF[tok])))
        elif tok in _KE:
            kes.append(Transform(TransformType.KE, int(_KE[tok])))
        elif tok == "esn":
            esns.append(Transform(TransformType.ESN, ESN))
        elif tok == "noesn":
            esns.append(Transform(TransformType.ESN, NO_ESN))
        else:
            raise ProposalSyntaxError(f"unknown algorithm {tok!r} in proposal {text!r}")
    if not encrs:
        raise ProposalSyntaxError(f"proposal {text!r} names no encryption algorithm")
    aead = all(_is_aead(t) for t in encrs)
    if not aead and not integs:
        raise ProposalSyntaxError(f"proposal {text!r} names no integrity algorithm")
    if protocol == Protocol.IKE:
        if not prfs:
            # strongSwan's convention: the PRF follows the integrity algorithm when not named
            if not integs:
                raise ProposalSyntaxError(f"proposal {text!r} names no PRF")
            prfs = [Transform(TransformType.PRF, int(_PRF_FROM_INTEG[Integrity(t.id)])) for t in integs]
        if not kes:
            raise ProposalSyntaxError(f"proposal {text!r} names no key exchange group")
        if esns:
            raise ProposalSyntaxError(f"proposal {text!r}: ESN is for ESP")
    else:
        if prfs:
            raise ProposalSyntaxError(f"proposal {text!r}: a PRF is for IKE")
        if not esns:
            esns = [Transform(TransformType.ESN, NO_ESN)]
    return ProposalSpec(protocol, tuple(encrs + prfs + integs + kes + esns))


def parse_proposals(texts: Iterable[str], protocol: Protocol) -> tuple[ProposalSpec, ...]:
    return tuple(parse_proposal(t, protocol) for t in texts)


# --- libreswan's ipsec.conf `ike=` / `esp=` (`phase2alg=`) values ----------------------------------
# The syntax is compliance.proposals' (one grammar, shared with the self-test's "proposals-fips-approved"
# invariant, so the self-test judges exactly the transforms offered here). Defaults for what a value
# leaves out are the ones that parser fills in, taken over unchanged, never substituted:
# - a cipher without a key length (`aes`, `aes_gcm`) offers 256 then 128 bits, for IKE and ESP alike:
#   libreswan's IKEv2 proposals carry both lengths, the longer first (its logged default IKE proposals
#   read AES_GCM_C_256, AES_GCM_C_128, AES_CBC_256, AES_CBC_128); `aes_gcm` is the 16-octet ICV (ID 20).
# - IKE without a hash: PRFs SHA2-512 and SHA2-256 (plus the same as integrity for a non-AEAD cipher);
#   IKE without a group: ECP-256 then MODP-3072 (compliance's default set, all FIPS-approved).
# - a non-AEAD IKE cipher takes the hash as both PRF and integrity, as strongSwan's "aes256-sha256"
#   gives "aes256-sha256-prfsha256"; an AEAD one as PRF only (RFC 5282 8).
# - ESP without a group: no KE transform, so no PFS, unless the caller passes `pfs_groups` (libreswan's
#   pfs=yes takes the IKE SA's group for CREATE_CHILD_SA; the config layer passes the IKE groups).
# - ESN: libreswan's esn=no default, i.e. the NO_ESN transform, as parse_proposal adds it.
# With a policy, a proposal naming any transform the profile refuses is an error here, at config time.


def spec_from_proposal(p: libreswan.Proposal, protocol: Protocol,
                       pfs_groups: Sequence[KeyExchange] = ()) -> ProposalSpec:
    """The engine's ProposalSpec for one parsed libreswan proposal, transform for transform."""
    want = {Protocol.IKE: "ike", Protocol.ESP: "esp"}.get(protocol)
    if want is None:
        raise libreswan.ProposalSyntaxError(f"the engine negotiates IKE and ESP SAs, not {protocol.name}")
    if p.protocol != want:
        raise libreswan.ProposalSyntaxError(f"{p.protocol} proposal {p.text!r} where {want} was expected")
    if not p.ciphers:
        raise libreswan.ProposalSyntaxError(f"proposal {p.text!r} names no encryption algorithm")
    aead = all(c.alg.is_aead for c in p.ciphers)
    # the Key Length attribute goes with the variable-length (AES) ciphers only (RFC 7296 3.3.5);
    # ChaCha20-Poly1305 must not carry one (RFC 7634 2)
    encrs = [Transform(TransformType.ENCR, int(c.alg), c.key_bits if c.alg.name.startswith("ENCR_AES") else None)
             for c in p.ciphers]
    prfs = [Transform(TransformType.PRF, int(x)) for x in p.prfs]
    # Integrity NONE is how the parser spells "AEAD, no integrity": the proposal then has no INTEG
    integs = [Transform(TransformType.INTEG, int(x)) for x in p.integrity if x is not Integrity.NONE]
    if not aead and (not integs or Integrity.NONE in p.integrity):
        raise libreswan.ProposalSyntaxError(f"proposal {p.text!r}: a non-AEAD cipher needs an integrity "
                                            "algorithm (RFC 8221 5)")
    groups = list(p.ke) or list(pfs_groups)
    if protocol == Protocol.IKE:
        if not prfs:
            raise libreswan.ProposalSyntaxError(f"proposal {p.text!r} names no PRF")
        if not groups or KeyExchange.NONE in groups:
            raise libreswan.ProposalSyntaxError(f"proposal {p.text!r}: IKE needs a key exchange method "
                                                "(RFC 7296 1.2)")
        spec = ProposalSpec(protocol, tuple(encrs + prfs + integs + [Transform(TransformType.KE, int(g))
                                                                     for g in groups]))
        # libreswan 5's `;addkeN=` lists: the ADDKE<N> transforms (RFC 9370 2.2.1), `none` as ID 0
        return spec.with_additional_key_exchanges({a.slot: a.methods for a in p.addke}) if p.addke else spec
    # ESP: `none`/`dh0` alone is no PFS (no KE transform); beside a group it is the NONE transform
    # (ID 0) offered as an alternative (RFC 7296 3.3.2)
    if groups == [KeyExchange.NONE]:
        groups = []
    kes = [Transform(TransformType.KE, int(g)) for g in groups]
    spec = ProposalSpec(protocol, tuple(encrs + integs + kes + [Transform(TransformType.ESN, NO_ESN)]))
    # `;addkeN=`: additional key exchanges of a CREATE_CHILD_SA, in IKE_FOLLOWUP_KE (RFC 9370 2.2.4)
    return spec.with_additional_key_exchanges({a.slot: a.methods for a in p.addke}) if p.addke else spec


def from_libreswan(value: str, protocol: Protocol, policy: Policy | None = None,
                   pfs_groups: Sequence[KeyExchange] = ()) -> tuple[ProposalSpec, ...]:
    """`ike=`/`esp=`/`phase2alg=` value (keyword optional) -> the engine's proposals, in order.

    Raises compliance.proposals.ProposalSyntaxError for bad syntax and, given a policy,
    providers.errors.PolicyViolation for a proposal naming a transform the profile refuses.
    """
    kind = {Protocol.IKE: "ike", Protocol.ESP: "esp"}.get(protocol, protocol.name.lower())
    parsed = libreswan.parse_proposals(value, kind)
    specs = tuple(spec_from_proposal(p, protocol, pfs_groups) for p in parsed)
    if policy is not None:
        check = libreswan.policy_check(policy)
        for p in parsed:
            refusals = list(libreswan.check_proposal(p, check).refusals)
            for g in () if p.ke else pfs_groups:
                reason = check("ke", g, 0)
                if reason is not None:
                    refusals.append(libreswan.Refusal(g.name, reason))
            if refusals:
                # each reason reads "X refused by the P profile: why"; keep the why
                why = "; ".join(f"{r.transform}: {r.reason.partition(' profile: ')[2] or r.reason}"
                                for r in refusals)
                raise PolicyViolation(", ".join(r.transform for r in refusals), f"proposal {p.text!r}: {why}",
                                      policy.profile)
    return specs


def _transform_name(t: TransformType, i: int) -> str:
    enum_for: dict[TransformType, type[enum.IntEnum]] = {
        TransformType.ENCR: Encryption, TransformType.PRF: Prf, TransformType.INTEG: Integrity,
        TransformType.KE: KeyExchange}
    if t == TransformType.ESN:
        return "ESN" if i == ESN else "NO_ESN"
    cls = enum_for.get(t)
    if cls is None:
        return f"{getattr(t, 'name', t)}#{i}"
    try:
        return cls(i).name
    except ValueError:
        return f"{t.name}#{i}"
