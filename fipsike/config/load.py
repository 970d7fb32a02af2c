"""Load everything the daemon loads: ipsec.conf (+ includes), ipsec.secrets, the policy groups,
then the FIPS checks. One call, one result, or one ConfigError listing every problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance.invariants import InvariantConfig
from compliance.modes import FipsMode
from fipsike.config import fips as fipscheck
from fipsike.config.conns import ConnSpec, Resolve, Value, _Collector, merge, referenced_by_also
from fipsike.config.errors import ConfigError, Diagnostic
from fipsike.config.hosts import HostAddresses, Resolver, SystemHost, SystemResolver
from fipsike.config.policies import PolicyGroups, load_groups
from fipsike.config.secrets import Secrets, parse_secrets
from fipsike.config.syntax import parse_config
from providers.policy import Policy

DEFAULT_CONFIG = Path("/etc/ipsec.conf")
DEFAULT_SECRETS = Path("/etc/ipsec.secrets")
DEFAULT_IPSECDIR = Path("/etc/ipsec.d")


@dataclass
class LoadedConfig:
    conns: list[ConnSpec]
    setup: dict[str, Value]
    secrets: Secrets
    groups: PolicyGroups
    warnings: list[Diagnostic]
    templates: list[str] = field(default_factory=list)  # conns only used through also=
    files: list[str] = field(default_factory=list)
    profile: str = "fips"

    def conn(self, name: str) -> ConnSpec:
        for c in self.conns:
            if c.name == name:
                return c
        raise KeyError(name)

    def setup_value(self, key: str, default: Any = None) -> Any:
        v = self.setup.get(key)
        return default if v is None else v.value

    def invariant_config(self) -> InvariantConfig:
        return fipscheck.invariant_config(self.conns, self.groups)


def load(config: Path | str = DEFAULT_CONFIG, *, secrets: Path | str | None = None,
         ipsecdir: Path | str | None = None, fips_mode: FipsMode = FipsMode.POLICY,
         host: HostAddresses | None = None, resolver: Resolver | None = None) -> LoadedConfig:
    """Raises ConfigError (every error, one Diagnostic each) or ConfigUnreadable."""
    policy = Policy(fips_mode.profile)
    parsed = parse_config(config)
    out = _Collector()
    out.warnings += parsed.warnings
    setup, merged = merge(parsed, out)
    ipsecdir_p = Path(ipsecdir) if ipsecdir is not None else Path(
        str(setup["ipsecdir"].value) if "ipsecdir" in setup else DEFAULT_IPSECDIR)
    secrets_p = Path(secrets) if secrets is not None else Path(
        str(setup["secretsfile"].value) if "secretsfile" in setup else DEFAULT_SECRETS)
    errors: list[Diagnostic] = []
    sec = Secrets()
    if secrets_p.exists() or secrets is not None:
        try:
            sec = parse_secrets(secrets_p)
        except ConfigError as exc:
            if type(exc) is not ConfigError:
                raise
            errors += exc.diagnostics
    groups = PolicyGroups()
    try:
        groups = load_groups(ipsecdir_p / "policies")
    except ConfigError as exc:
        if type(exc) is not ConfigError:
            raise
        errors += exc.diagnostics
    resolve = Resolve(out, host or SystemHost(), resolver or SystemResolver(), policy,
                      referenced_by_also(parsed))
    conns: list[ConnSpec] = []
    templates: list[str] = []
    for section, values in merged:
        spec = resolve.conn(section, values)
        if spec is None:
            if not any(e.conn == section.name for e in out.errors):
                templates.append(section.name)
            continue
        conns.append(spec)
    errors = out.errors + errors
    warnings = list(out.warnings)
    checked = [fipscheck.check_conn(c, policy, sec, errors, warnings) for c in conns]
    fipscheck.check_groups(groups, policy, errors)
    if errors:
        raise ConfigError(errors)
    return LoadedConfig(checked, setup, sec, groups, warnings, templates, parsed.files + sec.files + groups.files,
                        policy.profile)
