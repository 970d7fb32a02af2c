"""What an exchange sees of the engine: a narrow, typed context.

Exchange modules (fipsike.ike.exchanges) are given an IkeContext, never the Engine: they send
through it, log through it, reach the SA table, the Router (the IkeRouter protocol) and the peer
validator, and queue follow-up work. The Engine implements it; mypy checks that exchanges use
nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fipsike.ike.actions import Action, Address

if TYPE_CHECKING:
    from fipsike.ike.config import ChildConfig, Connection
    from fipsike.ike.cookies import CookieJar
    from fipsike.ike.message import Message
    from fipsike.ike.payloads import Payload
    from fipsike.ike.peer_validator import PeerValidator
    from fipsike.ike.proposals import Proposal, ProposalSpec, Transform
    from fipsike.ike.proposals import Protocol as IkeProtocol
    from fipsike.ike.registry import ExchangeType
    from fipsike.ike.sa import ChildSa, IkeSa, Task
    from fipsike.ike.sa_table import SaTable
    from fipsike.ike.tasks import TaskKind
    from providers.api import IkeRouter
    from providers.policy import Policy

T = TypeVar("T")


class IkeContext(Protocol):
    # --- what the engine holds ---------------------------------------------------------
    @property
    def router(self) -> IkeRouter: ...

    @property
    def policy(self) -> Policy: ...

    @property
    def sas(self) -> SaTable: ...

    @property
    def cookies(self) -> CookieJar: ...

    @property
    def connections(self) -> Mapping[str, Connection]: ...

    @property
    def peers(self) -> PeerValidator: ...

    @property
    def half_open_per_source(self) -> int: ...

    @property
    def announced_hashes(self) -> tuple[int, ...]:
        """SIGNATURE_HASH_ALGORITHMS values we announce (RFC 7427 4), fixed for the engine's policy."""
        ...

    def wall(self) -> datetime:
        """The wall-clock time (UTC) certificate validity is judged at in this call."""
        ...

    # --- output ------------------------------------------------------------------------
    def emit(self, action: Action) -> None: ...

    def log(self, level: str, event: str, message: str) -> None: ...

    def notify_error(self, sa: IkeSa | None, name: str, detail: str) -> None: ...

    # --- messages ----------------------------------------------------------------------
    def send_request(self, sa: IkeSa, exchange: ExchangeType, payloads: Sequence[Payload], kind: TaskKind,
                     now: float) -> Message:
        """Send (and remember for retransmission) our request; the Message as sealed (RFC 9242 IntAuth)."""
        ...

    def send_response(self, sa: IkeSa, request: Message, payloads: Sequence[Payload]) -> Message: ...

    def send_plain(self, request: Message, payloads: Sequence[Payload], src: Address, dst: Address,
                   spi_r: bytes = ...) -> None: ...

    # --- tasks and SAs -----------------------------------------------------------------
    def queue(self, sa: IkeSa, task: Task, now: float) -> None: ...

    def kick(self, sa: IkeSa, now: float) -> None: ...

    def touch(self, sa: IkeSa) -> None: ...

    def install_child(self, sa: IkeSa, child: ChildSa, rekey_of: int | None = None,
                      defer_outbound: bool = False) -> None: ...

    def remove_child(self, sa: IkeSa, child: ChildSa, reason: str, keep_policies: bool = False) -> None: ...

    def drop_ike(self, sa: IkeSa, reason: str, failed: bool = False) -> None: ...

    def close_on_error(self, sa: IkeSa, exc: Exception) -> None: ...

    # --- values ------------------------------------------------------------------------
    def nonce(self) -> bytes: ...

    def new_ike_spi(self) -> bytes: ...

    def new_child_spi(self, sa: IkeSa, child: ChildConfig) -> int:
        """Our inbound SPI for a Child SA of `child` (reserved via the SpiAllocator). Raises SpiUnavailable."""
        ...

    def reqid(self, conn: str, child: str, configured: int) -> int: ...

    def nat_hash(self, spi_i: bytes, spi_r: bytes, addr: Address) -> bytes: ...

    def select(self, offered: Sequence[Proposal], local: Sequence[ProposalSpec], protocol: IkeProtocol,
               additional: bool = False) -> Proposal:
        """Responder's choice; `additional`: ADDKE methods may be agreed (RFC 9370 2.2.1)."""
        ...

    def allowed(self, t: Transform) -> bool: ...

    # --- caches ------------------------------------------------------------------------
    def memo(self, key: Any, build: Callable[[], T]) -> T: ...

    def ident(self, obj: object) -> int: ...

    def text(self, obj: Any, render: Callable[[Any], str] = str) -> str: ...
