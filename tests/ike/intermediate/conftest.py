"""Shared pieces of the RFC 9242 / RFC 9370 tests.

`JoiningRouter` is the real Router plus `join_secrets`, the one provider operation RFC 9370 2.2.4
needs that providers/ does not have yet (see fipsike.ike.keymat.SecretJoiner). It stands in here, in
the tests only, until providers/ gains it; everything else goes through the unchanged Router.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from providers.handles import SecretKey
from providers.policy import Policy
from providers.router import Router


class JoiningRouter(Router):
    def join_secrets(self, parts: Sequence[SecretKey | bytes], kind: str) -> SecretKey:
        material = b"".join(p._bytes() if isinstance(p, SecretKey) else bytes(p) for p in parts)
        return SecretKey(material, kind, self.openssl.name)


@pytest.fixture
def router() -> JoiningRouter:
    return JoiningRouter(Policy("fips"))
