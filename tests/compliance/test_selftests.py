"""The self-tests in process: all pass on the real router; each injected fault fails the run, names
the test, puts the module in error and the router then refuses every call."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from compliance import kats
from compliance.invariants import ConnLimits, InvariantConfig
from compliance.modes import FipsMode, ModeDecision
from compliance.module import DISABLED, FAIL, PASS, OperationalModule, StartupError, run_self_tests, startup
from compliance.state import IllegalTransition, ModuleState, ModuleStateMachine
from providers import KeySpec, ModuleNotOperational, PolicyViolation, Prf, Router, SignatureScheme, open_router
from providers.algorithms import KeyExchange
from providers.errors import UnsupportedOperation
from providers.handles import KeyShare, SecretKey
from providers.openssl import OpenSSLProvider
from providers.policy import Policy

POLICY = ModeDecision(FipsMode.POLICY, "test")


def _refuses_everything(router: Router) -> None:
    with pytest.raises(ModuleNotOperational):
        router.digest(kats.HashAlg.SHA256, b"x")
    with pytest.raises(ModuleNotOperational):
        router.import_secret(b"k" * 32, "x")
    with pytest.raises(ModuleNotOperational):
        router.ke_generate(kats.KeyExchange.ECP_256)


def test_every_test_passes_through_the_router() -> None:
    module = startup("policy", env={})
    rep = module.report
    assert rep.passed and module.machine.state is ModuleState.OPERATIONAL
    names = {r.name for r in rep.results if r.result == PASS}
    for expected in ("kat-aes-gcm-256-encrypt", "kat-aes-gcm-256-decrypt", "kat-aes-cbc-256-encrypt",
                     "kat-hmac-sha2-256", "kat-hmac-sha2-384", "kat-hmac-sha2-512", "kat-ikev2-kdf-skeyseed",
                     "kat-ikev2-kdf-prf+", "kat-ikev2-kdf-child", "kat-ikev2-kdf-rekey", "kat-ecdh-ecp-256",
                     "kat-ecdh-ecp-384", "kat-modp-3072", "kat-ml-kem-768", "kat-rsa-pss-sha256-verify",
                     "kat-rsa-pss-sha256-sign", "kat-ecdsa-p-256-verify", "kat-ecdsa-p-256-sign", "pct-rsa-2048",
                     "pct-ecdsa-secp256r1", "algorithm-table", "invariant-rsa-min-2048"):
        assert expected in names
    for r in rep.results:
        assert r.source and r.provider and r.duration_ms >= 0
    # the router works now
    assert len(module.router.digest(kats.HashAlg.SHA256, b"abc")) == 32


def test_every_vector_names_its_source() -> None:
    v = kats.load_vectors()
    for k in kats.catalogue(v):
        assert len(k.source) > 10, k.name
        assert any(w in k.source for w in ("RFC", "NIST", "FIPS", "Wycheproof", "fixed")), k.name


@pytest.mark.parametrize(("name", "field"), [
    ("kat-aes-gcm-256-encrypt", ("aes_gcm", 1, "ciphertext")),
    ("kat-aes-gcm-128-decrypt", ("aes_gcm", 0, "plaintext")),
    ("kat-hmac-sha2-384", ("hmac", "sha384")),
    ("kat-ikev2-kdf-skeyseed", ("ikev2_kdf", "skeyseed")),
    ("kat-ikev2-kdf-child", ("ikev2_kdf", "dkm_child")),
    ("kat-ikev2-kdf-rekey", ("ikev2_kdf", "skeyseed_rekey")),
    ("kat-ecdh-ecp-256", ("ecdh", "ECP_256", "shared")),
    ("kat-modp-3072", ("modp_3072", "shared")),
    ("kat-ml-kem-768", ("ml_kem_768", "ss")),
    ("kat-ecdsa-p-256-verify", ("ecdsa", "P-256", "signature")),
    ("kat-rsa-pss-sha256-verify", ("rsa_pss", "signature")),
])
def test_a_corrupted_known_answer_fails_and_locks_the_module(name: str, field: tuple[Any, ...]) -> None:
    vectors = copy.deepcopy(kats.load_vectors())
    node: Any = vectors
    for part in field[:-1]:
        node = node[part]
    value = node[field[-1]]
    node[field[-1]] = value[:-2] + ("00" if value[-2:] != "00" else "01")  # one octet off
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, vectors=vectors)
    assert name in str(info.value)
    assert "error state" in str(info.value)
    rep = info.value.report
    assert rep is not None and rep.state == "ERROR"
    failed = [r.name for r in rep.results if r.result == FAIL]
    # one wrong octet fails the tests that read it (encrypt and decrypt share a vector), nothing else
    assert name in failed and len(failed) <= 2, failed
    assert all(f.rsplit("-", 1)[0] == name.rsplit("-", 1)[0] for f in failed), failed


def test_error_state_refuses_every_call_and_rerun_recovers() -> None:
    router = open_router("fips")
    machine = ModuleStateMachine(router.gate)
    vectors = copy.deepcopy(kats.load_vectors())
    vectors["sha2"]["sha256"] = "00" * 32
    rep = run_self_tests(router, machine, POLICY, vectors=vectors, env={})
    assert not rep.passed and machine.state is ModuleState.ERROR
    assert "kat-sha2-256" in machine.reason
    _refuses_everything(router)
    # on-demand re-run with good vectors: the gate's rule, leave error only through a passing run
    rep = run_self_tests(router, machine, POLICY, env={})
    assert rep.passed and machine.state is ModuleState.OPERATIONAL
    assert [t.target for t in machine.history] == [ModuleState.SELF_TEST, ModuleState.ERROR,
                                                    ModuleState.SELF_TEST, ModuleState.OPERATIONAL]


def test_illegal_transitions_are_refused() -> None:
    machine = ModuleStateMachine(open_router("fips").gate)
    with pytest.raises(IllegalTransition):
        machine.to(ModuleState.OPERATIONAL, "skipping the self-tests")
    machine.fail("boom")
    with pytest.raises(IllegalTransition):
        machine.to(ModuleState.OPERATIONAL, "straight out of error")
    machine.fail("again")  # idempotent
    assert machine.reason == "boom"


class BrokenSigner(Router):
    """Fault injection: signatures over the PCT message come out corrupted."""

    def sign(self, key: Any, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes:
        sig = super().sign(key, scheme, data, raw)
        if data == kats.PCT_MESSAGE:
            return sig[:-1] + bytes([sig[-1] ^ 0x01])
        return sig


def test_a_failing_pairwise_consistency_test_locks_the_module() -> None:
    router = BrokenSigner(Policy("fips"))
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, router=router)
    assert "pct-rsa-2048" in str(info.value) and "pct-ecdsa-secp256r1" in str(info.value)
    _refuses_everything(router)


def test_conditional_pct_after_startup_enters_error() -> None:
    router = BrokenSigner(Policy("fips"))
    machine = ModuleStateMachine(router.gate)
    only = ["kat-sha2-256", "kat-hmac-sha2-256"]
    rep = run_self_tests(router, machine, POLICY, env={}, only=only)
    assert rep.passed
    module = OperationalModule(router, machine, rep, InvariantConfig())
    with pytest.raises(ModuleNotOperational):
        module.generate_keypair(KeySpec("ec", 256, "secp256r1"))
    assert machine.state is ModuleState.ERROR and "pairwise" in machine.reason
    _refuses_everything(router)


def test_policy_invariant_violation_fails_in_fips_modes_only() -> None:
    bad = InvariantConfig(conns=(ConnLimits("road", ike_lifetime_s=25 * 3600, child_lifetime_s=9 * 3600,
                                            ike="ike=aes-sha1;modp2048", shunt="passthrough"),),
                          key_specs=(KeySpec("rsa", 1024),), key_logging=True)
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, config=bad)
    assert info.value.report is not None
    msg = " ".join(f.name for f in info.value.report.failures())
    assert "invariant-no-passthrough-shunts" in str(info.value)
    for name in ("invariant-no-passthrough-shunts", "invariant-ike-sa-lifetime-max-24h",
                 "invariant-child-sa-lifetime-max-8h", "invariant-rsa-min-2048", "invariant-no-key-logging",
                 "invariant-proposals-fips-approved"):
        assert name in msg
    module = startup("off", env={}, config=bad)  # off: reported, not enforced
    assert module.report.passed
    assert all(r.result == "not-run" for r in module.report.results if r.kind == "invariant")


def test_hard_limit_above_the_cipher_is_an_invariant_failure() -> None:
    cfg = InvariantConfig(conns=(ConnLimits("x", esp="esp=aes_gcm256", child_max_packets=2**33),))
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, config=cfg)
    assert "invariant-hard-limits-per-cipher" in str(info.value)


def test_algorithm_table_catches_a_router_that_lets_a_refused_transform_through() -> None:
    class Lax(Policy):
        def check_prf(self, alg: Prf) -> None:
            if alg is Prf.PRF_HMAC_SHA1:
                return
            super().check_prf(alg)

    router = Router(Lax("fips"))
    with pytest.raises(StartupError) as info:
        startup("policy", env={}, router=router)
    assert "algorithm-table" in str(info.value) and "SHA-1 PRF" in str(info.value)


class _OpenSSLWithoutMlKem(OpenSSLProvider):
    """An OpenSSL like the 3.0 FIPS provider: no ML-KEM (OpenSSL 3.5 added it)."""

    def ke_generate(self, group: KeyExchange) -> KeyShare:
        if group.is_kem:
            raise UnsupportedOperation(f"{group.name} is not offered by this OpenSSL")
        return super().ke_generate(group)

    def ke_import_private(self, group: KeyExchange, private: bytes) -> KeyShare:
        if group.is_kem:
            raise UnsupportedOperation(f"{group.name} is not offered by this OpenSSL")
        return super().ke_import_private(group, private)

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]:
        if group.is_kem:
            raise UnsupportedOperation(f"{group.name} is not offered by this OpenSSL")
        return super().ke_encapsulate(group, peer_public)


def _router_without_ml_kem(profile: str) -> Router:
    router = Router(Policy(profile))
    router.openssl = _OpenSSLWithoutMlKem()
    router._owners[router.openssl.name] = router.openssl
    return router


@pytest.mark.parametrize(("mode", "profile"), [("policy", "fips"), ("off", "default")])
def test_unavailable_algorithm_is_disabled_not_silently_kept(mode: str, profile: str) -> None:
    """A transform the library lacks is disabled (degraded operation, FIPS 140-3 7.11), its tests are
    marked disabled instead of failing, and the router refuses it afterwards with the reason."""
    honest = startup(mode, env={})
    assert not {"ML_KEM_768", "ML_KEM_1024"} & set(honest.report.disabled)  # this host has ML-KEM

    module = startup(mode, env={}, router=_router_without_ml_kem(profile))
    rep = module.report
    assert {"ML_KEM_768", "ML_KEM_1024"} <= set(rep.disabled), rep.disabled
    assert "UnsupportedOperation" in rep.disabled["ML_KEM_768"]
    by_name = {r.name: r for r in rep.results}
    for name in ("kat-ml-kem-768", "pct-ke-ml-kem-768"):
        assert by_name[name].result == DISABLED and "ML_KEM_768 is disabled" in by_name[name].detail
    for name in rep.disabled:
        with pytest.raises(PolicyViolation, match="disabled in this process"):
            module.router.ke_generate(kats.KeyExchange[name])
    assert module.router.ke_generate(kats.KeyExchange.ECP_256).public  # the rest keeps working
    assert all(r.result in (PASS, DISABLED, "not-run") for r in rep.results)


def test_token_self_tests_run_on_the_token(router_hsm: Router, hsm_provider: Any) -> None:
    def selftest_objects() -> int:
        with hsm_provider._session() as s:
            return sum(1 for o in s.get_objects() if bytes(o[0x102] or b"").startswith(b"fipsike-selftest-"))

    module = startup("policy", env={}, router=router_hsm)
    token_results = [r for r in module.report.results if r.name.endswith("@token")]
    assert {r.name for r in token_results} >= {"kat-rsa-pss-sha256-sign@token", "pct-rsa-2048@token"}
    assert all(r.result == PASS and r.provider.startswith("pkcs11") for r in token_results), token_results
    assert selftest_objects() == 0  # every key pair the self-tests put on the token is gone again


test_token_self_tests_run_on_the_token = pytest.mark.softhsm(test_token_self_tests_run_on_the_token)


def test_secrets_never_reach_the_report(tmp_path: Path) -> None:
    from compliance import report

    module = startup("policy", env={})
    text = str(report.to_json(module.report)) + report.to_html(module.report)
    v = kats.load_vectors()
    for secret in (v["ikev2_kdf"]["skeyseed"], v["ecdh"]["ECP_256"]["shared"], v["ml_kem_768"]["ss"],
                   v["aes_gcm"][1]["key"], v["modp_3072"]["private_i"]):
        assert secret.lower() not in text.lower()


def test_self_tests_rerun_on_demand() -> None:
    module = startup("policy", env={})
    first = module.report
    again = module.rerun()
    assert again is not first and again.passed and module.machine.state is ModuleState.OPERATIONAL
    assert again.disabled == first.disabled
    assert [t.target for t in module.machine.history] == [ModuleState.SELF_TEST, ModuleState.OPERATIONAL,
                                                           ModuleState.SELF_TEST, ModuleState.OPERATIONAL]


def test_a_transform_the_library_lacks_is_disabled_and_stays_disabled_on_rerun() -> None:
    from providers import KeyExchange, UnsupportedOperation

    class NoMlKem1024(Router):  # like the OpenSSL 3.0 FIPS provider, which has no ML-KEM
        def ke_generate(self, group: KeyExchange) -> Any:
            self.policy.check_ke(group)  # as the real router: policy first
            if group is KeyExchange.ML_KEM_1024:
                raise UnsupportedOperation("ML-KEM-1024 is not available")
            return super().ke_generate(group)

    router = NoMlKem1024(Policy("fips"))
    module = startup("policy", env={}, router=router)
    assert list(module.report.disabled) == ["ML_KEM_1024"]
    with pytest.raises(PolicyViolation, match="disabled in this process"):
        router.ke_generate(KeyExchange.ML_KEM_1024)
    again = module.rerun()
    assert again.passed and list(again.disabled) == ["ML_KEM_1024"]
    (row,) = [r for r in again.table_rows if r.name == "ML_KEM_1024"]
    assert row.expected == "refused" and row.observed == "refused"
