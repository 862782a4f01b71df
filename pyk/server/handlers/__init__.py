"""One module per Kafka API, named like the API in snake_case.

Each declares API_KEY, MIN_VERSION, MAX_VERSION and `handle(ctx, services, request)` returning
the response body (a dict), None (no response), or an awaitable of either.  Handlers validate,
call the log or the metadata store, and turn failures into per-partition error codes with
`error_for` below; they never touch sockets.  The helpers below translate the topic-nested
partitions of the group coordinator's offset APIs to and from its flat typed rows.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Sequence
from typing import Any

from pyk.coordinator.api import OffsetCommitPartition, PartitionResult, TopicPartition
from pyk.errors import ErrorCode, error_for

__all__ = ["DUPLICATE", "commit_partitions", "error_for", "nest_partition_errors", "split_duplicates",
           "topic_partitions", "with_denied"]

DUPLICATE = "Duplicate topic name."  # Kafka's message (ControllerApis)


def split_duplicates(topics: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The topics of a CreateTopics or CreatePartitions request named once, and the names given
    more than once, which Kafka answers once each with INVALID_REQUEST after the others."""
    counts = collections.Counter(t["name"] for t in topics)
    return [t for t in topics if counts[t["name"]] == 1], [n for n, c in counts.items() if c > 1]


def commit_partitions(topics: list[dict[str, Any]], with_timestamp: bool = False) -> list[OffsetCommitPartition]:
    """The offsets of an OffsetCommit / TxnOffsetCommit request, in request order
    (`with_timestamp`: OffsetCommit v1's per-partition commit_timestamp counts)."""
    return [OffsetCommitPartition(t["name"], p["partition_index"], p["committed_offset"],
                                  p.get("committed_leader_epoch", -1), p.get("committed_metadata") or "",
                                  p.get("commit_timestamp", -1) if with_timestamp else -1)
            for t in topics for p in t["partitions"]]


def topic_partitions(topics: list[dict[str, Any]], key: str = "partitions") -> list[TopicPartition]:
    """(topic, partition) of each partition of a request's topics, in order; `key` names the
    partition list (`partition_indexes` lists bare indexes)."""
    return [(t["name"], p if isinstance(p, int) else p["partition_index"]) for t in topics for p in t[key]]


def with_denied(topics: list[dict[str, Any]], denied: dict[str, ErrorCode],
                results: Sequence[PartitionResult]) -> list[PartitionResult]:
    """Per-partition results of all `topics` (request order): those of the topics in `denied`
    with their error, the others taken in order from `results` (the answer for the rest)."""
    rows = iter(results)
    return [PartitionResult(t["name"], p["partition_index"], denied[t["name"]]) if t["name"] in denied
            else next(rows) for t in topics for p in t["partitions"]]


def nest_partition_errors(topics: list[dict[str, Any]], results: Sequence[PartitionResult]) -> list[dict[str, Any]]:
    """Per-partition results (in request order) nested under the request's topics, as the
    responses of OffsetCommit, TxnOffsetCommit and OffsetDelete carry them."""
    rows = iter(results)
    return [{"name": t["name"], "partitions": [{"partition_index": r.partition, "error_code": r.error_code}
                                               for r in itertools.islice(rows, len(t["partitions"]))]}
            for t in topics]
