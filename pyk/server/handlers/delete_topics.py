"""DeleteTopics: by name (v0-5) or by name or topic id (v6+)."""

from __future__ import annotations

import uuid
from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.handlers import error_for

API_KEY = ApiKey.DELETE_TOPICS
MIN_VERSION = 0
MAX_VERSION = 6

_ZERO_UUID = uuid.UUID(int=0)


async def _delete(broker: Any, name: str | None, topic_id: uuid.UUID) -> tuple[str | None, uuid.UUID]:
    if not broker.config["delete.topic.enable"]:
        raise KafkaError(ErrorCode.TOPIC_DELETION_DISABLED, "delete.topic.enable is false")
    info = broker.metadata.get(name) if name is not None else broker.metadata.by_id(topic_id)
    if info is None:
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if name is not None else ErrorCode.UNKNOWN_TOPIC_ID
        raise KafkaError(code, f"topic {name or topic_id} does not exist")
    if info.internal:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"internal topic {info.name} cannot be deleted")
    await broker.delete_topic(info.name)
    return info.name, info.topic_id


async def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    if header.api_version >= 6:
        wanted = [(t.get("name"), t.get("topic_id") or _ZERO_UUID) for t in request["topics"]]
    else:
        wanted = [(n, _ZERO_UUID) for n in request["topic_names"]]
    responses = []
    for name, topic_id in wanted:
        entry: dict[str, Any] = {"name": name, "topic_id": topic_id, "error_code": ErrorCode.NONE, "error_message": None}
        try:
            entry["name"], entry["topic_id"] = await _delete(broker, name, topic_id)
        except Exception as exc:
            entry["error_code"], entry["error_message"] = error_for(exc, f"delete topic {name or topic_id}")
        responses.append(entry)
    return {"throttle_time_ms": 0, "responses": responses}
