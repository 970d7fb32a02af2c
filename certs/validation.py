"""Certification path building and validation (RFC 5280 section 6, profiled
for IKE by RFC 4945 section 5).

Every signature (certificates and CRLs) is checked through the Router
(`router.verify`): the FIPS boundary is providers/, so `cryptography`'s own
`verify_directly_issued_by` is never used. The Router's policy decides which
keys and signature schemes are acceptable (the fips profile: no SHA-1, RSA >=
2048 bits, P-256/384/521 only).

A refusal is a `Verdict` with a `Reason` (stable enum for programs) and a detail
sentence naming the certificate (for people). Time is injected (`now`).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from certs import algorithm_identifier
from certs.der import DerError, signed_parts
from certs.identity import name_string, normalised_name, parse_dn
from providers.errors import PolicyViolation, ProviderError
from providers.policy import key_spec_of


class Reason(enum.Enum):
    """Why a path was accepted or refused (stable names: they reach JSON output)."""

    VALID = "valid"
    ISSUER_NOT_FOUND = "issuer-not-found"
    UNTRUSTED_ROOT = "untrusted-root"
    PATH_TOO_LONG = "path-too-long"
    BAD_SIGNATURE = "bad-signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    NOT_A_CA = "not-a-ca"
    PATH_LENGTH_EXCEEDED = "path-length-exceeded"
    CA_KEY_USAGE = "ca-key-usage"
    END_ENTITY_KEY_USAGE = "end-entity-key-usage"
    END_ENTITY_EXTENDED_KEY_USAGE = "end-entity-extended-key-usage"
    NAME_CONSTRAINTS = "name-constraints"
    UNKNOWN_CRITICAL_EXTENSION = "unknown-critical-extension"
    SIGNATURE_ALGORITHM_NOT_ALLOWED = "signature-algorithm-not-allowed"
    KEY_NOT_ALLOWED = "key-not-allowed"
    UNSUPPORTED_ALGORITHM = "unsupported-algorithm"
    REVOKED = "revoked"
    CRL_BAD_SIGNATURE = "crl-bad-signature"
    CRL_EXPIRED = "crl-expired"
    CRL_NOT_YET_VALID = "crl-not-yet-valid"
    CRL_ISSUER_KEY_USAGE = "crl-issuer-key-usage"
    CRL_UNAVAILABLE = "crl-unavailable"
    CRL_UNSUPPORTED = "crl-unsupported"
    CA_MISMATCH = "ca-mismatch"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class Verdict:
    reason: Reason
    detail: str
    chain: tuple[x509.Certificate, ...] = field(default=(), compare=False)  # end entity first

    @property
    def ok(self) -> bool:
        return self.reason is Reason.VALID

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'REFUSED'} ({self.reason.value}): {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason.value,
            "detail": self.detail,
            "chain": [name_string(c.subject) for c in self.chain],
        }


class _Refusal(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# RFC 4945 5.1.3.12: an EE's EKU, when present, must allow IKE use; serverAuth and
# clientAuth are what strongSwan and libreswan accept in practice.
_IKE_EKUS = frozenset({
    "1.3.6.1.5.5.7.3.17",  # id-kp-ipsecIKE (RFC 4945)
    ExtendedKeyUsageOID.SERVER_AUTH.dotted_string,
    ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE.dotted_string,
    "1.3.6.1.5.5.7.3.5", "1.3.6.1.5.5.7.3.6", "1.3.6.1.5.5.7.3.7",  # ipsecEndSystem/Tunnel/User (RFC 4945 5.1.3.12)
})
# Extensions we process or that carry no constraint we must enforce (RFC 5280 4.2).
_KNOWN_EXTENSIONS = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.ISSUER_ALTERNATIVE_NAME, ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.CRL_DISTRIBUTION_POINTS,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.FRESHEST_CRL,
})
# CRL extensions we understand (RFC 5280 5.2); a CRL with any other critical extension (an
# issuingDistributionPoint scoping it, a delta CRL indicator) is not used (RFC 5280 5.2).
_KNOWN_CRL_EXTENSIONS = frozenset({
    ExtensionOID.CRL_NUMBER, ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS, ExtensionOID.FRESHEST_CRL,
})
MAX_PATH_DEPTH = 8
MAX_CANDIDATE_PATHS = 32
_DER = Encoding.DER


def describe(cert: x509.Certificate) -> str:
    return f"'{name_string(cert.subject)}'" if len(cert.subject) else f"serial {cert.serial_number:#x}"


def _ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def subject_key_id(cert: x509.Certificate) -> bytes | None:
    ski = _ext(cert, x509.SubjectKeyIdentifier)
    return bytes(ski.digest) if ski is not None else None


def authority_key_id(cert: x509.Certificate) -> bytes | None:
    aki = _ext(cert, x509.AuthorityKeyIdentifier)
    return bytes(aki.key_identifier) if aki is not None and aki.key_identifier is not None else None


def _dn_key(name: x509.Name) -> Any:
    return normalised_name(name)


def is_self_issued(cert: x509.Certificate) -> bool:
    return bool(_dn_key(cert.subject) == _dn_key(cert.issuer))


_UNSET: Any = object()


class _Facts:
    """What a certificate says, parsed once: everything here is a pure function of its DER
    (names, key identifiers, extensions, the signed parts), so it is shared by every
    validation of the same certificate. Checks against time, policy and signatures are
    still made on every validation; only the parsing and formatting is remembered.
    A fact whose parsing raises is not remembered (it raises again the next time)."""

    __slots__ = ("cert", "_der", "_subject", "_issuer", "_ski", "_aki", "_desc", "_exts", "_ext",
                 "_signed", "_derived")

    def __init__(self, cert: x509.Certificate) -> None:
        self.cert = cert
        self._der: bytes | None = None
        self._subject: Any = _UNSET
        self._issuer: Any = _UNSET
        self._ski: Any = _UNSET
        self._aki: Any = _UNSET
        self._desc: str | None = None
        self._exts: list[Any] | None = None
        self._ext: dict[type[Any], Any] = {}
        self._signed: tuple[bytes, bytes] | None = None
        self._derived: dict[str, Any] = {}

    def derived(self, name: str, build: Any) -> Any:
        """A value computed from this certificate alone, once (`build` raising: not remembered)."""
        try:
            return self._derived[name]
        except KeyError:
            value = self._derived[name] = build()
            return value

    @property
    def der(self) -> bytes:
        if self._der is None:
            self._der = self.cert.public_bytes(_DER)
        return self._der

    @property
    def subject(self) -> Any:
        if self._subject is _UNSET:
            self._subject = _dn_key(self.cert.subject)
        return self._subject

    @property
    def issuer(self) -> Any:
        if self._issuer is _UNSET:
            self._issuer = _dn_key(self.cert.issuer)
        return self._issuer

    @property
    def self_issued(self) -> bool:
        return bool(self.subject == self.issuer)

    @property
    def ski(self) -> bytes | None:
        if self._ski is _UNSET:
            self._ski = subject_key_id(self.cert)
        return self._ski  # type: ignore[no-any-return]

    @property
    def aki(self) -> bytes | None:
        if self._aki is _UNSET:
            self._aki = authority_key_id(self.cert)
        return self._aki  # type: ignore[no-any-return]

    @property
    def description(self) -> str:
        if self._desc is None:
            self._desc = describe(self.cert)
        return self._desc

    def extensions(self) -> list[Any]:
        """list(cert.extensions); raises ValueError for malformed ones (every time)."""
        if self._exts is None:
            self._exts = list(self.cert.extensions)
        return self._exts

    def ext(self, cls: type[Any]) -> Any:
        try:
            return self._ext[cls]
        except KeyError:
            value = self._ext[cls] = _ext(self.cert, cls)
            return value

    def signed_parts(self) -> tuple[bytes, bytes]:
        """(tbsCertificate, signatureAlgorithm) octets; raises DerError."""
        if self._signed is None:
            self._signed = signed_parts(self.der)
        return self._signed


_FACTS: dict[x509.Certificate, _Facts] = {}
_FACTS_BY_ID: dict[int, tuple[x509.Certificate, _Facts]] = {}  # holds the object: its id stays its own
_FACTS_MAX = 4096  # bounded: a peer sending novel certificates only ever refills it
_PARSED: dict[bytes, x509.Certificate] = {}


def load_der_certificate(der: bytes) -> x509.Certificate:
    """x509.load_der_x509_certificate, interned by the octets (raises ValueError the same way).

    A parsed certificate is immutable and a pure function of its DER, so a peer that sends the
    same certificate again gets the same object back, with its parsed public key and its facts
    (see _Facts): nothing about its validity is remembered here, only the parsing."""
    cert = _PARSED.get(der)
    if cert is None:
        cert = x509.load_der_x509_certificate(der)
        if len(_PARSED) >= _FACTS_MAX // 4:
            _PARSED.clear()
        _PARSED[bytes(der)] = cert
    return cert


Seen = dict[int, tuple[x509.Certificate, _Facts]]


def _facts_of(cert: x509.Certificate, seen: Seen) -> _Facts:
    """The shared facts of `cert` (looked up by value: certificates hash and compare by their DER),
    through `seen`, a per-validation map by object identity that spares the DER hashing (it holds
    the certificate, so an id is not reused while the map lives)."""
    hit = seen.get(id(cert))
    if hit is not None:
        return hit[1]
    hit = _FACTS_BY_ID.get(id(cert))
    if hit is not None and hit[0] is cert:
        f = hit[1]
    else:
        found = _FACTS.get(cert)
        if found is None:
            if len(_FACTS) >= _FACTS_MAX:
                _FACTS.clear()
            found = _FACTS[cert] = _Facts(cert)
        f = found
        if len(_FACTS_BY_ID) >= _FACTS_MAX:
            _FACTS_BY_ID.clear()
        _FACTS_BY_ID[id(cert)] = (cert, f)
    seen[id(cert)] = (cert, f)
    return f


class CrlRejected(ValueError):
    """A CRL that no configured CA vouches for (PathValidator.verify_crl); `reason` as in a Verdict."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class PathValidator:
    """Validates end-entity certificates against configured trust anchors.

    `intermediates` is a pool of CA certificates to build chains from (the store,
    plus what the peer sends); `crls` are checked for every certificate whose
    issuer has one; with `require_crl`, the end entity's issuer must have one
    (OpenSSL's -crl_check). `tolerate_stale_crl` uses a CRL past its nextUpdate
    (or before its thisUpdate) for what it lists instead of refusing the peer.
    `strict()` / `lenient()` are libreswan's crl-strict=yes / =no.
    """

    def __init__(self, router: Any, anchors: Iterable[x509.Certificate],
                 intermediates: Iterable[x509.Certificate] = (),
                 crls: Iterable[x509.CertificateRevocationList] = (), *, require_crl: bool = False,
                 tolerate_stale_crl: bool = False) -> None:
        self.router = router
        self.anchors = list(anchors)
        self.intermediates = list(intermediates)
        self.crls = list(crls)
        self.require_crl = require_crl
        self.tolerate_stale_crl = tolerate_stale_crl
        # facts of the configured (long-lived) certificates, by identity: see _seen()
        self._own: tuple[tuple[x509.Certificate | None, ...], Seen, frozenset[bytes]] | None = None

    def crl_strict(self, strict: bool) -> PathValidator:
        """libreswan's crl-strict: yes = a missing, expired or not-yet-valid CRL for the peer's issuer
        fails the peer; no = the peer passes unless a CRL we hold (stale or not) lists it."""
        self.require_crl = strict
        self.tolerate_stale_crl = not strict
        return self

    # --- path building ----------------------------------------------------------
    def _issuers(self, cert: x509.Certificate, pool: Sequence[x509.Certificate],
                 seen: Seen) -> list[x509.Certificate]:
        """Candidates by issuer name, narrowed by AKI/SKI when both are present; anchors first."""
        f = _facts_of(cert, seen)
        want = f.issuer
        aki = f.aki
        out: list[x509.Certificate] = []
        ders: set[bytes] = set()
        for cand in (*self.anchors, *pool):
            cf = _facts_of(cand, seen)
            der = cf.der
            if der in ders or cf.subject != want:
                continue
            ski = cf.ski
            if aki is not None and ski is not None and aki != ski:
                continue
            ders.add(der)
            out.append(cand)
        return out

    def _seen(self) -> tuple[Seen, frozenset[bytes]]:
        """A fresh per-validation map, seeded with the facts of our anchors and intermediates (looked
        up once, not re-hashed on every validation), and the anchors' DER set."""
        own = (*self.anchors, None, *self.intermediates)  # None marks where the anchors end
        cached = self._own
        if cached is None or len(cached[0]) != len(own) or any(
                a is not b for a, b in zip(cached[0], own, strict=True)):
            seen: Seen = {}
            ders = frozenset(_facts_of(a, seen).der for a in self.anchors)
            for c in self.intermediates:
                _facts_of(c, seen)
            cached = self._own = (own, seen, ders)
        return dict(cached[1]), cached[2]

    def _paths(self, path: list[x509.Certificate], pool: Sequence[x509.Certificate], seen: Seen,
               anchors: frozenset[bytes]) -> Iterator[tuple[list[x509.Certificate], Reason | None]]:
        """Every path from path[0] up, each ending at an anchor (reason None) or at a dead end.
        Certificates are compared by value (their DER), as `in` on certificates does."""
        top = path[-1]
        top_f = _facts_of(top, seen)
        if len(path) > 1 and top_f.der in anchors:
            yield path, None
            return
        if len(path) > MAX_PATH_DEPTH:
            yield path, Reason.PATH_TOO_LONG
            return
        found = False
        in_path = {_facts_of(c, seen).der for c in path}
        for issuer in self._issuers(top, pool, seen):
            if _facts_of(issuer, seen).der in in_path:
                continue
            found = True
            yield from self._paths([*path, issuer], pool, seen, anchors)
        if not found:
            if top_f.der in anchors:
                yield path, None  # the end entity is itself an anchor
            elif top_f.self_issued and len(path) > 1:
                yield path, Reason.UNTRUSTED_ROOT
            else:
                yield path, Reason.ISSUER_NOT_FOUND

    def validate(self, cert: x509.Certificate, now: datetime,
                 intermediates: Iterable[x509.Certificate] = (),
                 required_ca: x509.Name | None = None) -> Verdict:
        """Build and check a path for `cert` at time `now` (timezone-aware).

        `intermediates`: more CA certificates for this validation only (the peer's
        CERT payloads). `required_ca`: a CA that must appear in the path
        (libreswan's rightca=, see `resolve_required_ca` for %same).
        At most MAX_CANDIDATE_PATHS paths are tried, so a peer sending many
        same-named certificates cannot make path building explode."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        pool = [*self.intermediates, *intermediates]
        seen, anchor_ders = self._seen()
        # The common case first: the certificate's first issuer candidate is an anchor. That is the
        # first path the search below would try; when it validates, the answer is the same.
        issuers = self._issuers(cert, pool, seen)
        if issuers:
            direct = _facts_of(issuers[0], seen).der
            if direct in anchor_ders and direct != _facts_of(cert, seen).der:
                verdict = self._check_path([cert, issuers[0]], now, required_ca, seen)
                if verdict.ok:
                    return verdict
        first_failure: Verdict | None = None
        dead_end: Verdict | None = None
        paths = self._paths([cert], pool, seen, anchor_ders)
        for tried, (path, dead) in enumerate(paths):
            if tried >= MAX_CANDIDATE_PATHS:
                break
            if dead is not None:
                if dead_end is None:
                    dead_end = self._dead_end(path, dead)
                continue
            verdict = self._check_path(path, now, required_ca, seen)
            if verdict.ok:
                return verdict
            if first_failure is None:
                first_failure = verdict
        if first_failure is not None:
            return first_failure
        assert dead_end is not None
        return dead_end

    def _dead_end(self, path: list[x509.Certificate], reason: Reason) -> Verdict:
        top = path[-1]
        if reason is Reason.UNTRUSTED_ROOT:
            text = f"the chain ends at {describe(top)}, a root that is not a configured trust anchor"
        elif reason is Reason.PATH_TOO_LONG:
            text = f"no trust anchor within {MAX_PATH_DEPTH} certificates of {describe(path[0])}"
        else:
            text = (f"issuer '{name_string(top.issuer)}' of {describe(top)} is neither a trust anchor "
                    "nor a known intermediate")
        return Verdict(reason, text, tuple(path))

    # --- path checks -------------------------------------------------------------
    def _check_path(self, path: list[x509.Certificate], now: datetime,
                    required_ca: x509.Name | None, seen: Seen | None = None) -> Verdict:
        seen = {} if seen is None else seen
        facts = [_facts_of(c, seen) for c in path]
        try:
            if required_ca is not None:
                want = _dn_key(required_ca)
                if not any(f.subject == want for f in facts[1:]):
                    raise _Refusal(Reason.CA_MISMATCH,
                                   f"the chain of {facts[0].description} does not pass through the required CA "
                                   f"'{name_string(required_ca)}'")
            for f in facts:
                self._check_extensions_known(f)
                self._check_key(f)
                self._check_time(f, now)
            for i in range(1, len(facts)):
                self._check_ca(facts, i)
            self._check_end_entity(facts[0])
            self._check_name_constraints(facts)
            for i in range(len(path) - 1):
                self._check_signature(facts[i], facts[i + 1])
            self._check_crls(path, now)
        except _Refusal as r:
            return Verdict(r.reason, r.detail, tuple(path))
        return Verdict(Reason.VALID, f"{facts[0].description} chains to trust anchor {facts[-1].description} "
                       f"({len(path)} certificates)", tuple(path))

    def _check_extensions_known(self, f: _Facts) -> None:
        try:
            exts = f.extensions()
        except ValueError as e:
            raise _Refusal(Reason.MALFORMED, f"{f.description} has malformed extensions: {e}") from e
        unknown = f.derived("unknown-critical", lambda: next(
            (e.oid.dotted_string for e in exts if e.critical and e.oid not in _KNOWN_EXTENSIONS), None))
        if unknown is not None:
            raise _Refusal(Reason.UNKNOWN_CRITICAL_EXTENSION,
                           f"{f.description} has an unknown critical extension {unknown}")

    def _check_key(self, f: _Facts) -> None:
        try:
            spec = f.derived("key-spec", lambda: key_spec_of(f.cert.public_key()))
        except (ValueError, TypeError) as e:
            raise _Refusal(Reason.UNSUPPORTED_ALGORITHM, f"{f.description} has an unusable public key") from e
        try:
            self.router.policy.check_key(spec)  # the policy is asked every time
        except PolicyViolation as e:
            raise _Refusal(Reason.KEY_NOT_ALLOWED, f"{f.description}: {e}") from e

    def _check_time(self, f: _Facts, now: datetime) -> None:
        cert = f.cert
        not_before, not_after = f.derived("validity", lambda: (cert.not_valid_before_utc, cert.not_valid_after_utc))
        if now < not_before:
            raise _Refusal(Reason.NOT_YET_VALID,
                           f"{f.description} is not valid before {_ts(cert.not_valid_before_utc)} "
                           f"(now {_ts(now)})")
        if now > not_after:
            raise _Refusal(Reason.EXPIRED, f"{f.description} expired at {_ts(cert.not_valid_after_utc)} "
                           f"(now {_ts(now)})")

    def _check_ca(self, facts: list[_Facts], index: int) -> None:
        """RFC 5280 6.1.4 (k), (l), (m), (n) for the issuer at `index` (1 = the end entity's issuer)."""
        f = facts[index]
        bc = f.ext(x509.BasicConstraints)
        if bc is None and index == len(facts) - 1 and f.cert.version is x509.Version.v1:
            return  # a v1 root configured as a trust anchor: trusted by configuration (RFC 5280 6.1.1 (d))
        if bc is None or not bc.ca:
            raise _Refusal(Reason.NOT_A_CA, f"{f.description} issues certificates but is not a CA "
                           f"(basicConstraints {'absent' if bc is None else 'CA:FALSE'})")
        ku = f.ext(x509.KeyUsage)
        if ku is not None and not ku.key_cert_sign:
            raise _Refusal(Reason.CA_KEY_USAGE, f"CA {f.description} lacks keyUsage keyCertSign")
        if bc.path_length is not None:
            # intermediate CAs below this one, self-issued ones not counted (6.1.4 (l))
            below = sum(1 for c in facts[1:index] if not c.self_issued)
            if below > bc.path_length:
                raise _Refusal(Reason.PATH_LENGTH_EXCEEDED,
                               f"CA {f.description} allows {bc.path_length} intermediate CA(s) below it "
                               f"(pathlen), the chain has {below}")

    def _check_end_entity(self, f: _Facts) -> None:
        ku = f.ext(x509.KeyUsage)
        # RFC 4945 5.1.3.2: digitalSignature (or nonRepudiation) when KeyUsage is present.
        if ku is not None and not (ku.digital_signature or ku.content_commitment):
            raise _Refusal(Reason.END_ENTITY_KEY_USAGE,
                           f"{f.description} has keyUsage without digitalSignature: it cannot sign IKE AUTH")
        eku_ok = f.derived("ike-eku", lambda: (lambda eku: eku is None or bool(
            {o.dotted_string for o in eku} & _IKE_EKUS))(f.ext(x509.ExtendedKeyUsage)))
        if not eku_ok:
            raise _Refusal(Reason.END_ENTITY_EXTENDED_KEY_USAGE,
                           f"{f.description} has an extendedKeyUsage that allows neither IKE, serverAuth "
                           "nor clientAuth")

    def _check_name_constraints(self, facts: list[_Facts]) -> None:
        for i in range(len(facts) - 1, 0, -1):
            nc = facts[i].ext(x509.NameConstraints)
            if nc is None:
                continue
            for sub in facts[:i]:
                if sub is not facts[0] and sub.self_issued:
                    continue  # RFC 5280 6.1.3 (b): self-issued intermediates are exempt
                problem = name_constraint_violation(nc, sub.cert)
                if problem:
                    raise _Refusal(Reason.NAME_CONSTRAINTS,
                                   f"{sub.description} violates the name constraints of {facts[i].description}: "
                                   f"{problem}")

    def _verify_signed(self, der: bytes | tuple[bytes, bytes], signature: bytes, issuer: x509.Certificate,
                       what: str, bad: Reason) -> None:
        """`der`: the signed structure, or its (tbs, signatureAlgorithm) parts already split."""
        if isinstance(der, tuple):
            tbs, alg_der = der
        else:
            try:
                tbs, alg_der = signed_parts(der)
            except DerError as e:
                raise _Refusal(Reason.MALFORMED, f"{what} is not a well-formed signed structure") from e
        try:
            scheme = algorithm_identifier.decode(alg_der)
        except algorithm_identifier.UnsupportedAlgorithmIdentifier as e:
            raise _Refusal(Reason.UNSUPPORTED_ALGORITHM, f"{what}: {e}") from e
        policy = self.router.policy
        if not policy.allows_signature(scheme, verify=True):
            raise _Refusal(Reason.SIGNATURE_ALGORITHM_NOT_ALLOWED,
                           f"{what} is signed with {scheme.value}, refused by the {policy.profile} profile")
        try:
            ok = self.router.verify(issuer.public_key(), scheme, tbs, signature)
        except PolicyViolation as e:
            raise _Refusal(Reason.SIGNATURE_ALGORITHM_NOT_ALLOWED, f"{what}: {e}") from e
        except (ProviderError, ValueError, TypeError) as e:
            raise _Refusal(bad, f"{what}: signature check failed ({type(e).__name__})") from e
        if not ok:
            raise _Refusal(bad, f"the signature on {what} does not verify with the key of {describe(issuer)}")

    def _check_signature(self, f: _Facts, issuer: _Facts) -> None:
        """The issuer's signature on the certificate, verified afresh every time (the parsing is shared)."""
        what = f"certificate {f.description}"
        try:
            parts = f.signed_parts()
        except DerError as e:
            raise _Refusal(Reason.MALFORMED, f"{what} is not a well-formed signed structure") from e
        self._verify_signed(parts, f.cert.signature, issuer.cert, what, Reason.BAD_SIGNATURE)

    # --- revocation (RFC 5280 6.3, simplified: full CRLs from the certificate's issuer) --
    def _check_crls(self, path: list[x509.Certificate], now: datetime) -> None:
        if not self.crls and not self.require_crl:
            return
        for i in range(len(path) - 1):
            cert, issuer = path[i], path[i + 1]
            crls = [c for c in self.crls if _dn_key(c.issuer) == _dn_key(cert.issuer)]
            if not crls:
                if i == 0 and self.require_crl:
                    raise _Refusal(Reason.CRL_UNAVAILABLE,
                                   f"no CRL from '{name_string(cert.issuer)}' for {describe(cert)}")
                continue
            crl = self._pick_crl(crls, issuer, now)
            entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
            if entry is not None:
                raise _Refusal(Reason.REVOKED, f"{describe(cert)} (serial {cert.serial_number:#x}) was revoked "
                               f"at {_ts(entry.revocation_date_utc)} by '{name_string(crl.issuer)}'")

    def _pick_crl(self, crls: list[x509.CertificateRevocationList], issuer: x509.Certificate,
                  now: datetime) -> x509.CertificateRevocationList:
        """The newest CRL that verifies and is current (or, tolerating stale CRLs, the newest that
        verifies); else the first problem found."""
        problem: _Refusal | None = None
        stale: x509.CertificateRevocationList | None = None
        for crl in sorted(crls, key=lambda c: c.last_update_utc, reverse=True):
            what = f"the CRL of '{name_string(crl.issuer)}'"
            try:
                self._check_crl_signed(crl, issuer)
                if now < crl.last_update_utc:
                    raise _Refusal(Reason.CRL_NOT_YET_VALID,
                                   f"{what} is not valid before {_ts(crl.last_update_utc)}")
                if crl.next_update_utc is not None and now > crl.next_update_utc:
                    raise _Refusal(Reason.CRL_EXPIRED,
                                   f"{what} expired at {_ts(crl.next_update_utc)} (nextUpdate)")
                return crl
            except _Refusal as r:
                if r.reason in (Reason.CRL_EXPIRED, Reason.CRL_NOT_YET_VALID) and stale is None:
                    stale = crl
                problem = problem or r
        if stale is not None and self.tolerate_stale_crl:
            return stale  # what it lists was revoked all the same; only its freshness is in doubt
        assert problem is not None
        raise problem

    def _check_crl_signed(self, crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> None:
        """The issuer may sign CRLs and did sign this one; the CRL has no critical extension we skip."""
        what = f"the CRL of '{name_string(crl.issuer)}'"
        ku = _ext(issuer, x509.KeyUsage)
        if ku is not None and not ku.crl_sign:
            raise _Refusal(Reason.CRL_ISSUER_KEY_USAGE, f"{describe(issuer)} lacks keyUsage cRLSign")
        self._verify_signed(crl.public_bytes(_DER), crl.signature, issuer, what, Reason.CRL_BAD_SIGNATURE)
        try:
            unknown = [e.oid.dotted_string for e in crl.extensions
                       if e.critical and e.oid not in _KNOWN_CRL_EXTENSIONS]
        except ValueError as e:
            raise _Refusal(Reason.MALFORMED, f"{what} has malformed extensions") from e
        if unknown:
            raise _Refusal(Reason.CRL_UNSUPPORTED,
                           f"{what} has critical extension(s) {', '.join(unknown)} we do not process")

    def verify_crl(self, crl: x509.CertificateRevocationList) -> x509.Certificate:
        """The configured CA (anchor or intermediate) that issued and signed `crl`, found by name and
        authority key identifier; raises CrlRejected. Freshness is not judged here (see crl_strict)."""
        want = _dn_key(crl.issuer)
        try:
            aki_ext = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            aki = aki_ext.key_identifier
        except x509.ExtensionNotFound:
            aki = None
        except ValueError as e:
            raise CrlRejected(Reason.MALFORMED, f"the CRL of '{name_string(crl.issuer)}' has malformed "
                              "extensions") from e
        seen, _ = self._seen()
        problem: _Refusal | None = None
        for cand in (*self.anchors, *self.intermediates):
            f = _facts_of(cand, seen)
            if f.subject != want or (aki is not None and f.ski is not None and f.ski != aki):
                continue
            try:
                self._check_crl_signed(crl, cand)
                return cand
            except _Refusal as r:
                problem = problem or r
        if problem is not None:
            raise CrlRejected(problem.reason, problem.detail)
        raise CrlRejected(Reason.ISSUER_NOT_FOUND, f"the CRL of '{name_string(crl.issuer)}' is from no "
                          "configured CA")


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# --- name constraints (RFC 5280 4.2.1.10) -------------------------------------------
def _dns_in(name: str, base: str) -> bool:
    name, base = name.lower().rstrip("."), base.lower().rstrip(".")
    if base.startswith("."):
        return name.endswith(base)
    return name == base or name.endswith("." + base)


def _email_in(addr: str, base: str) -> bool:
    addr, base = addr.lower(), base.lower()
    if "@" in base:
        return addr == base
    host = addr.rpartition("@")[2]
    if base.startswith("."):
        return host.endswith(base)
    return host == base


def _dn_in(name: x509.Name, base: x509.Name) -> bool:
    have, want = _dn_key(name), _dn_key(base)
    return isinstance(have, tuple) and have[:len(want)] == want


def _ip_in(addr: Any, net: Any) -> bool:
    return isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network) and addr.version == net.version \
        and addr in net


def _names_of(cert: x509.Certificate) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DirectoryName(cert.subject)] if len(cert.subject) else []
    san = _ext(cert, x509.SubjectAlternativeName)
    if san is not None:
        names.extend(san)
    # RFC 5280 4.2.1.10: emailAddress attributes in the subject are rfc822Name constraints' business too
    names.extend(x509.RFC822Name(a.value) for a in cert.subject.get_attributes_for_oid(
        x509.NameOID.EMAIL_ADDRESS) if isinstance(a.value, str))
    return names


def _within(name: x509.GeneralName, base: x509.GeneralName) -> bool | None:
    """True/False when the base applies to this name's type, None when it does not."""
    if isinstance(name, x509.DNSName) and isinstance(base, x509.DNSName):
        return _dns_in(name.value, base.value)
    if isinstance(name, x509.RFC822Name) and isinstance(base, x509.RFC822Name):
        return _email_in(name.value, base.value)
    if isinstance(name, x509.IPAddress) and isinstance(base, x509.IPAddress):
        return _ip_in(name.value, base.value)
    if isinstance(name, x509.DirectoryName) and isinstance(base, x509.DirectoryName):
        return _dn_in(name.value, base.value)
    if type(name) is type(base):
        return None  # a type we do not evaluate (URI, otherName...)
    return None


def name_constraint_violation(nc: x509.NameConstraints, cert: x509.Certificate) -> str:
    """'' when `cert`'s names satisfy `nc`, else what breaks it."""
    permitted = list(nc.permitted_subtrees or [])
    excluded = list(nc.excluded_subtrees or [])
    supported = (x509.DNSName, x509.RFC822Name, x509.IPAddress, x509.DirectoryName)
    for name in _names_of(cert):
        for base in excluded:
            if _within(name, base):
                return f"{_gn(name)} is in the excluded subtree {_gn(base)}"
        same_type = [b for b in permitted if type(b) is type(name)]
        if not same_type:
            continue
        if not isinstance(name, supported):
            return f"cannot evaluate name constraints on {_gn(name)}"
        if not any(_within(name, b) for b in same_type):
            return f"{_gn(name)} is outside the permitted subtrees"
    return ""


def _gn(n: x509.GeneralName) -> str:
    if isinstance(n, x509.DirectoryName):
        return f"DN '{name_string(n.value)}'"
    return f"{type(n).__name__} {n.value}"


def resolve_required_ca(value: str, own_cert_issuer: x509.Name | None) -> x509.Name | None:
    """libreswan's rightca=: '%same' is the CA that issued our own certificate;
    a DN string names the CA; '' or '%any' means no requirement."""
    v = value.strip()
    if v in ("", "%any"):
        return None
    if v == "%same":
        if own_cert_issuer is None:
            raise ValueError("rightca=%same needs our own certificate (leftcert=)")
        return own_cert_issuer
    return parse_dn(v)


def load_crls(paths: Iterable[str]) -> list[x509.CertificateRevocationList]:
    out: list[x509.CertificateRevocationList] = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        if b"-----BEGIN X509 CRL-----" in data:
            out.append(x509.load_pem_x509_crl(data))
        else:
            out.append(x509.load_der_x509_crl(data))
    return out


def utcnow() -> datetime:
    return datetime.now(UTC)
