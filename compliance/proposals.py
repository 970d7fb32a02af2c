"""libreswan `ike=` / `esp=` / `ah=` proposal strings, parsed to providers.algorithms enums.

Grammar (libreswan ipsec.conf(5), "ike=" and "esp=", and its "Proposals" section; both the v4 ';'
form and the older '-' form are accepted):

    line      = [kw "="] proposal *("," proposal)
    proposal  = alts ["-" alts] ["-" alts] [";" alts] *(";" addke)
    addke     = "addke" N "=" alts          ; N = 1..7, libreswan 5 (RFC 9370 ADDKE1..ADDKE7)
    alts      = name *("+" name)

An `addkeN=` list names the Additional Key Exchange N choices (transform type 5 + N, RFC 9370
section 2.2 / IANA "Transform Type Values"); `none` among them is the NONE transform (ID 0), which
makes that additional exchange optional (RFC 9370 section 2.2). libreswan 5's other `;type=`
forms (encrypt=, prf=, integ=, ke=, sn=) are refused by name, not guessed at.

For IKE the elements are ENCR[-PRF/INTEG][-DH] or ENCR[-PRF];DH. A non-AEAD cipher takes the hash
as both PRF and integrity (libreswan derives one from the other); an AEAD cipher takes it as PRF only
(RFC 5282 section 8: no integrity transform with a combined-mode cipher). For ESP/AH the hash is
integrity and the optional DH is the PFS group. Key lengths follow the cipher name: `aes256`,
`aes_gcm128`, `aes_gcm_16_256`, `aes_cbc_128`; none means libreswan's defaults (AES: 256 and 128).

Bad input raises ProposalSyntaxError with the column of the offending name, never a traceback.
The verdict against a profile comes from providers.policy (compliance adds no rule of its own):
`check_proposal` lists refusals, and `parse_proposals(..., profile=)` raises ProposalRefused (a
ProposalSyntaxError) naming the first refused token and its column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from providers.algorithms import Encryption, Integrity, KeyExchange, Prf
from providers.errors import PolicyViolation
from providers.policy import Policy


class ProposalSyntaxError(ValueError):
    """A proposal string that does not parse; `column` is 1-based into the value."""

    def __init__(self, message: str, column: int = 0) -> None:
        self.column = column
        super().__init__(f"column {column}: {message}" if column else message)


class ProposalRefused(ProposalSyntaxError):
    """A well-formed proposal naming a transform the profile refuses; `token` is the name as written."""

    def __init__(self, message: str, column: int, token: str) -> None:
        self.token = token
        super().__init__(message, column)


# RFC 9370 section 2.2: Additional Key Exchange 1..7 are transform types 6..12 (IANA "Transform Type
# Values"); their transform IDs are Transform Type 4's (ML-KEM-512/768/1024 = 35/36/37, IANA "Transform
# Type 4 - Key Exchange Method Transform IDs", draft-ietf-ipsecme-ikev2-mlkem); ID 0 is NONE.
ADDKE_SLOTS = range(1, 8)
ADDKE_TRANSFORM_TYPE: dict[int, int] = {n: 5 + n for n in ADDKE_SLOTS}


@dataclass(frozen=True)
class AdditionalKeyExchange:
    """One `addkeN=` list: the choices for ADDKE<slot>, in order of preference."""

    slot: int  # N of ADDKEn, 1..7
    methods: tuple[KeyExchange, ...]

    @property
    def transform_type(self) -> int:
        return ADDKE_TRANSFORM_TYPE[self.slot]

    @property
    def optional(self) -> bool:
        """NONE among the choices: a peer may skip this exchange (RFC 9370 section 2.2)."""
        return KeyExchange.NONE in self.methods

    def __str__(self) -> str:
        return f"ADDKE{self.slot}=" + "+".join(m.name for m in self.methods)


# --- the name tables (libreswan spellings -> IANA transform IDs) -----------------------------------
_E = Encryption
ENCRYPTION_NAMES: dict[str, Encryption] = {
    "3des": _E.ENCR_3DES, "3des_cbc": _E.ENCR_3DES, "des": _E.ENCR_DES, "des_cbc": _E.ENCR_DES,
    "null": _E.ENCR_NULL,
    "aes": _E.ENCR_AES_CBC, "aes_cbc": _E.ENCR_AES_CBC, "aescbc": _E.ENCR_AES_CBC,
    "aes_ctr": _E.ENCR_AES_CTR, "aesctr": _E.ENCR_AES_CTR,
    "aes_gcm": _E.ENCR_AES_GCM_16, "aesgcm": _E.ENCR_AES_GCM_16,
    "aes_gcm_a": _E.ENCR_AES_GCM_8, "aes_gcm_b": _E.ENCR_AES_GCM_12, "aes_gcm_c": _E.ENCR_AES_GCM_16,
    "aes_gcm_8": _E.ENCR_AES_GCM_8, "aes_gcm_12": _E.ENCR_AES_GCM_12, "aes_gcm_16": _E.ENCR_AES_GCM_16,
    "aes_ccm": _E.ENCR_AES_CCM_16, "aesccm": _E.ENCR_AES_CCM_16,
    "aes_ccm_a": _E.ENCR_AES_CCM_8, "aes_ccm_b": _E.ENCR_AES_CCM_12, "aes_ccm_c": _E.ENCR_AES_CCM_16,
    "aes_ccm_8": _E.ENCR_AES_CCM_8, "aes_ccm_12": _E.ENCR_AES_CCM_12, "aes_ccm_16": _E.ENCR_AES_CCM_16,
    "chacha20_poly1305": _E.ENCR_CHACHA20_POLY1305, "chacha20poly1305": _E.ENCR_CHACHA20_POLY1305,
}
# Hash names: (PRF, integrity). aes_xcbc / aes_cmac exist as both or as PRF only.
_P, _I = Prf, Integrity
HASH_NAMES: dict[str, tuple[Prf | None, Integrity | None]] = {
    "md5": (_P.PRF_HMAC_MD5, _I.AUTH_HMAC_MD5_96),
    "sha1": (_P.PRF_HMAC_SHA1, _I.AUTH_HMAC_SHA1_96), "sha": (_P.PRF_HMAC_SHA1, _I.AUTH_HMAC_SHA1_96),
    "sha2": (_P.PRF_HMAC_SHA2_256, _I.AUTH_HMAC_SHA2_256_128),
    "sha256": (_P.PRF_HMAC_SHA2_256, _I.AUTH_HMAC_SHA2_256_128),
    "sha2_256": (_P.PRF_HMAC_SHA2_256, _I.AUTH_HMAC_SHA2_256_128),
    "sha384": (_P.PRF_HMAC_SHA2_384, _I.AUTH_HMAC_SHA2_384_192),
    "sha2_384": (_P.PRF_HMAC_SHA2_384, _I.AUTH_HMAC_SHA2_384_192),
    "sha512": (_P.PRF_HMAC_SHA2_512, _I.AUTH_HMAC_SHA2_512_256),
    "sha2_512": (_P.PRF_HMAC_SHA2_512, _I.AUTH_HMAC_SHA2_512_256),
    "aes_xcbc": (_P.PRF_AES128_XCBC, _I.AUTH_AES_XCBC_96), "aesxcbc": (_P.PRF_AES128_XCBC, _I.AUTH_AES_XCBC_96),
    "aes_cmac": (_P.PRF_AES128_CMAC, None),
    "null": (None, _I.NONE), "none": (None, _I.NONE),
}
_K = KeyExchange
KE_NAMES: dict[str, KeyExchange] = {
    "none": _K.NONE, "null": _K.NONE,
    "modp768": _K.MODP_768, "modp1024": _K.MODP_1024, "modp1536": _K.MODP_1536, "modp2048": _K.MODP_2048,
    "modp3072": _K.MODP_3072, "modp4096": _K.MODP_4096, "modp6144": _K.MODP_6144, "modp8192": _K.MODP_8192,
    "ecp_256": _K.ECP_256, "ecp256": _K.ECP_256, "ecp_384": _K.ECP_384, "ecp384": _K.ECP_384,
    "ecp_521": _K.ECP_521, "ecp521": _K.ECP_521,
    "dh22": _K.MODP_1024_160_POS, "dh23": _K.MODP_2048_224_POS, "dh24": _K.MODP_2048_256_POS,
    "curve25519": _K.CURVE25519, "x25519": _K.CURVE25519, "curve448": _K.CURVE448, "x448": _K.CURVE448,
    "mlkem512": _K.ML_KEM_512, "ml_kem_512": _K.ML_KEM_512,
    "mlkem768": _K.ML_KEM_768, "ml_kem_768": _K.ML_KEM_768,
    "mlkem1024": _K.ML_KEM_1024, "ml_kem_1024": _K.ML_KEM_1024,
}
# "dhN" is the IANA number itself (RFC 7296 3.3.2 Transform Type 4).
KE_NAMES.update({f"dh{int(g)}": g for g in KeyExchange if g is not KeyExchange.NONE})
KE_NAMES["dh0"] = KeyExchange.NONE

# libreswan's default key lengths when a cipher name carries none (ipsec.conf(5)).
DEFAULT_KEY_BITS: dict[Encryption, tuple[int, ...]] = {
    e: (256, 128) for e in Encryption if e.name.startswith("ENCR_AES")
}
DEFAULT_KEY_BITS[Encryption.ENCR_CHACHA20_POLY1305] = (256,)  # RFC 7634: one key size
VALID_KEY_BITS: dict[Encryption, tuple[int, ...]] = {
    e: (128, 192, 256) for e in Encryption if e.name.startswith("ENCR_AES")
}
VALID_KEY_BITS[Encryption.ENCR_CHACHA20_POLY1305] = (256,)

_NAME_RE = re.compile(r"^(?P<base>[a-z0-9_]+?)(?:_?(?P<bits>128|192|256))?$")


@dataclass(frozen=True)
class Cipher:
    alg: Encryption
    key_bits: int  # 0 for ciphers with a fixed key (3DES, NULL)

    def __str__(self) -> str:
        return f"{self.alg.name}" + (f"/{self.key_bits}" if self.key_bits else "")


@dataclass(frozen=True)
class Proposal:
    """One comma-separated proposal, every alternative expanded."""

    protocol: str  # "ike", "esp" or "ah"
    text: str
    ciphers: tuple[Cipher, ...] = ()
    prfs: tuple[Prf, ...] = ()
    integrity: tuple[Integrity, ...] = ()
    ke: tuple[KeyExchange, ...] = ()
    addke: tuple[AdditionalKeyExchange, ...] = ()  # by slot; empty: no additional key exchange

    def additional(self, slot: int) -> AdditionalKeyExchange | None:
        """The ADDKE<slot> choices, or None when the proposal has no such transform."""
        return next((a for a in self.addke if a.slot == slot), None)


@dataclass(frozen=True)
class Refusal:
    transform: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    proposal: Proposal
    refusals: tuple[Refusal, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> bool:
        return not self.refusals


def _split_cipher(name: str) -> tuple[Encryption, int]:
    if name in ENCRYPTION_NAMES:
        return ENCRYPTION_NAMES[name], 0
    m = _NAME_RE.match(name)
    if m and m.group("bits") and m.group("base") in ENCRYPTION_NAMES:
        return ENCRYPTION_NAMES[m.group("base")], int(m.group("bits"))
    raise KeyError(name)


def _alternatives(part: str, start: int) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    col = start
    for name in part.split("+"):
        if not name.strip():
            raise ProposalSyntaxError("empty algorithm name", col + 1)
        out.append((name.strip().lower(), col + 1 + (len(name) - len(name.lstrip()))))
        col += len(name) + 1
    return out


_ADDKE_RE = re.compile(r"^\s*addke(?P<n>\d+)\s*=(?P<alts>.*)$", re.IGNORECASE | re.DOTALL)
_TYPED_RE = re.compile(r"^\s*(?P<key>[A-Za-z_0-9]+)\s*=")


def _segments(text: str, offset: int) -> tuple[str, tuple[str, int] | None, list[tuple[int, str, int]]]:
    """body, the ';' KE list (text, column), and the `addkeN=` lists (N, text, column of the text)."""
    pieces = text.split(";")
    body = pieces[0]
    col = offset + len(body) + 1  # 0-based column of the first piece after the ';'
    dh: tuple[str, int] | None = None
    addke: list[tuple[int, str, int]] = []
    seen: dict[int, int] = {}
    for i, piece in enumerate(pieces[1:]):
        m = _ADDKE_RE.match(piece)
        if m:
            n = int(m.group("n"))
            if n not in ADDKE_SLOTS:
                raise ProposalSyntaxError(f"'addke{n}': RFC 9370 has ADDKE1 to ADDKE7", col + 1)
            if n in seen:
                raise ProposalSyntaxError(f"'addke{n}' given twice", col + 1)
            seen[n] = col
            if not m.group("alts").strip():
                raise ProposalSyntaxError(f"'addke{n}=' names no key exchange method", col + 1)
            addke.append((n, m.group("alts"), col + m.start("alts")))
        elif (typed := _TYPED_RE.match(piece)) is not None:
            raise ProposalSyntaxError(f"';{typed.group('key')}=' is not supported here (only ';addke1=' to ';addke7=')",
                                      col + 1 + len(piece) - len(piece.lstrip()))
        elif i == 0:
            dh = (piece, col)
        else:
            where = "after 'addkeN='" if addke else "a second time"
            raise ProposalSyntaxError(f"key exchange list {piece.strip()!r} {where}: one list only, right after "
                                      "the algorithms", col + 1)
        col += len(piece) + 1
    return body, dh, addke


def parse_proposal(text: str, protocol: str = "ike", offset: int = 0, *, profile: str | None = None) -> Proposal:
    """Parse one proposal (no commas). `offset` places columns in the whole value. With `profile`,
    a transform that profile refuses raises ProposalRefused naming it."""
    protocol = protocol.lower()
    if protocol not in ("ike", "esp", "ah"):
        raise ProposalSyntaxError(f"unknown protocol {protocol!r} (ike, esp or ah)")
    body, dh, addke_parts = _segments(text, offset)
    dh_part, dh_col = dh if dh is not None else ("", offset + len(body) + 1)
    parts: list[tuple[str, int]] = []
    col = offset
    for p in body.split("-"):
        parts.append((p, col))
        col += len(p) + 1
    if not body.strip():
        raise ProposalSyntaxError("empty proposal", offset + 1)

    ciphers: list[Cipher] = []
    hashes: list[tuple[str, int]] = []
    ke_names: list[tuple[str, int]] = []

    # AH has no cipher: its only element (before any DH) is the integrity algorithm.
    if protocol == "ah":
        if len(parts) > 2:
            raise ProposalSyntaxError("too many '-' elements for ah (INTEG[-DH])", parts[2][1] + 1)
        hashes = _alternatives(*parts[0])
        if len(parts) == 2:
            ke_names = _alternatives(*parts[1])
    else:
        if len(parts) > 3:
            raise ProposalSyntaxError("too many '-' elements (ENCR-HASH-DH)", parts[3][1] + 1)
        for name, c in _alternatives(*parts[0]):
            try:
                alg, bits = _split_cipher(name)
            except KeyError:
                raise ProposalSyntaxError(f"unknown encryption algorithm {name!r}", c) from None
            if bits and bits not in VALID_KEY_BITS.get(alg, ()):
                raise ProposalSyntaxError(f"key length {bits} is not valid for {name!r}", c)
            for b in (bits,) if bits else DEFAULT_KEY_BITS.get(alg, (0,)):
                ciphers.append(Cipher(alg, b))
        if len(parts) >= 2:
            hashes = _alternatives(*parts[1])
        if len(parts) == 3:
            ke_names = _alternatives(*parts[2])
    if dh is not None:
        if ke_names:
            raise ProposalSyntaxError("DH given both after '-' and after ';'", offset + len(body) + 1)
        ke_names = _alternatives(dh_part, dh_col)

    prfs: list[Prf] = []
    integ: list[Integrity] = []
    all_aead = bool(ciphers) and all(c.alg.is_aead for c in ciphers)
    any_aead = any(c.alg.is_aead for c in ciphers)
    if any_aead and not all_aead:
        raise ProposalSyntaxError("AEAD and non-AEAD ciphers cannot share a proposal (RFC 7296 3.3)",
                                  offset + 1)
    for name, c in hashes:
        if name not in HASH_NAMES:
            raise ProposalSyntaxError(f"unknown hash/integrity algorithm {name!r}", c)
        prf, ia = HASH_NAMES[name]
        if protocol == "ike":
            if prf is None and not (all_aead and ia is Integrity.NONE):
                raise ProposalSyntaxError(f"{name!r} is not a PRF", c)
            if prf is not None and prf not in prfs:
                prfs.append(prf)
            if not all_aead:
                if ia is None:
                    raise ProposalSyntaxError(f"{name!r} is not an integrity algorithm", c)
                if ia not in integ:
                    integ.append(ia)
        else:
            if ia is None:
                raise ProposalSyntaxError(f"{name!r} is not an integrity algorithm", c)
            if all_aead and ia is not Integrity.NONE:
                raise ProposalSyntaxError(f"{name!r}: an AEAD cipher takes no integrity algorithm "
                                          "(RFC 4106 section 5)", c)
            if ia not in integ:
                integ.append(ia)
    if protocol == "ike" and not hashes:
        # libreswan's IKE defaults: SHA2-512 and SHA2-256 PRFs (and integrity for non-AEAD).
        prfs = [Prf.PRF_HMAC_SHA2_512, Prf.PRF_HMAC_SHA2_256]
        if not all_aead:
            integ = [Integrity.AUTH_HMAC_SHA2_512_256, Integrity.AUTH_HMAC_SHA2_256_128]
    if protocol in ("esp", "ah") and not hashes and not all_aead:
        integ = [Integrity.AUTH_HMAC_SHA2_512_256, Integrity.AUTH_HMAC_SHA2_256_128]
    if all_aead and protocol == "esp" and not integ:
        integ = [Integrity.NONE]

    kes: list[KeyExchange] = []
    for name, c in ke_names:
        if name not in KE_NAMES:
            raise ProposalSyntaxError(f"unknown key exchange method {name!r}", c)
        if KE_NAMES[name] not in kes:
            kes.append(KE_NAMES[name])
    if protocol == "ike" and not kes:
        kes = [KeyExchange.ECP_256, KeyExchange.MODP_3072]  # a default set we can meet in FIPS mode
    if protocol == "ike" and KeyExchange.NONE in kes:
        raise ProposalSyntaxError("IKE needs a key exchange method (RFC 7296 1.2)", dh_col + 1)

    addke: list[AdditionalKeyExchange] = []
    named: list[tuple[str, int, str, object]] = []  # (token, column, kind, transform) for the profile
    for n, alts, col in addke_parts:
        methods: list[KeyExchange] = []
        for name, c in _alternatives(alts, col):
            if name not in KE_NAMES:
                raise ProposalSyntaxError(f"unknown key exchange method {name!r} in 'addke{n}='", c)
            if KE_NAMES[name] not in methods:
                methods.append(KE_NAMES[name])
            named.append((name, c, "ke", KE_NAMES[name]))
        addke.append(AdditionalKeyExchange(n, tuple(methods)))
    addke.sort(key=lambda a: a.slot)
    proposal = Proposal(protocol, text.strip(), tuple(ciphers), tuple(prfs), tuple(integ), tuple(kes), tuple(addke))
    if profile is not None:
        _refuse_by_profile(proposal, named, Policy(profile))
    return proposal


def _refuse_by_profile(proposal: Proposal, addke_tokens: list[tuple[str, int, str, object]], policy: Policy) -> None:
    """ProposalRefused for the first transform the policy refuses: an ADDKE choice by its token and
    column; any other transform by its name (the proposal's own column)."""
    check = policy_check(policy)
    for token, column, kind, t in addke_tokens:
        if t is KeyExchange.NONE:
            continue
        reason = check(kind, t, 0)
        if reason is not None:
            raise ProposalRefused(f"{token!r} in an additional key exchange: {reason}", column, token)
    verdict = check_proposal(proposal, check)
    if verdict.refusals:
        r = verdict.refusals[0]
        raise ProposalRefused(f"{r.transform} in {proposal.text!r}: {r.reason}", 0, r.transform)


def parse_proposals(value: str, protocol: str | None = None, *, profile: str | None = None) -> list[Proposal]:
    """Parse `ike=...`, `esp=...` or a bare value (then `protocol` says which). With `profile`
    ("fips", "default"), a transform that profile refuses raises ProposalRefused."""
    text = value.strip()
    start = len(value) - len(value.lstrip())
    m = re.match(r"^(ike|esp|ah|phase2alg)\s*=\s*", text, re.IGNORECASE)
    if m:
        kw = m.group(1).lower()
        protocol = "esp" if kw == "phase2alg" else kw
        start += m.end()
        text = text[m.end():]
    if protocol is None:
        raise ProposalSyntaxError("say which protocol: ike=..., esp=... or ah=...")
    if not text:
        raise ProposalSyntaxError("empty proposal list", start + 1)
    out: list[Proposal] = []
    col = start
    for piece in text.split(","):
        out.append(parse_proposal(piece, protocol, col, profile=profile))
        col += len(piece) + 1
    return out


# --- verdicts ----------------------------------------------------------------------------------------
# A check takes (kind, transform, key_bits) and returns None (allowed) or the reason for refusal.
TransformCheck = Callable[[str, object, int], "str | None"]


def check_proposal(proposal: Proposal, check: TransformCheck) -> Verdict:
    refusals: list[Refusal] = []

    def run(kind: str, t: object, bits: int, label: str) -> None:
        reason = check(kind, t, bits)
        if reason is not None:
            refusals.append(Refusal(label, reason))

    for c in proposal.ciphers:
        run("encryption", c.alg, c.key_bits, str(c))
        if not c.alg.is_aead and proposal.protocol != "ah" and Integrity.NONE in proposal.integrity:
            # RFC 8221 section 5 / RFC 7296 3.3: a non-combined cipher needs an integrity transform
            refusals.append(Refusal(str(c), "a non-AEAD cipher needs an integrity algorithm (RFC 8221)"))
    for p in proposal.prfs:
        run("prf", p, 0, p.name)
    for i in proposal.integrity:
        if i is not Integrity.NONE:
            run("integrity", i, 0, i.name)
    for k in proposal.ke:
        if k is not KeyExchange.NONE:
            run("ke", k, 0, k.name)
    for a in proposal.addke:
        for k in a.methods:
            if k is not KeyExchange.NONE:  # NONE makes the exchange optional: nothing to approve
                run("ke", k, 0, f"ADDKE{a.slot}={k.name}")
    return Verdict(proposal, tuple(refusals))


def check_proposals(value: str, check: TransformCheck, protocol: str | None = None) -> list[Verdict]:
    return [check_proposal(p, check) for p in parse_proposals(value, protocol)]


def transforms(proposals: Iterable[Proposal]) -> set[object]:
    """Every distinct transform named by the proposals (for tables and reports)."""
    out: set[object] = set()
    for p in proposals:
        out.update(c.alg for c in p.ciphers)
        out.update(p.prfs)
        out.update(p.integrity)
        out.update(p.ke)
        out.update(k for a in p.addke for k in a.methods)
    return out


def policy_check(policy: Policy) -> TransformCheck:
    """The TransformCheck of a providers.policy.Policy: its reason text when it refuses."""

    def check(kind: str, t: object, bits: int) -> str | None:
        try:
            if kind == "encryption":
                assert isinstance(t, Encryption)
                policy.check_encryption(t, bits)
            elif kind == "prf":
                assert isinstance(t, Prf)
                policy.check_prf(t)
            elif kind == "integrity":
                assert isinstance(t, Integrity)
                policy.check_integrity(t)
            elif kind == "ke":
                assert isinstance(t, KeyExchange)
                policy.check_ke(t)
            else:
                return f"unknown transform kind {kind}"
        except PolicyViolation as exc:
            return str(exc)
        return None

    return check


def check_against_profile(value: str, profile: str, protocol: str | None = None) -> list[Verdict]:
    """Parse `value` and judge each proposal under the named providers.policy profile."""
    return check_proposals(value, policy_check(Policy(profile)), protocol)
