"""What the opportunistic core asks the daemon to do (sans-I/O: it never calls the kernel or the engine).

The daemon carries the actions out in order: a restore (InstallPolicy) that follows a Terminate must
run after the engine's own policy removals for that Terminate.
"""

from __future__ import annotations

from dataclasses import dataclass

from fipsike.ike.config import Connection
from fipsike.kernel.types import Direction, PolicySpec, TrafficSelector


@dataclass(frozen=True)
class InstallPolicy:
    """kernel.install_policy(spec): add, or replace the policy with the same selector and direction."""

    spec: PolicySpec


@dataclass(frozen=True)
class RemovePolicy:
    """kernel.remove_policy(selector, direction); ENOENT is fine (it may already be gone)."""

    selector: TrafficSelector
    direction: Direction


@dataclass(frozen=True)
class Initiate:
    """engine.add_connection(connection); engine.initiate(connection.name, now)."""

    connection: Connection


@dataclass(frozen=True)
class AcceptPeer:
    """engine.add_connection(connection) (if not there yet), then hand the peer's IKE_SA_INIT to the engine."""

    connection: Connection


@dataclass(frozen=True)
class IgnorePeer:
    """Drop the peer's IKE_SA_INIT: our own initiation to it wins the collision (or no group lets it in)."""

    reason: str


@dataclass(frozen=True)
class AbandonInitiation:
    """engine.terminate(name, now) for our half-open initiation: the peer's initiation wins the collision.
    Must run before the peer's IKE_SA_INIT reaches the engine."""

    name: str


@dataclass(frozen=True)
class Terminate:
    """engine.terminate(name, now): an established instance outlived its IKE SA lifetime unrefreshed."""

    name: str


@dataclass(frozen=True)
class Forget:
    """engine.remove_connection(name): the instance has left the table."""

    name: str


@dataclass(frozen=True)
class WakeAt:
    """Call Opportunistic.timer(now) at or after `at` (earlier wake-ups are harmless)."""

    at: float


@dataclass(frozen=True)
class Log:
    level: str  # "debug" | "info" | "warning"
    event: str  # e.g. "oe-initiate", "oe-failure-shunt", "oe-shunt-expired"
    message: str


OeAction = (InstallPolicy | RemovePolicy | Initiate | AcceptPeer | IgnorePeer | AbandonInitiation | Terminate
            | Forget | WakeAt | Log)
