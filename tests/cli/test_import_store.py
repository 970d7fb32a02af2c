"""`fipsike import` against a bad store: nothing reaches the token, and what is reported is the
token's own state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CANARY_PASSWORD, CANARY_PIN, TOKEN, World, assert_no_canary, assert_one_line_error

pytestmark = pytest.mark.softhsm


def _private_keys(w: World) -> list[str]:
    return [ln for ln in w.token_objects().splitlines() if ln.startswith("Private Key Object")]


def test_bad_store_leaves_nothing_on_the_token(world: World) -> None:
    before = world.token_objects()
    storefile = world.dir / "store-is-a-file"
    storefile.write_text("x\n")
    for store, words in ((storefile, "not a directory"),
                         (Path("/proc/fipsike-nonexistent/store"), "cannot write to the certificate store")):
        r = world.run("import", str(world.p12), "--token", TOKEN, "--store", str(store), "--label", "bad-store-key")
        line = assert_one_line_error(r, str(store), words)
        assert r.returncode == 2 and "FileExistsError" not in line and "FileNotFoundError" not in line
        assert_no_canary(r.stdout + r.stderr, [CANARY_PIN, CANARY_PASSWORD])
    assert world.token_objects() == before
    assert "bad-store-key" not in world.token_objects()


def test_store_failure_after_the_key_went_on_takes_it_back(world: World) -> None:
    """--label = the CA's CN: the end entity's file takes the CA's name, so storing the CA fails
    after the key is on the token; the key is removed again."""
    keys_before = _private_keys(world)
    store = world.dir / "s-collide"
    r = world.run("import", str(world.p12), "--token", TOKEN, "--store", str(store), "--label", "CLI Canary Root")
    assert_one_line_error(r, "the certificate could not be stored", "removed from the token again")
    assert _private_keys(world) == keys_before
    assert "CLI Canary Root" not in world.token_objects()


def test_reimport_reports_the_tokens_label(world: World) -> None:
    store = world.dir / "s-label"
    r = world.run("import", str(world.p12), "--token", TOKEN, "--store", str(store), "--label", "first-label",
                  "--json")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["label"] == "first-label" and first["key_already_present"] is False
    try:
        r = world.run("import", str(world.p12), "--token", TOKEN, "--store", str(store), "--label", "../../x")
        assert r.returncode == 0, r.stderr
        assert "already on token" in r.stdout and "label='first-label'" in r.stdout
        assert "../../x" not in r.stdout.split("\n")[0]
        assert not (world.dir.parent / "x.pem").exists() and (store / "x.pem").is_file()  # nickname sanitised
        assert_no_canary(r.stdout + r.stderr, [CANARY_PIN, CANARY_PASSWORD])
    finally:
        _delete_key(world, first["key_id"])


def _delete_key(w: World, key_id: str) -> None:
    import os
    import subprocess

    from providers.pkcs11.config import SOFTHSM2_MODULE

    for typ in ("privkey", "pubkey"):
        subprocess.run(["pkcs11-tool", "--module", SOFTHSM2_MODULE, "--token-label", TOKEN, "--login", "--pin",
                        CANARY_PIN, "--delete-object", "--type", typ, "--id", key_id],
                       env={**os.environ, "SOFTHSM2_CONF": str(w.softhsm_conf)}, capture_output=True, timeout=60)
