"""The OpenSSL provider: every primitive through `cryptography` (hazmat), nothing from `decrepit`.

It does not apply policy or limits (the Router does): it only refuses what it
cannot do (UnsupportedOperation) and what is malformed (InvalidInput,
InvalidKeyShare).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import cryptography
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.asymmetric import dh, ec, mlkem, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

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
    InvalidKeyShare,
    PairwiseConsistencyFailure,
    ProviderError,
    UnsupportedOperation,
)
from providers.handles import KeyShare, PrivateKey, SecretKey
from providers.modp import GENERATOR, PRIMES


@contextmanager
def _ffdh() -> Iterator[None]:
    # cryptography warns that finite-field DH may go away; IKEv2 still needs MODP groups (RFC 8247 2.4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield

NAME: Final = "openssl"
KEY_PAD: Final = b"Key Pad for IKEv2"  # RFC 7296 section 2.15
PSK_KIND: Final = "PSK"

HASHES: Final[dict[HashAlg, hashes.HashAlgorithm]] = {
    HashAlg.SHA1: hashes.SHA1(),  # noqa: S303 - NAT_DETECTION/CERTREQ and legacy verify only (policy)
    HashAlg.SHA256: hashes.SHA256(),
    HashAlg.SHA384: hashes.SHA384(),
    HashAlg.SHA512: hashes.SHA512(),
}

CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
}
ECP_CURVES: Final[dict[KeyExchange, ec.EllipticCurve]] = {
    KeyExchange.ECP_256: ec.SECP256R1(),
    KeyExchange.ECP_384: ec.SECP384R1(),
    KeyExchange.ECP_521: ec.SECP521R1(),
}
MODP_GROUPS: Final = frozenset(
    g for g in KeyExchange if g.value in PRIMES
)
MLKEM_SIZES: Final[dict[KeyExchange, tuple[int, int]]] = {
    # (encapsulation key, ciphertext) octets, FIPS 203 section 8 table 3
    KeyExchange.ML_KEM_768: (1184, 1088),
    KeyExchange.ML_KEM_1024: (1568, 1568),
}
PCT_MESSAGE: Final = b"fipsike pairwise consistency test (FIPS 140-3 IG 10.3.A)"

_PRF_MAX_BLOCKS: Final = 255  # prf+ counter is one octet (RFC 7296 section 2.13)


def fips_enabled() -> bool:
    try:
        return bool(rust_openssl.is_fips_enabled())
    except Exception:  # noqa: BLE001 - older bindings
        return False


def openssl_version() -> str:
    return str(rust_openssl.openssl_version_text())


def jacobi(a: int, n: int) -> int:
    """Jacobi symbol (a/n), n odd: O(bits^2), far cheaper than y^q mod p in Python."""
    a %= n
    result = 1
    while a:
        while a % 2 == 0:
            a //= 2
            if n % 8 in (3, 5):
                result = -result
        a, n = n, a
        if a % 4 == 3 and n % 4 == 3:
            result = -result
        a %= n
    return result if n == 1 else 0


_DH_PARAMS: dict[int, dh.DHParameters] = {}


def _dh_parameters(group: KeyExchange) -> dh.DHParameters:
    params = _DH_PARAMS.get(group.value)
    if params is None:
        p = PRIMES[group.value]
        with _ffdh():
            params = dh.DHParameterNumbers(p, GENERATOR, (p - 1) // 2).parameters()
        _DH_PARAMS[group.value] = params
    return params


def _int_bytes(n: int, length: int) -> bytes:
    return n.to_bytes(length, "big")


def _ecdsa_raw(der: bytes, curve_bits: int) -> bytes:
    r, s = decode_dss_signature(der)
    n = (curve_bits + 7) // 8
    return _int_bytes(r, n) + _int_bytes(s, n)


def _ecdsa_der(raw: bytes, curve_bits: int) -> bytes | None:
    n = (curve_bits + 7) // 8
    if len(raw) != 2 * n:
        return None
    return encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))


def _pss(h: hashes.HashAlgorithm, salt_length: int | None = None) -> padding.PSS:
    # salt length = hash length, MGF1 with the same hash (RFC 8247 section 3, RFC 7427 appendix A);
    # a verifier may be told another salt length by the peer's RSASSA-PSS-params (RFC 7427 3)
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size if salt_length is None else salt_length)


class GcmContext:
    """A key's cached AES-GCM / ChaCha20-Poly1305 state: the cipher object and the 4-octet salt."""

    __slots__ = ("alg", "aead", "raw_key", "salt", "icv", "ticket", "budget")

    def __init__(self, alg: Encryption, material: bytes) -> None:
        self.alg = alg
        # set by the Router once its policy admitted this key for `alg`: the hot path's pass,
        # and the uses its meter leased to the hot path (limits.Meter.lease)
        self.ticket: object | None = None
        self.budget = 0
        self.salt = material[-4:]  # RFC 4106 section 8.1, RFC 5282 section 7.1, RFC 7634 section 2
        self.raw_key = material[:-4]
        self.icv = alg.icv_size
        self.aead: AESGCM | ChaCha20Poly1305 | None
        if alg is Encryption.ENCR_CHACHA20_POLY1305:
            self.aead = ChaCha20Poly1305(self.raw_key)
        elif alg is Encryption.ENCR_AES_GCM_16:
            self.aead = AESGCM(self.raw_key)
        else:
            algorithms.AES(self.raw_key)  # validates the key length now
            self.aead = None  # truncated tags go through Cipher(GCM(min_tag_length))

    def __repr__(self) -> str:
        return f"GcmContext({self.alg.name})"


class HmacContext:
    """A key's keyed HMAC state for an integrity transform: copy() skips the key schedule."""

    __slots__ = ("alg", "base", "icv", "ticket", "budget")

    def __init__(self, alg: Integrity, material: bytes) -> None:
        self.alg = alg
        self.base = hmac.HMAC(material, HASHES[alg.hash])
        self.icv = alg.icv_size
        self.ticket: object | None = None
        self.budget = 0

    def __repr__(self) -> str:
        return f"HmacContext({self.alg.name})"


class CbcContext:
    """A key's cached AES object for CBC (the key schedule is OpenSSL's; the IV is per call)."""

    __slots__ = ("alg", "aes", "ticket", "budget")

    def __init__(self, alg: Encryption, material: bytes) -> None:
        self.alg = alg
        self.aes = algorithms.AES(material)
        self.ticket: object | None = None
        self.budget = 0

    def __repr__(self) -> str:
        return f"CbcContext({self.alg.name})"


def signer(impl: Any, scheme: SignatureScheme, raw: bool = False) -> Any:
    """A one-argument signing function for a key and scheme (the Router's admitted plan)."""
    h = HASHES[scheme.hash]
    if scheme.family == "ecdsa" and not raw and isinstance(impl, ec.EllipticCurvePrivateKey):
        algorithm = ec.ECDSA(h)
        return lambda data: impl.sign(data, algorithm)
    if scheme.family != "ecdsa" and isinstance(impl, rsa.RSAPrivateKey):
        pad: padding.AsymmetricPadding = _pss(h) if scheme.family == "rsa-pss" else padding.PKCS1v15()
        return lambda data: impl.sign(data, pad, h)
    return lambda data: sign_with(impl, scheme, data, raw)


def sign_with(impl: Any, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes:
    """Signs with a `cryptography` private key object."""
    h = HASHES[scheme.hash]
    family = scheme.family
    if family == "ecdsa":
        if not isinstance(impl, ec.EllipticCurvePrivateKey):
            raise InvalidInput(f"{scheme.name} needs an EC key")
        der = impl.sign(data, ec.ECDSA(h))
        return _ecdsa_raw(der, impl.curve.key_size) if raw else der
    if not isinstance(impl, rsa.RSAPrivateKey):
        raise InvalidInput(f"{scheme.name} needs an RSA key")
    pad: padding.AsymmetricPadding = _pss(h) if family == "rsa-pss" else padding.PKCS1v15()
    return impl.sign(data, pad, h)


def verify_with(public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
                raw: bool = False, salt_length: int | None = None) -> bool:
    """True when the signature verifies; False for a wrong or malformed signature or key type.

    `salt_length` (RSA-PSS only) defaults to the hash length."""
    h = HASHES[scheme.hash]
    try:
        if scheme.family == "ecdsa":
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                return False
            if raw:
                der = _ecdsa_der(signature, public_key.curve.key_size)
                if der is None:
                    return False
                signature = der
            public_key.verify(signature, data, ec.ECDSA(h))
            return True
        if not isinstance(public_key, rsa.RSAPublicKey):
            return False
        pad: padding.AsymmetricPadding = (
            _pss(h, salt_length) if scheme.family == "rsa-pss" else padding.PKCS1v15())
        public_key.verify(signature, data, pad, h)
        return True
    except (InvalidSignature, ValueError):
        return False


def pairwise_consistency_test(impl_sign: Any, public_key: Any, spec: KeySpec) -> None:
    """Sign a fixed message and verify it (FIPS 140-3 IG 10.3.A); raises PairwiseConsistencyFailure."""
    scheme = SignatureScheme.RSA_PSS_SHA256 if spec.kind == "rsa" else SignatureScheme.ECDSA_SHA256
    try:
        sig = impl_sign(scheme, PCT_MESSAGE)
    except ProviderError:
        raise
    except Exception as exc:
        raise PairwiseConsistencyFailure(f"{spec}: signing failed ({type(exc).__name__})") from None
    if not verify_with(public_key, scheme, PCT_MESSAGE, sig):
        raise PairwiseConsistencyFailure(f"{spec}: signature did not verify")


class OpenSSLProvider:
    """The Provider over `cryptography` hazmat."""

    name = NAME

    def info(self) -> ProviderInfo:
        return ProviderInfo(
            name=NAME,
            version=openssl_version(),
            fips=fips_enabled(),
            detail={"cryptography": cryptography.__version__},
        )

    # --- randomness and hashing -------------------------------------------------
    def random(self, n: int) -> bytes:
        return os.urandom(n)

    def digest(self, alg: HashAlg, data: bytes) -> bytes:
        h = hashes.Hash(HASHES[alg])
        h.update(data)
        return h.finalize()

    # --- secrets ----------------------------------------------------------------
    def generate_secret(self, n: int, kind: str) -> SecretKey:
        return SecretKey(os.urandom(n), kind, NAME)

    def import_secret(self, material: bytes, kind: str) -> SecretKey:
        return SecretKey(material, kind, NAME)

    def import_psk(self, secret: bytes, label: str) -> SecretKey:
        if not secret:
            raise InvalidInput(f"PSK {label!r} is empty")
        return SecretKey(secret, PSK_KIND, NAME)

    # --- PRF and key derivation ------------------------------------------------
    @staticmethod
    def _hmac(alg: HashAlg, key: bytes, data: bytes) -> bytes:
        m = hmac.HMAC(key, HASHES[alg])
        m.update(data)
        return m.finalize()

    @staticmethod
    def _prf_hash(alg: Prf) -> HashAlg:
        try:
            return alg.hash
        except KeyError:
            raise UnsupportedOperation(f"{alg.name} is not implemented by the openssl provider") from None

    def prf(self, alg: Prf, key: SecretKey, data: bytes) -> bytes:
        return self._hmac(self._prf_hash(alg), key._bytes(), data)

    def shared_key_auth(self, alg: Prf, key: SecretKey, octets: bytes) -> bytes:
        # RFC 7296 2.15: AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
        h = self._prf_hash(alg)
        inner = bytearray(self._hmac(h, key._bytes(), KEY_PAD))
        try:
            return self._hmac(h, bytes(inner), octets)
        finally:
            inner[:] = bytes(len(inner))

    def skeyseed(self, alg: Prf, ni: bytes, nr: bytes, shared: SecretKey) -> SecretKey:
        # RFC 7296 section 2.14: SKEYSEED = prf(Ni | Nr, g^ir)  (= HKDF-Extract, SP 800-56C r2 5.1)
        return SecretKey(self._hmac(self._prf_hash(alg), ni + nr, shared._bytes()), "SKEYSEED", NAME)

    def rekey_skeyseed(self, alg: Prf, sk_d: SecretKey, shared: SecretKey | None, ni: bytes,
                       nr: bytes) -> SecretKey:
        # RFC 7296 section 2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)
        prefix = shared._bytes() if shared is not None else b""
        return SecretKey(self._hmac(self._prf_hash(alg), sk_d._bytes(), prefix + ni + nr), "SKEYSEED", NAME)

    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey:
        # RFC 9370 2.2.4 puts public nonces between secrets in one PRF input; the joined value is
        # itself a secret, so it is built and held here like any other
        material = bytearray()
        for part in parts:
            material += part._bytes() if isinstance(part, SecretKey) else bytes(part)
        try:
            return SecretKey(bytes(material), kind, NAME)
        finally:
            material[:] = bytes(len(material))

    def prf_plus_bytes(self, alg: Prf, key: bytes, seed: bytes, total: int) -> bytes:
        """prf+ (RFC 7296 section 2.13): T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n).

        That is HKDF-Expand(PRK=K, info=S) (RFC 5869 section 2.3), so cryptography's
        HKDFExpand computes it; the one-octet counter caps it at 255 blocks either way.
        """
        h = self._prf_hash(alg)
        if total == 0:
            return b""
        if total > _PRF_MAX_BLOCKS * h.digest_size:
            raise InvalidInput(f"prf+ output of {total} octets exceeds 255 {alg.name} blocks (RFC 7296 2.13)")
        return HKDFExpand(HASHES[h], total, seed).derive(key)

    def prf_plus(self, alg: Prf, key: SecretKey, seed: bytes, lengths: Sequence[tuple[str, int]],
                 secret_prefix: SecretKey | None = None) -> list[SecretKey]:
        total = sum(n for _, n in lengths)
        s = (secret_prefix._bytes() + seed) if secret_prefix is not None else seed
        out = self.prf_plus_bytes(alg, key._bytes(), s, total)
        keys: list[SecretKey] = []
        pos = 0
        for kind, n in lengths:
            keys.append(SecretKey(out[pos:pos + n], kind, NAME))
            pos += n
        return keys

    # --- encryption and integrity ----------------------------------------------
    @staticmethod
    def aead_context(alg: Encryption, key: SecretKey) -> GcmContext:
        ctx = key._ctx
        if isinstance(ctx, GcmContext) and ctx.alg is alg:
            return ctx
        if alg not in (Encryption.ENCR_AES_GCM_16, Encryption.ENCR_AES_GCM_12, Encryption.ENCR_AES_GCM_8,
                       Encryption.ENCR_CHACHA20_POLY1305):
            raise UnsupportedOperation(f"{alg.name} AEAD is not implemented by the openssl provider")
        material = key._bytes()
        if len(material) - 4 not in ((32,) if alg is Encryption.ENCR_CHACHA20_POLY1305 else (16, 24, 32)):
            raise InvalidInput(f"{alg.name} key of {len(material)} octets (key || 4-octet salt expected)")
        ctx = GcmContext(alg, material)
        key._ctx = ctx
        return ctx

    def aead_seal(self, alg: Encryption, key: SecretKey, iv: bytes, plaintext: bytes, aad: bytes) -> bytes:
        ctx = self.aead_context(alg, key)
        if len(iv) != 8:
            raise InvalidInput(f"{alg.name} needs an 8-octet IV, got {len(iv)}")
        if ctx.aead is not None:
            return ctx.aead.encrypt(ctx.salt + iv, plaintext, aad)
        enc = Cipher(algorithms.AES(ctx.raw_key), modes.GCM(ctx.salt + iv, min_tag_length=ctx.icv)).encryptor()
        enc.authenticate_additional_data(aad)
        ct = enc.update(plaintext) + enc.finalize()
        return ct + enc.tag[:ctx.icv]

    def aead_open(self, alg: Encryption, key: SecretKey, iv: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        ctx = self.aead_context(alg, key)
        if len(iv) != 8:
            raise InvalidInput(f"{alg.name} needs an 8-octet IV, got {len(iv)}")
        if len(ciphertext) < ctx.icv:
            raise AuthenticationTagInvalid(f"{alg.name}: ciphertext shorter than the ICV")
        try:
            if ctx.aead is not None:
                return ctx.aead.decrypt(ctx.salt + iv, ciphertext, aad)
            tag = ciphertext[-ctx.icv:]
            dec = Cipher(algorithms.AES(ctx.raw_key),
                         modes.GCM(ctx.salt + iv, tag, min_tag_length=ctx.icv)).decryptor()
            dec.authenticate_additional_data(aad)
            return dec.update(ciphertext[:-ctx.icv]) + dec.finalize()
        except InvalidTag:
            raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify") from None

    @staticmethod
    def cbc_check(alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> CbcContext:
        """Validates a CBC call and returns the key's cached context."""
        if alg is not Encryption.ENCR_AES_CBC:
            raise UnsupportedOperation(f"{alg.name} is not implemented by the openssl provider")
        if len(iv) != 16:
            raise InvalidInput(f"{alg.name} needs a 16-octet IV, got {len(iv)}")
        if len(data) % 16:
            raise InvalidInput(f"{alg.name} data of {len(data)} octets is not a whole number of blocks")
        ctx = key._ctx
        if isinstance(ctx, CbcContext) and ctx.alg is alg:
            return ctx
        material = key._bytes()
        if len(material) not in (16, 24, 32):
            raise InvalidInput(f"{alg.name} key of {len(material)} octets")
        ctx = CbcContext(alg, material)
        key._ctx = ctx
        return ctx

    def cbc_encrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        enc = Cipher(self.cbc_check(alg, key, iv, data).aes, modes.CBC(iv)).encryptor()
        return enc.update(data) + enc.finalize()

    def cbc_decrypt(self, alg: Encryption, key: SecretKey, iv: bytes, data: bytes) -> bytes:
        dec = Cipher(self.cbc_check(alg, key, iv, data).aes, modes.CBC(iv)).decryptor()
        return dec.update(data) + dec.finalize()

    @staticmethod
    def hmac_context(alg: Integrity, key: SecretKey) -> HmacContext:
        ctx = key._ctx
        if isinstance(ctx, HmacContext) and ctx.alg is alg:
            return ctx
        if alg not in (Integrity.AUTH_HMAC_SHA2_256_128, Integrity.AUTH_HMAC_SHA2_384_192,
                       Integrity.AUTH_HMAC_SHA2_512_256, Integrity.AUTH_HMAC_SHA1_96):
            raise UnsupportedOperation(f"{alg.name} is not implemented by the openssl provider")
        ctx = HmacContext(alg, key._bytes())
        key._ctx = ctx
        return ctx

    def integrity_icv(self, alg: Integrity, key: SecretKey, data: bytes) -> bytes:
        ctx = self.hmac_context(alg, key)
        m = ctx.base.copy()
        m.update(data)
        return m.finalize()[: ctx.icv]

    def integrity_verify(self, alg: Integrity, key: SecretKey, data: bytes, icv: bytes) -> None:
        expected = self.integrity_icv(alg, key, data)
        if not constant_time.bytes_eq(expected, bytes(icv)):
            raise AuthenticationTagInvalid(f"{alg.name}: ICV did not verify")

    # --- key exchange ----------------------------------------------------------
    def ke_generate(self, group: KeyExchange) -> KeyShare:
        if group in MODP_GROUPS:
            with _ffdh():
                priv_dh = _dh_parameters(group).generate_private_key()
                y = priv_dh.public_key().public_numbers().y
            plen = (PRIMES[group.value].bit_length() + 7) // 8
            return KeyShare(group, _int_bytes(y, plen), NAME, priv_dh)
        curve = ECP_CURVES.get(group)
        if curve is not None:
            priv_ec = ec.generate_private_key(curve)
            point = priv_ec.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            return KeyShare(group, point[1:], NAME, priv_ec)  # x || y: drop the 0x04 (RFC 5903 section 7)
        if group is KeyExchange.CURVE25519:
            priv_x = x25519.X25519PrivateKey.generate()
            return KeyShare(group, priv_x.public_key().public_bytes_raw(), NAME, priv_x)
        if group is KeyExchange.CURVE448:
            priv_x4 = x448.X448PrivateKey.generate()
            return KeyShare(group, priv_x4.public_key().public_bytes_raw(), NAME, priv_x4)
        if group is KeyExchange.ML_KEM_768:
            priv_k = mlkem.MLKEM768PrivateKey.generate()
            return KeyShare(group, priv_k.public_key().public_bytes_raw(), NAME, priv_k)
        if group is KeyExchange.ML_KEM_1024:
            priv_k2 = mlkem.MLKEM1024PrivateKey.generate()
            return KeyShare(group, priv_k2.public_key().public_bytes_raw(), NAME, priv_k2)
        raise UnsupportedOperation(f"key exchange {group.name} is not implemented by the openssl provider")

    def ke_import_private(self, group: KeyExchange, private: bytes) -> KeyShare:
        """A key share from a known private value: for known-answer tests only.

        MODP: the exponent x (big-endian); ECP: the scalar d; X25519/X448: the raw
        private key (RFC 7748); ML-KEM: the 64-octet seed d || z (FIPS 203 section 7.1).
        """
        try:
            if group in MODP_GROUPS:
                params = _dh_parameters(group).parameter_numbers()
                x = int.from_bytes(private, "big")
                with _ffdh():
                    pub = dh.DHPublicNumbers(pow(GENERATOR, x, params.p), params)
                    priv_dh = dh.DHPrivateNumbers(x, pub).private_key()
                plen = (params.p.bit_length() + 7) // 8
                return KeyShare(group, _int_bytes(pub.y, plen), NAME, priv_dh)
            curve = ECP_CURVES.get(group)
            if curve is not None:
                priv_ec = ec.derive_private_key(int.from_bytes(private, "big"), curve)
                point = priv_ec.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
                return KeyShare(group, point[1:], NAME, priv_ec)
            if group is KeyExchange.CURVE25519:
                priv_x = x25519.X25519PrivateKey.from_private_bytes(private)
                return KeyShare(group, priv_x.public_key().public_bytes_raw(), NAME, priv_x)
            if group is KeyExchange.CURVE448:
                priv_x4 = x448.X448PrivateKey.from_private_bytes(private)
                return KeyShare(group, priv_x4.public_key().public_bytes_raw(), NAME, priv_x4)
            if group in MLKEM_SIZES:
                cls: Any = mlkem.MLKEM768PrivateKey if group is KeyExchange.ML_KEM_768 else mlkem.MLKEM1024PrivateKey
                priv_k = cls.from_seed_bytes(private)
                return KeyShare(group, priv_k.public_key().public_bytes_raw(), NAME, priv_k)
        except ValueError as exc:
            raise InvalidInput(f"{group.name} private value rejected ({type(exc).__name__})") from None
        raise UnsupportedOperation(f"key exchange {group.name} is not implemented by the openssl provider")

    def ke_derive(self, share: KeyShare, peer_public: bytes) -> SecretKey:
        group = share.group
        impl = share._impl
        if impl is None:
            raise InvalidKeyShare(f"{group.name} key share was already used and wiped")
        try:
            if group in MODP_GROUPS:
                return SecretKey(self._modp_derive(group, impl, peer_public), "g^ir", NAME)
            curve = ECP_CURVES.get(group)
            if curve is not None:
                n = (curve.key_size + 7) // 8
                if len(peer_public) != 2 * n:
                    raise InvalidKeyShare(f"{group.name} public value of {len(peer_public)} octets, want {2 * n}")
                # from_encoded_point checks the point is on the curve (SP 800-56A r3 5.6.2.3.4)
                peer = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + peer_public)
                return SecretKey(impl.exchange(ec.ECDH(), peer), "g^ir", NAME)
            if group is KeyExchange.CURVE25519:
                if len(peer_public) != 32:
                    raise InvalidKeyShare(f"{group.name} public value of {len(peer_public)} octets")
                # exchange() refuses an all-zero result (low-order point, RFC 7748 section 6.1)
                return SecretKey(impl.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public)), "g^ir", NAME)
            if group is KeyExchange.CURVE448:
                if len(peer_public) != 56:
                    raise InvalidKeyShare(f"{group.name} public value of {len(peer_public)} octets")
                return SecretKey(impl.exchange(x448.X448PublicKey.from_public_bytes(peer_public)), "g^ir", NAME)
            if group in MLKEM_SIZES:
                if len(peer_public) != MLKEM_SIZES[group][1]:
                    raise InvalidKeyShare(f"{group.name} ciphertext of {len(peer_public)} octets")
                return SecretKey(impl.decapsulate(peer_public), "g^ir", NAME)
        except ValueError as exc:
            raise InvalidKeyShare(f"{group.name} peer public value rejected ({type(exc).__name__})") from None
        raise UnsupportedOperation(f"key exchange {group.name} is not implemented by the openssl provider")

    @staticmethod
    def _modp_derive(group: KeyExchange, impl: Any, peer_public: bytes) -> bytes:
        p = PRIMES[group.value]
        plen = (p.bit_length() + 7) // 8
        if len(peer_public) != plen:
            raise InvalidKeyShare(f"{group.name} public value of {len(peer_public)} octets, want {plen}")
        y = int.from_bytes(peer_public, "big")
        # SP 800-56A r3 5.6.2.3.1: 1 < y < p-1 and y^q = 1 mod p; p is a safe prime, so the
        # order-q subgroup is the quadratic residues and the Jacobi symbol decides membership.
        if not 1 < y < p - 1 or jacobi(y, p) != 1:
            raise InvalidKeyShare(f"{group.name} public value is not in the prime-order subgroup")
        with _ffdh():
            peer = dh.DHPublicNumbers(y, _dh_parameters(group).parameter_numbers()).public_key()
            return bytes(impl.exchange(peer)).rjust(plen, b"\x00")  # RFC 7296 2.14: padded to the prime

    def ke_encapsulate(self, group: KeyExchange, peer_public: bytes) -> tuple[bytes, SecretKey]:
        if group not in MLKEM_SIZES:
            raise UnsupportedOperation(f"{group.name} is not a KEM")
        if len(peer_public) != MLKEM_SIZES[group][0]:
            raise InvalidKeyShare(f"{group.name} encapsulation key of {len(peer_public)} octets")
        cls: Any = mlkem.MLKEM768PublicKey if group is KeyExchange.ML_KEM_768 else mlkem.MLKEM1024PublicKey
        try:
            pk = cls.from_public_bytes(peer_public)  # FIPS 203 7.2 modulus check
        except ValueError:
            raise InvalidKeyShare(f"{group.name} encapsulation key rejected") from None
        shared, ct = pk.encapsulate()
        return ct, SecretKey(shared, "g^ir", NAME)

    # --- signatures and long-term keys -----------------------------------------
    def sign(self, key: PrivateKey, scheme: SignatureScheme, data: bytes, raw: bool = False) -> bytes:
        if key.owner != NAME:
            raise UnsupportedOperation(f"key {key.label!r} is held by {key.owner}, not by openssl")
        return sign_with(key._software_key(), scheme, data, raw)

    def verify(self, public_key: Any, scheme: SignatureScheme, data: bytes, signature: bytes,
               raw: bool = False, salt_length: int | None = None) -> bool:
        return verify_with(public_key, scheme, data, signature, raw, salt_length)

    def generate_keypair(self, spec: KeySpec, label: str = "", key_id: bytes = b"") -> PrivateKey:
        impl: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if spec.kind == "rsa":
            impl = rsa.generate_private_key(65537, spec.size)
        elif spec.kind == "ec" and spec.curve in CURVES:
            impl = ec.generate_private_key(CURVES[spec.curve])
        else:
            raise UnsupportedOperation(f"key generation for {spec} is not implemented")
        return self.import_private_key(impl, label, key_id)

    def import_private_key(self, private_key: Any, label: str = "", key_id: bytes = b"") -> PrivateKey:
        if isinstance(private_key, rsa.RSAPrivateKey):
            spec = KeySpec("rsa", private_key.key_size)
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in CURVES:
            spec = KeySpec("ec", private_key.curve.key_size, private_key.curve.name)
        else:
            raise UnsupportedOperation(f"private key type {type(private_key).__name__} is not supported")
        public = private_key.public_key()
        pairwise_consistency_test(lambda s, m: sign_with(private_key, s, m), public, spec)
        return PrivateKey(spec, NAME, private_key, public, label, key_id)

