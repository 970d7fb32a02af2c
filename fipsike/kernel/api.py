"""The kernel interface the engine and the daemon use: XFRM in production, in-memory in tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fipsike.kernel.types import (
    IPPROTO_ESP,
    CleanupReport,
    Direction,
    IPAddress,
    KernelEvent,
    Mode,
    Ownership,
    PolicySpec,
    PolicyState,
    SaSpec,
    SaState,
    Shunt,
    Template,
    TrafficSelector,
)
from providers.handles import SecretKey


class KeyRouter(Protocol):
    """What the kernel backend needs from the providers Router."""

    def release_esp_key(self, key: SecretKey, purpose: str) -> bytes: ...

    def keyed_fingerprint(self, material: bytes) -> str: ...


@runtime_checkable
class Kernel(Protocol):
    ownership: Ownership

    # --- SAD ---------------------------------------------------------------------------------------
    def alloc_spi(self, src: IPAddress, dst: IPAddress, reqid: int, mode: Mode = Mode.TUNNEL,
                  spi_min: int = 0x100, spi_max: int = 0xFFFF_FFFF) -> int:
        """Reserve an inbound SPI (a larval SA); install_sa with that SPI completes it."""
        ...

    def install_sa(self, spec: SaSpec) -> None:
        """Add the SA (or complete the larval SA of an allocated SPI). Raises KernelError."""
        ...

    def delete_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> None: ...

    def get_sa(self, dst: IPAddress, spi: int, proto: int = IPPROTO_ESP) -> SaState:
        """The SA with its counters; keys only as length + fingerprint."""
        ...

    def list_sas(self, owned_only: bool = True) -> list[SaState]: ...

    # --- SPD ---------------------------------------------------------------------------------------
    def install_policy(self, spec: PolicySpec, replace: bool = True) -> None:
        """Add the policy for (selector, direction); replace=False fails with EEXIST if one is there."""
        ...

    def get_policy(self, selector: TrafficSelector, direction: Direction) -> PolicyState: ...

    def remove_policy(self, selector: TrafficSelector, direction: Direction) -> None: ...

    def list_policies(self, owned_only: bool = True) -> list[PolicyState]: ...

    def install_shunt(self, selector: TrafficSelector, shunt: Shunt, template: Template | None = None,
                      directions: Sequence[Direction] = (Direction.OUT,), priority: int | None = None) -> None:
        """A HOLD / PASS / DROP policy, or a TRAP (allow + template: first packet raises ACQUIRE)."""
        ...

    # --- events and lifecycle ----------------------------------------------------------------------
    def read_events(self, timeout: float | None = 0.0) -> list[KernelEvent]:
        """ACQUIRE / EXPIRE / policy events for what fipsike owns, waiting up to `timeout` for the first."""
        ...

    def fileno(self) -> int:
        """Readable when events are pending (for asyncio's add_reader)."""
        ...

    def flush_owned(self) -> CleanupReport:
        """Remove every SA and policy fipsike owns (shutdown, and start-up after a crash)."""
        ...

    def close(self) -> None: ...


def default_priority(selector: TrafficSelector, action_rank: int) -> int:
    """XFRM policy priority (lower wins): more specific selectors first, then the action rank.

    A band above 0 leaves room for an admin's own higher-precedence policies.
    """
    spec = selector.src.prefixlen + selector.dst.prefixlen  # 0..256
    spec += 1 if selector.proto else 0
    spec += 1 if selector.src_port else 0
    spec += 1 if selector.dst_port else 0
    return 0x1_0000 + (260 - spec) * 8 + action_rank
