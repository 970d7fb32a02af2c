"""Sealing and opening the Encrypted payload SK (RFC 7296 3.14) and its fragments SKF (RFC 7383 2.5).

Layout of the protected body: IV | ciphertext(inner payloads | Padding | Pad Length) | ICV.
- AEAD (AES-GCM, RFC 5282; also CCM / ChaCha20-Poly1305 if the provider has them): an 8-octet
  explicit IV from a per-SkCrypto counter (never repeated under one key, RFC 5282 3.1 / SP 800-38D
  8.2.1), AAD = every octet before the IV (IKE header, any clear payloads, the SK/SKF header;
  RFC 5282 5.1, RFC 7383 2.5), no padding.
- AES-CBC + HMAC-SHA2: a random IV from the router (RFC 7296 3.14 "MUST be chosen at random"),
  pad to the block size, ICV over the whole message up to the ICV, checked BEFORE decrypting.

Keys are SecretKey handles; nothing here ever sees key octets. Direction follows the I flag:
messages sent by the original initiator use SK_ei/SK_ai (RFC 7296 2.14).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fipsike.ike.errors import (
    AuthenticInvalidSyntax,
    DecryptionFailed,
    IntegrityCheckFailed,
    InvalidSyntax,
    IvExhausted,
)
from fipsike.ike.header import HEADER_SIZE, MAX_MESSAGE_SIZE, IkeHeader
from fipsike.ike.message import Message, parse_payloads, serialize_payloads
from fipsike.ike.payloads import GENERIC_HEADER, Encrypted, EncryptedFragment, Payload
from fipsike.ike.registry import ExchangeType as _Exchange
from fipsike.ike.registry import PayloadType, lookup
from providers.algorithms import Encryption, Integrity
from providers.api import IkeRouter
from providers.errors import AuthenticationTagInvalid
from providers.handles import SecretKey

AEAD_IV_SIZE = 8  # RFC 5282 3.1 (GCM, CCM), RFC 7634 3 (ChaCha20-Poly1305)
SKF_HEADER_SIZE = 8  # generic header + Fragment Number + Total Fragments (RFC 7383 2.5)
SK_HEADER_SIZE = 4
_IV_COUNTER_MAX = 2**64 - 1


class AeadIvCounters:
    """The last AEAD explicit IV used under each of an IKE SA's two sealing keys (RFC 5282 3.1: an IV
    never repeats under a key). It belongs to the SA's keys (SkKeys), so every SkCrypto over those
    keys counts on from the same place; no state is shared between SAs or kept in the module."""

    __slots__ = ("initiator", "responder")

    def __init__(self) -> None:
        self.initiator = 0  # under SK_ei
        self.responder = 0  # under SK_er

    def next(self, sent_by_initiator: bool) -> bytes:
        count = self.initiator if sent_by_initiator else self.responder
        if count >= _IV_COUNTER_MAX:
            raise IvExhausted("AEAD IV counter exhausted: rekey the IKE SA")
        count += 1
        if sent_by_initiator:
            self.initiator = count
        else:
            self.responder = count
        return count.to_bytes(AEAD_IV_SIZE, "big")

    def __repr__(self) -> str:
        return f"AeadIvCounters(i={self.initiator}, r={self.responder})"


@dataclass(frozen=True, slots=True)
class SkKeys:
    """The IKE SA's protection suite: algorithms and the four key handles (RFC 7296 2.14).

    For AEAD, `integrity` is Integrity.NONE and sk_ai / sk_ar are None; SK_e* are key||salt handles.
    """

    encryption: Encryption
    key_length_bits: int
    integrity: Integrity
    sk_ei: SecretKey
    sk_er: SecretKey
    sk_ai: SecretKey | None = None
    sk_ar: SecretKey | None = None
    ivs: AeadIvCounters = field(default_factory=AeadIvCounters, compare=False)

    def __post_init__(self) -> None:
        if self.encryption.is_aead:
            if self.integrity is not Integrity.NONE:
                raise ValueError("an AEAD transform takes no integrity transform (RFC 5282 8)")
        elif self.integrity is Integrity.NONE or self.sk_ai is None or self.sk_ar is None:
            raise ValueError(f"{self.encryption.name} needs an integrity algorithm and SK_ai / SK_ar")

    @property
    def iv_size(self) -> int:
        return AEAD_IV_SIZE if self.encryption.is_aead else self.encryption.block_size

    @property
    def icv_size(self) -> int:
        return self.encryption.icv_size if self.encryption.is_aead else self.integrity.icv_size

    @property
    def block_size(self) -> int:
        return 1 if self.encryption.is_aead else self.encryption.block_size

    def overhead(self) -> int:
        """Octets SK adds around the inner payloads, at most (generic header, IV, pad, ICV)."""
        return SK_HEADER_SIZE + self.iv_size + self.block_size + self.icv_size


@dataclass(frozen=True, slots=True)
class OpenedFragment:
    """An SKF whose integrity was verified and whose plaintext (inner payload octets) was recovered."""

    spi_i: bytes
    spi_r: bytes
    exchange: int
    message_id: int
    initiator: bool
    response: bool
    fragment_number: int
    total_fragments: int
    first_payload: int
    plaintext: bytes

    def __repr__(self) -> str:  # decrypted content stays out of logs
        return (f"OpenedFragment(message_id={self.message_id}, {self.fragment_number}/{self.total_fragments}, "
                f"{len(self.plaintext)} octets)")


class SkCrypto:
    """Seals and opens SK / SKF for one IKE SA (one set of keys).

    `initiator`: our role (True = original initiator). Sealing refuses a message whose I flag
    is not ours, opening refuses one whose I flag is ours (a reflected message). None (the
    passive decoder) accepts both directions.
    """

    def __init__(self, router: IkeRouter, keys: SkKeys, initiator: bool | None,
                 max_size: int = MAX_MESSAGE_SIZE) -> None:
        self.router = router
        self.keys = keys
        self.initiator = initiator
        self.max_size = max_size

    def __repr__(self) -> str:
        return f"SkCrypto({self.keys.encryption.name}, {self.keys.integrity.name}, initiator={self.initiator})"

    # --- keys per direction ------------------------------------------------------
    def _keys_for(self, sent_by_initiator: bool) -> tuple[SecretKey, SecretKey | None]:
        k = self.keys
        return (k.sk_ei, k.sk_ai) if sent_by_initiator else (k.sk_er, k.sk_ar)

    def _next_iv(self, key: SecretKey) -> bytes:
        if self.keys.encryption.is_aead:
            # the counter belongs to the keys, not to this object: two SkCrypto over the same keys
            # still never reuse an IV under one key
            return self.keys.ivs.next(key is self.keys.sk_ei)
        return self.router.random(self.keys.iv_size)

    # --- sealing ---------------------------------------------------------------
    def _protect(self, prefix: bytes, plaintext: bytes, enc_key: SecretKey, int_key: SecretKey | None) -> bytes:
        """prefix = header | SK/SKF header with final lengths; returns the whole datagram."""
        k = self.keys
        iv = self._next_iv(enc_key)
        if k.encryption.is_aead:
            data = plaintext + b"\x00"  # Pad Length 0: AEAD needs no padding (RFC 5282 3)
            return prefix + iv + self.router.aead_seal(k.encryption, enc_key, iv, data, prefix)
        bs = k.block_size
        pad = (-(len(plaintext) + 1)) % bs
        data = plaintext + bytes(pad) + bytes((pad,))
        signed = prefix + iv + self.router.cbc_encrypt(k.encryption, enc_key, iv, data)
        assert int_key is not None  # SkKeys.__post_init__ guarantees it
        return signed + self.router.integrity_icv(k.integrity, int_key, signed)

    def _sealed_length(self, prefix_len: int, plaintext_len: int) -> int:
        k = self.keys
        if k.encryption.is_aead:
            return prefix_len + k.iv_size + plaintext_len + 1 + k.icv_size
        bs = k.block_size
        ct = plaintext_len + 1 + ((-(plaintext_len + 1)) % bs)
        return prefix_len + k.iv_size + ct + k.icv_size

    def _check_role(self, message_initiator: bool) -> None:
        if self.initiator is not None and message_initiator != self.initiator:
            raise ValueError("the I flag of an outgoing message must match our role")

    def seal(self, message: Message) -> bytes:
        """The datagram with every payload of `message` inside one SK payload."""
        self._check_role(message.initiator)
        first, inner = serialize_payloads(message.payloads)
        return self._seal_inner(message, first, inner)

    def _seal_inner(self, message: Message, first: int, inner: bytes) -> bytes:
        enc_key, int_key = self._keys_for(message.initiator)
        total = self._sealed_length(HEADER_SIZE + SK_HEADER_SIZE, len(inner))
        if total > self.max_size:
            raise ValueError(f"sealed message of {total} octets over the {self.max_size}-octet cap")
        prefix = (message.header(PayloadType.SK, total).serialize()
                  + GENERIC_HEADER.pack(first, 0, total - HEADER_SIZE))
        return self._protect(prefix, inner, enc_key, int_key)

    def fragment_capacity(self, max_datagram: int) -> int:
        """Inner octets one SKF fragment of at most `max_datagram` IKE octets can carry."""
        k = self.keys
        room = max_datagram - HEADER_SIZE - SKF_HEADER_SIZE - k.iv_size - k.icv_size
        if not k.encryption.is_aead:
            room -= room % k.block_size
        return room - 1  # the Pad Length octet

    def seal_fragments(self, message: Message, max_datagram: int) -> list[bytes]:
        """RFC 7383 2.5: [one SK datagram] if the message fits `max_datagram`, else SKF fragments,
        each at most `max_datagram` octets and each individually protected."""
        self._check_role(message.initiator)
        first, inner = serialize_payloads(message.payloads)
        if self._sealed_length(HEADER_SIZE + SK_HEADER_SIZE, len(inner)) <= max_datagram:
            return [self._seal_inner(message, first, inner)]  # serialized once
        cap = self.fragment_capacity(max_datagram)
        if cap < 1:
            raise ValueError(f"fragment size {max_datagram} leaves no room for data")
        chunks = [inner[i:i + cap] for i in range(0, len(inner), cap)]
        if len(chunks) > 0xFFFF:
            raise ValueError("message needs more than 65535 fragments")
        enc_key, int_key = self._keys_for(message.initiator)
        out: list[bytes] = []
        for n, chunk in enumerate(chunks, 1):
            total = self._sealed_length(HEADER_SIZE + SKF_HEADER_SIZE, len(chunk))
            prefix = (message.header(PayloadType.SKF, total).serialize()
                      + GENERIC_HEADER.pack(first if n == 1 else 0, 0, total - HEADER_SIZE)
                      + n.to_bytes(2, "big") + len(chunks).to_bytes(2, "big"))
            out.append(self._protect(prefix, chunk, enc_key, int_key))
        return out

    # --- opening ---------------------------------------------------------------
    def _unprotect(self, data: bytes, iv_off: int, sent_by_initiator: bool) -> bytes:
        """Verify and decrypt data[iv_off:] (IV | ciphertext | ICV); returns the inner octets."""
        if self.initiator is not None and sent_by_initiator == self.initiator:
            raise DecryptionFailed("message carries our own I flag (reflected)")
        k = self.keys
        enc_key, int_key = self._keys_for(sent_by_initiator)
        ivs, icvs, bs = k.iv_size, k.icv_size, k.block_size
        body_len = len(data) - iv_off
        if body_len < ivs + 1 + icvs or (body_len - ivs - icvs) % bs:
            raise InvalidSyntax(f"encrypted payload of {body_len} octets does not fit "
                                f"{k.encryption.name}'s IV, blocks and ICV")
        iv = data[iv_off:iv_off + ivs]
        try:
            if k.encryption.is_aead:
                plain = self.router.aead_open(k.encryption, enc_key, iv, data[iv_off + ivs:], data[:iv_off])
            else:
                assert int_key is not None
                # RFC 7296 3.14: integrity is checked before decryption
                self.router.integrity_verify(k.integrity, int_key, data[:-icvs], data[-icvs:])
                plain = self.router.cbc_decrypt(k.encryption, enc_key, iv, data[iv_off + ivs:-icvs])
        except AuthenticationTagInvalid:
            raise IntegrityCheckFailed("ICV did not verify") from None
        pad = plain[-1]
        if pad + 1 > len(plain):
            raise InvalidSyntax(f"Pad Length {pad} longer than the decrypted data")
        return plain[:len(plain) - pad - 1]

    def open(self, data: bytes) -> Message:
        """Verify, decrypt and parse an SK message: a Message of the clear payloads before SK
        (if any) followed by the inner payloads."""
        if not isinstance(data, bytes):
            data = bytes(data)
        h = IkeHeader.parse(data, self.max_size)
        payloads = parse_payloads(data, HEADER_SIZE, h.length, h.next_payload)
        outer = Message(h.spi_i, h.spi_r, lookup(_Exchange, h.exchange), h.message_id, h.initiator, h.response,
                        tuple(payloads), h.version_flag)
        return self._open_parsed(outer, data)

    def open_message(self, message: Message, data: bytes) -> Message:
        """open() for a datagram the caller already parsed into `message` with Message.parse (same
        size cap): the header and the outer payloads are not parsed a second time."""
        if self.max_size != MAX_MESSAGE_SIZE or type(data) is not bytes:
            return self.open(data)
        return self._open_parsed(message, data)

    def _open_parsed(self, outer: Message, data: bytes) -> Message:
        payloads = outer.payloads
        sk = payloads[-1] if payloads else None
        if not isinstance(sk, Encrypted):
            raise DecryptionFailed("message has no Encrypted (SK) payload")
        iv_off = len(data) - len(sk.data)
        inner = self._unprotect(data, iv_off, outer.initiator)
        inner_payloads = _parse_authentic(inner, sk.first_payload)
        return Message(outer.spi_i, outer.spi_r, outer.exchange, outer.message_id, outer.initiator, outer.response,
                       payloads[:-1] + tuple(inner_payloads), outer.version_flag)

    def open_plaintext(self, data: bytes) -> tuple[Message, bytes]:
        """open(), also returning the inner payloads' octets as decrypted (no padding): RFC 9242 3.3.2
        authenticates exactly those octets, not a re-serialization of what was parsed from them."""
        if not isinstance(data, bytes):
            data = bytes(data)
        outer = Message.parse(data, max_size=self.max_size)
        sk = outer.encrypted
        if not isinstance(sk, Encrypted):
            raise DecryptionFailed("message has no Encrypted (SK) payload")
        inner = self._unprotect(data, len(data) - len(sk.data), outer.initiator)
        inner_payloads = parse_payloads(inner, 0, len(inner), sk.first_payload, inner=True)
        return outer.with_payloads(outer.payloads[:-1] + tuple(inner_payloads)), inner

    def open_fragment(self, data: bytes) -> OpenedFragment:
        """Verify and decrypt one SKF datagram (RFC 7383 2.6: each fragment on its own)."""
        if not isinstance(data, bytes):
            data = bytes(data)
        h = IkeHeader.parse(data, self.max_size)
        payloads = parse_payloads(data, HEADER_SIZE, h.length, h.next_payload)
        if len(payloads) != 1 or not isinstance(payloads[0], EncryptedFragment):
            # RFC 7383 2.5: the SKF is the only payload of a fragment message
            raise InvalidSyntax("fragment message is not one SKF payload")
        skf = payloads[0]
        plain = self._unprotect(data, len(data) - len(skf.data), h.initiator)
        return OpenedFragment(h.spi_i, h.spi_r, h.exchange, h.message_id, h.initiator, h.response,
                              skf.fragment_number, skf.total_fragments, skf.first_payload, plain)


def _parse_authentic(inner: bytes, first_payload: int) -> list[Payload]:
    """The payloads of an authenticated plaintext; a syntax error in it is an AuthenticInvalidSyntax."""
    try:
        payloads: list[Payload] = parse_payloads(inner, 0, len(inner), first_payload, inner=True)
    except InvalidSyntax as e:
        raise AuthenticInvalidSyntax(str(e)) from None
    return payloads


def inner_message(fragments: Sequence[OpenedFragment]) -> Message:
    """The Message of a complete, ordered set of fragments: the plaintexts joined, parsed from the
    first fragment's Next Payload, with the first fragment's header fields."""
    f1 = fragments[0]
    inner = b"".join(f.plaintext for f in fragments)
    payloads = _parse_authentic(inner, f1.first_payload)
    return Message(f1.spi_i, f1.spi_r, lookup(_Exchange, f1.exchange), f1.message_id, f1.initiator, f1.response,
                   tuple(payloads))
