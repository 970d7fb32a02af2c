"""The typed errors of the cryptographic boundary.

Messages name algorithms, rules and sizes, never key material: these strings
reach logs and the CLI.
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base of every error raised by providers/."""


class PolicyViolation(ProviderError):
    """A non-approved algorithm or key size was asked for under the active profile."""

    def __init__(self, algorithm: str, rule: str, profile: str) -> None:
        self.algorithm = algorithm
        self.rule = rule
        self.profile = profile
        super().__init__(f"{algorithm} refused by the {profile} profile: {rule}")


class UsageLimitExceeded(ProviderError):
    """A key would cross its cipher's usage limit; the operation was not performed."""

    def __init__(self, algorithm: str, counter: str, limit: int, source: str) -> None:
        self.algorithm = algorithm
        self.counter = counter
        self.limit = limit
        self.source = source
        super().__init__(f"{algorithm} key reached its hard limit of {limit} {counter} ({source}): rekey required")


class UnsupportedOperation(ProviderError):
    """The provider (or the token) lacks the mechanism for this operation."""


class KeyNotFound(ProviderError):
    """No key matches the given reference (PKCS#11 URI, label, id)."""


class AuthenticationTagInvalid(ProviderError):
    """An AEAD tag or integrity checksum did not verify."""


class InvalidKeyShare(ProviderError):
    """A peer's public value is malformed or not on the curve / in the group."""


class PairwiseConsistencyFailure(ProviderError):
    """A freshly generated or imported key pair failed its sign/verify check."""


class ModuleNotOperational(ProviderError):
    """The cryptographic module is not in the operational state; every call is refused."""

    def __init__(self, state: str, reason: str) -> None:
        self.state = state
        self.reason = reason
        super().__init__(f"cryptographic module is in state {state}: {reason}")


class WipedKey(ProviderError):
    """A key handle was used after it was wiped."""


class InvalidInput(ProviderError, ValueError):
    """A public argument is malformed (IV or block length, unknown algorithm for this call)."""
