"""One --fips-mode for every verb, read through compliance's resolve_mode(); --profile only as an
alias that cannot override the environment; --reveal-keys only in FIPS mode off; self-tests first."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compliance.modes import FipsMode, ModeDecision
from fipsike.commands import xfrm
from tests.cli.conftest import World, assert_one_line_error, base_env
from tests.compliance.conftest import copy_tree

VERBS = (["import"], ["cert", "verify"], ["cert", "list"], ["xfrm"])


@pytest.mark.parametrize("verb", VERBS, ids=" ".join)
def test_every_verb_has_the_shared_option(verb: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "fipsike.cli", *verb, "--help"], capture_output=True, text=True,
                       timeout=60, env=base_env())
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "--fips-mode {off,policy,required}" in text and "FIPSIKE_FIPS_MODE" in text
    assert "never overrides FIPSIKE_FIPS_MODE" in text  # --profile is documented as an alias only
    assert "-v, --verbose" in text


@pytest.mark.softhsm
def test_reveal_refused_when_the_environment_requires_fips(world: World) -> None:
    env = world.env(FIPSIKE_FIPS_MODE="required")
    r = world.run("xfrm", "--profile", "default", "--reveal-keys", "--netns", "fipsike-no-such-ns", env=env)
    assert_one_line_error(r, "--profile default conflicts with FIPS mode required")
    assert r.returncode == 2
    # --fips-mode off outranks the environment for the mode, but not for showing keys
    r = world.run("xfrm", "--fips-mode", "off", "--reveal-keys", "--netns", "fipsike-no-such-ns", env=env)
    assert_one_line_error(r, "--reveal-keys is refused", "FIPSIKE_FIPS_MODE=required")
    assert r.returncode == 2
    for mode in ("policy", "required"):
        r = world.run("xfrm", "--reveal-keys", env=world.env(FIPSIKE_FIPS_MODE=mode))
        assert_one_line_error(r, "--reveal-keys is refused", f"FIPS mode is {mode} (from environment")
    # FIPS mode off and nothing declaring FIPS: the reveal gets past the check (then the netns is missing)
    r = world.run("xfrm", "--fips-mode", "off", "--reveal-keys", "--netns", "fipsike-no-such-ns")
    assert_one_line_error(r, "ENOENT")
    assert "refused" not in r.stderr


def test_reveal_refusal_rules() -> None:
    off = ModeDecision(FipsMode.OFF, "command line")
    assert xfrm.reveal_refusal(ModeDecision(FipsMode.POLICY, "default"), env={})
    assert xfrm.reveal_refusal(off, env={"FIPSIKE_FIPS_MODE": "required"})
    assert xfrm.reveal_refusal(off, env={"FIPSIKE_FIPS_MODE": "bogus"})  # unreadable: strictest
    kernel_fips = xfrm.kernel_fips_enabled()
    assert bool(xfrm.reveal_refusal(off, env={})) is kernel_fips
    assert bool(xfrm.reveal_refusal(off, env={"FIPSIKE_FIPS_MODE": "off"})) is kernel_fips


@pytest.mark.softhsm
def test_verbs_read_the_mode_from_the_environment(world: World) -> None:
    args = ("cert", "verify", "--json", "--ca", str(world.root_pem), str(world.ee_pem))
    r = world.run(*args, env=world.env(FIPSIKE_FIPS_MODE="off"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["profile"] == "default"
    r = world.run(*args)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["profile"] == "fips"
    r = world.run(*args, "--fips-mode", "off")
    assert json.loads(r.stdout)["profile"] == "default"
    r = world.run(*args, "--profile", "default")  # the alias, where nothing else sets a mode
    assert json.loads(r.stdout)["profile"] == "default"
    for verb in (["cert", "verify", "--ca", str(world.root_pem), str(world.ee_pem)],
                 ["cert", "list", "--store", str(world.store)],
                 ["import", str(world.p12), "--token", "fipsike-cli-canary", "--store", str(world.dir / "s-mode")]):
        r = world.run(*verb, "--profile", "default", env=world.env(FIPSIKE_FIPS_MODE="required"))
        assert_one_line_error(r, "--profile default conflicts with FIPS mode required")
        assert r.returncode == 2
        r = world.run(*verb, "--profile", "fips", "--fips-mode", "off")
        assert_one_line_error(r, "--profile fips conflicts with --fips-mode off")
        r = world.run(*verb, env=world.env(FIPSIKE_FIPS_MODE="sometimes"))
        assert_one_line_error(r, "unknown FIPS mode")


@pytest.mark.softhsm
def test_every_verb_runs_the_self_tests_first(world: World, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A wrong KAT answer in a private copy of the tree stops xfrm, import and cert list too."""
    tree = copy_tree(tmp_path_factory.mktemp("tampered") / "tree")
    vec = tree / "compliance" / "kat_vectors.json"
    doc = json.loads(vec.read_text())
    doc["hmac"]["sha512"] = doc["hmac"]["sha512"][:-2] + ("00" if not doc["hmac"]["sha512"].endswith("00") else "11")
    vec.write_text(json.dumps(doc))
    env = world.env(PYTHONPATH=str(tree))
    for argv in (["xfrm", "--netns", "fipsike-no-such-ns"], ["cert", "list", "--store", str(world.store)],
                 ["cert", "verify", "--ca", str(world.root_pem), str(world.ee_pem)],
                 ["import", str(world.p12), "--token", "fipsike-cli-canary", "--store", str(world.dir / "s-kat")]):
        r = subprocess.run([sys.executable, "-m", "fipsike.cli", *argv], cwd=tree, env=env, capture_output=True,
                           text=True, timeout=180)
        assert_one_line_error(r, "self-tests failed", "kat-hmac-sha2-512")
        assert r.returncode == 3
