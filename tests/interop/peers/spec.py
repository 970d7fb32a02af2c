"""What a cell asks of a peer, in one vocabulary; each peer translates it into its own config."""

from __future__ import annotations

from dataclasses import dataclass

from tests.interop.peers.pki import EndEntity

# suite name -> (strongSwan/fipsike IKE, strongSwan/fipsike ESP, libreswan ike=, libreswan esp=)
SUITES: dict[str, tuple[str, str, str, str]] = {
    "cnsa": ("aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384", "aes_gcm256-sha384-dh20", "aes_gcm256-null-dh20"),
    "cbc": ("aes256-sha256-modp3072", "aes256-sha256-modp3072", "aes256-sha256-modp3072", "aes256-sha256-modp3072"),
    "gcm128": ("aes128gcm16-prfsha256-ecp256", "aes128gcm16-ecp256", "aes_gcm128-sha256-dh19", "aes_gcm128-null-dh19"),
    # negative: nothing here is approved (3DES: SP 800-131A r2 disallowed after 2023; SHA-1 PRF; MODP-1024)
    "weak": ("3des-sha1-modp1024", "3des-sha1", "3des-sha1-modp1536", "3des-sha1"),
}

# The PSK cells' pre-shared key (test data): 48 varied octets, over FIPS's floor for every PRF here
# (half the PRF's output: 24 octets for PRF-HMAC-SHA2-384) and libreswan's; the wrong-psk negative
# cell gives the peer WRONG_PSK instead.
MATRIX_PSK = "fipsike-matrix-PSK-3f9c1a7e5b2d4c6e8a0b1d3f5e7a9c2b"
WRONG_PSK = "another-PSK-entirely-71d2c4e6a8b0f1e3d5c7b9a1e2f4"


@dataclass
class PeerSpec:
    """One side's connection "gw" with one child "net" (tunnel mode)."""

    local_addr: str
    remote_addr: str  # "%any" for a responder behind whom a NAT may sit
    local_id: str
    remote_id: str
    auth: str  # "pubkey" | "psk" | "null"
    suite: str  # a SUITES key
    local_ts: str  # CIDR
    remote_ts: str
    cert: EndEntity | None = None
    trust: tuple[str, ...] = ()  # root CA PEM paths
    dpd_delay: int = 0
    psk: str = ""  # auth=psk: the pre-shared key for (local_id, remote_id)

    def strongswan(self) -> tuple[str, str]:
        ike, esp, _, _ = SUITES[self.suite]
        return ike, esp

    def libreswan(self) -> tuple[str, str]:
        _, _, ike, esp = SUITES[self.suite]
        return ike, esp
