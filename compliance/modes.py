"""FIPS modes, and whether a real FIPS provider sits under the OpenSSL provider.

- off:      the `default` policy profile; the self-tests still run (a wrong answer still stops us).
- policy:   the default mode. The `fips` profile (approved algorithms only, usage limits, the
            invariants), and a plain statement that no validated module is claimed.
- required: `policy`, and the OpenSSL FIPS provider must be active under `cryptography`, and every
            self-test must pass (a test that could not run counts as failed). No silent fallback:
            OpenSSL quietly runs without FIPS when OPENSSL_CONF names a missing file, so that is an
            error here, checked before anything else.

The mode comes from, in order: the command line (--fips-mode), the environment
(FIPSIKE_FIPS_MODE), the daemon configuration, else the default. `fipsike fipsstatus` shows which.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_MODE = "FIPSIKE_FIPS_MODE"
NO_VALIDATED_MODULE = ("policy mode: fipsike enforces the FIPS allowlist and usage limits, but claims no "
                       "FIPS 140-3 validated cryptographic module")


class FipsMode(enum.Enum):
    OFF = "off"
    POLICY = "policy"
    REQUIRED = "required"

    @property
    def profile(self) -> str:
        return "default" if self is FipsMode.OFF else "fips"


class ModeError(ValueError):
    pass


@dataclass(frozen=True)
class ModeDecision:
    mode: FipsMode
    source: str  # "command line", "environment FIPSIKE_FIPS_MODE", "configuration", "default"

    @property
    def profile(self) -> str:
        return self.mode.profile

    def explain(self) -> str:
        return f"{self.mode.value} (from {self.source})"


def parse_mode(value: str, where: str) -> FipsMode:
    try:
        return FipsMode(value.strip().lower())
    except ValueError:
        raise ModeError(f"{where}: unknown FIPS mode {value!r} (off, policy or required)") from None


def resolve_mode(cli: str | None = None, env: Mapping[str, str] | None = None,
                 config: str | None = None) -> ModeDecision:
    env = os.environ if env is None else env
    if cli:
        return ModeDecision(parse_mode(cli, "--fips-mode"), "command line")
    if env.get(ENV_MODE):
        return ModeDecision(parse_mode(env[ENV_MODE], ENV_MODE), f"environment {ENV_MODE}")
    if config:
        return ModeDecision(parse_mode(config, "configuration fips_mode"), "configuration")
    return ModeDecision(FipsMode.POLICY, "default")


@dataclass(frozen=True)
class FipsProviderStatus:
    """What the OpenSSL provider says about FIPS, and the environment that decides it."""

    active: bool
    openssl_version: str
    openssl_conf: str | None
    openssl_conf_exists: bool
    openssl_modules: str | None
    problem: str  # empty when nothing is wrong for `required`

    def as_dict(self) -> dict[str, Any]:
        return {"active": self.active, "openssl_version": self.openssl_version,
                "openssl_conf": self.openssl_conf, "openssl_conf_exists": self.openssl_conf_exists,
                "openssl_modules": self.openssl_modules, "problem": self.problem}


def environment_problem(env: Mapping[str, str] | None = None) -> str:
    """Checks that need no provider (run before cryptography's OpenSSL matters)."""
    env = os.environ if env is None else env
    conf = env.get("OPENSSL_CONF")
    if not conf:
        return ("OPENSSL_CONF is not set, so the OpenSSL FIPS provider is not loaded "
                "(build it with scripts/build-openssl-fips.sh and export what it prints)")
    if not Path(conf).is_file():
        return (f"OPENSSL_CONF={conf} does not exist; OpenSSL would silently run without the FIPS provider")
    modules = env.get("OPENSSL_MODULES")
    if modules and not Path(modules).is_dir():
        return f"OPENSSL_MODULES={modules} is not a directory"
    return ""


def fips_provider_status(router: Any, env: Mapping[str, str] | None = None) -> FipsProviderStatus:
    """Asks the OpenSSL provider (through the router: cryptography's is_fips_enabled)."""
    env = os.environ if env is None else env
    info = router.openssl.info() if hasattr(router, "openssl") else router.info()
    conf = env.get("OPENSSL_CONF")
    problem = environment_problem(env)
    if not problem and not info.fips:
        problem = (f"OPENSSL_CONF={conf} is set but the OpenSSL FIPS provider is not active under "
                   f"cryptography ({info.version})")
    return FipsProviderStatus(bool(info.fips), str(info.version), conf, bool(conf and Path(conf).is_file()),
                              env.get("OPENSSL_MODULES"), problem)
