"""AlterConfigs (legacy, whole-set): replaces the overrides of a topic, or the dynamic configs of a
BROKER resource, with exactly the given set; validate_only checks without applying.

A BROKER resource is one node ("<node id>", each pyk shard being its own node) or the cluster-wide
default (""); only Kafka's dynamically updatable keys (pyk.config.DYNAMIC_KEYS) may be set there.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.handlers.describe_configs import require_config_access
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.ALTER_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 2

TOPIC, BROKER = 2, 4


async def apply_topic_configs(services: ShardServices, name: str, configs: dict[str, str], validate_only: bool) -> None:
    """Validates a topic's complete new override set and, unless validating, applies it live."""
    info = services.metadata.get(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    services.admin.log_defaults.with_overrides(configs)  # raises INVALID_CONFIG
    if not validate_only:
        await services.admin.set_topic_configs(name, configs)


def check_broker_resource(services: ShardServices, name: str) -> None:
    """"" (cluster default) or the node id of one of this broker's shards."""
    nodes = [str(n["node_id"]) for n in services.brokers()]
    if name and name not in nodes:
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"broker resource {name!r} is not a node of this cluster: expected '' or one of {nodes}")


async def apply_broker_configs(services: ShardServices, name: str, configs: dict[str, str], validate_only: bool) -> None:
    """Validates the complete new dynamic set of a BROKER resource and, unless validating, stores it."""
    check_broker_resource(services, name)
    services.admin.validate_broker_configs(name, configs)  # raises INVALID_REQUEST
    if not validate_only:
        await services.admin.set_broker_configs(name, configs)


def check_resource(resource: dict[str, Any]) -> None:
    if resource["resource_type"] not in (TOPIC, BROKER):
        raise KafkaError(ErrorCode.INVALID_REQUEST,
                         f"resource type {resource['resource_type']} cannot be altered (2 topic, 4 broker)")


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    responses = []
    validate_only = request.get("validate_only", False)
    for resource in request["resources"]:
        name = resource["resource_name"]
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None,
                                 "resource_type": resource["resource_type"], "resource_name": name}
        try:
            require_config_access(ctx, services, AclOperation.ALTER_CONFIGS, resource)
            check_resource(resource)
            configs = {c["name"]: c["value"] for c in resource["configs"] if c["value"] is not None}
            if resource["resource_type"] == BROKER:
                await apply_broker_configs(services, name, configs, validate_only)
            else:
                await apply_topic_configs(services, name, configs, validate_only)
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"alter configs of {name}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
