"""What the engine and the daemon hand to the kernel, and what the kernel hands back.

Words follow RFC 4301 (SPD, SAD, traffic selectors) and the Linux XFRM names
where the kernel has its own concept (reqid, mark, shunt policies). Nothing in
this module holds key bytes: an SaSpec carries opaque SecretKey handles, and a
state read back from the kernel carries only a KeyDigest (length + keyed
fingerprint).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from typing import TypeAlias

from providers.algorithms import Encryption, Integrity
from providers.handles import SecretKey

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

IPPROTO_ESP = 50  # RFC 4303
NAT_T_PORT = 4500  # RFC 3948 section 2.1 / RFC 7296 section 2.23
XFRM_INF = 0xFFFF_FFFF_FFFF_FFFF  # "no limit" in struct xfrm_lifetime_cfg


class KernelError(Exception):
    """A kernel XFRM request failed. `errno_name` is symbolic (EEXIST, ENOENT, ...).

    The message names the operation and the SA/policy identity, never key material.
    """

    def __init__(self, operation: str, errno_name: str, detail: str = "") -> None:
        self.operation = operation
        self.errno_name = errno_name
        self.detail = detail
        text = f"{operation}: {errno_name}"
        super().__init__(f"{text} ({detail})" if detail else text)


class Mode(enum.IntEnum):
    """XFRM_MODE_* (linux/xfrm.h); RFC 4301 section 4.1."""

    TRANSPORT = 0
    TUNNEL = 1


class Direction(enum.IntEnum):
    """XFRM_POLICY_IN/OUT/FWD: which SPD a policy lives in (RFC 4301 4.4.1)."""

    IN = 0
    OUT = 1
    FWD = 2


class Shunt(enum.Enum):
    """Policies without an SA behind them.

    HOLD: block while a negotiation for the selector is under way.
    PASS: send in the clear (RFC 4301 BYPASS).  DROP: discard (RFC 4301 DISCARD).
    TRAP: allow + template, no SA yet: the first packet raises an ACQUIRE
    (on-demand and opportunistic negotiation).
    """

    HOLD = "hold"
    PASS = "pass"  # noqa: S105 (a shunt, not a password)
    DROP = "drop"
    TRAP = "trap"


class PolicyAction(enum.Enum):
    IPSEC = "ipsec"  # allow + template, with an SA negotiated
    TRAP = "trap"
    HOLD = "hold"
    PASS = "pass"  # noqa: S105 (a shunt, not a password)
    DROP = "drop"

    @classmethod
    def of_shunt(cls, shunt: Shunt) -> PolicyAction:
        return cls(shunt.value)


@dataclass(frozen=True)
class TrafficSelector:
    """A kernel selector: one source and one destination prefix, a protocol and
    single ports (0 = any). The kernel matches a single port or any port, so the
    engine splits RFC 7296 port ranges before they get here. For ICMP the kernel
    puts the type in the source port and the code in the destination port."""

    src: IPNetwork
    dst: IPNetwork
    proto: int = 0
    src_port: int = 0
    dst_port: int = 0

    def __post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise ValueError("traffic selector mixes IPv4 and IPv6")
        for port in (self.src_port, self.dst_port):
            if not 0 <= port <= 0xFFFF:
                raise ValueError(f"port {port} out of range")
        if not 0 <= self.proto <= 255:
            raise ValueError(f"protocol {self.proto} out of range")

    @property
    def version(self) -> int:
        return self.src.version

    @classmethod
    def host_to_host(cls, src: IPAddress, dst: IPAddress, proto: int = 0) -> TrafficSelector:
        return cls(ipaddress.ip_network(src), ipaddress.ip_network(dst), proto)

    @classmethod
    def parse(cls, src: str, dst: str, proto: int = 0, src_port: int = 0, dst_port: int = 0) -> TrafficSelector:
        return cls(ipaddress.ip_network(src, strict=False), ipaddress.ip_network(dst, strict=False),
                   proto, src_port, dst_port)

    def reversed(self) -> TrafficSelector:
        return TrafficSelector(self.dst, self.src, self.proto, self.dst_port, self.src_port)

    def __str__(self) -> str:
        text = f"{self.src} -> {self.dst}"
        if self.proto:
            text += f" proto {self.proto}"
            if self.src_port or self.dst_port:
                text += f" sport {self.src_port} dport {self.dst_port}"
        return text


@dataclass(frozen=True)
class UdpEncap:
    """ESP in UDP (RFC 3948): NAT-T ports, and the original address behind a NAT (encap_oa)."""

    src_port: int = NAT_T_PORT
    dst_port: int = NAT_T_PORT
    original_address: IPAddress | None = None


@dataclass(frozen=True)
class Lifetime:
    """Soft and hard limits of one SA (struct xfrm_lifetime_cfg). None = no limit.

    Soft expiry is the engine's cue to rekey; at hard expiry the kernel drops the SA."""

    soft_bytes: int | None = None
    hard_bytes: int | None = None
    soft_packets: int | None = None
    hard_packets: int | None = None
    soft_seconds: int | None = None
    hard_seconds: int | None = None
    source: str = ""  # where the byte/packet limits come from (e.g. "SP 800-38D 8.3")

    def __post_init__(self) -> None:
        for soft, hard, what in ((self.soft_bytes, self.hard_bytes, "bytes"),
                                 (self.soft_packets, self.hard_packets, "packets"),
                                 (self.soft_seconds, self.hard_seconds, "seconds")):
            if soft is not None and hard is not None and soft > hard:
                raise ValueError(f"soft {what} limit {soft} above hard limit {hard}")


@dataclass(frozen=True)
class SaSpec:
    """One Child SA in one direction (an ESP SA, RFC 4303), ready for the SAD.

    Keys are SecretKey handles; only the XFRM backend releases their bytes, through
    router.release_esp_key, in the message it sends. For AEAD the key handle holds
    key || salt (RFC 4106 section 8.1).
    """

    src: IPAddress
    dst: IPAddress
    spi: int
    reqid: int
    mode: Mode
    encryption: Encryption
    encryption_key: SecretKey
    integrity: Integrity = Integrity.NONE
    integrity_key: SecretKey | None = None
    selector: TrafficSelector | None = None  # transport mode: the SA's selector; tunnel: any
    inbound: bool = False
    replay_window: int = 32  # packets (RFC 4303 3.4.3); 0 disables, > 32 uses XFRMA_REPLAY_ESN_VAL
    esn: bool = False  # RFC 4304 extended sequence numbers
    encap: UdpEncap | None = None
    lifetime: Lifetime = field(default_factory=Lifetime)
    name: str = ""  # the connection/child name, for logs and reports

    def __post_init__(self) -> None:
        if self.src.version != self.dst.version:
            raise ValueError("SA endpoints mix IPv4 and IPv6")
        if not 0 < self.spi <= 0xFFFF_FFFF or self.spi < 256:
            raise ValueError(f"SPI {self.spi:#x} is reserved (RFC 4303 section 2.1)")
        if self.encryption.is_aead and self.integrity is not Integrity.NONE:
            raise ValueError("an AEAD transform takes no separate integrity transform (RFC 5282 section 8)")
        if not self.encryption.is_aead and self.integrity is not Integrity.NONE and self.integrity_key is None:
            raise ValueError("integrity transform without an integrity key")

    @property
    def version(self) -> int:
        return self.src.version


ChildSaSpec = SaSpec  # the engine's name for it


@dataclass(frozen=True)
class Template:
    """The SA an IPsec policy asks for (struct xfrm_user_tmpl): tunnel endpoints and reqid.

    For a transport-mode trap the endpoints may be None (taken from the packet)."""

    src: IPAddress | None
    dst: IPAddress | None
    reqid: int
    mode: Mode = Mode.TUNNEL
    proto: int = IPPROTO_ESP


@dataclass(frozen=True)
class PolicySpec:
    """One SPD entry (RFC 4301 4.4.1) in one direction."""

    selector: TrafficSelector
    direction: Direction
    action: PolicyAction
    template: Template | None = None
    priority: int | None = None  # None: computed from the selector's specificity

    def __post_init__(self) -> None:
        needs_template = self.action in (PolicyAction.IPSEC, PolicyAction.TRAP)
        if needs_template and self.template is None:
            raise ValueError(f"{self.action.value} policy needs a template")
        if not needs_template and self.template is not None:
            raise ValueError(f"{self.action.value} policy takes no template")


@dataclass(frozen=True)
class Ownership:
    """How fipsike recognises what it installed, so it touches nothing else.

    Every SA has a reqid in [reqid_min, reqid_max]. Every SA and policy carries
    the XFRM mark value 0 / mask `mark_mask`: (skb->mark & mask) == 0 holds for
    ordinary (unmarked) traffic, so the mark changes no matching, but it tags the
    entry in a dump. Packets marked with that bit bypass fipsike's SPD.
    """

    reqid_min: int = 0x4649_0000
    reqid_max: int = 0x4649_FFFF
    mark_mask: int = 0x0080_0000

    def __post_init__(self) -> None:
        if not 0 < self.reqid_min <= self.reqid_max <= 0xFFFF_FFFF:
            raise ValueError("reqid range must be 1..2^32-1 and ordered")
        if not 0 < self.mark_mask <= 0xFFFF_FFFF:
            raise ValueError("ownership mark mask must be a non-zero 32-bit value")

    def owns_reqid(self, reqid: int) -> bool:
        return self.reqid_min <= reqid <= self.reqid_max

    def owns_mark(self, value: int, mask: int) -> bool:
        return value == 0 and mask == self.mark_mask


# --- read back from the kernel (redacted) --------------------------------------------------------


@dataclass(frozen=True)
class KeyDigest:
    """A key as the report shows it: its length and a keyed fingerprint, never its bytes."""

    octets: int
    fingerprint: str | None  # router.keyed_fingerprint; None when no router was given
    blanked_by_kernel: bool = False  # all zero: the kernel redacts keys under lockdown=confidentiality


@dataclass(frozen=True)
class AlgorithmState:
    kind: str  # "aead", "enc", "auth-trunc", "auth"
    name: str  # kernel name, e.g. "rfc4106(gcm(aes))"
    key: KeyDigest
    bits: int = 0  # ICV bits (aead) or truncation bits (auth-trunc)


@dataclass(frozen=True)
class SaState:
    src: IPAddress
    dst: IPAddress
    spi: int
    proto: int
    reqid: int
    mode: Mode
    selector: TrafficSelector | None
    algorithms: tuple[AlgorithmState, ...]
    replay_window: int
    esn: bool
    encap: UdpEncap | None
    lifetime: Lifetime
    bytes: int
    packets: int
    add_time: int
    mark: tuple[int, int]
    larval: bool = False  # an ALLOCSPI placeholder with no keys yet
    revealed: tuple[tuple[str, str], ...] = ()  # (alg name, hex key): only the non-FIPS reveal path


@dataclass(frozen=True)
class PolicyState:
    selector: TrafficSelector
    direction: Direction
    action: PolicyAction
    priority: int
    index: int
    templates: tuple[Template, ...]
    mark: tuple[int, int]


# --- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Acquire:
    """XFRM_MSG_ACQUIRE: a packet hit a trap policy with no SA: negotiate one."""

    selector: TrafficSelector
    src: IPAddress | None  # the template's endpoints (the packet's, for transport mode)
    dst: IPAddress | None
    reqid: int
    direction: Direction
    policy_index: int
    seq: int


@dataclass(frozen=True)
class Expire:
    """XFRM_MSG_EXPIRE: soft = rekey now; hard = the kernel has already removed the SA."""

    src: IPAddress
    dst: IPAddress
    spi: int
    proto: int
    reqid: int
    hard: bool
    bytes: int
    packets: int


@dataclass(frozen=True)
class PolicyChanged:
    """XFRMNLGRP_POLICY: a policy was added, updated, deleted or the SPD flushed (by anyone)."""

    kind: str  # "new", "update", "delete", "expire", "flush"
    selector: TrafficSelector | None
    direction: Direction | None
    index: int
    owned: bool


@dataclass(frozen=True)
class EventsLost:
    """The event socket overflowed (ENOBUFS): resynchronise from a dump."""


KernelEvent: TypeAlias = Acquire | Expire | PolicyChanged | EventsLost


@dataclass(frozen=True)
class CleanupReport:
    sas_removed: int
    policies_removed: int
    errors: tuple[str, ...] = ()
