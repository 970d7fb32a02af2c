"""IKE identities for the engine: a thin adapter over certs.identity (RFC 7296 3.5, RFC 4945 3.1)."""

from __future__ import annotations

import functools
from typing import Any

from certs.identity import Identity, IdentityError

ANY = "%any"

__all__ = ["ANY", "Identity", "IdentityError", "local_identity", "remote_accepts"]


def local_identity(setting: str, certificate: Any) -> Identity:
    """Our ID: the configured one, or the certificate's subject DN for %fromcert / unset."""
    if not setting or setting == "%fromcert":
        if certificate is None:
            raise IdentityError("no local identity: set one or give a certificate")
        return Identity.from_cert(certificate)
    return Identity.parse(setting, certificate)


def remote_accepts(setting: str, peer: Identity) -> bool:
    """Does the peer's ID satisfy our remote id setting (%any and %fromcert accept any ID; the
    ID-to-certificate binding is checked separately)?"""
    if setting in ("", ANY, "%fromcert"):
        return True
    try:
        return _configured(setting).matches(peer)
    except (IdentityError, ValueError, UnicodeError):
        return False


@functools.lru_cache(maxsize=1024)
def _configured(setting: str) -> Identity:
    return Identity.parse(setting)
