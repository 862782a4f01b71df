"""DescribeProducers: the producers with state in a partition this node leads (KIP-664,
`kafka-transactions.sh describe-producers`, Admin.describeProducers).

Each entry is the partition's producer state as appends and markers left it: epoch, last
sequence and timestamp, the coordinator epoch of its last marker, and the first offset of its
open transaction (-1 when none). A partition led elsewhere gets NOT_LEADER_OR_FOLLOWER, an
unknown one UNKNOWN_TOPIC_OR_PARTITION, as for a produce.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.log.producer_state import ProducerStateEntry
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for

API_KEY = ApiKey.DESCRIBE_PRODUCERS
MIN_VERSION = 0
MAX_VERSION = 0


def _producer(entry: ProducerStateEntry) -> dict[str, Any]:
    return {"producer_id": entry.producer_id, "producer_epoch": entry.epoch,
            "last_sequence": entry.batches[-1][1] if entry.batches else -1,
            "last_timestamp": entry.last_timestamp, "coordinator_epoch": entry.coordinator_epoch,
            "current_txn_start_offset": entry.current_txn_first_offset}


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    topics = []
    for topic in request["topics"]:
        name = topic["name"]
        partitions = []
        for index in topic["partition_indexes"]:
            entry: dict[str, Any] = {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None,
                                     "active_producers": []}
            try:
                state = services.replicas.leader_log(name, index).producer_state
                entry["active_producers"] = [_producer(p) for p in state.producers.values()]
            except Exception as exc:
                entry["error_code"], entry["error_message"] = error_for(exc, f"describe producers of {name}-{index}")
            partitions.append(entry)
        topics.append({"name": name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
