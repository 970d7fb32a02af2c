"""Self-tests, module states and the auditor's report.

Entry points that use cryptography call `startup()` and use only the router it returns:

    module = compliance.startup(fips_mode=args.fips_mode)      # raises compliance.StartupError
    router = module.router
"""

from compliance.invariants import ConnLimits, InvariantConfig
from compliance.modes import FipsMode, ModeDecision, ModeError, resolve_mode
from compliance.module import OperationalModule, SelfTestReport, StartupError, run_self_tests, startup
from compliance.state import ModuleState, ModuleStateMachine

__all__ = [
    "ConnLimits",
    "FipsMode",
    "InvariantConfig",
    "ModeDecision",
    "ModeError",
    "ModuleState",
    "ModuleStateMachine",
    "OperationalModule",
    "SelfTestReport",
    "StartupError",
    "resolve_mode",
    "run_self_tests",
    "startup",
]
