"""The module's states (FIPS 140-3 section 7.11; ISO/IEC 19790 7.11, ISO/IEC 24759 AS11.*).

    power-on --> self-test --> operational
                    |   ^          |   (on-demand re-run: operational --> self-test)
                    v   |          v
                  error  <---------+   (a conditional test failed: PCT, KAT re-run)

The Router's gate (providers.router.Gate) holds the state, because it is the thing that refuses
calls: in error every provider call raises ModuleNotOperational. This class is the only code that
moves it, and it checks each move against the diagram above. Leaving error needs a full self-test
run that passes (the gate's own rule); a process that failed at start simply exits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from providers.errors import ModuleNotOperational
from providers.router import Gate, ModuleState

__all__ = ["IllegalTransition", "ModuleState", "ModuleStateMachine", "Transition"]

_ALLOWED: dict[ModuleState, frozenset[ModuleState]] = {
    ModuleState.POWER_ON: frozenset({ModuleState.SELF_TEST, ModuleState.ERROR}),
    ModuleState.SELF_TEST: frozenset({ModuleState.OPERATIONAL, ModuleState.ERROR}),
    ModuleState.OPERATIONAL: frozenset({ModuleState.SELF_TEST, ModuleState.ERROR}),
    ModuleState.ERROR: frozenset({ModuleState.SELF_TEST}),
}


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True)
class Transition:
    at: float  # time.time()
    source: ModuleState
    target: ModuleState
    reason: str


@dataclass
class ModuleStateMachine:
    gate: Gate
    history: list[Transition] = field(default_factory=list)
    listeners: list[Callable[[Transition], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> ModuleState:
        return self.gate.state

    @property
    def reason(self) -> str:
        return self.gate.reason

    def to(self, target: ModuleState, reason: str) -> None:
        with self._lock:
            source = self.gate.state
            if target is ModuleState.ERROR and source is ModuleState.ERROR:
                return  # a second failure while in error changes nothing
            if target not in _ALLOWED[source]:
                raise IllegalTransition(f"{source.value} -> {target.value} is not allowed")
            if target is ModuleState.SELF_TEST:
                self.gate.begin_self_test(reason)
            elif target is ModuleState.OPERATIONAL:
                self.gate.operational(reason)
            elif target is ModuleState.ERROR:
                self.gate.fail(reason)
            t = Transition(time.time(), source, target, reason)
            self.history.append(t)
        for listener in list(self.listeners):
            listener(t)

    def fail(self, reason: str) -> None:
        """Enter the error state from anywhere (idempotent)."""
        self.to(ModuleState.ERROR, reason)

    @property
    def operational(self) -> bool:
        return self.gate.state is ModuleState.OPERATIONAL

    def require_operational(self) -> None:
        if self.gate.state is not ModuleState.OPERATIONAL:
            raise ModuleNotOperational(self.gate.state.value, self.gate.reason)
