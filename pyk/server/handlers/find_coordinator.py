"""FindCoordinator: which node coordinates a consumer group (key type 0) or a transactional id (1).

A group's coordinator is the leader of its `__consumer_offsets` partition, a transactional id's
the leader of its `__transaction_state` partition (pyk.coordinator).  The first lookup of either
kind creates that topic, as Kafka does, and answers once it can be served.  v4 (KIP-699) looks
up many keys in one request; v0-v3 one key, with the error at the top level.
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.coordinator import KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION
from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.FIND_COORDINATOR
MIN_VERSION = 0
MAX_VERSION = 4


def _lookup(ctx: RequestContext, services: ShardServices, version: int, keys: list[str],
            key_type: int) -> dict[str, Any]:
    endpoints = {b["node_id"]: b for b in services.brokers(ctx.connection.listener)}  # the listener the request came in on
    found = []
    for key in keys:
        try:
            if key_type == KEY_TYPE_GROUP:
                services.require(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, key)
                node = services.groups.find_coordinator(key)
            elif key_type == KEY_TYPE_TRANSACTION:
                services.require(ctx, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID, key)
                node = services.txn.find_coordinator(key)
            else:
                raise KafkaError(ErrorCode.INVALID_REQUEST, f"coordinator key type {key_type}: expected 0 or 1")
            node = endpoints.get(node["node_id"], node)
            found.append({"key": key, "node_id": node["node_id"], "host": node["host"], "port": node["port"],
                          "error_code": ErrorCode.NONE, "error_message": None})
        except Exception as exc:
            code, message = error_for(exc, f"coordinator lookup for {key!r}")
            found.append({"key": key, "node_id": -1, "host": "", "port": -1, "error_code": code,
                          "error_message": message})
    if version >= 4:
        return {"throttle_time_ms": 0, "coordinators": found}
    one = found[0]
    return {"throttle_time_ms": 0, "error_code": one["error_code"], "error_message": one["error_message"],
            "node_id": one["node_id"], "host": one["host"], "port": one["port"]}


async def _after_creating_topic(ctx: RequestContext, services: ShardServices, version: int, keys: list[str],
                                key_type: int) -> dict[str, Any]:
    try:
        if key_type == KEY_TYPE_GROUP:
            await services.groups.ensure_offsets_topic()
        else:
            await services.txn.ensure_topic()
    except Exception as exc:
        error_for(exc, "creating a coordinator topic")  # logs a bug; the lookup below reports the state
    return _lookup(ctx, services, version, keys, key_type)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> Any:
    version = ctx.header.api_version
    keys = request["coordinator_keys"] if version >= 4 else [request["key"]]
    key_type = request.get("key_type", 0)
    if (key_type == KEY_TYPE_GROUP and services.groups.needs_offsets_topic()) or (
            key_type == KEY_TYPE_TRANSACTION and services.txn.needs_topic()):
        return _after_creating_topic(ctx, services, version, keys, key_type)
    return _lookup(ctx, services, version, keys, key_type)
