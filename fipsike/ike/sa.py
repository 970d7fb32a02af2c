"""IKE SA and Child SA state, and the tables that hold them (RFC 7296 2.2, 2.3, 2.8)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from certs.identity import Identity
from fipsike.ike.actions import Address, TrafficSelectorSpec
from fipsike.ike.config import ChildConfig, Connection
from fipsike.ike.keymat import ChildKeys, IkeKeys
from fipsike.ike.proposals import EspSuite, IkeSuite, Proposal
from fipsike.ike.retransmit import PendingRequest
from fipsike.ike.tasks import TaskKind
from providers.handles import KeyShare

if TYPE_CHECKING:
    from fipsike.ike.followup_ke import FollowupKeyExchanges
    from fipsike.ike.intermediate import IntermediateKeyExchanges
    from fipsike.ike.message import Message
    from fipsike.ike.wire import Protection


class IkeState(enum.Enum):
    INIT_SENT = "init-sent"  # initiator: IKE_SA_INIT request out
    INIT_DONE = "init-done"  # responder: IKE_SA_INIT answered, waiting for IKE_AUTH
    AUTH_SENT = "auth-sent"  # initiator: IKE_AUTH request out
    ESTABLISHED = "established"
    REKEYED = "rekeyed"  # replaced by a new IKE SA; waits for its DELETE exchange
    DELETING = "deleting"
    DELETED = "deleted"


class ChildState(enum.Enum):
    INSTALLED = "installed"
    REKEYING = "rekeying"
    REKEYED = "rekeyed"  # superseded; deleted once the DELETE exchange completes
    DELETING = "deleting"
    DELETED = "deleted"


# slots: no per-instance __dict__; an SA lives as long as its tunnel, so its size is the daemon's
# memory per tunnel (a dict of IkeSa's ~60 fields alone was ~1.5 KiB)
@dataclass(slots=True)
class ChildSa:
    config: ChildConfig
    reqid: int
    suite: EspSuite
    spi_in: int  # our SPI: the peer sends with it
    spi_out: int
    mode: str
    local_ts: tuple[TrafficSelectorSpec, ...]
    remote_ts: tuple[TrafficSelectorSpec, ...]
    keys: ChildKeys | None = field(repr=False)
    installed_at: float
    rekey_at: float
    expire_at: float
    state: ChildState = ChildState.INSTALLED
    initiator: bool = False  # did we initiate the exchange that made it
    nonces: tuple[bytes, bytes] = (b"", b"")  # (Ni, Nr) of the exchange that made it
    # a colliding rekey of this SA that we answered: the Child SA it made (RFC 7296 2.8.1)
    collision: ChildSa | None = None
    replaced_by: int = 0  # inbound SPI of the SA that took over
    rekey_tries: int = 0  # rekeys of this SA the peer refused with TEMPORARY_FAILURE so far
    @property
    def name(self) -> str:
        return self.config.name


@dataclass(slots=True)
class Task:
    """A request waiting for the window (RFC 7296 2.3: one request in flight)."""

    kind: TaskKind
    child: str = ""  # child config name (create) or
    spi: int = 0  # the inbound SPI of the Child SA concerned
    group: int = 0  # a key exchange group to use (after INVALID_KE_PAYLOAD)
    tries: int = 0  # earlier attempts refused with TEMPORARY_FAILURE (create-child)


@dataclass(slots=True)
class Exchange:
    """Per-exchange state of our outstanding request (nonces, KE shares, new SPIs)."""

    kind: TaskKind
    nonce: bytes = b""
    share: KeyShare | None = None
    child_cfg: ChildConfig | None = None
    spi_in: int = 0
    rekey_spi: int = 0  # inbound SPI of the Child SA being rekeyed
    new_spi: bytes = b""  # our SPI for the new IKE SA (IKE rekey)
    proposals: tuple[Proposal, ...] = ()
    esp_proposals: tuple[Proposal, ...] = ()
    local_ts: tuple[TrafficSelectorSpec, ...] = ()
    remote_ts: tuple[TrafficSelectorSpec, ...] = ()
    transport: bool = False
    delete_spis: tuple[int, ...] = ()
    tries: int = 0  # the Task's tries: earlier attempts refused with TEMPORARY_FAILURE
    # RFC 9370 2.2.4: the IKE_FOLLOWUP_KE exchanges after our CREATE_CHILD_SA, and its response
    # (with Nr), held until they are done
    followup: FollowupKeyExchanges | None = field(default=None, repr=False)
    response: Message | None = field(default=None, repr=False)
    nr: bytes = b""


@dataclass
class FollowupResponder:
    """Responder: a CREATE_CHILD_SA answered with ADDITIONAL_KEY_EXCHANGE (RFC 9370 2.2.4); `finish`
    makes its SA once the last IKE_FOLLOWUP_KE is answered. Dropped at `deadline` if the peer stops."""

    exchanges: FollowupKeyExchanges = field(repr=False)
    finish: Callable[[float], None] = field(repr=False)
    deadline: float = 0.0
    spi_in: int = 0  # our inbound SPI for the Child SA it makes (0: an IKE SA rekey)


@dataclass(slots=True)
class IkeSa:
    conn: Connection
    spi_i: bytes
    spi_r: bytes
    initiator: bool  # we are the original initiator (the I flag, RFC 7296 3.1)
    local: Address
    remote: Address
    state: IkeState
    created: float
    # responder: the connections whose IKE config fits the addresses. Until IKE_AUTH names the peer,
    # `conn` is only the first of them that admits the suite (ike_auth._pick_connection decides)
    candidates: tuple[Connection, ...] = ()
    suite: IkeSuite | None = None
    keys: IkeKeys | None = field(default=None, repr=False)
    ni: bytes = b""
    nr: bytes = b""
    share: KeyShare | None = None
    init_request: bytes = b""  # RealMessage1 (RFC 7296 2.15)
    init_response: bytes = b""  # RealMessage2
    offered: tuple[Proposal, ...] = ()
    cookie: bytes = b""
    ke_group: int = 0
    local_id: Identity | None = None
    remote_id: Identity | None = None
    peer_cert: Any = None
    peer_hashes: tuple[Any, ...] = ()
    peer_fragmentation: bool = False
    peer_certreq: list[bytes] = field(default_factory=list)  # SHA-1 SPKI hashes of the CAs the peer trusts
    nat_local: bool = False  # we are behind a NAT
    nat_remote: bool = False  # the peer is behind a NAT
    # message IDs (RFC 7296 2.2): next request we send, next request we expect
    next_request_id: int = 0
    expected_request_id: int = 0
    pending: PendingRequest | None = None
    exchange: Exchange | None = None
    last_response: tuple[int, list[bytes]] | None = None  # (message id, datagrams) for duplicates
    tasks: list[Task] = field(default_factory=list)
    # tasks that wait for a time before they are queued: (when, task), e.g. a Child SA creation the
    # peer refused with TEMPORARY_FAILURE (RFC 7296 2.25)
    deferred: list[tuple[float, Task]] = field(default_factory=list)
    children: dict[int, ChildSa] = field(default_factory=dict)  # by inbound SPI
    established_at: float = 0.0
    rekey_at: float = 0.0
    expire_at: float = 0.0
    last_heard: float = 0.0
    dpd_at: float = 0.0
    first_child: ChildConfig | None = None
    auth_exchange: Exchange | None = None
    codec: Protection | None = None  # SK protection (keys, AEAD IV counters, reassembly), after IKE_SA_INIT
    rekeyed_to: str = ""
    # a colliding IKE SA rekey we answered while ours was in flight: (new IKE SA, its Ni, its Nr)
    collision: tuple[IkeSa, bytes, bytes] | None = None
    half_open_deadline: float = 0.0
    init_tries: int = 0
    rekey_tries: int = 0  # rekeys of this IKE SA the peer refused with TEMPORARY_FAILURE so far
    armed: float = 0.0  # the deadline last pushed on the engine's timer heap
    # RFC 9242 / 9370: the peer sent INTERMEDIATE_EXCHANGE_SUPPORTED; the IKE_INTERMEDIATE exchanges
    # of this SA's setup (their keys and IntAuth), kept until IKE_AUTH is done
    peer_intermediate: bool = False
    intermediate: IntermediateKeyExchanges | None = field(default=None, repr=False)
    # responder: the datagram that completed the last IKE_INTERMEDIATE request, answered under the keys
    # that exchange replaced; a repeat of it gets the cached answer without being opened again
    switched_request: bytes = b""
    auth_mid: int = 0  # Message ID of the first IKE_AUTH request (IKE_AUTH_MID, RFC 9242 3.3.2)
    followup: FollowupResponder | None = None  # responder side of RFC 9370 2.2.4

    @property
    def name(self) -> str:
        return f"{self.spi_i.hex()}/{self.spi_r.hex()}"

    @property
    def our_spi(self) -> bytes:
        return self.spi_i if self.initiator else self.spi_r
