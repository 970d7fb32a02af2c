from __future__ import annotations

import pytest

from providers import open_router
from providers.router import Router


@pytest.fixture(scope="session")
def default_router() -> Router:
    """The default-profile router: the decode tool's, and enough for AES-GCM / AES-CBC + HMAC-SHA2."""
    return open_router(profile="default")


@pytest.fixture(scope="session")
def fips_router() -> Router:
    return open_router(profile="fips")
