"""DeleteRecords: move a partition's log start offset forward (offset -1 means the high watermark)."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DELETE_RECORDS
MIN_VERSION = 0
MAX_VERSION = 2

HIGH_WATERMARK = -1


def _delete_before(services: ShardServices, topic: str, partition: int, offset: int) -> int:
    plog = services.replicas.leader_log(topic, partition)
    if offset == HIGH_WATERMARK:
        offset = plog.high_watermark
    if offset < 0 or offset > plog.high_watermark:
        raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"offset {offset} outside [0, high watermark {plog.high_watermark}]")
    return plog.delete_records_before(offset)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    topics = []
    for topic in request["topics"]:
        name = topic["name"]
        partitions = []
        for part in topic["partitions"]:
            index = part["partition_index"]
            entry = {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.NONE}
            try:
                services.require(ctx, AclOperation.DELETE, ResourceType.TOPIC, name)
                entry["low_watermark"] = _delete_before(services, name, index, part["offset"])
            except Exception as exc:
                entry["error_code"], _ = error_for(exc, f"delete records of {name}-{index}")
            partitions.append(entry)
        topics.append({"name": name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
