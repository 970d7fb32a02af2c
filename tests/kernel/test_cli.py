"""`fipsike xfrm`: text and JSON, --netns, --all, --flush-owned, and the refused reveal."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fipsike.kernel.types import Mode, Ownership, Shunt, Template, TrafficSelector
from fipsike.kernel.xfrm import XfrmKernel
from providers import open_router
from tests.kernel.netns import netns, sh

pytestmark = pytest.mark.netns

ROOT = Path(__file__).resolve().parents[2]
OWN = Ownership()


def fipsike(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "fipsike", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=ROOT)


@pytest.fixture
def ns() -> Iterator[str]:
    with netns("cli") as name:
        with XfrmKernel(open_router("default"), netns=name) as k:
            k.install_shunt(TrafficSelector.parse("10.1.0.1/32", "10.2.0.1/32"), Shunt.TRAP,
                            Template(None, None, OWN.reqid_min, mode=Mode.TRANSPORT))
            k.alloc_spi(ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("192.0.2.2"), OWN.reqid_min)
        sh("ip", "-n", name, "xfrm", "policy", "add", "src", "10.5.0.0/16", "dst", "10.6.0.0/16", "dir", "out",
           "action", "block")
        yield name


def test_json_lists_owned_entries(ns: str) -> None:
    r = fipsike("xfrm", "--json", "--netns", ns)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["netns"] == ns and out["owned_only"] is True
    assert [p["selector"]["src"] for p in out["policies"]] == ["10.1.0.1/32"]
    assert out["policies"][0]["templates"][0]["reqid"] == OWN.reqid_min
    (sa,) = out["sas"]
    assert sa["larval"] and sa["reqid"] == OWN.reqid_min and sa["algorithms"] == []
    everything = json.loads(fipsike("xfrm", "--json", "--all", "--netns", ns).stdout)
    assert len(everything["policies"]) == 2


def test_text_looks_like_ip_xfrm(ns: str) -> None:
    r = fipsike("xfrm", "--netns", ns)
    assert r.returncode == 0, r.stderr
    assert "SAD (1 SAs)" in r.stdout and "SPD (1 policies)" in r.stdout
    assert "src 10.1.0.1/32 dst 10.2.0.1/32" in r.stdout and f"reqid {OWN.reqid_min}" in r.stdout
    assert f"mark 0x0/{OWN.mark_mask:#x}" in r.stdout


def test_flush_owned_and_errors(ns: str) -> None:
    r = fipsike("xfrm", "--json", "--flush-owned", "--netns", ns)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["cleanup"] == {"sas_removed": 1, "policies_removed": 1, "errors": []}
    assert out["sas"] == [] and out["policies"] == []
    assert "10.5.0.0/16" in sh("ip", "-n", ns, "xfrm", "policy").stdout


def test_reveal_refused_in_fips_and_bad_netns_is_one_line() -> None:
    r = fipsike("xfrm", "--reveal-keys")
    assert r.returncode == 2 and "refused in the FIPS profile" in r.stderr and "Traceback" not in r.stderr
    r = fipsike("xfrm", "--netns", "fipsike-none-such")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "ENOENT" in r.stderr
