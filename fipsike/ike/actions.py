"""What the engine asks its driver to do: the output events of the sans-I/O core.

The engine never touches a socket, a timer or the kernel. Every call returns a
list of these; the daemon (or a test) carries them out in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from providers.algorithms import Encryption, Integrity
from providers.handles import SecretKey

Address = tuple[str, int]


@dataclass(frozen=True)
class SendDatagram:
    """Send `data` from local address `src` to `dst` (both (ip, port))."""

    data: bytes
    src: Address
    dst: Address


@dataclass(frozen=True)
class ArmTimer:
    """Call Engine.timer(now) at or after `at` (seconds, the driver's clock). Earlier arms stay valid:
    the engine keeps its own deadlines, so a spurious timer() call is harmless."""

    at: float


@dataclass(frozen=True)
class Log:
    level: str  # "debug" | "info" | "warning" | "error"
    event: str  # a short machine-friendly tag, e.g. "ike-sa-established"
    message: str  # never carries key material


@dataclass(frozen=True)
class TrafficSelectorSpec:
    """An IPv4/IPv6 range as negotiated (RFC 7296 3.13.1), for the kernel policy."""

    start: str
    end: str
    protocol: int = 0
    start_port: int = 0
    end_port: int = 65535


@dataclass(frozen=True)
class SaDirection:
    """One ESP SA (one direction): its SPI and opaque key handles.

    `encr_key` holds key || salt for AEAD transforms (RFC 4106 8.1). The kernel layer takes the raw
    bytes out only through Router.release_esp_key.
    """

    spi: int
    src: str
    dst: str
    encr: Encryption
    encr_key_bits: int
    encr_key: SecretKey = field(repr=False)
    integ: Integrity | None
    integ_key: SecretKey | None = field(repr=False)


@dataclass(frozen=True)
class InstallChildSa:
    """Install both directions of a Child SA and its policies."""

    ike_sa: str  # the IKE SA's name, "<SPIi hex>/<SPIr hex>"
    connection: str
    child: str
    reqid: int
    mode: str  # "tunnel" | "transport"
    inbound: SaDirection
    outbound: SaDirection
    local_ts: tuple[TrafficSelectorSpec, ...]
    remote_ts: tuple[TrafficSelectorSpec, ...]
    lifetime_soft: float
    lifetime_hard: float
    esn: bool = False
    encap: tuple[int, int] | None = None  # (src port, dst port) for UDP encapsulation (RFC 3948)
    rekey_of: int | None = None  # inbound SPI of the Child SA this one replaces
    # the responder of a rekey keeps sending on the old SA until the old one is deleted (the initiator's
    # DELETE): the initiator can receive on the new SA only once it has processed the response
    defer_outbound: bool = False


@dataclass(frozen=True)
class DeleteChildSa:
    ike_sa: str
    connection: str
    child: str
    reqid: int
    inbound_spi: int
    outbound_spi: int
    local: str
    remote: str
    reason: str
    keep_policies: bool = False  # True on a rekey: the new SA already carries the traffic


@dataclass(frozen=True)
class IkeSaEstablished:
    ike_sa: str
    connection: str
    local_id: str
    remote_id: str
    initiator: bool
    suite: str  # e.g. "ENCR_AES_GCM_16_256/PRF_HMAC_SHA2_384/ECP_256"


@dataclass(frozen=True)
class IkeSaRekeyed:
    old_ike_sa: str
    new_ike_sa: str
    connection: str


@dataclass(frozen=True)
class IkeSaDeleted:
    ike_sa: str
    connection: str
    reason: str


@dataclass(frozen=True)
class ChildSaFailed:
    ike_sa: str
    connection: str
    child: str
    notify: str  # e.g. "TS_UNACCEPTABLE", "NO_PROPOSAL_CHOSEN"


@dataclass(frozen=True)
class IkeSaFailed:
    connection: str
    reason: str  # e.g. "AUTHENTICATION_FAILED", "timeout", "NO_PROPOSAL_CHOSEN"


@dataclass(frozen=True)
class DeadPeer:
    """Liveness check failed (RFC 7296 2.4); `action` is the connection's dpd action."""

    ike_sa: str
    connection: str
    action: str  # "clear" | "hold" | "restart"


Action = (SendDatagram | ArmTimer | Log | InstallChildSa | DeleteChildSa | IkeSaEstablished | IkeSaRekeyed
          | IkeSaDeleted | ChildSaFailed | IkeSaFailed | DeadPeer)
