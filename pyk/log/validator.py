"""LogValidator: what a produced batch must satisfy before it is written, and its rewrite.

Owns the broker-side checks of one produced RecordBatch v2 (Kafka LogValidator.java) and the
in-place rewrite that makes it part of the log:

  * structure, CRC, sizes and record framing: pyk._native.validate_batch, with max.message.bytes
    (one complete v2 batch, nothing else; its error code is raised as a KafkaError); compressed
    records are decompressed and framed too, as Kafka does, but only up to
    message.decompressed.max.bytes (LogConfig.max_decompressed_bytes): a batch whose records
    expand past it (a decompression bomb) is CORRUPT_MESSAGE and one log line, and decoding
    stops at the bound, so it never costs more memory than that;
  * no control batches from clients (they are written by the broker's transaction markers);
  * a transactional batch carries a producer id (its transaction is tracked per producer);
  * on compacted topics (cleanup.policy contains compact) every record has a key;
  * record count consistent with lastOffsetDelta (offsets inside the batch are 0..n-1);
  * CreateTime timestamps within message.timestamp.before/after.max.ms of the broker clock
    (checked on the batch's base and max timestamps, not per record);
  * compression.type: `producer` keeps the client's codec; a codec name (or `uncompressed`)
    that differs from the batch's recompresses it with pyk._native.recompress_batch, then the
    size limit is checked again on the result.

Magic 0/1 message sets (Produce v0-v2) are first up-converted to one v2 batch by
pyk.log.legacy, which also checks their per-record timestamps; the v2 checks then apply to the
result.  The magic byte sits at the same offset (record_batch.MAGIC_OFFSET) in both formats, so
v2 batches pay one byte compare.

Offsets are assigned by `assign_offsets`, which rewrites baseOffset and partitionLeaderEpoch in
place (both outside the CRC) and, for LogAppendTime, the timestamp type and maxTimestamp (inside
the CRC, so the native call recomputes it).  Stateless: one shared instance per process is fine.
"""

from __future__ import annotations

import logging
from typing import Any

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log import legacy
from pyk.log.config import LogConfig
from pyk.log.record_batch import MAGIC, MAGIC_OFFSET

log = logging.getLogger("pyk.log")


class LogValidator:
    """Checks and prepares produced batches for one log config (no state beyond the config)."""

    @staticmethod
    def validate(records: memoryview, config: LogConfig, now_ms: int) -> tuple[memoryview, Any]:
        """Returns the batch to write (the same writable buffer, or a converted/recompressed copy) and its
        header (pyk._native.batch_info); raises KafkaError with the Kafka code of the failure."""
        converted = len(records) > MAGIC_OFFSET and records[MAGIC_OFFSET] < MAGIC
        if converted:
            records = legacy.up_convert(records, config, now_ms)
        # Deep: a compressed batch is decompressed and its records walked, as Kafka's
        # LogValidator does, so a payload that does not decompress is refused here instead of
        # being served to consumers.
        limit = config.max_decompressed_bytes
        code = _native.validate_batch(records, config.max_message_bytes, True, limit)
        if code == ErrorCode.MESSAGE_TOO_LARGE and len(records) <= config.max_message_bytes:
            # Not the wire size, so the records' decompressed size: Kafka has no such bound,
            # and CORRUPT_MESSAGE is what it answers for records it cannot decompress.
            raise inflation_refused(f"record batch of {len(records)} bytes", _native.batch_info(records).compression,
                                    limit)
        if code:
            raise KafkaError(_error_code(code), f"record batch of {len(records)} bytes rejected "
                                                f"(max.message.bytes={config.max_message_bytes})")
        info = _native.batch_info(records)
        if info.is_control:
            raise KafkaError(ErrorCode.INVALID_RECORD, "control batches cannot be produced by clients")
        if info.is_transactional and info.producer_id < 0:
            raise KafkaError(ErrorCode.INVALID_RECORD, "transactional batch without a producer id")
        # Kafka LogValidator.validateKey: compaction keeps the latest record per key, so a
        # keyless record has no place in a compacted log (up-converted records were checked).
        if config.compact and not converted and _native.count_null_keys(records):
            raise KafkaError(ErrorCode.INVALID_RECORD, "compacted topic cannot accept a record without a key")
        if info.records_count <= 0 or info.last_offset_delta != info.records_count - 1:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"expected lastOffsetDelta {info.records_count - 1} for {info.records_count} records, "
                             f"found {info.last_offset_delta}")
        # Up-converted records had their timestamps checked one by one (-1 is exempt there).
        if not config.log_append_time and not converted:
            if info.max_timestamp > now_ms + config.timestamp_after_max_ms:
                raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                                 f"timestamp {info.max_timestamp} is more than message.timestamp.after.max.ms="
                                 f"{config.timestamp_after_max_ms} after the broker time {now_ms}")
            if info.first_timestamp < now_ms - config.timestamp_before_max_ms:
                raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                                 f"timestamp {info.first_timestamp} is more than message.timestamp.before.max.ms="
                                 f"{config.timestamp_before_max_ms} before the broker time {now_ms}")
        target = config.target_codec
        if target is not None and target != info.compression:
            # Bounded like the validation above, which already decoded these records once.
            records = memoryview(bytearray(_native.recompress_batch(records, target, limit)))
            if len(records) > config.max_message_bytes:
                raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE,
                                 f"batch is {len(records)} bytes after recompression, "
                                 f"max.message.bytes={config.max_message_bytes}")
            info = _native.batch_info(records)
        return records, info

    @staticmethod
    def assign_offsets(records: memoryview, base_offset: int, leader_epoch: int, log_append_time: int) -> int:
        """Rewrites the batch header in place; returns the batch's last offset.

        log_append_time >= 0 stamps LogAppendTime (and re-CRCs); -1 keeps CreateTime.
        """
        return _native.assign_offsets(records, base_offset, leader_epoch, log_append_time)


def inflation_refused(what: str, codec: int, limit: int) -> KafkaError:
    """The error for compressed records that expand past message.decompressed.max.bytes, after
    logging it: a client that sends one is broken or hostile, and the operator should see which
    bound refused it."""
    log.warning("refused a %s: its codec %d records expand past message.decompressed.max.bytes=%d",
                what, codec, limit)
    return KafkaError(ErrorCode.CORRUPT_MESSAGE,
                      f"{what}: its records expand past message.decompressed.max.bytes={limit} "
                      f"when decompressed (codec {codec})")


def _error_code(code: int) -> ErrorCode:
    try:
        return ErrorCode(code)
    except ValueError:
        return ErrorCode.CORRUPT_MESSAGE
