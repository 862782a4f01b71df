"""DeleteTopics: by name (v0-5) or by name or topic id (v6+)."""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DELETE_TOPICS
MIN_VERSION = 0
MAX_VERSION = 6

_ZERO_UUID = uuid.UUID(int=0)


async def _delete(ctx: RequestContext, services: ShardServices, name: str | None,
                  topic_id: uuid.UUID) -> tuple[str | None, uuid.UUID]:
    if not services.config["delete.topic.enable"]:
        raise KafkaError(ErrorCode.TOPIC_DELETION_DISABLED, "delete.topic.enable is false")
    info = services.metadata.get(name) if name is not None else services.metadata.by_id(topic_id)
    # Kafka's order: a name not DELETE-able is refused whether or not it exists; a topic id whose
    # topic the principal may not DESCRIBE is refused without its name.
    if name is not None:
        services.require(ctx, AclOperation.DELETE, ResourceType.TOPIC, name)
    elif info is not None:
        services.require(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, info.name)
        services.require(ctx, AclOperation.DELETE, ResourceType.TOPIC, info.name)
    if info is None:
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name is not None else ErrorCode.UNKNOWN_TOPIC_ID
        raise KafkaError(code, f"topic {name or topic_id} does not exist")
    if info.internal:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"internal topic {info.name} cannot be deleted")
    await services.admin.delete_topic(info.name)
    return info.name, info.topic_id


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if ctx.header.api_version >= 6:
        wanted = [(t.get("name"), t.get("topic_id") or _ZERO_UUID) for t in request["topics"]]
    else:
        wanted = [(n, _ZERO_UUID) for n in request["topic_names"]]
    responses = []
    for name, topic_id in wanted:
        entry: dict[str, Any] = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.NONE, "error_message": None}
        try:
            entry["name"], entry["topic_id"] = await _delete(ctx, services, name, topic_id)
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"delete topic {name or topic_id}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
