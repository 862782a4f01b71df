"""ApiVersions: the API version ranges this broker implements (`ShardServices.supported_apis`,
derived from the dispatcher's handler table)."""

from __future__ import annotations

import re
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices

API_KEY = ApiKey.API_VERSIONS
MIN_VERSION = 0
MAX_VERSION = 3

# What Kafka accepts as client_software_name and _version (v3+, KIP-511).
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def response(supported: list[tuple[int, int, int]], error: ErrorCode = ErrorCode.NONE) -> dict[str, Any]:
    return {
        "error_code": error,
        "api_keys": [{"api_key": k, "min_version": lo, "max_version": hi} for k, lo, hi in supported],
        "throttle_time_ms": 0,
    }


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if ctx.header.api_version >= 3 and not all(
        _SOFTWARE.fullmatch(request[key]) for key in ("client_software_name", "client_software_version")
    ):
        return response([], ErrorCode.INVALID_REQUEST)  # as Kafka's ApiVersionsRequest.isValid
    return response(services.supported_apis)
