"""The PKCS#11 provider over python-pkcs11: long-term signing keys on a token.

- One logged-in session per token per process (PKCS#11 logs in per
  application, a second C_Login answers CKR_USER_ALREADY_LOGGED_IN): sessions
  are cached module-wide and shared by every router naming the same token.
- Keys generated or imported here are CKA_SENSITIVE and not CKA_EXTRACTABLE,
  CKA_TOKEN, CKA_PRIVATE, with CKA_ID = key_id and CKA_LABEL = label.
- RSA-PSS always gets explicit parameters (hash, MGF1 with the same hash, salt
  = hash length); ECDSA hashes on the host and signs with raw CKM_ECDSA (the
  token answers r || s; we encode DER unless raw is asked for).
- A missing mechanism is UnsupportedOperation naming it. Symmetric AES-GCM,
  AES-CBC and HMAC run on the token too (for KATs and for secrets that must
  stay there); the router keeps bulk traffic on OpenSSL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import pkcs11
from cryptography.hazmat.primitives import constant_time, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import SubjectKeyIdentifier
from pkcs11 import MGF, Attribute, KeyType, Mechanism, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_ecdsa_signature, encode_named_curve_parameters

from providers import openssl as _ossl
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
    PairwiseConsistencyFailure,
    ProviderError,
    UnsupportedOperation,
    WipedKey,
)
from providers.handles import KeyShare, PrivateKey, SecretKey
from providers.pkcs11.config import Pkcs11Config
from providers.pkcs11.uri import Pkcs11Uri, parse_uri

log = logging.getLogger("fipsike.providers.pkcs11")

CURVE_OIDS: Final[dict[str, str]] = {
    "secp256r1": "1.2.840.10045.3.1.7",  # RFC 5480 section 2.1.1.1
    "secp384r1": "1.3.132.0.34",
    "secp521r1": "1.3.132.0.35",
}
_P11_HASH: Final[dict[HashAlg, tuple[Mechanism, MGF]]] = {
    HashAlg.SHA1: (Mechanism.SHA_1, MGF.SHA1),
    HashAlg.SHA256: (Mechanism.SHA256, MGF.SHA256),
    HashAlg.SHA384: (Mechanism.SHA384, MGF.SHA384),
    HashAlg.SHA512: (Mechanism.SHA512, MGF.SHA512),
}
_PSS_MECH: Final[dict[HashAlg, Mechanism]] = {
    HashAlg.SHA256: Mechanism.SHA256_RSA_PKCS_PSS,
    HashAlg.SHA384: Mechanism.SHA384_RSA_PKCS_PSS,
    HashAlg.SHA512: Mechanism.SHA512_RSA_PKCS_PSS,
}
_PKCS1_MECH: Final[dict[HashAlg, Mechanism]] = {
    HashAlg.SHA256: Mechanism.SHA256_RSA_PKCS,
    HashAlg.SHA384: Mechanism.SHA384_RSA_PKCS,
    HashAlg.SHA512: Mechanism.SHA512_RSA_PKCS,
}
_HMAC_MECH: Final[dict[HashAlg, Mechanism]] = {
    HashAlg.SHA256: Mechanism.SHA256_HMAC,
    HashAlg.SHA384: Mechanism.SHA384_HMAC,
    HashAlg.SHA512: Mechanism.SHA512_HMAC,
}


class TokenSecretKey(SecretKey):
    """A secret that lives on the token as a session object: its material never enters Python.

    `salt` is the 4-octet AEAD salt (RFC 4106 8.1), kept host-side because it is
    part of the nonce, not of the AES key.
    """

    __slots__ = ("_object", "salt")

    def __init__(self, obj: Any, length: int, kind: str, owner: str, salt: bytes = b"") -> None:
        super().__init__(b"", kind, owner)
        self._length = length
        self._object: Any = obj
        self.salt = salt

    @property
    def wiped(self) -> bool:
        return self._object is None

    def wipe(self) -> None:
        obj, self._object = self._object, None
        self._ctx = None
        if obj is not None:
            try:
                obj.destroy()
            except p11e.PKCS11Error:
                pass  # a session object dies with the session anyway

    def _bytes(self) -> bytes:
        raise UnsupportedOperation(f"{self.kind} is held by {self.owner}; its material cannot leave the token")

    def token_object(self) -> Any:
        if self._object is None:
            raise WipedKey(f"{self.kind} key was wiped")
        return self._object

    def __repr__(self) -> str:
        state = "wiped" if self._object is None else f"len={self._length}"
        return f"SecretKey(kind={self.kind!r}, {state}, owner={self.owner!r})"

    __str__ = __repr__


@dataclass
class TokenSession:
    """The one logged-in session to a token in this process."""

    token: Any
    session: Any
    mechanisms: frozenset[Mechanism]
    lock: threading.RLock = field(default_factory=threading.RLock)


_LIBS: dict[str, Any] = {}
_SESSIONS: dict[tuple[str, str], TokenSession] = {}
_OPEN_LOCK = threading.Lock()


def _lib(path: str) -> Any:
    lib = _LIBS.get(path)
    if lib is None:
        lib = pkcs11.lib(path)
        _LIBS[path] = lib
    return lib


def _find_token(lib: Any, label: str | None, serial: str | None) -> Any:
    for slot in lib.get_slots(token_present=True):
        token = slot.get_token()
        token_serial = token.serial.decode("ascii", "replace").strip() if isinstance(token.serial, bytes) \
            else str(token.serial).strip()
        if label is not None and token.label.strip() != label:
            continue
        if serial is not None and token_serial != serial:
            continue
        return token
    what = f"label={label!r}" if label is not None else f"serial={serial!r}"
    raise KeyNotFound(f"no PKCS#11 token with {what}")


def token_session(config: Pkcs11Config) -> TokenSession:
    """The cached logged-in session for config's token (opening and logging in once)."""
    with _OPEN_LOCK:
        key = (config.module_path, config.token_ref)
        cached = _SESSIONS.get(key)
        if cached is not None:
            return cached
        lib = _lib(config.module_path)
        token = _find_token(lib, config.token_label, config.token_serial)
        # the same token may have been opened under its other name (label vs serial)
        for (path, _), ts in _SESSIONS.items():
            if path == config.module_path and ts.token == token:
                _SESSIONS[key] = ts
                return ts
        try:
            session = token.open(user_pin=config.read_pin(), rw=True)
        except p11e.PinIncorrect:
            raise ProviderError(f"PKCS#11 login to token {config.token_ref} failed: PIN incorrect") from None
        except p11e.PKCS11Error as exc:
            raise ProviderError(f"PKCS#11 login to token {config.token_ref} failed: {type(exc).__name__}") from None
        mechanisms = frozenset(token.slot.get_mechanisms())
        ts = TokenSession(token, session, mechanisms)
        _SESSIONS[key] = ts
        log.info("opened PKCS#11 session on token %s (%d mechanisms)", config.token_ref, len(mechanisms))
        return ts


def open_pkcs11(config: Pkcs11Config) -> Pkcs11Provider:
    return Pkcs11Provider(config, token_session(config))


def _public_of(obj: Any, spec: KeySpec) -> Any:
    """A `cryptography` public key from a token object's public attributes."""
    if spec.kind == "rsa":
        n = int.from_bytes(obj[Attribute.MODULUS], "big")
        e = int.from_bytes(obj[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    point = bytes(obj[Attribute.EC_POINT])
    curve = _ossl.CURVES[spec.curve]
    if len(point) != 1 + 2 * ((curve.key_size + 7) // 8):
        # CKA_EC_POINT is the DER OCTET STRING of the X9.62 point (PKCS#11 2.40 section 2.3.3)
        point = _der_octets(point)
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, point)


def _der_octets(der: bytes) -> bytes:
    first = der[1]
    if first < 0x80:
        return der[2:2 + first]
    n = first & 0x7F
    length = int.from_bytes(der[2:2 + n], "big")
    return der[2 + n:2 + n + length]


def _spki_id(public_key: Any) -> bytes:
    """Default CKA_ID: the RFC 5280 4.2.1.2 method (1) key identifier, as in the certificate's SKI."""
    return bytes(SubjectKeyIdentifier.from_public_key(public_key).digest)


def _curve_of_params(params: bytes) -> str:
    for name, oid in CURVE_OIDS.items():
        if encode_named_curve_parameters(oid) == bytes(params):
            return name
    raise UnsupportedOperation("token key on an unsupported curve")


class Pkcs11Provider:
    """The Provider over one PKCS#11 token (long-term keys; symmetric KATs)."""

    def __init__(self, config: Pkcs11Config, ts: TokenSession) -> None:
        self.config = config
        self._ts = ts
        self.label = str(ts.token.label).strip()
        self.name = f"pkcs11:{self.label}"

    def __repr__(self) -> str:
        return f"Pkcs11Provider({self.name!r}, module={self.config.module_path!r})"

    @contextmanager
    def _session(self) -> Iterator[Any]:
        with self._ts.lock:
            yield self._ts.session

    @property
    def mechanisms(self) -> frozenset[Mechanism]:
        return self._ts.mechanisms

    def has(self, mechanism: Mechanism) -> bool:
        return mechanism in self._ts.mechanisms

    def require(self, mechanism: Mechanism, what: str) -> None:
        if mechanism not in self._ts.mechanisms:
            raise UnsupportedOperation(f"token {self.label!r} lacks {mechanism.name} (needed for {what})")

    def info(self) -> ProviderInfo:
        token = self._ts.token
        fw = token.firmware_version
        return ProviderInfo(
            name=self.name,
            version=f"{token.manufacturer_id.strip()} {token.model.strip()} firmware {fw[0]}.{fw[1]}",
            fips=False,
            detail={"module": self.config.module_path, "token": self.label},
            mechanisms=tuple(sorted(m.name for m in self._ts.mechanisms)),
        )

    # --- randomness and hashing -------------------------------------------------------
    def random(self, n: int) -> bytes:
        with self._session() as s:
            return bytes(s.generate_random(n * 8))

    def digest(self, alg: HashAlg, data: bytes) -> bytes:
        mech = _P11_HASH[alg][0]
        self.require(mech, f"{alg.name} digest")
        with self._session() as s:
            return bytes(s.digest(data, mechanism=mech))

    # --- secrets: session objects, sensitive and not extractable ----------------------------
    def generate_secret(self, n: int, kind: str) -> SecretKey:
        with self._session() as s:
            obj = s.generate_key(KeyType.GENERIC_SECRET, n * 8, store=False, template={
                Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True,
                Attribute.VERIFY: True})
        return TokenSecretKey(obj, n, kind, self.name)

    def import_secret(self, material: bytes, kind: str, key_type: str = "generic") -> SecretKey:
        """`key_type` "aes" makes an AES key (for GCM/CBC), else a generic secret (HMAC)."""
        return self._import_secret(bytes(material), kind, key_type, b"")

    def import_aead_secret(self, material: bytes, kind: str) -> SecretKey:
        """An IKE/ESP AEAD key (key || 4-octet salt): the AES part goes to the token."""
        return self._import_secret(bytes(material[:-4]), kind, "aes", bytes(material[-4:]))

    def _import_secret(self, material: bytes, kind: str, key_type: str, salt: bytes) -> SecretKey:
        kt = KeyType.AES if key_type == "aes" else KeyType.GENERIC_SECRET
        attrs = {
            Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: kt, Attribute.VALUE: material,
            Attribute.TOKEN: False, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
            Attribute.ENCRYPT: kt == KeyType.AES, Attribute.DECRYPT: kt == KeyType.AES,
            Attribute.SIGN: kt != KeyType.AES, Attribute.VERIFY: kt != KeyType.AES,
        }
        try:
            with self._session() as s:
                obj = s.create_object(attrs)
        except p11e.PKCS11Error as exc:
            raise UnsupportedOperation(f"token refused a {len(material)}-octet {key_type} secret "
                                       f"({type(exc).__name__})") from None
        return TokenSecretKey(obj, len(material) + len(salt), kind, self.name, salt)

    @staticmethod
    def _object(key: SecretKey) -> Any:
        if not isinstance(key, TokenSecretKey):
            raise UnsupportedOperation(f"{key.kind} is held by {key.owner}, not by the token")
        return key.token_object()

    # --- symmetric: AES-GCM, AES-CBC, HMAC -----------------------------------------------
    def aead_seal(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        obj = self._gcm_check(alg, key, iv)
        assert isinstance(key, TokenSecretKey)
        with self._session():
            out = obj.encrypt(plaintext, mechanism=Mechanism.AES_GCM,
                              mechanism_param=GCMParams(key.salt + iv, aad, alg.icv_size * 8))
        return bytes(out)

    def aead_open(self, alg: Encryption, key: SecretKey, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        obj = self._gcm_check(alg, key, iv)
        assert isinstance(key, TokenSecretKey)
        try:
            with self._session():
                out = obj.decrypt(ciphertext, mechanism=Mechanism.AES_GCM,
                                  mechanism_param=GCMParams(key.salt + iv, aad, alg.icv_size * 8))
        except p11e.PKCS11Error:
            # SoftHSM2 reports a bad tag as a generic CKR_GENERAL_ERROR / CKR_ENCRYPTED_DATA_INVALID
            raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify") from None
        return bytes(out)

    def _gcm_check(self, alg: Encryption, key: SecretKey, iv: bytes) -> Any:
        if alg not in (Encryption.ENCR_AES_GCM_16, Encryption.ENCR_AES_GCM_12, Encryption.ENCR_AES_GCM_8):
            raise UnsupportedOperation(f"{alg.name} is not offered by the token provider")
        self.require(Mechanism.AES_GCM, alg.name)
        if len(iv) != 8:
            raise InvalidInput(f"{alg.name} needs an 8-octet IV, got {len(iv)}")
        if not isinstance(key, TokenSecretKey) or len(key.salt) != 4:
            raise InvalidInput(f"{alg.name} key must come from import_aead_secret")
        return self._object(key)

    def _cbc(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> Any:
        if alg is not Encryption.ENCR_AES_CBC:
            raise UnsupportedOperation(f"{alg.name} is not offered by the token provider")
        self.require(Mechanism.AES_CBC, alg.name)
        if len(iv) != 16 or len(data) % 16:
            raise InvalidInput(f"{alg.name}: 16-octet IV and whole blocks required")
        return self._object(key)

    def cbc_encrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        obj = self._cbc(alg, key, iv, data)
        with self._session():
            return bytes(obj.encrypt(data, mechanism=Mechanism.AES_CBC, mechanism_param=iv))

    def cbc_decrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        obj = self._cbc(alg, key, iv, data)
        with self._session():
            return bytes(obj.decrypt(data, mechanism=Mechanism.AES_CBC, mechanism_param=iv))

    def _hmac(self, alg: HashAlg, key: SecretKey, data: bytes) -> bytes:
        mech = _HMAC_MECH.get(alg)
        if mech is None:
            raise UnsupportedOperation(f"HMAC-{alg.name} is not offered by the token provider")
        self.require(mech, f"HMAC-{alg.name}")
        obj = self._object(key)
        with self._session():
            return bytes(obj.sign(data, mechanism=mech))

    def integrity_icv(self, alg: Integrity, key: SecretKey, data: bytes) -> bytes:
        return self._hmac(alg.hash, key, data)[: alg.icv_size]

    def integrity_verify(self, alg: Integrity, key: SecretKey, data: bytes, icv: bytes) -> None:
        if not constant_time.bytes_eq(self.integrity_icv(alg, key, data), bytes(icv)):
            raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify")

    def prf(self, alg: Prf, key: SecretKey, data: bytes) -> bytes:
        try:
            h = alg.hash
        except KeyError:
            raise UnsupportedOperation(f"{alg.name} is not offered by the token provider") from None
        return self._hmac(h, key, data)

    def import_psk(self, secret: bytes, label: str) -> SecretKey:
        raise UnsupportedOperation("PSKs are held by openssl (the shared-key AUTH runs there)")

    def shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes) -> bytes:
        raise UnsupportedOperation("the token's HMAC output would have to leave it as the inner key: "
                                   "the shared-key AUTH (RFC 7296 2.15) runs on openssl")

    def skeyseed(self, alg: Prf, ni: bytes, nr: bytes, shared: SecretKey) -> SecretKey:
        raise UnsupportedOperation("the token has no CKM_IKE_PRF_DERIVE (PKCS#11 3.0): SKEYSEED runs on openssl")

    def rekey_skeyseed(self, alg: Prf, sk_d: SecretKey, shared: SecretKey | None, ni: bytes,
                       nr: bytes) -> SecretKey:
        raise UnsupportedOperation("the token has no CKM_IKE_PRF_DERIVE (PKCS#11 3.0): SKEYSEED runs on openssl")

    def prf_plus(self, alg: Prf, key: SecretKey, seed: bytes, lengths: Sequence[tuple[str, int]],
                 secret_prefix: SecretKey | None = None) -> list[SecretKey]:
        raise UnsupportedOperation("the token has no CKM_IKE2_PRF_PLUS_DERIVE (PKCS#11 3.0): prf+ runs on openssl")

    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey:
        raise UnsupportedOperation("joining secrets runs on openssl (no CKM_CONCATENATE_* use on the token)")

    def ke_generate(self, group: KeyExchange) -> KeyShare:
        raise UnsupportedOperation("key exchange runs on openssl (SKEYSEED cannot be derived on this token)")

    def ke_derive(self, share: KeyShare, peer_public: bytes) -> SecretKey:
        raise UnsupportedOperation("key exchange runs on openssl (SKEYSEED cannot be derived on this token)")

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]:
        raise UnsupportedOperation("ML-KEM runs on openssl")

    # --- long-term keys ------------------------------------------------------------------
    def _key_templates(self, label: str, key_id: bytes) -> tuple[dict[Attribute, Any], dict[Attribute, Any]]:
        private = {
            Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False, Attribute.SIGN: True, Attribute.DECRYPT: False,
            Attribute.UNWRAP: False, Attribute.DERIVE: False, Attribute.LABEL: label, Attribute.ID: key_id,
        }
        public = {
            Attribute.TOKEN: True, Attribute.PRIVATE: False, Attribute.VERIFY: True, Attribute.ENCRYPT: False,
            Attribute.WRAP: False, Attribute.LABEL: label, Attribute.ID: key_id,
        }
        return public, private

    def generate_keypair(self, spec: KeySpec, label: str = "", key_id: bytes = b"") -> PrivateKey:
        with self._session() as s:
            if spec.kind == "rsa":
                self.require(Mechanism.RSA_PKCS_KEY_PAIR_GEN, f"generating {spec}")
                public_t, private_t = self._key_templates(label, key_id or b"\x00")
                public_t[Attribute.PUBLIC_EXPONENT] = b"\x01\x00\x01"
                pub, priv = s.generate_keypair(KeyType.RSA, spec.size, store=True, public_template=public_t,
                                               private_template=private_t)
            elif spec.kind == "ec" and spec.curve in CURVE_OIDS:
                self.require(Mechanism.EC_KEY_PAIR_GEN, f"generating {spec}")
                public_t, private_t = self._key_templates(label, key_id or b"\x00")
                params = s.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(CURVE_OIDS[spec.curve])},
                    local=True)
                pub, priv = params.generate_keypair(store=True, public_template=public_t,
                                                    private_template=private_t)
            else:
                raise UnsupportedOperation(f"key generation for {spec} is not offered by the token provider")
            public = _public_of(pub, spec)
            if not key_id:
                # no id given: use the key's SKI so certificates and keys pair up (RFC 7512 id)
                key_id = _spki_id(public)
                pub[Attribute.ID] = key_id
                priv[Attribute.ID] = key_id
        key = PrivateKey(spec, self.name, priv, public, label, key_id)
        self._pct(key, [pub, priv])
        return key

    def import_private_key(self, private_key: Any, label: str = "", key_id: bytes = b"") -> PrivateKey:
        public = private_key.public_key()
        key_id = key_id or _spki_id(public)
        public_t, private_t = self._key_templates(label, key_id)
        if isinstance(private_key, rsa.RSAPrivateKey):
            spec = KeySpec("rsa", private_key.key_size)
            pn = private_key.private_numbers()
            material: dict[Attribute, Any] = {
                Attribute.KEY_TYPE: KeyType.RSA,
                Attribute.MODULUS: _int(pn.public_numbers.n), Attribute.PUBLIC_EXPONENT: _int(pn.public_numbers.e),
                Attribute.PRIVATE_EXPONENT: _int(pn.d), Attribute.PRIME_1: _int(pn.p), Attribute.PRIME_2: _int(pn.q),
                Attribute.EXPONENT_1: _int(pn.dmp1), Attribute.EXPONENT_2: _int(pn.dmq1),
                Attribute.COEFFICIENT: _int(pn.iqmp),
            }
            public_material: dict[Attribute, Any] = {
                Attribute.KEY_TYPE: KeyType.RSA, Attribute.MODULUS: _int(pn.public_numbers.n),
                Attribute.PUBLIC_EXPONENT: _int(pn.public_numbers.e),
            }
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in CURVE_OIDS:
            spec = KeySpec("ec", private_key.curve.key_size, private_key.curve.name)
            params = encode_named_curve_parameters(CURVE_OIDS[spec.curve])
            size = (private_key.curve.key_size + 7) // 8
            material = {
                Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: params,
                Attribute.VALUE: private_key.private_numbers().private_value.to_bytes(size, "big"),
            }
            point = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
            public_material = {
                Attribute.KEY_TYPE: KeyType.EC, Attribute.EC_PARAMS: params,
                Attribute.EC_POINT: _der_octet_string(point),
            }
        else:
            raise UnsupportedOperation(f"private key type {type(private_key).__name__} cannot go onto the token")
        private_t.update(material)
        private_t[Attribute.CLASS] = ObjectClass.PRIVATE_KEY
        public_t.update(public_material)
        public_t[Attribute.CLASS] = ObjectClass.PUBLIC_KEY
        try:
            with self._session() as s:
                priv = s.create_object(private_t)
                pub = s.create_object(public_t)
        except p11e.PKCS11Error as exc:
            raise UnsupportedOperation(f"token refused to import the {spec} key ({type(exc).__name__})") from None
        key = PrivateKey(spec, self.name, priv, public, label, key_id)
        self._pct(key, [pub, priv])
        return key

    def _pct(self, key: PrivateKey, objects: list[Any]) -> None:
        try:
            _ossl.pairwise_consistency_test(lambda sch, m: self.sign(key, sch, m), key.public_key(), key.spec)
        except (PairwiseConsistencyFailure, UnsupportedOperation):
            with self._session():
                for obj in objects:
                    obj.destroy()
            raise

    # --- finding keys ---------------------------------------------------------------------
    def find_private_key_by_uri(self, uri: str | Pkcs11Uri) -> PrivateKey:
        parsed = parse_uri(uri) if isinstance(uri, str) else uri
        if parsed.token is not None and parsed.token != self.label:
            raise KeyNotFound(f"URI names token {parsed.token!r}; this router's token is {self.label!r}")
        if parsed.serial is not None:
            serial = self._ts.token.serial
            serial_text = serial.decode("ascii", "replace").strip() if isinstance(serial, bytes) else str(serial)
            if parsed.serial != serial_text:
                raise KeyNotFound(f"URI names token serial {parsed.serial!r}, not this router's token")
        if parsed.module_path is not None and not self.config.module_allowed(parsed.module_path):
            raise KeyNotFound(f"module-path {parsed.module_path!r} is not in the allowed module list")
        if parsed.vendor:
            names = ", ".join(name for name, _ in parsed.vendor)
            raise KeyNotFound(f"URI carries vendor attributes this module cannot honour: {names}")
        if parsed.type not in (None, "private"):
            raise KeyNotFound(f"URI names a {parsed.type} object, not a private key")
        if parsed.object is None and parsed.id is None:
            raise KeyNotFound("URI must name the key by object= or id=")
        return self.find_private_key(label=parsed.object, key_id=parsed.id)

    def find_private_key(self, label: str | None = None, key_id: bytes | None = None,
                         public_key: Any = None) -> PrivateKey:
        attrs: dict[Attribute, Any] = {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
        if label is not None:
            attrs[Attribute.LABEL] = label
        if key_id is not None:
            attrs[Attribute.ID] = key_id
        with self._session() as s:
            candidates = list(s.get_objects(attrs))
            for priv in candidates:
                found = self._describe(s, priv)
                if found is None:
                    continue
                spec, public = found
                if public_key is not None and not _same_public(public, public_key):
                    continue
                return PrivateKey(spec, self.name, priv, public, str(priv[Attribute.LABEL] or ""),
                                  bytes(priv[Attribute.ID] or b""))
        what = ", ".join(f"{k}={v!r}" for k, v in (("label", label), ("id", key_id)) if v is not None)
        raise KeyNotFound(f"no private key on token {self.label!r}" + (f" with {what}" if what else "")
                          + (" matching the public key" if public_key is not None else ""))

    def _describe(self, s: Any, priv: Any) -> tuple[KeySpec, Any] | None:
        key_type = priv[Attribute.KEY_TYPE]
        if key_type == KeyType.RSA:
            n = int.from_bytes(priv[Attribute.MODULUS], "big")
            spec = KeySpec("rsa", n.bit_length())
            return spec, _public_of(priv, spec)
        if key_type == KeyType.EC:
            curve = _curve_of_params(priv[Attribute.EC_PARAMS])
            spec = KeySpec("ec", _ossl.CURVES[curve].key_size, curve)
            # the EC point lives on the public object with the same CKA_ID
            key_id = priv[Attribute.ID]
            for pub in s.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.EC,
                                      Attribute.ID: key_id}):
                return spec, _public_of(pub, spec)
            return None
        return None

    # --- signing --------------------------------------------------------------------------
    def sign(self, key: PrivateKey, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes:
        if key.owner != self.name:
            raise UnsupportedOperation(f"key {key.label!r} is held by {key.owner}, not by {self.name}")
        obj = key._impl
        if obj is None:
            raise WipedKey(f"key {key.label!r} was wiped")
        h = scheme.hash
        family = scheme.family
        try:
            if family == "ecdsa":
                self.require(Mechanism.ECDSA, scheme.name)
                digest = _ossl.OpenSSLProvider().digest(h, data)  # hash on the host: no CKM_ECDSA_SHA* on SoftHSM2
                with self._session():
                    rs = bytes(obj.sign(digest, mechanism=Mechanism.ECDSA))
                return rs if raw else bytes(encode_ecdsa_signature(rs))
            if family == "rsa-pss":
                mech = _PSS_MECH.get(h)
                if mech is None:
                    raise UnsupportedOperation(f"{scheme.name} is not offered by the token provider")
                self.require(mech, scheme.name)
                hash_mech, mgf = _P11_HASH[h]
                with self._session():
                    return bytes(obj.sign(data, mechanism=mech, mechanism_param=(hash_mech, mgf, h.digest_size)))
            mech = _PKCS1_MECH.get(h)
            if mech is None:
                raise UnsupportedOperation(f"{scheme.name} is not offered by the token provider")
            self.require(mech, scheme.name)
            with self._session():
                return bytes(obj.sign(data, mechanism=mech))
        except p11e.PKCS11Error as exc:
            raise ProviderError(f"token {self.label!r} failed {scheme.name} ({type(exc).__name__})") from None

    def verify(self, public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
               raw: bool = False, salt_length: int | None = None) -> bool:
        # public-key operation: no secret involved, same code path as the openssl provider
        return _ossl.verify_with(public_key, scheme, data, signature, raw, salt_length)

    def destroy_key(self, key: PrivateKey) -> None:
        """Remove a key pair (private and public objects with its CKA_ID) from the token."""
        with self._session() as s:
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                for obj in list(s.get_objects({Attribute.CLASS: cls, Attribute.ID: key.key_id})):
                    obj.destroy()


def _int(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8 or 1, "big")


def _der_octet_string(value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return b"\x04" + bytes([n]) + value
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\x04" + bytes([0x80 | len(body)]) + body + value


def _same_public(a: Any, b: Any) -> bool:
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        return bool(a.public_bytes(*fmt) == b.public_bytes(*fmt))
    except (AttributeError, ValueError):
        return False


__all__ = ["Pkcs11Provider", "TokenSecretKey", "open_pkcs11", "token_session"]
