"""The PKCS#11 provider (python-pkcs11). `config` and `uri` import no native code; `provider` loads the module."""
