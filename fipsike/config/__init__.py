"""Configuration in libreswan's dialect: ipsec.conf, ipsec.secrets and the opportunistic policy groups.

`load()` reads them as the daemon does and returns the engine's Connections (wrapped in ConnSpecs with
what the daemon needs beside them), or raises ConfigError with every problem as FILE:LINE lines.
"""

from fipsike.config.errors import ConfigError, ConfigUnreadable, Diagnostic, Location
from fipsike.config.load import LoadedConfig, load

__all__ = ["ConfigError", "ConfigUnreadable", "Diagnostic", "Location", "LoadedConfig", "load"]
