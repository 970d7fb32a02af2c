"""The Router: the one Provider the rest of fipsike holds.

It applies the module gate, the policy and the usage limits in one place and
sends each call to the provider that can do it: private-key operations to the
provider that owns the key (`PrivateKey.owner`: "openssl" or "pkcs11:<token>"),
everything else to OpenSSL. No caller can reach a primitive around it.

Hot path: AEAD seal/open on a key already admitted by this router's policy
skips the policy lookup (a key's length and the profile never change) and
charges the meter inline; everything else takes the checked path.

Meters count AEAD *seal* invocations and CBC *encrypt* blocks: SP 800-38D 8.3
limits encryption invocations, and in IKE/ESP each direction has its own key
(SK_ei/SK_er), so the key we open with is the peer's encryption key, metered
by the peer. Meters are not locked on the hot path: the daemon is one asyncio
thread.
"""

from __future__ import annotations

import enum
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from providers import openssl as _ossl
from providers import pkcs12 as _p12
from providers.algorithms import (
    Encryption,
    HashAlg,
    Integrity,
    KeyExchange,
    KeySpec,
    Prf,
    SignatureScheme,
)
from providers.api import ProviderInfo
from providers.errors import (
    AuthenticationTagInvalid,
    InvalidInput,
    KeyNotFound,
    ModuleNotOperational,
    PolicyViolation,
    UnsupportedOperation,
)
from providers.handles import KeyShare, PrivateKey, SecretKey, live_private_keys
from providers.limits import FAMILY, Meter, UsageLimits
from providers.pkcs11.config import Pkcs11Config
from providers.policy import PSK_RULE, Policy, key_spec_of, psk_min_octets

if TYPE_CHECKING:
    from providers.pkcs11.provider import Pkcs11Provider

audit_log = logging.getLogger("fipsike.audit")
_KEY_PAD: Final = b"Key Pad for IKEv2"  # RFC 7296 section 2.15
log = logging.getLogger("fipsike.providers")

# Key kinds that may leave the module through release_esp_key: child SA keys (RFC 7296 2.17
# KEYMAT) for the kernel's ESP/AH SAs. IKE SA keys (SKEYSEED, SK_*), g^ir and cookie secrets never.
ESP_KEY_PREFIXES: Final = ("ESP", "AH", "KEYMAT")

# One per process: keyed fingerprints compare across routers of the same process only.
_FINGERPRINT_KEY: Final = os.urandom(32)
FINGERPRINT_OCTETS: Final = 8


class ModuleState(enum.Enum):
    POWER_ON = "POWER_ON"
    SELF_TEST = "SELF_TEST"
    OPERATIONAL = "OPERATIONAL"
    ERROR = "ERROR"


class Gate:
    """The module state (FIPS 140-3 section 7.11 / ISO 19790 7.10): compliance drives it.

    POWER_ON, SELF_TEST and OPERATIONAL let calls through (self-tests need the
    primitives); ERROR refuses every call with ModuleNotOperational until the
    self-tests are run again (`begin_self_test`).
    """

    __slots__ = ("state", "reason", "refusing", "_listeners")

    def __init__(self) -> None:
        self.state = ModuleState.POWER_ON
        self.reason = "power-on"
        self.refusing = False
        self._listeners: list[Callable[[ModuleState, str], None]] = []

    def _set(self, state: ModuleState, reason: str) -> None:
        self.state = state
        self.reason = reason
        self.refusing = state is ModuleState.ERROR
        for listener in list(self._listeners):
            listener(state, reason)

    def on_change(self, listener: Callable[[ModuleState, str], None]) -> None:
        self._listeners.append(listener)

    def begin_self_test(self, reason: str = "self-test") -> None:
        self._set(ModuleState.SELF_TEST, reason)

    def operational(self, reason: str = "self-tests passed") -> None:
        if self.state is ModuleState.ERROR:
            raise ModuleNotOperational(self.state.value, "leave ERROR only by running the self-tests again")
        self._set(ModuleState.OPERATIONAL, reason)

    def fail(self, reason: str) -> None:
        self._set(ModuleState.ERROR, reason)

    def check(self) -> None:
        if self.refusing:
            raise ModuleNotOperational(self.state.value, self.reason)

    def __repr__(self) -> str:
        return f"Gate({self.state.value}, {self.reason!r})"


def scheme_for(spec: KeySpec, hash_alg: HashAlg, rsa_pss: bool = False) -> SignatureScheme:
    """The signature scheme for a key type and hash (certificates, CRLs)."""
    suffix = hash_alg.name
    if spec.kind == "rsa":
        return SignatureScheme[f"RSA_{'PSS' if rsa_pss else 'PKCS1'}_{suffix}"]
    return SignatureScheme[f"ECDSA_{suffix}"]


class Router:
    """Implements providers.api.Provider plus the boundary extras (see HELPERS-COMMON)."""

    name = "router"

    def __init__(self, policy: Policy, limits: UsageLimits | None = None, pkcs11: Pkcs11Provider | None = None,
                 gate: Gate | None = None) -> None:
        self.policy = policy
        self.limits = limits if limits is not None else UsageLimits()
        self.gate = gate if gate is not None else Gate()
        self.openssl = _ossl.OpenSSLProvider()
        self.pkcs11 = pkcs11
        self._owners: dict[str, Any] = {self.openssl.name: self.openssl}
        # The hot-path pass: keys admitted under this ticket skip the policy lookup. Any gate
        # transition issues a new ticket, so an ERROR state reaches the hot path at once.
        self._ticket = object()
        self.gate.on_change(self._new_ticket)
        self._token_provider: Pkcs11Provider | None = pkcs11
        if pkcs11 is not None:
            self._owners[pkcs11.name] = pkcs11

    def _new_ticket(self, state: ModuleState, reason: str) -> None:
        self._ticket = object()

    def __repr__(self) -> str:
        return (f"Router(profile={self.policy.profile!r}, providers={sorted(self._owners)}, "
                f"gate={self.gate.state.value})")

    # --- housekeeping ---------------------------------------------------------------
    @property
    def profile(self) -> str:
        return self.policy.profile

    def providers(self) -> list[Any]:
        return list(self._owners.values())

    def info(self) -> ProviderInfo:
        base = self.openssl.info()
        detail = dict(base.detail)
        detail["profile"] = self.policy.profile
        detail["module_state"] = self.gate.state.value
        if self.pkcs11 is not None:
            detail["pkcs11"] = self.pkcs11.name
        return ProviderInfo(self.name, base.version, base.fips, detail)

    def infos(self) -> list[ProviderInfo]:
        """Every underlying provider's info (for fipsstatus)."""
        if self.gate.refusing:
            self.gate.check()
        return [p.info() for p in self._owners.values()]

    def _owner(self, owner: str) -> Any:
        try:
            return self._owners[owner]
        except KeyError:
            raise UnsupportedOperation(f"no provider {owner!r} is configured in this router") from None

    # --- randomness and hashing -------------------------------------------------------
    def random(self, n: int) -> bytes:
        if self.gate.refusing:
            self.gate.check()
        return os.urandom(n)

    def digest(self, alg: HashAlg, data: bytes) -> bytes:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_hash(alg)
        return self.openssl.digest(alg, data)

    # --- secrets ---------------------------------------------------------------------
    def generate_secret(self, n: int, kind: str) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        return self.openssl.generate_secret(n, kind)

    def cookie_secret(self) -> SecretKey:
        """A fresh secret for stateless cookies (RFC 7296 section 2.6): 32 octets."""
        return self.generate_secret(32, "cookie-secret")

    def import_secret(self, material: bytes, kind: str) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        return self.openssl.import_secret(material, kind)

    def import_psk(self, secret: bytes, label: str) -> SecretKey:
        """A pre-shared key (ipsec.secrets) as a handle; its length is checked per PRF when it is used."""
        if self.gate.refusing:
            self.gate.check()
        handle = self.openssl.import_psk(bytes(secret), label)
        audit_log.info("imported a %d-octet PSK for %s", len(handle), label,
                       extra={"audit": "psk-import", "key_octets": len(handle), "label": label})
        return handle

    # --- PRF and key derivation --------------------------------------------------------
    def prf(self, alg: Prf, key: SecretKey, data: bytes) -> bytes:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_prf(alg)
        return self.openssl.prf(alg, key, data)

    def shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes) -> bytes:
        """AUTH = prf(prf(key, "Key Pad for IKEv2"), octets) (RFC 7296 2.15; RFC 7619 2 with SK_pi/SK_pr),
        computed by the provider holding the key: the inner prf output is itself a key, so it is
        made and wiped there and never handed out; only the AUTH value (sent on the wire) leaves.
        In the fips profile a PSK shorter than half the PRF's key size is refused (FIPS 198-1 3)."""
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_prf(alg)
        if key.kind == _ossl.PSK_KIND and self.policy.profile == "fips" and len(key) < psk_min_octets(alg):
            raise PolicyViolation(f"a {len(key)}-octet PSK with {alg.name}",
                                  f"at least {psk_min_octets(alg)} octets ({PSK_RULE})", self.policy.profile)
        out: bytes = self._owner(key.owner).shared_key_auth(alg, key, octets)
        return out

    def verify_shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes, received: bytes) -> bool:
        """Constant-time check of a peer's shared-key / NULL AUTH value."""
        return constant_time.bytes_eq(self.shared_key_auth(alg, key, octets), received)

    @staticmethod
    def equal(a: bytes, b: bytes) -> bool:
        """Constant-time comparison for MAC-like public values (cookies, AUTH)."""
        return constant_time.bytes_eq(a, b)

    def skeyseed(self, alg: Prf, ni: bytes, nr: bytes, shared: SecretKey) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_prf(alg)
        return self.openssl.skeyseed(alg, ni, nr, shared)

    def rekey_skeyseed(self, alg: Prf, sk_d: SecretKey, shared: SecretKey | None, ni: bytes,
                       nr: bytes) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_prf(alg)
        return self.openssl.rekey_skeyseed(alg, sk_d, shared, ni, nr)

    def prf_plus(self, alg: Prf, key: SecretKey, seed: bytes, lengths: Sequence[tuple[str, int]],
                 secret_prefix: SecretKey | None = None) -> list[SecretKey]:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_prf(alg)
        return self.openssl.prf_plus(alg, key, seed, lengths, secret_prefix)

    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        for part in parts:
            if isinstance(part, SecretKey) and part.owner != self.openssl.name:
                raise UnsupportedOperation(f"joining secrets runs on openssl; {part.kind} is held by {part.owner}")
        return self.openssl.join_secrets(parts, kind)

    # --- encryption: metered ------------------------------------------------------------
    def _admit(self, alg: Encryption, key: SecretKey) -> Meter:
        """Policy check and meter binding for a key's first use with `alg` under this router."""
        if self.gate.refusing:
            self.gate.check()
        if key.owner != self.openssl.name:
            raise UnsupportedOperation(f"bulk encryption runs on openssl; {key.kind} is held by {key.owner}")
        salt = alg.salt_size if isinstance(alg, Encryption) else 0
        self.policy.check_encryption(alg, (len(key) - salt) * 8)
        meter: Meter | None = key.meter
        family = FAMILY[alg]
        if meter is None:
            meter = self.limits.meter(alg)
            meter.kind = key.kind
            key.meter = meter
        elif meter.limit.family != family:
            raise InvalidInput(f"{key.kind} is already in use with {meter.limit.family}; one key, one cipher")
        meter.bound = (self.policy, alg)
        return meter

    def aead_seal(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        # Hot path: a key this router already admitted (same policy, same gate epoch, same alg),
        # below its meter's soft threshold. Anything else takes the checked path.
        c = key._ctx
        if c is not None and c.ticket is self._ticket and c.alg is alg and len(iv) == 8:
            budget = c.budget
            if budget:
                c.budget = budget - 1
                return c.aead.encrypt(c.salt + iv, plaintext, aad)  # type: ignore[no-any-return]
        return self._aead_seal_checked(alg, key, iv, plaintext, aad)

    def _aead_seal_checked(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes,
                           aad: bytes) -> bytes:
        m = self._admit(alg, key)
        ctx = self.openssl.aead_context(alg, key)
        if len(iv) != 8:  # refused before the charge: a call that cannot run is not an invocation
            raise InvalidInput(f"{alg.name} needs an 8-octet IV, got {len(iv)}")
        m.charge(1)
        out = self.openssl.aead_seal(alg, key, iv, plaintext, aad)
        self._issue(ctx, m)
        return out

    def _issue(self, ctx: Any, meter: Meter) -> None:
        """Give an admitted key's context this router's hot-path ticket."""
        if isinstance(ctx, _ossl.CbcContext) or ctx.aead is not None:
            meter.lease(ctx)
            ctx.ticket = self._ticket

    def aead_open(self, alg: Encryption, key: SecretKey, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        c = key._ctx
        if c is not None and c.ticket is self._ticket and c.alg is alg and len(iv) == 8:
            try:
                return c.aead.decrypt(c.salt + iv, ciphertext, aad)  # type: ignore[no-any-return]
            except InvalidTag:
                raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify") from None
        m = self._admit(alg, key)
        out = self.openssl.aead_open(alg, key, iv, ciphertext, aad)
        self._issue(self.openssl.aead_context(alg, key), m)
        return out

    def cbc_encrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        c = key._ctx
        if c is not None and c.ticket is self._ticket and c.alg is alg and len(iv) == 16 and not len(data) % 16:
            budget = c.budget - len(data) // 16
            if budget >= 0:
                c.budget = budget
                enc = Cipher(c.aes, modes.CBC(iv)).encryptor()
                return enc.update(data) + enc.finalize()
        m = self._admit(alg, key)
        ctx = self.openssl.cbc_check(alg, key, iv, data)
        m.charge(len(data) // alg.block_size)
        self._issue(ctx, m)
        return self.openssl.cbc_encrypt(alg, key, iv, data)

    def cbc_decrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        c = key._ctx
        if not (c is not None and c.ticket is self._ticket and c.alg is alg):
            self._admit(alg, key)
        return self.openssl.cbc_decrypt(alg, key, iv, data)

    def usage(self, key: SecretKey) -> Meter | None:
        """The key's meter (None before its first encryption)."""
        meter: Meter | None = key.meter
        return meter

    # --- integrity ---------------------------------------------------------------------
    def integrity_icv(self, alg: Integrity, key: SecretKey, data: bytes) -> bytes:
        c = key._ctx
        if c is not None and c.ticket is self._ticket and c.alg is alg:
            m = c.base.copy()
            m.update(data)
            return m.finalize()[: c.icv]  # type: ignore[no-any-return]
        return self._integrity_checked(alg, key)(data)

    def _integrity_checked(self, alg: Integrity, key: SecretKey) -> Callable[[bytes], bytes]:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_integrity(alg)
        if key.owner != self.openssl.name:
            owner = self._owner(key.owner)
            return lambda data: owner.integrity_icv(alg, key, data)
        ctx = self.openssl.hmac_context(alg, key)
        ctx.ticket = self._ticket
        return lambda data: self.openssl.integrity_icv(alg, key, data)

    def integrity_verify(self, alg: Integrity, key: SecretKey, data: bytes, icv: bytes) -> None:
        """Constant-time; raises AuthenticationTagInvalid."""
        if not constant_time.bytes_eq(self.integrity_icv(alg, key, data), bytes(icv)):
            raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify")

    # --- key exchange ------------------------------------------------------------------
    def ke_generate(self, group: KeyExchange) -> KeyShare:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_ke(group)
        share: KeyShare = self.openssl.ke_generate(group)
        return share

    def ke_import_private(self, group: KeyExchange, private: bytes) -> KeyShare:
        """A key share from a known private value (known-answer tests; see OpenSSLProvider)."""
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_ke(group)
        return self.openssl.ke_import_private(group, private)

    def ke_derive(self, share: KeyShare, peer_public: bytes) -> SecretKey:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_ke(share.group)
        secret: SecretKey = self._owner(share.owner).ke_derive(share, peer_public)
        return secret

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_ke(group)
        return self.openssl.ke_encapsulate(group, peer_public)

    # --- signatures and long-term keys ---------------------------------------------------
    def sign(self, key: PrivateKey, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes:
        plan = key._plans.get((scheme, raw))
        if plan is not None and plan[0] is self._ticket:
            return plan[1](data)  # type: ignore[no-any-return]
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_signature(scheme, key=key.spec)
        owner = self._owner(key.owner)
        sig: bytes = owner.sign(key, scheme, data, raw)
        # admitted: later calls with this scheme under this ticket go straight to the signer
        if owner is self.openssl:
            key._plans[(scheme, raw)] = (self._ticket, _ossl.signer(key._software_key(), scheme, raw))
        else:
            key._plans[(scheme, raw)] = (self._ticket, lambda d: owner.sign(key, scheme, d, raw))
        return sig

    def verify(self, public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
               raw: bool = False, salt_length: int | None = None) -> bool:
        """`salt_length`: RSA-PSS salt from the peer's RSASSA-PSS-params (RFC 7427 section 3);
        default the hash length. FIPS 186-5 section 5.4 bounds it to [0, hash length]."""
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_signature(scheme, verify=True, key=public_key)
        if salt_length is not None and scheme.family == "rsa-pss" and not 0 <= salt_length <= scheme.hash.digest_size:
            raise PolicyViolation(f"{scheme.name} with a {salt_length}-octet salt",
                                  "FIPS 186-5 section 5.4: 0 <= sLen <= hLen", self.policy.profile)
        return self.openssl.verify(public_key, scheme, data, signature, raw, salt_length)

    def _token(self) -> Pkcs11Provider:
        if self.pkcs11 is None:
            raise UnsupportedOperation("no PKCS#11 token is configured (open_router(pkcs11=Pkcs11Config(...)))")
        return self.pkcs11

    def generate_keypair(self, spec: KeySpec, label: str = "", key_id: bytes = b"",
                         to_token: bool = False) -> PrivateKey:
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_key(spec)
        if to_token:
            return self._token().generate_keypair(spec, label, key_id)
        return self.openssl.generate_keypair(spec, label, key_id)

    def import_private_key(self, private_key: Any, label: str = "", key_id: bytes = b"",
                           to_token: bool = False) -> PrivateKey:
        """Takes a software PrivateKey handle (from open_pkcs12 / import_pkcs8) or, inside
        providers/ and tests, a `cryptography` private key; with to_token=True it goes onto the
        token as sensitive and non-extractable (CKA_ID = key_id) and the returned handle points there."""
        if self.gate.refusing:
            self.gate.check()
        if isinstance(private_key, PrivateKey):
            if private_key.owner != self.openssl.name:
                raise InvalidInput(f"key {private_key.label!r} is held by {private_key.owner}: it cannot move")
            private_key = private_key._software_key()
        self.policy.check_key(key_spec_of(private_key))
        if to_token:
            return self._token().import_private_key(private_key, label, key_id)
        return self.openssl.import_private_key(private_key, label, key_id)

    def import_pkcs8(self, der: bytes, label: str = "", key_id: bytes = b"", to_token: bool = False) -> PrivateKey:
        """A DER private key (PKCS#8, RFC 5958), parsed inside the boundary: the self-tests' fixed keys."""
        if self.gate.refusing:
            self.gate.check()
        return self.import_private_key(_p12.parse_pkcs8(der), label, key_id, to_token)

    def open_pkcs12(self, data: bytes, password: bytes | None) -> _p12.Pkcs12Contents:
        """A PKCS#12 (RFC 7292) decrypted inside the boundary: its key as a software handle (policy
        checked, pairwise-consistency tested), its certificates as x509 objects. Move the key to the
        token with import_private_key(contents.key, ..., to_token=True), then contents.wipe()."""
        if self.gate.refusing:
            self.gate.check()
        parsed = _p12.parse_pkcs12(data, password)
        handle = None
        if parsed.key is not None:
            self.policy.check_key(key_spec_of(parsed.key))
            handle = self.openssl.import_private_key(parsed.key, parsed.friendly_name)
        parsed.key = None
        return _p12.Pkcs12Contents(handle, parsed.cert, parsed.friendly_name, parsed.additional)

    def load_private_key(self, uri_or_label: str) -> PrivateKey:
        """A token key by PKCS#11 URI (RFC 7512: id / object) or by its label."""
        if self.gate.refusing:
            self.gate.check()
        token = self._token()
        if uri_or_label.startswith("pkcs11:"):
            key = token.find_private_key_by_uri(uri_or_label)
        else:
            key = token.find_private_key(label=uri_or_label)
        self.policy.check_key(key.spec)
        return key

    def live_private_keys(self) -> dict[str, int]:
        """Private key handles still usable (not wiped, still referenced) per provider name of this
        router, over the process: a caller that imports keys repeatedly can check it releases them."""
        return {name: live_private_keys(name) for name in self._owners}

    def find_private_key(self, public_key: Any) -> PrivateKey:
        """The token's private key whose public half is `public_key` (e.g. a certificate's)."""
        if self.gate.refusing:
            self.gate.check()
        return self._token().find_private_key(public_key=public_key)

    # --- the audited exit and the fingerprint --------------------------------------------
    def release_esp_key(self, key: SecretKey, purpose: str) -> bytes:
        """Raw key bytes for the kernel's ESP/AH SA install, and nothing else. Audited."""
        if self.gate.refusing:
            self.gate.check()
        if not isinstance(key, SecretKey) or not key.kind.startswith(ESP_KEY_PREFIXES):
            kind = key.kind if isinstance(key, SecretKey) else type(key).__name__
            raise PolicyViolation(f"release of a {kind} key",
                                  "only child SA (ESP/AH KEYMAT) keys may leave the module", self.policy.profile)
        material = key._bytes()
        audit_log.info("released %s key (%d octets) for %s", key.kind, len(material), purpose,
                       extra={"audit": "key-release", "key_kind": key.kind, "key_octets": len(material),
                              "purpose": purpose})
        return material

    def keyed_fingerprint(self, material: bytes) -> str:
        """HMAC-SHA-256 under a per-process random key, truncated: compares keys without revealing them."""
        if self.gate.refusing:
            self.gate.check()
        return self.openssl._hmac(HashAlg.SHA256, _FINGERPRINT_KEY, bytes(material))[:FINGERPRINT_OCTETS].hex()

    # --- certificates and CRLs (so certs/ never touches a hash object) ----------------------
    def issue_certificate(self, builder: x509.CertificateBuilder, issuer_key: PrivateKey, hash: HashAlg,
                          rsa_pss: bool = False) -> x509.Certificate:
        signed = self._sign_x509(builder, issuer_key, hash, rsa_pss, lambda d: d.tbs_certificate_bytes)
        return signed if isinstance(signed, x509.Certificate) else x509.load_der_x509_certificate(signed)

    def sign_crl(self, builder: x509.CertificateRevocationListBuilder, issuer_key: PrivateKey, hash: HashAlg,
                 rsa_pss: bool = False) -> x509.CertificateRevocationList:
        signed = self._sign_x509(builder, issuer_key, hash, rsa_pss, lambda d: d.tbs_certlist_bytes)
        return signed if isinstance(signed, x509.CertificateRevocationList) else x509.load_der_x509_crl(signed)

    def _sign_x509(self, builder: Any, issuer_key: PrivateKey, hash: HashAlg, rsa_pss: bool,
                   tbs_of: Callable[[Any], bytes]) -> Any:
        """A signed certificate/CRL object (OpenSSL key), or its DER (token key)."""
        if self.gate.refusing:
            self.gate.check()
        self.policy.check_signature_hash(hash)
        scheme = scheme_for(issuer_key.spec, hash, rsa_pss)
        self.policy.check_signature(scheme, key=issuer_key.spec)
        if issuer_key.owner == self.openssl.name:
            return builder.sign(issuer_key._software_key(), _cert_hash(hash), rsa_padding=self._padding(scheme))
        # A token key: cryptography signs only with its own key objects, so build the TBS with a
        # stand-in key of the same type, sign those octets on the token and splice the signature in.
        stand_in = _stand_in_key(issuer_key.spec)
        draft = builder.sign(stand_in, _cert_hash(hash), rsa_padding=self._padding(scheme))
        return self._resign(draft.public_bytes(_der()), tbs_of(draft), issuer_key, scheme)

    @staticmethod
    def _padding(scheme: SignatureScheme) -> Any:
        if scheme.family == "rsa-pss":
            return _ossl._pss(_ossl.HASHES[scheme.hash])
        if scheme.family == "rsa-pkcs1":
            return padding.PKCS1v15()
        return None

    def _resign(self, draft_der: bytes, tbs: bytes, issuer_key: PrivateKey, scheme: SignatureScheme) -> bytes:
        parts = _der_sequence_items(draft_der)
        if len(parts) != 3 or parts[0] != tbs:
            raise InvalidInput("unexpected certificate/CRL structure from the builder")
        signature = self._owner(issuer_key.owner).sign(issuer_key, scheme, tbs)
        if not _ossl.verify_with(issuer_key.public_key(), scheme, tbs, signature):
            raise InvalidInput(f"token signature by {issuer_key.label!r} did not verify")
        bit_string = _der_tlv(0x03, b"\x00" + signature)
        return _der_tlv(0x30, parts[0] + parts[1] + bit_string)


# --- stand-in keys and a minimal DER walker for splicing a token signature ---------------------
_STAND_INS: dict[str, Any] = {}


def _stand_in_key(spec: KeySpec) -> Any:
    tag = "rsa" if spec.kind == "rsa" else spec.curve
    key = _STAND_INS.get(tag)
    if key is None:
        key = rsa.generate_private_key(65537, 2048) if spec.kind == "rsa" else ec.generate_private_key(
            _ossl.CURVES[spec.curve])
        _STAND_INS[tag] = key
    return key


def _cert_hash(alg: HashAlg) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    if alg is HashAlg.SHA384:
        return hashes.SHA384()
    if alg is HashAlg.SHA512:
        return hashes.SHA512()
    if alg is HashAlg.SHA256:
        return hashes.SHA256()
    raise InvalidInput(f"{alg.name} cannot sign certificates")


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der_tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(value)) + value


def _der_read(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the TLV at pos."""
    tag = der[pos]
    first = der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        length = int.from_bytes(der[pos:pos + n], "big")
        pos += n
    return tag, pos, pos + length


def _der_sequence_items(der: bytes) -> list[bytes]:
    """The complete TLVs inside the outer SEQUENCE."""
    tag, start, end = _der_read(der, 0)
    if tag != 0x30 or end != len(der):
        raise InvalidInput("not a DER SEQUENCE")
    items = []
    pos = start
    while pos < end:
        _, vstart, vend = _der_read(der, pos)
        items.append(der[pos:vend])
        pos = vend
    return items


def open_router(profile: str = "fips", pkcs11: Pkcs11Config | None = None, limits: UsageLimits | None = None,
                gate: Gate | None = None) -> Router:
    """The Router for a profile ("fips" or "default"), with a PKCS#11 token when configured.

    The token session is opened (and logged in) once per token per process and shared by
    every router that names the same token.
    """
    policy = Policy(profile)
    token = None
    if pkcs11 is not None:
        from providers.pkcs11.provider import open_pkcs11

        token = open_pkcs11(pkcs11)
    return Router(policy, limits, token, gate)


__all__ = [
    "ESP_KEY_PREFIXES",
    "Gate",
    "KeyNotFound",
    "ModuleState",
    "Router",
    "open_router",
    "scheme_for",
]
