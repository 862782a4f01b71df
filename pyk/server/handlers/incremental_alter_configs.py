"""IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single keys of a topic's
overrides or of a BROKER resource's dynamic configs (DELETE there restores the value of the next
layer: cluster default, static, built-in)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyk.config import KEYS
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import TOPIC_CONFIGS
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.handlers.alter_configs import (
    BROKER,
    apply_broker_configs,
    apply_topic_configs,
    check_broker_resource,
    check_resource,
)
from pyk.server.handlers.describe_configs import require_config_access
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.INCREMENTAL_ALTER_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 1

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

# The keys APPEND / SUBTRACT accept, Kafka's LIST-typed ones, with the default they start from when
# unset (Kafka's ConfigurationControlManager.getParts: the key's own default, so APPEND of
# `compact` to a topic without cleanup.policy gives `delete,compact`).
_TOPIC_LISTS = {n: k.kafka_default for n, k in TOPIC_CONFIGS.items() if k.type_name == "list"}
_BROKER_LISTS = {n: k.default or "" for n, k in KEYS.items() if k.type_name == "list"}


def _updated(current: dict[str, str], ops: list[dict[str, Any]], list_keys: Mapping[str, str]) -> dict[str, str]:
    out = dict(current)
    for op in ops:
        name, value, kind = op["name"], op["value"], op["config_operation"]
        if kind == SET:
            if value is None:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"SET of {name} needs a value")
            out[name] = value
        elif kind == DELETE:
            out.pop(name, None)
        elif kind in (APPEND, SUBTRACT):
            if name not in list_keys:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"{name} is not a list; APPEND/SUBTRACT need a list key")
            items = [v for v in out.get(name, list_keys[name]).split(",") if v]
            for v in (value or "").split(","):
                if kind == APPEND and v and v not in items:
                    items.append(v)
                elif kind == SUBTRACT and v in items:
                    items.remove(v)
            out[name] = ",".join(items)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown config operation {kind}")
    return out


async def _alter(services: ShardServices, resource: dict[str, Any], validate_only: bool) -> None:
    check_resource(resource)
    name, ops = resource["resource_name"], resource["configs"]
    if resource["resource_type"] == BROKER:
        check_broker_resource(services, name)
        current = services.metadata.broker_configs.get(name, {})
        await apply_broker_configs(services, name, _updated(current, ops, _BROKER_LISTS), validate_only)
        return
    info = services.metadata.get(name)
    if info is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
    await apply_topic_configs(services, name, _updated(info.configs, ops, _TOPIC_LISTS), validate_only)


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    responses = []
    for resource in request["resources"]:
        name = resource["resource_name"]
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None,
                                 "resource_type": resource["resource_type"], "resource_name": name}
        try:
            require_config_access(ctx, services, AclOperation.ALTER_CONFIGS, resource)
            await _alter(services, resource, request.get("validate_only", False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"alter configs of {name}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
