"""Opaque handles for secrets and keys.

Key bytes live only inside providers/. A handle's repr/str shows its kind and
length, never material; `wipe()` zeroes what Python lets us zero. The one way to
take raw bytes out is Router.release_esp_key (audited).
"""

from __future__ import annotations

import weakref
from typing import Any

from providers.algorithms import KeyExchange, KeySpec
from providers.errors import WipedKey


class SecretKey:
    """A symmetric secret (SKEYSEED, SK_*, KEYMAT, g^ir, cookie secret).

    `owner` is the provider holding it; `kind` is a label for audit and errors
    (e.g. "SK_ei"). Only providers/ may touch `_material`.
    """

    __slots__ = ("_kind", "_owner", "_material", "_length", "meter", "_ctx", "__weakref__")

    def __init__(self, material: bytes | bytearray, kind: str, owner: str) -> None:
        self._material: bytearray | None = bytearray(material)
        self._length = len(material)
        self._kind = kind
        self._owner = owner
        self.meter: Any = None  # set by the router when the key is used with a metered cipher
        # providers/ only: a cached primitive context (e.g. an AESGCM object and the salt) bound
        # to one algorithm, so the hot path skips the key schedule. Cleared by wipe().
        self._ctx: Any = None

    def __len__(self) -> int:
        return self._length

    # Read-only: release_esp_key decides by kind, so relabelling an SK_d handle
    # "ESP_..." must not be possible.
    @property
    def kind(self) -> str:
        return self._kind

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def wiped(self) -> bool:
        return self._material is None

    def release_context(self) -> None:
        """Drop the cached primitive context; the next use builds (and admits) it again. An idle IKE
        SA's AES-GCM context holds ~2.5 KiB of OpenSSL state per key, more than the rest of the SA."""
        if self._ctx is not None:
            if self.meter is not None:
                self.meter.sync()  # settle the hot-path lease held by the context
            self._ctx = None

    def wipe(self) -> None:
        self._ctx = None
        if self.meter is not None:
            self.meter.sync()  # settle the hot-path lease and drop the meter's reference to the context
        if self._material is not None:
            for i in range(len(self._material)):
                self._material[i] = 0
            self._material = None

    def _bytes(self) -> bytes:
        """For providers/ only: the material, as the primitive libraries need it."""
        if self._material is None:
            raise WipedKey(f"{self.kind} key was wiped")
        return bytes(self._material)

    def __repr__(self) -> str:
        state = "wiped" if self._material is None else f"len={self._length}"
        return f"SecretKey(kind={self.kind!r}, {state}, owner={self.owner!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("SecretKey cannot be pickled")

    def __eq__(self, other: object) -> bool:
        # identity only: comparing secrets by value would be a timing oracle
        return self is other

    def __hash__(self) -> int:
        return id(self)


# Every PrivateKey handle not yet collected: live_private_keys() counts the unwiped ones, so a caller that
# imports keys again and again (a daemon's reload) can be shown to release what it no longer uses.
_PRIVATE_KEYS: weakref.WeakSet[PrivateKey] = weakref.WeakSet()


def live_private_keys(owner: str | None = None) -> int:
    """Private key handles still usable (not wiped, still referenced), of `owner` or of every provider.
    An unreachable handle in a reference cycle counts until the garbage collector runs."""
    return sum(1 for k in list(_PRIVATE_KEYS) if not k.wiped and (owner is None or k.owner == owner))


class PrivateKey:
    """A long-term private key, held by OpenSSL (in memory) or by a PKCS#11 token."""

    __slots__ = ("spec", "owner", "label", "key_id", "_impl", "_public", "_plans", "__weakref__")

    def __init__(self, spec: KeySpec, owner: str, impl: Any, public_key: Any, label: str = "",
                 key_id: bytes = b"") -> None:
        self.spec = spec
        self.owner = owner
        self.label = label
        self.key_id = key_id
        self._impl = impl
        self._public = public_key
        # providers/ only: the Router's admitted signing plans, {(scheme, raw): (ticket, sign(data))}
        self._plans: dict[Any, Any] = {}
        _PRIVATE_KEYS.add(self)

    def public_key(self) -> Any:
        """The public half as a `cryptography` public key object (safe to share)."""
        return self._public

    @property
    def wiped(self) -> bool:
        return self._impl is None

    def wipe(self) -> None:
        """Drops the key object (a software key's memory is OpenSSL's to free; a token key stays on
        the token). The handle cannot sign afterwards."""
        self._impl = None
        self._plans.clear()

    def _software_key(self) -> Any:
        """For providers/ only: an OpenSSL-held key object (to move it onto a token)."""
        if self._impl is None:
            raise WipedKey(f"key {self.label!r} was wiped")
        return self._impl

    def __repr__(self) -> str:
        return f"PrivateKey({self.spec}, owner={self.owner!r}, label={self.label!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("PrivateKey cannot be pickled")


class KeyShare:
    """An ephemeral key exchange private value with its public part (the KE payload data)."""

    __slots__ = ("group", "public", "owner", "_impl")

    def __init__(self, group: KeyExchange, public: bytes, owner: str, impl: Any) -> None:
        self.group = group
        self.public = public
        self.owner = owner
        self._impl = impl

    def wipe(self) -> None:
        self._impl = None

    def __repr__(self) -> str:
        return f"KeyShare({self.group.name}, public_len={len(self.public)}, owner={self.owner!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("KeyShare cannot be pickled")
