"""ApiVersions: the API version ranges this broker implements, derived from the handler table."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey

API_KEY = ApiKey.API_VERSIONS
MIN_VERSION = 0
MAX_VERSION = 3


def response(error: ErrorCode = ErrorCode.NONE) -> dict[str, Any]:
    from pyk.server.dispatch import supported_versions  # the table imports this module

    return {
        "error_code": error,
        "api_keys": [{"api_key": k, "min_version": lo, "max_version": hi} for k, lo, hi in supported_versions()],
        "throttle_time_ms": 0,
    }


def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    return response()
