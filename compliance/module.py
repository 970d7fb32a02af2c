"""Start-up of the cryptographic module: run the pre-operational self-tests, reach operational.

Every entry point that uses cryptography (`fipsike selftest`, `fipsike import`, `fipsike cert
verify`, the daemon) calls `startup()` first and uses only the router it returns:

    try:
        module = compliance.startup(fips_mode=args.fips_mode)
    except compliance.StartupError as exc:
        print(f"fipsike import: {exc}", file=sys.stderr)
        return exc.exit_status
    router = module.router

On any failure the module is left in the error state (the router refuses every call) and
StartupError names the failing tests. `module.rerun()` runs them again on demand.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compliance import algtable, availability, integrity, invariants, kats
from compliance.modes import (
    NO_VALIDATED_MODULE,
    FipsMode,
    FipsProviderStatus,
    ModeDecision,
    fips_provider_status,
    resolve_mode,
)
from compliance.state import ModuleState, ModuleStateMachine
from providers.errors import ModuleNotOperational, ProviderError
from providers.pkcs11.config import Pkcs11Config
from providers.router import Router, open_router

PASS, FAIL, NOT_RUN, DISABLED = "pass", "fail", "not-run", "disabled"
EXIT_SELFTEST_FAILED = 3


@dataclass
class TestResult:
    name: str
    kind: str  # kat, pct, integrity, algorithm-table, invariant, fips-provider
    algorithm: str
    provider: str
    provider_version: str
    source: str
    result: str  # pass, fail, not-run, disabled (the algorithm is not offered: degraded operation)
    duration_ms: float
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "algorithm": self.algorithm, "provider": self.provider,
                "provider_version": self.provider_version, "vector_source": self.source, "result": self.result,
                "duration_ms": round(self.duration_ms, 3), "detail": self.detail}


@dataclass
class SelfTestReport:
    mode: ModeDecision
    profile: str
    started: str
    finished: str = ""
    state: str = ""
    state_reason: str = ""
    providers: list[dict[str, Any]] = field(default_factory=list)
    fips_provider: FipsProviderStatus | None = None
    results: list[TestResult] = field(default_factory=list)
    table_rows: list[algtable.RowCheck] = field(default_factory=list)
    invariant_results: list[invariants.InvariantResult] = field(default_factory=list)
    statement: str = ""
    disabled: dict[str, str] = field(default_factory=dict)  # transform name -> why

    def failures(self) -> list[TestResult]:
        fatal = {FAIL, NOT_RUN} if self.mode.mode is FipsMode.REQUIRED else {FAIL}
        return [r for r in self.results if r.result in fatal]

    @property
    def passed(self) -> bool:
        return not self.failures()


class StartupError(Exception):
    """The module did not reach the operational state; the message names why."""

    exit_status = EXIT_SELFTEST_FAILED

    def __init__(self, message: str, report: SelfTestReport | None = None) -> None:
        self.report = report
        super().__init__(message)


def _clock() -> float:
    return time.perf_counter()


def _identity(p: Any) -> tuple[str, str]:
    info = p.info()
    return str(info.name), str(info.version)


def _record(report: SelfTestReport, name: str, kind: str, algorithm: str, provider: tuple[str, str],
            source: str, fn: Callable[[], str | None]) -> TestResult:
    """Run one test; a wrong answer or any error is a failure named in the report."""
    t0 = _clock()
    result, detail = PASS, ""
    try:
        detail = fn() or ""
    except kats.NotSupportedHere as exc:
        result, detail = NOT_RUN, str(exc)
    except (kats.SelfTestFailure, integrity.IntegrityError) as exc:
        result, detail = FAIL, f"wrong answer: {exc}"
    except ProviderError as exc:
        result, detail = FAIL, f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a crash inside a self-test is a failed self-test
        result, detail = FAIL, f"{type(exc).__name__} raised"
    r = TestResult(name, kind, algorithm, provider[0], provider[1], source, result, (_clock() - t0) * 1000, detail)
    report.results.append(r)
    return r


class _TokenView:
    """The router, with long-term keys placed on the PKCS#11 token: the token's self-tests take
    exactly the path the daemon's IKE_AUTH signatures take. The token stores key pairs as token
    objects, so every pair made here gets a unique CKA_ID and is destroyed after its test."""

    def __init__(self, router: Router) -> None:
        self._router = router
        self._made: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)

    def _key_id(self) -> bytes:
        return b"fipsike-selftest-" + self._router.random(8)

    def import_private_key(self, private_key: Any, label: str = "", key_id: bytes = b"",
                           to_token: bool = True) -> Any:
        key = self._router.import_private_key(private_key, label, self._key_id(), to_token=True)
        self._made.append(key)
        return key

    def import_pkcs8(self, der: bytes, label: str = "", key_id: bytes = b"", to_token: bool = True) -> Any:
        key = self._router.import_pkcs8(der, label, self._key_id(), to_token=True)
        self._made.append(key)
        return key

    def generate_keypair(self, spec: Any, label: str = "", key_id: bytes = b"", to_token: bool = True) -> Any:
        key = self._router.generate_keypair(spec, label, self._key_id(), to_token=True)
        self._made.append(key)
        return key

    def cleanup(self) -> None:
        token = self._router.pkcs11
        while self._made:
            key = self._made.pop()
            if token is not None and key.key_id.startswith(b"fipsike-selftest-"):
                token.destroy_key(key)


def _bind(k: kats.Kat, p: Any, vec: Any) -> Callable[[], None]:
    def run() -> None:
        k.run(p, vec)
    return run


_TOKEN_KATS = ("kat-rsa-pss-sha256-sign", "kat-ecdsa-p-256-sign", "kat-ecdsa-p-384-sign")
_TOKEN_PCTS = ("pct-rsa-2048", "pct-ecdsa-secp256r1")


def run_self_tests(router: Router, machine: ModuleStateMachine, mode: ModeDecision, *,
                   config: invariants.InvariantConfig | None = None,
                   vectors: dict[str, Any] | None = None,
                   integrity_root: Path | None = None, manifest: Path | None = None,
                   env: Mapping[str, str] | None = None,
                   only: Iterable[str] | None = None) -> SelfTestReport:
    """All pre-operational self-tests through `router`; ends in operational or error."""
    report = SelfTestReport(mode, router.policy.profile, datetime.now(UTC).isoformat(timespec="seconds"))
    machine.to(ModuleState.SELF_TEST, f"pre-operational self-tests ({mode.mode.value} mode)")
    vectors = vectors if vectors is not None else kats.load_vectors()
    # Without a daemon configuration the invariants still run (over the built-in defaults, which
    # must satisfy them too), but the report must not suggest a deployment's settings were checked.
    over = ("checked over the daemon configuration given" if config is not None else
            "checked over fipsike's built-in defaults (no daemon configuration given)")
    config = config or invariants.InvariantConfig()
    wanted = set(only) if only is not None else None
    ossl = _identity(router.openssl)
    report.providers = [dict(p.info().__dict__) for p in router.providers()]
    for p in report.providers:
        p["detail"] = dict(p.get("detail", {}))
        p["mechanisms"] = list(p.get("mechanisms", ()))

    # 1. the FIPS provider (required mode), or the plain statement (policy mode)
    status = fips_provider_status(router, env)
    report.fips_provider = status
    if mode.mode is FipsMode.REQUIRED:
        def fips_check() -> str:
            if status.problem:
                raise kats.SelfTestFailure(status.problem)
            return f"OpenSSL FIPS provider active ({status.openssl_version}, OPENSSL_CONF={status.openssl_conf})"
        _record(report, "fips-provider-active", "fips-provider", "OpenSSL FIPS provider", ossl,
                "cryptography is_fips_enabled() under OPENSSL_CONF", fips_check)
        report.statement = ("required mode: the OpenSSL FIPS provider must be active and every self-test "
                            "must pass; that provider is a validated module only if it is a CMVP-certified "
                            "OpenSSL built and configured per its security policy")
    else:
        report.statement = NO_VALIDATED_MODULE if mode.mode is FipsMode.POLICY else \
            "FIPS mode off: the default profile; no FIPS claim of any kind"

    # 2. what the OpenSSL underneath can do: the rest is disabled (degraded operation, 7.11)
    def availability_check() -> str:
        disabled = availability.restrict(router)
        report.disabled = {getattr(a, "name", str(a)): why for (_, a), why in disabled.items()}
        if not disabled:
            return "every allowlisted transform is available"
        return "disabled: " + "; ".join(f"{n}: {w}" for n, w in report.disabled.items())
    _record(report, "algorithm-availability", "algorithm-table", f"{router.policy.profile} allowlist", ossl,
            "FIPS 140-3 section 7.11 (degraded operation); providers.policy", availability_check)
    disabled_now: dict[tuple[str, Any], str] = getattr(router.policy, "disabled", {})

    def skip(k: kats.Kat) -> str:
        for req in k.requires:
            if req in disabled_now:
                return f"{getattr(req[1], 'name', req[1])} is disabled: {disabled_now[req]}"
        return ""

    # 3. software integrity
    mpath = manifest or integrity.default_manifest(integrity_root)

    def integrity_check() -> str:
        # a manifest named explicitly must be there: only the default one may be absent (not run)
        if manifest is None and not mpath.exists() and mode.mode is not FipsMode.REQUIRED:
            raise kats.NotSupportedHere(f"no integrity manifest at {mpath} "
                                        "(write one at install time: fipsike selftest --write-manifest)")
        res = integrity.verify(router, integrity_root, mpath)
        return f"{res.files} files match {res.manifest}"
    if wanted is None or "software-integrity" in wanted:
        _record(report, "software-integrity", "integrity", "HMAC-SHA2-256", ossl,
                "FIPS 140-3 section 7.10.2; manifest written at install time", integrity_check)

    # 4. KATs through the router (OpenSSL), then the token's
    catalogue = kats.catalogue(vectors)
    pcts = kats.pct_catalogue()
    for k in catalogue + pcts:
        if wanted is not None and k.name not in wanted:
            continue
        kind = "kat" if k.name.startswith("kat-") else "pct"
        why = skip(k)
        if why:
            report.results.append(TestResult(k.name, kind, k.algorithm, ossl[0], ossl[1], k.source, DISABLED,
                                             0.0, why))
            continue
        vec = kats.lookup(vectors, k.vector_key) if k.vector_key else {}
        _record(report, k.name, kind, k.algorithm, ossl, k.source, _bind(k, router, vec))
    if router.pkcs11 is not None:
        token = _TokenView(router)
        tok = _identity(router.pkcs11)
        for k in catalogue + pcts:
            if k.name not in _TOKEN_KATS + _TOKEN_PCTS or (wanted is not None and k.name not in wanted):
                continue
            vec = kats.lookup(vectors, k.vector_key) if k.vector_key else {}
            try:
                _record(report, f"{k.name}@token", k.name.split("-")[0], k.algorithm, tok, k.source,
                        _bind(k, token, vec))
            finally:
                token.cleanup()

    # 5. the algorithm table
    def table_check() -> str:
        report.table_rows = algtable.check_table(router)
        bad = [r for r in report.table_rows if not r.ok]
        if bad:
            raise kats.SelfTestFailure("; ".join(f"{r.name}: expected {r.expected}, got {r.observed}"
                                                 for r in bad[:4]))
        return f"{len(report.table_rows)} rows of the {router.policy.profile} profile behave as listed"
    if wanted is None or "algorithm-table" in wanted:
        _record(report, "algorithm-table", "algorithm-table", f"{router.policy.profile} allowlist", ossl,
                "providers.policy (NIST SP 800-131A r2, RFC 8221, RFC 8247)", table_check)

    # 6. the policy invariants of FIPS mode
    if wanted is None or any(n.startswith("invariant-") for n in wanted):
        report.invariant_results = invariants.check_invariants(config, router)
        for inv in report.invariant_results:
            if wanted is not None and f"invariant-{inv.name}" not in wanted:
                continue
            source = f"{inv.source}; {over}"
            if mode.mode is FipsMode.OFF:
                report.results.append(TestResult(f"invariant-{inv.name}", "invariant", inv.name, "fipsike", "",
                                                 source, NOT_RUN, 0.0,
                                                 f"not enforced with FIPS mode off ({inv.detail}; {over})"))
                continue

            def inv_check(inv: invariants.InvariantResult = inv) -> str:
                if not inv.ok:
                    raise kats.SelfTestFailure(f"{inv.detail} ({over})")
                return f"{inv.detail} ({over})"
            _record(report, f"invariant-{inv.name}", "invariant", inv.name, ("fipsike", ""), source, inv_check)

    report.finished = datetime.now(UTC).isoformat(timespec="seconds")
    failures = report.failures()
    if failures:
        machine.fail("self-test failed: " + ", ".join(f.name for f in failures))
    else:
        machine.to(ModuleState.OPERATIONAL, f"self-tests passed ({mode.mode.value} mode)")
    report.state, report.state_reason = machine.state.value, machine.reason
    return report


@dataclass
class OperationalModule:
    """The router in the operational state, with what it took to get there."""

    router: Router
    machine: ModuleStateMachine
    report: SelfTestReport
    config: invariants.InvariantConfig | None  # None: no daemon configuration (built-in defaults)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> ModeDecision:
        return self.report.mode

    def rerun(self) -> SelfTestReport:
        """Run the self-tests again on demand (FIPS 140-3 7.10.1: periodic / on-demand)."""
        self.report = run_self_tests(self.router, self.machine, self.report.mode, config=self.config,
                                     **self.options)
        return self.report

    def conditional_pct(self, key: Any) -> None:
        """The conditional pairwise consistency test for a key pair generated or imported after
        start-up (FIPS 140-3 IG 10.3.A): a failure puts the module in error."""
        try:
            kats.signature_pct(self.router, key)
        except (kats.SelfTestFailure, ProviderError) as exc:
            self.machine.fail(f"conditional pairwise consistency test failed for {key.spec}")
            raise ModuleNotOperational(ModuleState.ERROR.value, f"pairwise consistency test failed: {exc}") \
                from None

    def generate_keypair(self, spec: Any, label: str = "", key_id: bytes = b"", to_token: bool = False) -> Any:
        try:
            key = self.router.generate_keypair(spec, label, key_id, to_token=to_token)
        except ProviderError as exc:
            if type(exc).__name__ == "PairwiseConsistencyFailure":
                self.machine.fail(f"pairwise consistency test failed while generating {spec}")
            raise
        self.conditional_pct(key)
        return key


def describe_failures(report: SelfTestReport) -> str:
    failures = report.failures()
    names = ", ".join(f"{f.name} ({f.detail})" if f.detail else f.name for f in failures[:5])
    more = f" and {len(failures) - 5} more" if len(failures) > 5 else ""
    return (f"cryptographic self-tests failed, module in error state; refusing to continue: {names}{more}")


def startup(fips_mode: str | None = None, *, config_mode: str | None = None, pkcs11: Pkcs11Config | None = None,
            config: invariants.InvariantConfig | None = None, env: Mapping[str, str] | None = None,
            router: Router | None = None, **options: Any) -> OperationalModule:
    """Resolve the FIPS mode, open the router, run every pre-operational self-test.

    Returns the operational module, or raises StartupError (the router then refuses every call).
    In `required` mode a missing or wrong OPENSSL_CONF fails the fips-provider-active test, so the
    module never becomes operational on a quietly non-FIPS OpenSSL.
    """
    decision = resolve_mode(fips_mode, env, config_mode)
    if router is None:
        router = open_router(profile=decision.profile, pkcs11=pkcs11)
    elif router.policy.profile != decision.profile:
        raise StartupError(f"FIPS mode {decision.mode.value} needs the {decision.profile} profile, "
                           f"the router has {router.policy.profile}")
    machine = ModuleStateMachine(router.gate)
    report = run_self_tests(router, machine, decision, config=config, env=env, **options)
    if not report.passed:
        raise StartupError(describe_failures(report), report)
    return OperationalModule(router, machine, report, config, dict(options, env=env))


def module_identity() -> dict[str, str]:
    try:
        from importlib.metadata import version

        ver = version("fipsike")
    except Exception:  # noqa: BLE001 - running from a source tree
        ver = "0.1.0 (source tree)"
    return {"name": "fipsike cryptographic module (providers/)", "version": ver,
            "host": socket.gethostname(), "operator": _operator()}


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001
        return "unknown"
