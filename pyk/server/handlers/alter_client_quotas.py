"""AlterClientQuotas (KIP-546): set and remove client quota keys of entities.

Each entity is checked on its own with Kafka's codes (pyk.server.quotas.check_entity and
check_value: INVALID_REQUEST for an empty entity, an unknown entity type, an unknown key, a
non-positive or fractional value, a key named twice, an entity named twice); the valid entries
of a request are stored together (unless validate_only) through the orchestrator, so every shard
enforces them once the answer is sent.  Removing a key that is not set is not an error (Kafka).

With an authorizer it needs ALTER_CONFIGS on the cluster; without, every entry is answered
CLUSTER_AUTHORIZATION_FAILED and nothing is stored (Kafka's handleAlterClientQuotasRequest).
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError, error_for
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.quotas import Entity, check_entity, check_value, entity_path
from pyk.server.security.authorizer import AclOperation

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
    if not services.cluster_authorized(ctx, AclOperation.ALTER_CONFIGS):
        # Kafka's error response: each entry of the request as sent, refused.
        message = f"{ctx.principal} may not ALTER_CONFIGS on the cluster"
        return {"throttle_time_ms": 0, "entries": [
            {"error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "error_message": message, "entity": entry["entity"]}
            for entry in request["entries"]]}
    # One result per distinct entity, as Kafka answers (its entities are map keys); an entity
    # named by two entries of the request is refused in both.
    entities: dict[tuple[tuple[str, str | None], ...], tuple[Entity, list[dict[str, Any]]]] = {}
    twice = set()
    for entry in request["entries"]:
        named = {e["entity_type"]: e["entity_name"] for e in entry["entity"]}
        key = tuple(sorted(named.items(), key=lambda item: item[0]))
        if key in entities:
            twice.add(key)
        entities[key] = (named, entry["ops"])
    results: dict[tuple[tuple[str, str | None], ...], tuple[ErrorCode, str | None]] = {}
    changes: list[tuple[str, dict[str, float | None]]] = []
    for key, (entity, ops) in entities.items():
        try:
            if key in twice:
                raise KafkaError(ErrorCode.INVALID_REQUEST, f"Ignoring duplicate entity {dict(key)}")
            changes.append((entity_path(entity), _changes(entity, ops)))
            results[key] = (ErrorCode.NONE, None)
        except KafkaError as exc:
            results[key] = (exc.code, exc.message)
    if changes and not request["validate_only"]:
        try:
            await services.admin.alter_client_quotas(changes)
        except Exception as exc:
            failure = error_for(exc, "storing client quotas")
            results = {k: failure if code == ErrorCode.NONE else (code, message) for k, (code, message) in results.items()}
    return {"throttle_time_ms": 0, "entries": [
        {"error_code": code, "error_message": message,
         "entity": [{"entity_type": kind, "entity_name": name} for kind, name in key]}
        for key, (code, message) in results.items()]}
