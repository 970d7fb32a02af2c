"""The arithmetic of benchmarks.daemon and benchmarks.churn on made-up samples (no processes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.churn import verdict
from benchmarks.daemon import PeerRun, batch_size


def test_cpu_per_new_sa_in_the_first_and_last_thousand() -> None:
    run = PeerRun("x", "memory", 3000, established=3000, rss0_kib=1000, rss_kib=4000, cpu_s=6.0, wall_s=30.0)
    # 1 ms per SA for the first 1,000, 2 ms for the next 1,000, 3 ms for the last 1,000
    cpu, curve = 0.0, []
    for k in range(1, 31):
        cpu += (1 if k <= 10 else 2 if k <= 20 else 3) * 0.1
        curve.append((k * 100, cpu, 1000 + k * 100))
    run.curve = curve
    assert abs(run.window_ms(first=True) - 1.0) < 1e-9
    assert abs(run.window_ms(first=False) - 3.0) < 1e-9
    f = run.figures()
    assert f["responder_cpu_ms"] == 2.0 and f["sas_per_s"] == 100.0 and f["kib_per_sa"] == 1.0


def test_fewer_than_a_thousand_sas_use_all_of_them() -> None:
    run = PeerRun("x", "memory", 20, established=20, curve=[(10, 0.02, 0), (20, 0.06, 0)])
    assert run.window_ms(first=True) == run.window_ms(first=False) == 3.0
    assert batch_size(20) == 2 and batch_size(1000) == 100 and batch_size(100000) == 1000


def _row(minute: int, rss: int, up: int, gen_up: int = 1000, failed: int = 0) -> dict[str, object]:
    return {"minute": minute, "rss_kib": rss, "fds": 10, "ike_sas_up": up, "child_sas_up": up, "xfrm_states": 0,
            "xfrm_policies": 0, "generator_ike_sas_up": gen_up, "failed": failed, "failures": {}}


def test_churn_verdict_flat_lost_and_failed() -> None:
    args = argparse.Namespace(sas=1000, minutes=3, child_rekey=10.0, ike_rekey=60.0, kill_pct=10.0, dpd=12.0,
                              dpd_timeout=15.0)
    ok = verdict([_row(1, 50000, 1000), _row(3, 52000, 1040)], args, 200, "x", "memory")
    assert ok["ok"] and ok["flat_within_5pct"]["rss_kib"] and ok["flat_within_5pct"]["xfrm_states"] is None
    assert ok["bound_fits"] and ok["dead_peer_freed_within_s"] == 27.0 and ok["stale_ike_sas_at_end"] == 40
    # killed peers' SAs that linger at every sample (flat, but above the live peers) are not "flat"
    stale = verdict([_row(1, 50000, 1100), _row(3, 50000, 1100)], args, 200, "x", "memory")
    assert stale["flat_within_5pct"]["ike_sas_up"] and not stale["ok"] and stale["stale_ike_sas_at_end"] == 100
    slow = verdict([_row(1, 50000, 1000), _row(3, 50000, 1000)], argparse.Namespace(**{**vars(args), "dpd": 30.0}),
                   200, "x", "memory")
    assert not slow["bound_fits"]
    grown = verdict([_row(1, 50000, 1000), _row(3, 60000, 1000)], args, 200, "x", "memory")
    assert not grown["ok"] and grown["flat_within_5pct"]["rss_kib"] is False
    lost = verdict([_row(1, 50000, 1000), _row(3, 50000, 1000, gen_up=990)], args, 200, "x", "memory")
    assert not lost["ok"] and lost["sas_lost"] == 10
    failed = verdict([_row(1, 50000, 1000), _row(3, 50000, 1000, failed=1)], args, 200, "x", "memory")
    assert not failed["ok"]


def test_the_hybrid_suite_is_ecp384_plus_ml_kem_1024_and_fipsike_only() -> None:
    from benchmarks.ikebench import SUITES
    from providers.algorithms import KeyExchange

    hybrid = SUITES["hybrid"]
    assert not hybrid.charon and SUITES["ecdsa"].charon and SUITES["rsa"].charon
    (p,) = hybrid.ike_proposals()
    kinds = {t.type.name: t.id for t in p.transforms}
    # KE: ECP-384 (group 20, RFC 5903); ADDKE1 (RFC 9370 transform type 6): ML-KEM-1024
    assert kinds["KE"] == KeyExchange.ECP_384 and kinds["ADDKE1"] == KeyExchange.ML_KEM_1024, kinds
    (e,) = SUITES["ecdsa"].ike_proposals()  # strongSwan's spelling, one key exchange
    assert {t.type.name: t.id for t in e.transforms}.get("KE") == KeyExchange.ECP_256
    assert "ADDKE1" not in {t.type.name for t in e.transforms}


def test_the_rsa_floor_costs_more_than_the_ecdsa_one() -> None:
    from benchmarks.daemon import floor_ms

    rsa, ecdsa = floor_ms("rsa", rounds=10), floor_ms("ecdsa", rounds=20)
    assert 0 < ecdsa < rsa < 500  # RSA-3072 signing and MODP-3072 against P-256


def test_a_run_plots_again_from_its_json(tmp_path: Path) -> None:
    from benchmarks.daemon import runs_from_json

    run = PeerRun("fipsike", "memory", 20, established=20, rss0_kib=100, curve=[(10, 0.02, 150), (20, 0.06, 200)])
    back = runs_from_json({"peers": {"fipsike": run.figures()}})
    assert [(r.name, r.kernel, r.rss0_kib, r.curve) for r in back] == [("fipsike", "memory", 100, run.curve)]
