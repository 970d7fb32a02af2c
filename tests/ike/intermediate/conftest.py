"""Fixtures for the RFC 9242 / RFC 9370 tests: the real Router under the FIPS policy."""

from __future__ import annotations

import pytest

from providers.policy import Policy
from providers.router import Router
from tests.ike.engine.conftest import pair, pki  # noqa: F401 - the engine pair fixtures, for the back-to-back tests


@pytest.fixture
def router() -> Router:
    return Router(Policy("fips"))
