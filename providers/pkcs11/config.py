"""How to reach a PKCS#11 token: module, token, PIN source. Holds no PIN itself."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from providers.errors import ProviderError

SOFTHSM2_MODULE: Final = "/usr/lib/softhsm/libsofthsm2.so"


class PinUnavailable(ProviderError):
    """The configured PIN source (file or environment variable) gave no PIN."""


@runtime_checkable
class PinSource(Protocol):
    """A PIN source beyond a file or a variable (the daemon's ipsec.secrets `: PIN` entry). `read_pin`
    reads it afresh each time (raising PinUnavailable, whose message never quotes the PIN); `str()`
    names where it comes from, for messages."""

    def read_pin(self) -> str: ...


@dataclass(frozen=True)
class Pkcs11Config:
    """A token to use: `module_path`, the token by `token_label` or `token_serial`, and where the
    user PIN comes from (`pin_file`, `pin_env` or a `pin_source`, in that order; the PIN is read when
    the session is opened and never stored on this object, never logged).

    `allowed_modules` is the allowlist for `module-path` in PKCS#11 URIs (RFC 7512 section 2.3):
    a URI in a config file must not be able to load an arbitrary shared object.
    """

    module_path: str = SOFTHSM2_MODULE
    token_label: str | None = None
    token_serial: str | None = None
    pin_file: str | None = None
    pin_env: str | None = None
    pin_source: PinSource | None = field(default=None, compare=False)
    allowed_modules: tuple[str, ...] = field(default=(SOFTHSM2_MODULE,))

    def __post_init__(self) -> None:
        if self.token_label is None and self.token_serial is None:
            raise ValueError("Pkcs11Config needs token_label or token_serial")
        if self.pin_file is None and self.pin_env is None and self.pin_source is None:
            raise ValueError("Pkcs11Config needs pin_file, pin_env or pin_source")

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
        if self.pin_env is None:
            assert self.pin_source is not None
            return self._from_source(self.pin_source)
        pin = os.environ.get(self.pin_env, "")
        if not pin:
            raise PinUnavailable(f"environment variable {self.pin_env} holds no PIN")
        try:
            # undecodable bytes arrive as surrogate escapes; encoding them later would quote one
            pin.encode("utf-8")
        except UnicodeEncodeError:
            raise PinUnavailable(f"environment variable {self.pin_env} is not UTF-8") from None
        return pin

    @staticmethod
    def _from_source(source: PinSource) -> str:
        try:
            pin = source.read_pin()
        except PinUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - the source's own error type; its text is not vetted
            raise PinUnavailable(f"the PIN source {source} failed: {type(exc).__name__}") from None
        if not pin:
            raise PinUnavailable(f"the PIN source {source} gave no PIN")
        return pin

    @property
    def token_ref(self) -> str:
        return f"label={self.token_label}" if self.token_label is not None else f"serial={self.token_serial}"
