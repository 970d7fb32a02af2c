"""Shared fixtures (owned by the providers helper). Names are stable: other packages' tests use them.

Session-scoped (one per pytest process):
- `softhsm_token`  -> SoftHsmToken: a throwaway SoftHSM2 token in a temp dir (SOFTHSM2_CONF is
                      pointed at it for this process), label `fipsike-test`, user PIN in `pin_file`.
- `pkcs11_config`  -> Pkcs11Config for that token (module /usr/lib/softhsm/libsofthsm2.so,
                      PIN read from the file). PKCS#11 allows ONE login per token per process:
                      every router built from this config shares one cached, logged-in session
                      (providers.pkcs11.provider.token_session), so never call token.open() yourself.
- `hsm_provider`   -> the Pkcs11Provider behind router_hsm (sessions, mechanisms, destroy_key).

Function-scoped (fresh gate and meters per test; cheap: the token session is shared):
- `router_fips`    -> open_router("fips")
- `router_default` -> open_router("default")
- `router_hsm`     -> open_router("fips", pkcs11=pkcs11_config): private-key operations on the token.

Tests that use the token fixtures should carry `@pytest.mark.softhsm`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from providers import Pkcs11Config, Router, open_router
from providers.pkcs11.config import SOFTHSM2_MODULE

SOFTHSM_LABEL = "fipsike-test"
SOFTHSM_USER_PIN = "246813"
SOFTHSM_SO_PIN = "13572468"


@dataclass(frozen=True)
class SoftHsmToken:
    directory: Path
    conf: Path
    label: str
    pin_file: Path
    module_path: str
    config: Pkcs11Config


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    util = shutil.which("softhsm2-util")
    if util is None or not os.path.exists(SOFTHSM2_MODULE):
        pytest.fail("SoftHSM2 is not installed (apt-get install softhsm2): CI installs it, so this is an error")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
        "slots.removable = false\n",
        encoding="utf-8",
    )
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by libsofthsm2 at C_Initialize, i.e. at first use
    subprocess.run(
        [util, "--init-token", "--free", "--label", SOFTHSM_LABEL, "--so-pin", SOFTHSM_SO_PIN,
         "--pin", SOFTHSM_USER_PIN],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    pin_file = base / "user.pin"
    pin_file.write_text(SOFTHSM_USER_PIN + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    config = Pkcs11Config(module_path=SOFTHSM2_MODULE, token_label=SOFTHSM_LABEL, pin_file=str(pin_file))
    yield SoftHsmToken(base, conf, SOFTHSM_LABEL, pin_file, SOFTHSM2_MODULE, config)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture(scope="session")
def pkcs11_config(softhsm_token: SoftHsmToken) -> Pkcs11Config:
    return softhsm_token.config


@pytest.fixture
def router_fips() -> Router:
    return open_router("fips")


@pytest.fixture
def router_default() -> Router:
    return open_router("default")


@pytest.fixture
def router_hsm(pkcs11_config: Pkcs11Config) -> Router:
    return open_router("fips", pkcs11=pkcs11_config)


@pytest.fixture(scope="session")
def hsm_provider(pkcs11_config: Pkcs11Config):  # type: ignore[no-untyped-def]
    from providers.pkcs11.provider import open_pkcs11

    return open_pkcs11(pkcs11_config)
