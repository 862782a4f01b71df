"""IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single topic keys."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.handlers.alter_configs import apply_topic_configs, check_resource

API_KEY = ApiKey.INCREMENTAL_ALTER_CONFIGS
MIN_VERSION = 0
MAX_VERSION = 1

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


def _updated(current: dict[str, str], ops: list[dict[str, Any]]) -> dict[str, str]:
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
            # Only list-typed keys (cleanup.policy among topic keys) accept these.
            if name != "cleanup.policy":
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"{name} is not a list; APPEND/SUBTRACT need a list key")
            items = [v for v in out.get(name, "").split(",") if v]
            for v in (value or "").split(","):
                if kind == APPEND and v and v not in items:
                    items.append(v)
                elif kind == SUBTRACT and v in items:
                    items.remove(v)
            out[name] = ",".join(items)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown config operation {kind}")
    return out


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    responses = []
    for resource in request["resources"]:
        name = resource["resource_name"]
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None,
                                 "resource_type": resource["resource_type"], "resource_name": name}
        try:
            check_resource(services, resource)
            info = services.metadata.get(name)
            if info is None:
                raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
            await apply_topic_configs(services, name, _updated(info.configs, resource["configs"]), request.get("validate_only", False))
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"alter configs of {name}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
