"""Security keys as one listener sees them, and the audit log."""

from __future__ import annotations

import logging
from typing import Any

from pyk.config import KEYS, ConfigError, ServerConfig

# One line per authentication failure and per denied operation (pyk.server.security.authorizer):
# Kafka's kafka.authorizer.logger plays this part.
AUDIT = logging.getLogger("pyk.audit")


def setting(config: ServerConfig, listener: str, key: str, mechanism: str | None = None) -> Any:
    """A security key's value for one listener: the listener- (and mechanism-) scoped key first,
    as Kafka resolves listener-prefixed configs, else the broker-wide one."""
    prefix = f"listener.name.{listener.lower()}."
    names = ([f"{prefix}{mechanism.lower()}.{key}"] if mechanism else []) + [prefix + key]
    for name in names:
        if name in config.raw:
            try:
                return KEYS[key].parse(config.raw[name])
            except ValueError as exc:
                raise ConfigError(f"invalid value {config.raw[name]!r} for {name}: {exc}") from None
    return config[key]
