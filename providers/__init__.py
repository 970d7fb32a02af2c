"""The cryptographic boundary of fipsike: everything else holds a Router from here.

    from providers import open_router, Pkcs11Config
    router = open_router(profile="fips", pkcs11=Pkcs11Config(token_label="...", pin_file="..."))
"""

from providers.algorithms import (
    Encryption,
    HashAlg,
    Integrity,
    KeyExchange,
    KeySpec,
    Prf,
    SignatureScheme,
)
from providers.api import Provider, ProviderInfo
from providers.errors import (
    AuthenticationTagInvalid,
    InvalidInput,
    InvalidKeyShare,
    KeyNotFound,
    ModuleNotOperational,
    PairwiseConsistencyFailure,
    PolicyViolation,
    ProviderError,
    UnsupportedOperation,
    UsageLimitExceeded,
    WipedKey,
)
from providers.handles import KeyShare, PrivateKey, SecretKey
from providers.limits import CipherLimit, KernelLifetime, LifetimeAboveLimit, Meter, UsageLimits, kernel_lifetime
from providers.pkcs11.config import PinUnavailable, Pkcs11Config
from providers.policy import Policy, PolicyEntry
from providers.router import ESP_KEY_PREFIXES, Gate, ModuleState, Router, open_router, scheme_for

__all__ = [
    "ESP_KEY_PREFIXES",
    "AuthenticationTagInvalid",
    "CipherLimit",
    "Encryption",
    "Gate",
    "HashAlg",
    "Integrity",
    "InvalidInput",
    "InvalidKeyShare",
    "KernelLifetime",
    "KeyExchange",
    "KeyNotFound",
    "KeyShare",
    "KeySpec",
    "LifetimeAboveLimit",
    "Meter",
    "ModuleNotOperational",
    "ModuleState",
    "PairwiseConsistencyFailure",
    "PinUnavailable",
    "Pkcs11Config",
    "Policy",
    "PolicyEntry",
    "PolicyViolation",
    "Prf",
    "PrivateKey",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "Router",
    "SecretKey",
    "SignatureScheme",
    "UnsupportedOperation",
    "UsageLimitExceeded",
    "UsageLimits",
    "WipedKey",
    "kernel_lifetime",
    "open_router",
    "scheme_for",
]
