"""The engine-facing connection configuration.

fipsike/config parses files into these; tests build them directly. Nothing here
does I/O: certificates and keys arrive already loaded (the private key as a
provider handle, which may live on a PKCS#11 token).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fipsike.ike.actions import TrafficSelectorSpec
from fipsike.ike.proposals import ProposalSpec, Protocol, parse_proposals
from fipsike.ike.retransmit import RetransmitPolicy
from providers.handles import PrivateKey, SecretKey

# FIPS-mode lifetime ceilings: 24 h for an IKE SA, 8 h for a Child SA (the project's FIPS profile,
# in line with the NIAP VPN gateway PP FCS_IPSEC_EXT.1.7/1.8 limits).
FIPS_MAX_IKE_LIFETIME = 24 * 3600.0
FIPS_MAX_CHILD_LIFETIME = 8 * 3600.0


@dataclass
class ChildConfig:
    name: str
    local_ts: tuple[TrafficSelectorSpec, ...]
    remote_ts: tuple[TrafficSelectorSpec, ...]
    esp_proposals: tuple[ProposalSpec, ...] = field(
        default_factory=lambda: parse_proposals(["aes256gcm16", "aes128gcm16"], Protocol.ESP))
    mode: str = "tunnel"  # "tunnel" | "transport" (RFC 7296 1.3.1 USE_TRANSPORT_MODE)
    rekey_time: float = 3600.0  # seconds after install to rekey (soft)
    life_time: float = 3960.0  # hard expiry
    start_action: str = "none"  # "none" | "start" | "trap"
    close_action: str = "none"
    reqid: int = 0  # 0: the engine allocates one


@dataclass(frozen=True)
class IkeConfig:
    """What is known at IKE_SA_INIT (strongSwan's ike_cfg): the addresses, the port and the IKE
    proposals. The responder picks its candidate connections and the IKE SA's suite from these
    alone; identities, authentication and children (the rest of a Connection, the peer config)
    only count from IKE_AUTH on, where the chosen connection's own proposals are checked again."""

    local_addrs: tuple[str, ...]
    remote_addrs: tuple[str, ...]
    port: int
    ike_proposals: tuple[ProposalSpec, ...]

    def fits(self, local_ip: str, remote_ip: str) -> bool:
        return (local_ip in self.local_addrs or "%any" in self.local_addrs) and \
            (remote_ip in self.remote_addrs or "%any" in self.remote_addrs)


@dataclass
class Connection:
    name: str
    local_addrs: tuple[str, ...]  # the first is used to initiate
    remote_addrs: tuple[str, ...]  # "%any" accepted as a responder
    local_id: str = "%fromcert"  # "%fromcert", an FQDN, "user@fqdn", an IP, a DN "C=..,O=..,CN=.."
    remote_id: str = "%any"
    local_auth: str = "pubkey"  # "pubkey" | "psk" | "null"
    remote_auth: str = "pubkey"  # "pubkey" | "psk" | "null"
    private_key: PrivateKey | None = None
    # the pre-shared key for this conn's (local_id, remote_id) pair, as a provider handle (RFC 7296
    # 2.15 SHARED_KEY_MIC): used when local_auth or remote_auth is "psk"
    psk: SecretKey | None = None
    certificate: Any = None  # cryptography x509.Certificate (end entity)
    intermediates: tuple[Any, ...] = ()
    trust_anchors: tuple[Any, ...] = ()  # x509.Certificate CAs the peer's chain must end at
    # libreswan's crl-strict: the peer certificate's issuer must have a CRL in the engine's CrlSource
    # (a revoked certificate is refused either way)
    crl_strict: bool = False
    ike_proposals: tuple[ProposalSpec, ...] = field(
        default_factory=lambda: parse_proposals(["aes256gcm16-prfsha384-ecp256"], Protocol.IKE))
    children: tuple[ChildConfig, ...] = ()
    # auth method for our AUTH payload: "signature" (RFC 7427, 14) or "legacy" (1 / 9 / 10 / 11)
    signature_auth: str = "signature"
    send_cert: str = "always"  # "always" | "ifasked" | "never"
    send_certreq: bool = True
    rekey_time: float = 14400.0  # IKE SA reauth/rekey after this many seconds
    life_time: float = 15840.0  # hard ceiling before the IKE SA is deleted
    dpd_delay: float = 30.0  # 0: no liveness checks
    dpd_timeout: float = 150.0  # RFC 7296 2.4: when the retransmissions give up
    dpd_action: str = "clear"  # "clear" | "hold" | "restart"
    fragmentation: bool = True  # RFC 7383
    initial_contact: bool = True
    mobike: bool = False  # not implemented by the engine (RFC 4555): accepted and ignored
    encap: bool = False  # force UDP encapsulation (RFC 3948), NAT or not
    port: int = 500
    retransmit: RetransmitPolicy = field(default_factory=RetransmitPolicy)
    allow_null: bool = False  # NULL authentication is refused unless the policy opts in (RFC 7619)
    unique: str = "no"  # only "no" (INITIAL_CONTACT still replaces a rebooted peer's IKE SAs)
    # libreswan 5's intermediate=yes: announce IKE_INTERMEDIATE (RFC 9242 3.1) even without additional
    # key exchanges; ADDKE transforms in ike_proposals announce it anyway (RFC 9370 2.2.1 needs it)
    intermediate: bool = False

    @property
    def announces_intermediate(self) -> bool:
        """Does IKE_SA_INIT carry INTERMEDIATE_EXCHANGE_SUPPORTED for this connection?"""
        return self.intermediate or any(spec.has_additional() for spec in self.ike_proposals)

    @property
    def ike_cfg(self) -> IkeConfig:
        """This connection's IKE config; remembered while the fields it is made of stay the same objects."""
        cfg: IkeConfig | None = self.__dict__.get("_ike_cfg")
        if cfg is None or cfg.local_addrs is not self.local_addrs or cfg.remote_addrs is not self.remote_addrs \
                or cfg.port != self.port or cfg.ike_proposals is not self.ike_proposals:
            cfg = IkeConfig(self.local_addrs, self.remote_addrs, self.port, self.ike_proposals)
            self.__dict__["_ike_cfg"] = cfg
        return cfg

    def child(self, name: str) -> ChildConfig:
        for c in self.children:
            if c.name == name:
                return c
        raise KeyError(f"connection {self.name} has no child {name}")

    def capped(self, fips: bool) -> Connection:
        """Lifetimes clamped to the FIPS ceilings (never raised)."""
        if not fips:
            return self
        import dataclasses

        kids = tuple(dataclasses.replace(
            c, life_time=min(c.life_time, FIPS_MAX_CHILD_LIFETIME),
            rekey_time=min(c.rekey_time, FIPS_MAX_CHILD_LIFETIME * 0.9)) for c in self.children)
        return dataclasses.replace(
            self, children=kids, life_time=min(self.life_time, FIPS_MAX_IKE_LIFETIME),
            rekey_time=min(self.rekey_time, FIPS_MAX_IKE_LIFETIME * 0.9))
