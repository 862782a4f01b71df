"""DescribeProducers: the active producers of partitions this node leads (KIP-664), as Kafka's
ReplicaManager.activeProducerState lists them: epoch, last sequence and timestamp, the coordinator
epoch of the last marker and the first offset of the open transaction (-1 if none).

`kafka-transactions describe-producers`, `find-hanging` and `abort --start-offset` read it;
another node's partition gets NOT_LEADER_OR_FOLLOWER, an unknown one UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.DESCRIBE_PRODUCERS
MIN_VERSION = 0
MAX_VERSION = 0


def _partition(ctx: RequestContext, services: ShardServices, topic: str, index: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None,
                             "active_producers": []}
    try:
        services.require(ctx, AclOperation.READ, ResourceType.TOPIC, topic)
        plog = services.replicas.leader_log(topic, index)
    except Exception as exc:
        entry["error_code"], entry["error_message"] = error_for(exc, f"describe producers of {topic}-{index}")
        return entry
    entry["active_producers"] = [
        {"producer_id": p.producer_id, "producer_epoch": p.epoch, "last_sequence": p.last_seq,
         "last_timestamp": p.last_timestamp, "coordinator_epoch": p.coordinator_epoch,
         "current_txn_start_offset": p.current_txn_first_offset}
        for p in plog.producer_state.producers.values()]
    return entry


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    return {"throttle_time_ms": 0,
            "topics": [{"name": t["name"], "partitions": [_partition(ctx, services, t["name"], i)
                                                          for i in t["partition_indexes"]]}
                       for t in request["topics"]]}
