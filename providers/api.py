"""The provider interface: every primitive fipsike can reach.

Both providers (OpenSSL via `cryptography`, PKCS#11 via python-pkcs11) and the
Router implement it. Code outside providers/ only ever holds a Router.

Conventions:
- Secrets in and out are SecretKey handles. Public values (nonces, KE data,
  signatures, AUTH octets, ciphertexts) are bytes.
- AEAD keys are the IKE/ESP form "key || 4-byte salt" (RFC 5282 section 7.1,
  RFC 4106 section 8.1); `iv` is the 8-octet explicit IV and the nonce is
  salt || iv.
- KE public values are in IKEv2 KE payload form: MODP big-endian zero-padded
  to the prime length (RFC 7296 3.4); ECP x || y (RFC 5903 section 7); ML-KEM
  the encapsulation key (initiator) or ciphertext (responder) (FIPS 203).
  The ECP shared secret is the x coordinate (RFC 5903 section 7).
- Signatures: RSA-PSS with salt length = hash length, MGF1 with the same hash
  (RFC 7427 / RFC 8247). ECDSA signatures are DER (RFC 7427) unless
  `raw=True` asks for r || s (RFC 4754, IKEv2 auth methods 9/10/11).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from providers.algorithms import (
    Encryption,
    HashAlg,
    Integrity,
    KeyExchange,
    KeySpec,
    Prf,
    SignatureScheme,
)
from providers.handles import KeyShare, PrivateKey, SecretKey

if TYPE_CHECKING:
    from providers.policy import Policy


@dataclass(frozen=True)
class ProviderInfo:
    name: str  # "openssl" or "pkcs11:<token label>"
    version: str  # library / token firmware version
    fips: bool  # True only when a FIPS module is active underneath (OpenSSL FIPS provider)
    detail: dict[str, str] = field(default_factory=dict)
    mechanisms: tuple[str, ...] = ()


@runtime_checkable
class Provider(Protocol):
    name: str

    def info(self) -> ProviderInfo: ...

    # --- randomness and hashing -------------------------------------------------
    def random(self, n: int) -> bytes: ...

    def digest(self, alg: HashAlg, data: bytes) -> bytes: ...

    # --- secrets ----------------------------------------------------------------
    def generate_secret(self, n: int, kind: str) -> SecretKey: ...

    def import_secret(self, material: bytes, kind: str) -> SecretKey: ...

    def import_psk(self, secret: bytes, label: str) -> SecretKey:
        """A pre-shared key (RFC 7296 2.15) as a handle of kind "PSK"; `label` (a conn name, never the
        secret) is for audit. The caller drops its own copy: from here on only the handle exists."""
        ...

    # --- PRF and the IKEv2 key derivation (RFC 7296 2.13-2.18, SP 800-135 5.1) ---
    def prf(self, alg: Prf, key: SecretKey, data: bytes) -> bytes:
        """prf(K, S) whose output is public (AUTH octets, cookies)."""
        ...

    def shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes) -> bytes:
        """AUTH = prf(prf(key, "Key Pad for IKEv2"), octets) (RFC 7296 2.15): key is a PSK, or SK_pi /
        SK_pr for NULL auth (RFC 7619 2.1). The inner prf output is a key and never leaves."""
        ...

    def skeyseed(self, alg: Prf, ni: bytes, nr: bytes, shared: SecretKey) -> SecretKey:
        """SKEYSEED = prf(Ni | Nr, g^ir)."""
        ...

    def rekey_skeyseed(self, alg: Prf, sk_d: SecretKey, shared: SecretKey | None, ni: bytes,
                       nr: bytes) -> SecretKey:
        """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 2.18; RFC 9370 for shared=SK(n))."""
        ...

    def prf_plus(self, alg: Prf, key: SecretKey, seed: bytes, lengths: Sequence[tuple[str, int]],
                 secret_prefix: SecretKey | None = None) -> list[SecretKey]:
        """prf+(K, [secret_prefix |] seed) cut into keys of the given (kind, octets)."""
        ...

    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey:
        """One secret handle of secrets and public octets in order, e.g. SK(0) | Ni | Nr | SK(1..n)
        (RFC 9370 2.2.4; SP 800-133r2 6.3 combining by concatenation). No secret leaves the module."""
        ...

    # --- encryption and integrity ----------------------------------------------
    def aead_seal(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        """ciphertext || ICV (ICV length from alg)."""
        ...

    def aead_open(self, alg: Encryption, key: SecretKey, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Raises AuthenticationTagInvalid."""
        ...

    def cbc_encrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        """No padding: data is a whole number of blocks (IKE pads itself, RFC 7296 3.14)."""
        ...

    def cbc_decrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes: ...

    def integrity_icv(self, alg: Integrity, key: SecretKey, data: bytes) -> bytes: ...

    def integrity_verify(self, alg: Integrity, key: SecretKey, data: bytes, icv: bytes) -> None:
        """Constant-time; raises AuthenticationTagInvalid."""
        ...

    # --- key exchange ----------------------------------------------------------
    def ke_generate(self, group: KeyExchange) -> KeyShare: ...

    def ke_derive(self, share: KeyShare, peer_public: bytes) -> SecretKey:
        """DH/ECDH shared secret, or ML-KEM decapsulation of the peer's ciphertext."""
        ...

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]:
        """ML-KEM responder: (ciphertext, shared secret)."""
        ...

    # --- signatures and long-term keys -----------------------------------------
    def sign(self, key: PrivateKey, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes: ...

    def verify(self, public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
               raw: bool = False, salt_length: int | None = None) -> bool:
        """`salt_length`: RSA-PSS only, from the peer's RSASSA-PSS-params (RFC 7427); default hash length."""
        ...

    def generate_keypair(self, spec: KeySpec, label: str = "", key_id: bytes = b"") -> PrivateKey:
        """Generates and runs the pairwise consistency test before returning."""
        ...

    def import_private_key(self, private_key: Any, label: str = "", key_id: bytes = b"") -> PrivateKey:
        """Takes a `cryptography` private key object (e.g. from a PKCS#12), runs a PCT."""
        ...


class IkeRouter(Protocol):
    """What the IKE engine (fipsike.ike) calls on the Router: the Provider operations it uses, with
    the policy and the usage limits applied by the Router, plus the Router's own helpers. The
    engine holds this type, never the concrete Router, so a test double or another router fits."""

    @property
    def policy(self) -> Policy: ...

    def random(self, n: int) -> bytes: ...

    def digest(self, alg: HashAlg, data: bytes) -> bytes: ...

    def generate_secret(self, n: int, kind: str) -> SecretKey: ...

    def import_secret(self, material: bytes, kind: str) -> SecretKey: ...

    def import_psk(self, secret: bytes, label: str) -> SecretKey: ...

    def prf(self, alg: Prf, key: SecretKey, data: bytes) -> bytes: ...

    def shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes) -> bytes: ...

    def verify_shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes, received: bytes) -> bool: ...

    def equal(self, a: bytes, b: bytes) -> bool: ...

    def skeyseed(self, alg: Prf, ni: bytes, nr: bytes, shared: SecretKey) -> SecretKey: ...

    def rekey_skeyseed(self, alg: Prf, sk_d: SecretKey, shared: SecretKey | None, ni: bytes,
                       nr: bytes) -> SecretKey: ...

    def prf_plus(self, alg: Prf, key: SecretKey, seed: bytes, lengths: Sequence[tuple[str, int]],
                 secret_prefix: SecretKey | None = None) -> list[SecretKey]: ...

    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey: ...

    def aead_seal(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes, aad: bytes) -> bytes: ...

    def aead_open(self, alg: Encryption, key: SecretKey, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes: ...

    def cbc_encrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes: ...

    def cbc_decrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes: ...

    def integrity_icv(self, alg: Integrity, key: SecretKey, data: bytes) -> bytes: ...

    def integrity_verify(self, alg: Integrity, key: SecretKey, data: bytes, icv: bytes) -> None: ...

    def ke_generate(self, group: KeyExchange) -> KeyShare: ...

    def ke_derive(self, share: KeyShare, peer_public: bytes) -> SecretKey: ...

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]: ...

    def sign(self, key: PrivateKey, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes: ...

    def verify(self, public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
               raw: bool = False, salt_length: int | None = None) -> bool: ...

    def release_esp_key(self, key: SecretKey, purpose: str) -> bytes: ...

    def keyed_fingerprint(self, material: bytes) -> str: ...
