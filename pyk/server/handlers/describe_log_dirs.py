"""DescribeLogDirs (KIP-113): this node's log directories and the size of each partition in them.

A shard is a node: it answers for its own directories (`<log.dir>/shard-<index>`) and the
partitions it holds, as each Kafka broker answers for its own (admin clients ask every node, as
`kafka-log-dirs.sh --describe` does).  A partition's size is the bytes of its segment files
(Kafka's UnifiedLog.size); offset_lag is 0 and is_future_key false, as pyk has no future
replicas (AlterReplicaLogDirs).  v4's total and usable bytes come from statvfs of the directory.
Requested partitions this node does not hold are left out, as Kafka does.
"""

from __future__ import annotations

import os
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from pyk.server.context import RequestContext, ShardServices
from pyk.server.security.authorizer import AclOperation

API_KEY = ApiKey.DESCRIBE_LOG_DIRS
MIN_VERSION = 0
MAX_VERSION = 4


def handle(ctx: RequestContext, services: ShardServices, request: dict[str, Any]) -> dict[str, Any]:
    if not services.cluster_authorized(ctx, AclOperation.DESCRIBE):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "results": []}
    wanted: dict[str, set[int]] | None = None
    if request["topics"] is not None:
        wanted = {}
        for t in request["topics"]:
            wanted.setdefault(t["topic"], set()).update(t["partitions"])
    by_dir: dict[str, dict[str, list[dict[str, Any]]]] = {d: {} for d in services.logs.log_dirs}
    for plog in services.logs.all_logs():
        if wanted is not None and plog.partition not in wanted.get(plog.topic, ()):
            continue
        size = sum(segment.size for segment in plog.segments)
        by_dir.setdefault(os.path.dirname(plog.directory), {}).setdefault(plog.topic, []).append(
            {"partition_index": plog.partition, "partition_size": size, "offset_lag": 0, "is_future_key": False})
    results: list[dict[str, Any]] = []
    for log_dir, topics in sorted(by_dir.items()):
        try:
            fs = os.statvfs(log_dir)
            total, usable, code = fs.f_blocks * fs.f_frsize, fs.f_bavail * fs.f_frsize, ErrorCode.NONE
        except OSError:
            total, usable, code = -1, -1, ErrorCode.KAFKA_STORAGE_ERROR
        results.append({"error_code": code, "log_dir": log_dir, "total_bytes": total, "usable_bytes": usable,
                        "topics": [{"name": name, "partitions": sorted(parts, key=lambda p: p["partition_index"])}
                                   for name, parts in sorted(topics.items())]})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results": results}
