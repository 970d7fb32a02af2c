"""Exchanges as tasks, as strongSwan's libcharon queues them (sa/ikev2/tasks, task_manager_v2).

Each kind of work an IKE SA does is a TaskKind. An ExchangeTask implements one or more kinds for
one exchange type: `start` builds and sends our request, `on_response` completes it, and
`on_request` answers the peer's request of that exchange type in the IKE SA states it is
registered for. Each IKE SA has one queue of Tasks (RFC 7296 2.3: one request in flight); the
manager (exchanges.dispatch) starts the head of the queue whenever nothing is pending.

Setting up an IKE SA is a chain in that queue: IKE_SA_INIT, then zero or more IKE_INTERMEDIATE
(RFC 9242: one per additional key exchange, RFC 9370), then IKE_AUTH. Adding an exchange is a
module with an ExchangeTask and one `register` call (see exchanges/registrations.py).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from fipsike.ike.actions import Address
from fipsike.ike.message import Message
from fipsike.ike.registry import ExchangeType

if TYPE_CHECKING:
    from fipsike.ike.context import IkeContext
    from fipsike.ike.sa import IkeSa, IkeState, Task


class TaskKind(enum.Enum):
    IKE_SA_INIT = "ike-sa-init"
    IKE_INTERMEDIATE = "ike-intermediate"  # RFC 9242; the slot between IKE_SA_INIT and IKE_AUTH
    IKE_AUTH = "ike-auth"
    CREATE_CHILD = "create-child"
    REKEY_CHILD = "rekey-child"
    REKEY_IKE = "rekey-ike"
    DELETE_CHILD = "delete-child"
    DELETE_SPI = "delete-spi"  # delete an SA the peer installed but we refused
    DELETE_IKE = "delete-ike"
    DPD = "dpd"  # liveness check (RFC 7296 2.4)
    FOLLOWUP_KE = "followup-ke"  # RFC 9370 2.2.4: an additional key exchange of a CREATE_CHILD_SA

    def __str__(self) -> str:
        return self.value

    # members are singletons: hash by identity (Enum's own __hash__ is Python code, and kinds are
    # looked up on every message)
    __hash__ = object.__hash__


# the tasks that set an IKE SA up, in their order; they run before the SA is established
SETUP = (TaskKind.IKE_SA_INIT, TaskKind.IKE_INTERMEDIATE, TaskKind.IKE_AUTH)
# at most one of each of these is queued per IKE SA
SINGLETONS = frozenset({TaskKind.REKEY_IKE, TaskKind.DPD, TaskKind.DELETE_IKE})
# at most one of each of these per Child SA
PER_CHILD = frozenset({TaskKind.REKEY_CHILD, TaskKind.DELETE_CHILD})
# queued work that is about the IKE SA itself and does not move to its successor after a rekey
OWN_WORK = frozenset({TaskKind.DELETE_IKE, TaskKind.REKEY_IKE, TaskKind.DPD})


class ExchangeTask(Protocol):
    """One exchange's logic. `kinds`: the TaskKinds it starts and completes."""

    exchange: ExchangeType
    kinds: frozenset[TaskKind]

    def start(self, ctx: IkeContext, sa: IkeSa, task: Task, now: float) -> None:
        """Build and send our request for `task` (or finish at once when nothing is to be done)."""
        ...

    def on_response(self, ctx: IkeContext, sa: IkeSa, rx: Received, kind: TaskKind, now: float) -> None:
        """The answer to our request of `kind` (decrypted, but for IKE_SA_INIT)."""
        ...

    def on_request(self, ctx: IkeContext, sa: IkeSa, rx: Received, now: float) -> None:
        """The peer's decrypted request of this exchange type."""
        ...


class Received(NamedTuple):
    """A message as it reached an exchange: `msg` with the decrypted payloads (an IKE_SA_INIT message
    is never encrypted), the datagram as it came (RFC 7296 2.15 signs IKE_SA_INIT's octets), and
    where it came from and to; for IKE_INTERMEDIATE, `intauth` is the message's IntAuth A | P
    (RFC 9242 3.3.2). (A NamedTuple: one is made per message.)"""

    msg: Message
    data: bytes
    src: Address
    dst: Address
    intauth: bytes = b""


class UnknownTask(LookupError):
    """No ExchangeTask is registered for this kind (e.g. IKE_INTERMEDIATE before RFC 9242 lands)."""


class TaskRegistry:
    """ExchangeTasks by the kind they start and by (exchange type, IKE SA state) for requests."""

    def __init__(self) -> None:
        self._by_kind: dict[TaskKind, ExchangeTask] = {}
        self._by_request: dict[tuple[int, IkeState], ExchangeTask] = {}

    def register(self, task: ExchangeTask, request_states: Iterable[IkeState] = ()) -> None:
        for kind in task.kinds:
            if kind in self._by_kind:
                raise ValueError(f"{kind} is registered twice")
            self._by_kind[kind] = task
        for state in request_states:
            key = (int(task.exchange), state)
            if key in self._by_request:
                raise ValueError(f"{task.exchange.name} requests in {state.value} are registered twice")
            self._by_request[key] = task

    def for_kind(self, kind: TaskKind) -> ExchangeTask:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise UnknownTask(f"no exchange registered for {kind}") from None

    def for_request(self, exchange: int, state: IkeState) -> ExchangeTask | None:
        return self._by_request.get((exchange, state))

    def knows_kind(self, kind: TaskKind) -> bool:
        return kind in self._by_kind
