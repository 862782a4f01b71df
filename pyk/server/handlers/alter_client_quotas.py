"""AlterClientQuotas (KIP-546): set and remove client quota keys of entities.

Each entry is checked on its own with Kafka's codes (pyk.server.quotas.check_entity and
check_value: INVALID_REQUEST for an empty entity, an unknown key, a non-positive or fractional
value, a key named twice; UNSUPPORTED_VERSION for an unknown entity type); the valid entries of a
request are stored together (unless validate_only) through the orchestrator, so every shard
enforces them once the answer is sent.  Removing a key that is not set is not an error (Kafka).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError, error_for
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.quotas import Entity, check_entity, check_value, entity_path

API_KEY = ApiKey.ALTER_CLIENT_QUOTAS
MIN_VERSION = 0
MAX_VERSION = 1


def _changes(entity: Entity, ops: list[dict[str, Any]]) -> dict[str, float | None]:
    """The entry's key -> new value (None: remove), checked; raises KafkaError."""
    check_entity(entity)
    out: dict[str, float | None] = {}
    for op in ops:
        key = op["key"]
        if key in out:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Duplicate quota key {key} not updating quota for this entity")
        if not op["remove"]:
            check_value(entity, key, op["value"])
        out[key] = None if op["remove"] else op["value"]
    return out


async def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    results: list[tuple[ErrorCode, str | None]] = []
    changes: list[tuple[str, dict[str, float | None]]] = []
    for entry in request["entries"]:
        entity = {e["entity_type"]: e["entity_name"] for e in entry["entity"]}
        try:
            ops = _changes(entity, entry["ops"])
        except KafkaError as exc:
            results.append((exc.code, exc.message))
            continue
        results.append((ErrorCode.NONE, None))
        changes.append((entity_path(entity), ops))
    if changes and not request["validate_only"]:
        try:
            await services.admin.alter_client_quotas(changes)
        except Exception as exc:
            failure = error_for(exc, "storing client quotas")
            results = [failure if code == ErrorCode.NONE else (code, message) for code, message in results]
    return {"throttle_time_ms": 0, "entries": [
        {"error_code": code, "error_message": message, "entity": entry["entity"]}
        for (code, message), entry in zip(results, request["entries"], strict=True)]}
