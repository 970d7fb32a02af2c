"""fipsike: an IKEv2 daemon for IPsec, built for FIPS 140-3 and Common Criteria deployments."""

__version__ = "0.1.0"
