"""Security keys as one listener sees them, and the audit log."""

from __future__ import annotations

import logging
from typing import Any

from pyk.config import KEYS, ConfigError, ServerConfig

# One line per authentication failure and per denied operation (pyk.server.security.authorizer):
# Kafka's kafka.authorizer.logger plays this part.
AUDIT = logging.getLogger("pyk.audit")


def scoped_key(config: ServerConfig, listener: str, key: str, mechanism: str | None = None) -> str:
    """The name a security key's value is read from for one listener: the listener- (and
    mechanism-) scoped key if set, as Kafka resolves listener-prefixed configs, else `key` itself."""
    prefix = f"listener.name.{listener.lower()}."
    names = ([f"{prefix}{mechanism.lower()}.{key}"] if mechanism else []) + [prefix + key]
    return next((name for name in names if name in config.raw), key)


def setting(config: ServerConfig, listener: str, key: str, mechanism: str | None = None) -> Any:
    """A security key's value for one listener (see scoped_key)."""
    name = scoped_key(config, listener, key, mechanism)
    if name == key:
        return config[key]
    try:
        return KEYS[key].parse(config.raw[name])
    except ValueError as exc:
        raise ConfigError(f"invalid value {config.raw[name]!r} for {name}: {exc}") from None
