"""X.509 identities and trust for IKEv2."""
