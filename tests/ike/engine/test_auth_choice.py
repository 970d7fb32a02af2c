"""Our AUTH method and scheme (fipsike.ike.auth.choose_signature): RFC 7427 choices come from
certs.signature_hash.choose_scheme; RFC 4754 ECDSA methods stay the engine's."""

from __future__ import annotations

from typing import Any

import pytest

from certs.testpki import P256, P384, RSA_3072
from fipsike.ike.auth import AuthError, choose_signature
from fipsike.ike.registry import AuthMethod
from providers import open_router
from providers.algorithms import HashAlg, SignatureScheme

H256, H384, H512, SHA1 = HashAlg.SHA256, HashAlg.SHA384, HashAlg.SHA512, HashAlg.SHA1


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    router = open_router("fips")
    return {"router": router, "p256": router.generate_keypair(P256), "p384": router.generate_keypair(P384),
            "rsa": router.generate_keypair(RSA_3072)}


@pytest.mark.parametrize(("key", "peer", "legacy", "expected"), [
    ("p256", [H256, H384, H512], False, (AuthMethod.DIGITAL_SIGNATURE, SignatureScheme.ECDSA_SHA256)),
    ("p384", [H256, H384], False, (AuthMethod.DIGITAL_SIGNATURE, SignatureScheme.ECDSA_SHA384)),
    # the curve's hash not announced: the strongest announced one (choose_scheme's order)
    ("p256", [H384, H512], False, (AuthMethod.DIGITAL_SIGNATURE, SignatureScheme.ECDSA_SHA512)),
    # no RFC 7427 hashes (or only SHA-1), or configured legacy: RFC 4754
    ("p256", [], False, (AuthMethod.ECDSA_SHA256_P256, SignatureScheme.ECDSA_SHA256)),
    ("p384", [SHA1], False, (AuthMethod.ECDSA_SHA384_P384, SignatureScheme.ECDSA_SHA384)),
    ("p256", [H256], True, (AuthMethod.ECDSA_SHA256_P256, SignatureScheme.ECDSA_SHA256)),
    ("rsa", [H512, H384], False, (AuthMethod.DIGITAL_SIGNATURE, SignatureScheme.RSA_PSS_SHA384)),
    ("rsa", [], False, (AuthMethod.DIGITAL_SIGNATURE, SignatureScheme.RSA_PSS_SHA256)),
])
def test_choice(keys: dict[str, Any], key: str, peer: list[HashAlg], legacy: bool,
                expected: tuple[AuthMethod, SignatureScheme]) -> None:
    assert choose_signature(keys[key], peer, legacy, keys["router"].policy) == expected


def test_rsa_with_only_sha1_peer_is_refused(keys: dict[str, Any]) -> None:
    """RSA never signs SHA-1, and a peer that announced only SHA-1 gets PSS-SHA256 (every RFC 7427
    peer must take it); a policy without any PSS leaves nothing: AuthError, not a crash."""
    assert choose_signature(keys["rsa"], [SHA1], False, keys["router"].policy)[1] is SignatureScheme.RSA_PSS_SHA256

    class NoPss:
        def allows_signature(self, scheme: SignatureScheme, verify: bool = False) -> bool:
            return False

    with pytest.raises(AuthError):
        choose_signature(keys["rsa"], [H256], False, NoPss())
