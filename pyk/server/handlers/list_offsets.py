"""ListOffsets: offsets by timestamp, plus the special timestamps -1 (latest), -2 (earliest),
-3 (the record with the largest timestamp, KIP-734), -4 (earliest local, v8) and -5 (latest
tiered, v9).  pyk has no tiered storage, so as on a Kafka topic without remote storage the whole
log is local: -4 is the log start offset and -5 has no offset (-1).

isolation_level (v2+) sets the last offset a client may see (Kafka
ReplicaManager.fetchOffsetForTimestamp): the last stable offset under read_committed (1), else
the high watermark.  "latest" is that offset, and a record found by timestamp at or past it is
not reported.  A request that is not a client's (replica_id other than -1: a follower whose fetch
offset fell out of range) sees the log end as "latest", as Kafka answers it.

v0 answers a list of offsets (old_style_offsets); pyk gives the one offset that v1 would, or
none, which is what its remaining users (sarama's GetOffset, hence Burrow) read."""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode, KafkaError
from pyk.log.partition_log import READ_COMMITTED
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.handlers import error_for
from pyk.server.replica_manager import CONSUMER_REPLICA_ID, check_isolation_level
from pyk.server.security.authorizer import AclOperation, ResourceType

API_KEY = ApiKey.LIST_OFFSETS
MIN_VERSION = 0
MAX_VERSION = 10

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
_SINCE = {EARLIEST_LOCAL: 8, LATEST_TIERED: 9}  # the first version that may ask for them


def _lookup(plog: Any, timestamp: int, read_committed: bool, replica: bool) -> tuple[int, int]:
    """(offset, timestamp) for one request; (-1, -1) when no visible record is at or after `timestamp`."""
    last_visible = plog.log_end_offset if replica else plog.last_stable_offset if read_committed else plog.high_watermark
    if timestamp == LATEST:
        return last_visible, -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return plog.log_start_offset, -1
    if timestamp == LATEST_TIERED:
        return -1, -1
    if timestamp == MAX_TIMESTAMP:
        found = plog.max_timestamp_and_offset()
    else:
        found = plog.offset_for_timestamp(timestamp)
    return (found[0], found[1]) if found is not None and found[0] < last_visible else (-1, -1)


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    isolation_level = request.get("isolation_level", 0)
    read_committed = isolation_level == READ_COMMITTED
    replica = request["replica_id"] != CONSUMER_REPLICA_ID  # a follower, or the debug id -2: not a client
    topics = []
    for topic in request["topics"]:
        name = topic["name"]
        partitions = []
        for part in topic["partitions"]:
            index = part["partition_index"]
            entry = {"partition_index": index, "error_code": ErrorCode.NONE, "timestamp": -1, "offset": -1,
                     "leader_epoch": -1}
            try:
                services.require(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)
                check_isolation_level(isolation_level)
                plog = services.replicas.leader_log(name, index, part.get("current_leader_epoch", -1))
                if part["timestamp"] < MAX_TIMESTAMP and ctx.header.api_version < _SINCE.get(part["timestamp"], 99):
                    # Kafka's answer to a special timestamp of a later version (-4 needs v8, -5
                    # v9) or one it does not know.
                    raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"timestamp {part['timestamp']} is not supported")
                entry["offset"], entry["timestamp"] = _lookup(plog, part["timestamp"], read_committed, replica)
                entry["leader_epoch"] = plog.leader_epoch if entry["offset"] >= 0 else -1
                if ctx.header.api_version == 0:
                    wanted = part.get("max_num_offsets", 1)
                    entry["old_style_offsets"] = [entry["offset"]] if entry["offset"] >= 0 and wanted > 0 else []
            except Exception as exc:
                entry["error_code"], _ = error_for(exc, f"list offsets of {name}-{index}")
            partitions.append(entry)
        topics.append({"name": name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}
