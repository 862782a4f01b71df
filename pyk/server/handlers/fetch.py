"""Fetch: read record batches from the segment files, long-polling when too little is there.

Records are never read into Python: each partition's answer carries a `FileSlice` of its segment
that the connection sends with sendfile.  Byte limits follow KIP-74: partitions are filled in
request order up to the response's max_bytes, each capped at its partition_max_bytes, and the
first partition with data returns at least one whole batch even when it is larger than both.

Isolation (KIP-98): read_uncommitted reads up to the high watermark; read_committed up to the
last stable offset, and each partition carries the aborted transactions overlapping the bytes
it returns (producer id, first offset), which the client uses to drop their records.  Both
report the partition's last stable offset.

Fetch sessions (KIP-227): pyk answers every request in full and never creates a session
(session_id 0 in the response), which the protocol allows ("the server may decline to create a
session"); clients then keep sending full requests.  An incremental request for a session id we
never issued gets FETCH_SESSION_ID_NOT_FOUND, so the client falls back to a full one.
"""

from __future__ import annotations

from typing import Any

from pyk.errors import ErrorCode
from pyk.log.partition_log import READ_COMMITTED
from pyk.protocol.apis import ApiKey
from pyk.server.handlers import check_isolation_level, check_leader_epoch, error_for

API_KEY = ApiKey.FETCH
MIN_VERSION = 4  # v4 is the first to carry magic v2 record batches and isolation levels
MAX_VERSION = 12


def _read_all(broker: Any, request: dict[str, Any]) -> tuple[dict[str, Any], int, list[tuple[str, int]], bool]:
    """One pass over the requested partitions: (body, bytes found, partitions read, any error)."""
    budget = min(request.get("max_bytes", 0x7FFFFFFF), broker.config["fetch.max.bytes"])
    isolation_level = request.get("isolation_level", 0)
    read_committed = isolation_level == READ_COMMITTED
    total = 0
    errors = False
    keys = []
    responses = []
    for topic in request["topics"]:
        name = topic["topic"]
        partitions = []
        for part in topic["partitions"]:
            index = part["partition"]
            keys.append((name, index))
            entry: dict[str, Any] = {
                "partition_index": index,
                "error_code": ErrorCode.NONE,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": [] if read_committed else None,
                "preferred_read_replica": -1,
                # Empty, not null: Kafka always sends a record set, and librdkafka 2.0.2
                # rejects a null one ("invalid MessageSetSize -1").
                "records": b"",
            }
            try:
                check_isolation_level(isolation_level)
                plog = broker.partition_log(name, index)
                check_leader_epoch(part.get("current_leader_epoch", -1), plog.leader_epoch)
                entry["high_watermark"] = plog.high_watermark
                entry["last_stable_offset"] = plog.last_stable_offset
                entry["log_start_offset"] = plog.log_start_offset
                limit = min(part["partition_max_bytes"], budget - total)
                if limit > 0 or total == 0:
                    data = plog.read(part["fetch_offset"], max(limit, 0), min_one_message=total == 0,
                                     isolation_level=isolation_level)
                    if data.records is not None and data.records.size > 0:
                        entry["records"] = data.records
                        if read_committed:
                            entry["aborted_transactions"] = [{"producer_id": pid, "first_offset": first}
                                                             for pid, first in data.aborted_transactions or ()]
                        total += data.records.size
            except Exception as exc:
                code, _ = error_for(exc, f"fetch from {name}-{index}")
                entry["error_code"] = code
                errors = True
            partitions.append(entry)
        responses.append({"topic": name, "partitions": partitions})
    body = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}
    return body, total, keys, errors


async def _long_poll(broker: Any, request: dict[str, Any], needed: int, keys: list[tuple[str, int]]) -> dict[str, Any]:
    read_committed = request.get("isolation_level", 0) == READ_COMMITTED
    await broker.purgatory.wait(keys, needed, request["max_wait_ms"], read_committed)
    return _read_all(broker, request)[0]


def handle(broker: Any, header: Any, request: dict[str, Any]) -> Any:
    session_id = request.get("session_id", 0)
    epoch = request.get("session_epoch", -1)
    if session_id != 0 or epoch > 0:
        code = ErrorCode.FETCH_SESSION_ID_NOT_FOUND if session_id != 0 else ErrorCode.INVALID_FETCH_SESSION_EPOCH
        return {"throttle_time_ms": 0, "error_code": code, "session_id": 0, "responses": []}
    body, total, keys, errors = _read_all(broker, request)
    min_bytes = request["min_bytes"]
    if total >= min_bytes or request["max_wait_ms"] <= 0 or errors or not keys:
        return body
    return _long_poll(broker, request, min_bytes - total, keys)
