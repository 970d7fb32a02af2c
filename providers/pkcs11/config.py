"""How to reach a PKCS#11 token: module, token, PIN source. Holds no PIN itself."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from providers.errors import ProviderError

SOFTHSM2_MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"


class PinUnavailable(ProviderError):
    """The configured PIN source (file or environment variable) gave no PIN."""


@dataclass(frozen=True)
class Pkcs11Config:
    """A token to use: `module_path`, the token by `token_label` or `token_serial`, and where the
    user PIN comes from (`pin_file` or `pin_env`; the PIN is read when the session is opened and
    never stored on this object, never logged).

    `allowed_modules` is the allowlist for `module-path` in PKCS#11 URIs (RFC 7512 section 2.3):
    a URI in a config file must not be able to load an arbitrary shared object.
    """

    module_path: str = SOFTHSM2_MODULE
    token_label: str | None = None
    token_serial: str | None = None
    pin_file: str | None = None
    pin_env: str | None = None
    allowed_modules: tuple[str, ...] = field(default=(SOFTHSM2_MODULE,))

    def __post_init__(self) -> None:
        if self.token_label is None and self.token_serial is None:
            raise ValueError("Pkcs11Config needs token_label or token_serial")
        if self.pin_file is None and self.pin_env is None:
            raise ValueError("Pkcs11Config needs pin_file or pin_env")

    def module_allowed(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == os.path.realpath(p) for p in (self.module_path, *self.allowed_modules))

    def read_pin(self) -> str:
        """The user PIN. Callers pass it straight to C_Login and drop it."""
        if self.pin_file is not None:
            try:
                pin = Path(self.pin_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise PinUnavailable(f"cannot read the PIN file {self.pin_file}: {exc.strerror}") from None
            except UnicodeDecodeError:
                # the codec's message quotes the offending byte: a byte of the PIN
                raise PinUnavailable(f"PIN file {self.pin_file} is not UTF-8") from None
            if not pin:
                raise PinUnavailable(f"the PIN file {self.pin_file} is empty")
            return pin
        assert self.pin_env is not None
        pin = os.environ.get(self.pin_env, "")
        if not pin:
            raise PinUnavailable(f"environment variable {self.pin_env} holds no PIN")
        try:
            # undecodable bytes arrive as surrogate escapes; encoding them later would quote one
            pin.encode("utf-8")
        except UnicodeEncodeError:
            raise PinUnavailable(f"environment variable {self.pin_env} is not UTF-8") from None
        return pin

    @property
    def token_ref(self) -> str:
        return f"label={self.token_label}" if self.token_label is not None else f"serial={self.token_serial}"
