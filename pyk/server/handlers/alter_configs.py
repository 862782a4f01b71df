"""AlterConfigs (legacy, whole-set): replaces a topic's overrides with exactly the given set.

Broker configs are static in pyk (read at start-up), so altering a broker resource is refused
with INVALID_REQUEST; validate_only checks without applying.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for

API_KEY = ApiKey.ALTER_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 2

TOPIC = 2


async def apply_topic_configs(services: ShardServices, name: str, configs: dict[str, str], validate_only: bool) -> None:
    """Validates a topic's complete new override set and, unless validating, applies it live."""
    info = services.metadata.get(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    services.admin.log_defaults.with_overrides(configs)  # raises INVALID_CONFIG
    if not validate_only:
        await services.admin.set_topic_configs(name, configs)


def check_resource(services: ShardServices, resource: dict[str, Any]) -> None:
    if resource["resource_type"] != TOPIC:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"only topic configs can be altered (resource type {resource['resource_type']}); broker configs are static")


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    responses = []
    for resource in request["resources"]:
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None,
                                 "resource_type": resource["resource_type"], "resource_name": resource["resource_name"]}
        try:
            check_resource(services, resource)
            configs = {c["name"]: c["value"] for c in resource["configs"] if c["value"] is not None}
            await apply_topic_configs(services, resource["resource_name"], configs, request.get("validate_only", False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"alter configs of {resource['resource_name']}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
