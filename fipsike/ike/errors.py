"""The codec's one error family.

Every error the wire codec raises is a `CodecError`. Each carries the notify the
engine should answer with (`notify`, `notify_data`), or `notify=None` when RFC 7296
says to drop the message silently (integrity failure, garbage before keys exist,
an IKEv1 packet). Messages describe the fault (offsets, lengths, types), never
key material or decrypted plaintext.
"""

from __future__ import annotations

from fipsike.ike.registry import NotifyType, payload_notation


class CodecError(Exception):
    """Base of every codec error. `notify` None = drop silently."""

    notify: NotifyType | None = None

    def __init__(self, message: str, *, notify_data: bytes = b"") -> None:
        super().__init__(message)
        self.notify_data = notify_data


class InvalidSyntax(CodecError):
    """A length, count or field does not fit its container (RFC 7296 3.10.1 INVALID_SYNTAX)."""

    notify = NotifyType.INVALID_SYNTAX


class InvalidMajorVersion(CodecError):
    """Major version is not 2 (RFC 7296 3.1). Versions above 2 get INVALID_MAJOR_VERSION;
    a lower one (IKEv1) is not ours to answer, so it is dropped."""

    def __init__(self, major: int) -> None:
        super().__init__(f"IKE major version {major} is not 2")
        self.major = major
        # RFC 7296 3.10.1: no notify data; the reply's own header carries the version we speak
        self.notify = NotifyType.INVALID_MAJOR_VERSION if major > 2 else None


class UnsupportedCriticalPayload(CodecError):
    """A payload we do not understand has the critical bit set (RFC 7296 2.5, 3.2).

    Notify data: the one-octet payload type (RFC 7296 3.10.1).
    """

    notify = NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD

    def __init__(self, payload_type: int) -> None:
        super().__init__(f"unsupported critical payload {payload_notation(payload_type)}",
                         notify_data=bytes([payload_type & 0xFF]))
        self.payload_type = payload_type


class AuthenticInvalidSyntax(InvalidSyntax):
    """The message's integrity check passed, but its decrypted payloads are malformed. Unlike a
    forgery, an authenticated request gets an INVALID_SYNTAX answer (RFC 7296 3.10.1), so the
    peer's message IDs do not stall on a request we never answer."""


class MessageTooLarge(CodecError):
    """Over the configured message size cap (also after reassembly): dropped."""


class IntegrityCheckFailed(CodecError):
    """The SK/SKF ICV or AEAD tag did not verify: dropped silently (RFC 7296 2.21.2)."""


class DecryptionFailed(CodecError):
    """No keys for the message, or the decrypted padding is malformed: dropped."""


class FragmentError(CodecError):
    """An RFC 7383 fragment was refused (bounds, duplicate, mismatched totals): dropped."""


class IvExhausted(CodecError):
    """The per-SA GCM IV counter ran out: the IKE SA must be rekeyed before sending more."""
