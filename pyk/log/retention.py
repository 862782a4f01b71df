"""Retention policy: which of a partition log's oldest segments have to go, and why.

Owns the decision half of Kafka's UnifiedLog.deleteOldSegments (the deletion half, log start
offset movement and asynchronous file removal, is PartitionLog._delete_segments).  Three rules,
applied in Kafka's order, each continuing where the previous one stopped (Kafka runs them as
three passes over a log that shrinks in between; walking one list of segments gives the same
result with one deletion step):

  1. log start offset breach: a segment whose successor starts at or below the log start offset
     holds nothing readable any more (DeleteRecords moved the start past it).  Applies whatever
     the cleanup.policy, as in Kafka.
  2. size breach (cleanup.policy contains `delete`, retention.bytes >= 0): with `size` the bytes
     of all remaining segments, delete the oldest segment while `size - segment >= retention.bytes`,
     so the log never drops below the bound (it may stay up to one segment above it).
  3. time breach (cleanup.policy contains `delete`, retention.ms >= 0): delete the oldest segment
     while `now - largest_timestamp > retention.ms`; largest_timestamp is the largest record
     timestamp of the segment, or its file's mtime when no batch has one.

Every rule deletes a prefix: the walk stops at the first segment that is kept, so a segment
with future timestamps also protects everything after it (Kafka behaves the same).  Two guards
from Kafka's deletableSegments apply to every rule: a segment is never deleted unless the high
watermark has passed all of it (the log start offset can never exceed the high watermark), and
an empty last segment is never deleted.  The last (active) segment itself may be deleted when
its data all breached the policy: the caller rolls a new empty segment first, as Kafka does.

Pure bookkeeping over in-memory segment attributes (sizes, max timestamps, base offsets); the
only system call is an fstat for a segment without record timestamps.  Runs on the owning
event loop, like every PartitionLog method.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyk.log.config import LogConfig
from pyk.log.segment import LogSegment


@dataclass(frozen=True, slots=True)
class Deletion:
    """One segment to delete and the reason, worded as Kafka's log line says it."""

    segment: LogSegment
    reason: str


def deletable_segments(segments: Sequence[LogSegment], *, log_start_offset: int, high_watermark: int,
                       log_end_offset: int, config: LogConfig, now_ms: int,
                       apply_retention: bool = True) -> list[Deletion]:
    """The oldest segments that breach the log start offset, retention.bytes or retention.ms.

    `segments` in base-offset order (the last is the active one).  apply_retention=False checks
    the log start offset rule only (DeleteRecords); time and size also need cleanup.policy to
    contain `delete`.
    """
    count = len(segments)
    out: list[Deletion] = []
    i = 0

    def eligible(i: int) -> bool:
        # Kafka deletableSegments: never past the high watermark, never an empty last segment.
        upper = segments[i + 1].base_offset if i + 1 < count else log_end_offset
        last_and_empty = i + 1 == count and segments[i].size == 0
        return high_watermark >= upper and not last_and_empty

    while i + 1 < count and segments[i + 1].base_offset <= log_start_offset and eligible(i):
        out.append(Deletion(segments[i], f"log start offset {log_start_offset} breach"))
        i += 1
    if not apply_retention or "delete" not in config.cleanup_policy:
        return out

    retention_bytes = config.retention_bytes
    if retention_bytes >= 0:
        size = sum(s.size for s in segments[i:])
        diff = size - retention_bytes  # bytes above the bound; Kafka skips the rule when negative
        while i < count and diff >= 0 and diff - segments[i].size >= 0 and eligible(i):
            diff -= segments[i].size
            out.append(Deletion(segments[i], f"log retention size {retention_bytes} breach; "
                                             f"log size after deletion will be {retention_bytes + diff}"))
            i += 1

    retention_ms = config.retention_ms
    if retention_ms >= 0:
        while i < count and eligible(i):
            segment = segments[i]
            largest = segment.largest_timestamp
            if now_ms - largest <= retention_ms:
                break
            basis = "largest record timestamp" if segment.max_timestamp >= 0 else "last modified time"
            out.append(Deletion(segment, f"log retention time {retention_ms}ms breach based on the {basis} "
                                         f"({largest}) of the segment"))
            i += 1
    return out
