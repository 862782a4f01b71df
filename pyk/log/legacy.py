"""Legacy message sets (message formats v0 and v1) and their up-conversion to one v2 batch.

Owns what Kafka's LogValidator does when a Produce v0-v2 request brings messages in the
pre-0.11 formats and the log stores message format v2 (Kafka 2.x/3.x with
`log.message.format.version` >= 0.11): every message is checked, unpacked from its compressed
wrapper if it has one, and rewritten as a record of ONE RecordBatch v2 that then follows the
normal v2 path (pyk/log/validator.py: size limit, offset assignment, LogAppendTime stamping).
pyk stores and serves only v2, so consumers never see the legacy format.

Wire format (https://kafka.apache.org/protocol#protocol_message_sets, KIP-31/KIP-32 for v1):

    MessageSet => [Offset MessageSize Message]      (no count: messages until the bytes end)
      Offset => int64         ignored on produce (inner offsets of a v1 wrapper are relative)
      MessageSize => int32    bytes of Message
    Message => Crc MagicByte Attributes [Timestamp] Key Value
      Crc => uint32           CRC-32 (zlib's, not CRC-32C) of MagicByte..end of Value
      MagicByte => int8       0 or 1
      Attributes => int8      bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4); bit 3 (v1 only)
                              timestamp type, 1 = LogAppendTime
      Timestamp => int64      v1 only: ms since the epoch, -1 for none; v0 has no timestamp
      Key => bytes            int32 length (-1 = null) + data
      Value => bytes          int32 length (-1 = null) + data; for a compressed message (the
                              "wrapper") the codec's encoding of an inner MessageSet whose
                              messages must be uncompressed and of the wrapper's magic

The produced v2 batch (KIP-98 DefaultRecordBatch) has producer id/epoch/sequence -1 (there is
no idempotence before v2), no headers, offset deltas 0..n-1, each record's timestamp (-1 for
magic 0, as Kafka's MemoryRecordsBuilder keeps it) and, under compression.type=producer, the
wrapper's codec; a configured codec is applied directly, so the validator does not recompress.

Error codes follow Kafka's LogValidator/AbstractLegacyRecordBatch: damaged bytes (CRC, sizes,
truncation, a payload that does not decompress or expands past message.decompressed.max.bytes)
are CORRUPT_MESSAGE, and so is compression nested inside compression (Kafka 2.x's answer; 3.x
says INVALID_RECORD); well-formed but
disallowed content (mixed magics, a compressed wrapper that is not alone or is empty, a keyless
record for a compacted topic, producer-set LogAppendTime) is INVALID_RECORD / INVALID_TIMESTAMP.
Stateless functions; the conversion runs in the shard process that owns the partition.
"""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

import xxhash

from pyk import _native
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import LogConfig
from pyk.log.record_batch import BATCH_HEADER_SIZE, LOG_OVERHEAD, BatchHeader, write_header

log = logging.getLogger("pyk.log")

# Offset + MessageSize in front of every message take LOG_OVERHEAD bytes, as baseOffset +
# batchLength do in a v2 batch (Kafka Records.LOG_OVERHEAD); after the message's crc, its magic
# byte sits at the batch's MAGIC_OFFSET, so one byte tells the formats apart.

# Smallest Message of each magic: crc 4, magic 1, attributes 1, [timestamp 8], key and value
# lengths 4 + 4 (Kafka LegacyRecord.RECORD_OVERHEAD_V0/V1).
RECORD_OVERHEAD = (14, 22)

ATTR_CODEC_MASK = 0x07
ATTR_LOG_APPEND_TIME = 0x08
CODEC_ZSTD = 4

NO_TIMESTAMP = -1

_HEAD = struct.Struct(">qiIbb")  # offset, message size, crc, magic, attributes
_TIMESTAMP = struct.Struct(">q")
_LENGTH = struct.Struct(">i")

_LZ4_FLG_CONTENT_SIZE = 0x08
_LZ4_FLG_DICT_ID = 0x01


class Message(NamedTuple):
    """One legacy message, its key and value as views into the buffer it was parsed from."""

    offset: int
    size: int  # LOG_OVERHEAD + MessageSize: the bytes it takes in its message set
    magic: int
    attributes: int
    timestamp: int  # NO_TIMESTAMP for magic 0
    key: memoryview | None
    value: memoryview | None

    @property
    def codec(self) -> int:
        return self.attributes & ATTR_CODEC_MASK


def iter_messages(buf: memoryview, where: str) -> Iterator[Message]:
    """The messages of a message set in order, each CRC-checked; KafkaError(CORRUPT_MESSAGE) for
    damaged or truncated bytes, KafkaError(INVALID_RECORD) for a magic other than 0/1.

    Unlike a fetch response, a produced message set has no excuse for a partial last message,
    so one is an error here, not a silently dropped tail.
    """
    # One pass per message with the struct readers bound locally: this loop runs once per
    # record of a legacy produce, the rest of the conversion is a join and a codec call.
    unpack_head, unpack_length, unpack_timestamp, crc32 = _HEAD.unpack_from, _LENGTH.unpack_from, \
        _TIMESTAMP.unpack_from, zlib.crc32
    end = len(buf)
    pos = 0
    while pos < end:
        if end - pos < LOG_OVERHEAD + RECORD_OVERHEAD[0]:
            raise _corrupt(f"{where}: {end - pos} bytes at position {pos}, expected a message "
                           f"of at least {LOG_OVERHEAD + RECORD_OVERHEAD[0]}")
        offset, size, crc, magic, attributes = unpack_head(buf, pos)
        if magic != 0 and magic != 1:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"{where}: magic {magic} at position {pos}, expected 0 or 1 in a legacy message set")
        if size < RECORD_OVERHEAD[magic]:
            raise _corrupt(f"{where}: message size {size} at position {pos}, expected at least "
                           f"{RECORD_OVERHEAD[magic]} for magic {magic}")
        start = pos + LOG_OVERHEAD
        stop = start + size
        if stop > end:
            raise _corrupt(f"{where}: message of {size} bytes at position {pos}, {end - start} bytes remain")
        computed = crc32(buf[start + 4:stop])
        if computed != crc:
            raise _corrupt(f"{where}: message at position {pos} has CRC {crc:#010x}, computed {computed:#010x}")
        cursor = start + 6  # past crc, magic, attributes
        timestamp = NO_TIMESTAMP
        if magic == 1:
            timestamp = unpack_timestamp(buf, cursor)[0]
            cursor += 8
        # Both length fields fit (RECORD_OVERHEAD counts them) as long as the key leaves room
        # for the value's; the value must then end exactly where the message does.
        key_length = unpack_length(buf, cursor)[0]
        cursor += 4
        key = None
        if key_length != -1:
            if not 0 <= key_length <= stop - cursor - 4:
                raise _corrupt(f"{where}: key length {key_length} in the message at position {pos}, "
                               f"{stop - cursor - 4} bytes left before its value")
            key = buf[cursor:cursor + key_length]
            cursor += key_length
        value_length = unpack_length(buf, cursor)[0]
        cursor += 4
        value = None
        if value_length != -1:
            value = buf[cursor:cursor + value_length]
        elif cursor == stop:
            value_length = 0
        if value_length != stop - cursor:
            raise _corrupt(f"{where}: value length {value_length} in the message at position {pos}, "
                           f"{stop - cursor} bytes left in it")
        yield Message(offset, LOG_OVERHEAD + size, magic, attributes, timestamp, key, value)
        pos = stop


def decompress_wrapper(wrapper: Message, limit: int) -> bytes:
    """The inner message set of a compressed wrapper message, refused (CORRUPT_MESSAGE, as for
    a v2 batch) when it would expand past `limit` bytes (message.decompressed.max.bytes): Kafka
    streams the payload without a bound, but a few KB of gzip can expand to GBs."""
    codec = wrapper.codec
    if codec == CODEC_ZSTD:
        # Kafka rejects zstd before message format v2 (KIP-110: zstd needs Produce v7+).
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                         f"zstd needs record batch v2, found it in a magic {wrapper.magic} message")
    if codec > CODEC_ZSTD:
        raise _corrupt(f"unknown codec {codec} in the attributes {wrapper.attributes:#04x} of a "
                       f"magic {wrapper.magic} message")
    if wrapper.value is None:
        raise KafkaError(ErrorCode.INVALID_RECORD, "compressed message with a null value")
    payload: memoryview | bytes = wrapper.value
    if codec == 3 and wrapper.magic == 0:
        payload = fix_lz4_header_checksum(payload)
    try:
        return _native.decompress(codec, payload, limit)
    except ValueError as exc:
        if "larger than" in str(exc):
            log.warning("refused a magic %d message: its codec %d payload expands past "
                        "message.decompressed.max.bytes=%d", wrapper.magic, codec, limit)
            raise _corrupt(f"compressed message (codec {codec}, magic {wrapper.magic}) expands past "
                           f"message.decompressed.max.bytes={limit}") from None
        raise _corrupt(f"compressed message (codec {codec}, magic {wrapper.magic}) does not decompress: {exc}") from None


def fix_lz4_header_checksum(frame: memoryview | bytes) -> bytes:
    """An LZ4 frame with its header checksum (HC) recomputed over the frame descriptor.

    Kafka before 0.10 hashed the frame's magic number together with the descriptor, so magic 0
    LZ4 messages carry a wrong HC (KAFKA-3160).  KIP-57 fixed it for magic 1 only, and Kafka's
    KafkaLZ4BlockInputStream ignores the HC of magic 0 messages; liblz4 checks it, so the byte
    is replaced by the correct one: the second byte of XXH32(FLG..descriptor end, seed 0).
    librdkafka (rdkafka_lz4.c) and kafka-python (codec.lz4_decode_old_kafka) do the same.
    """
    data = bytearray(frame)
    if len(data) < 7:
        return bytes(data)  # not a frame: the decompressor reports it
    flg = data[4]
    hc_pos = 6 + (8 if flg & _LZ4_FLG_CONTENT_SIZE else 0) + (4 if flg & _LZ4_FLG_DICT_ID else 0)
    if hc_pos < len(data):
        data[hc_pos] = (xxhash.xxh32_intdigest(bytes(data[4:hc_pos])) >> 8) & 0xFF
    return bytes(data)


def up_convert(records: memoryview, config: LogConfig, now_ms: int) -> memoryview:
    """One RecordBatch v2 (a writable view, offsets still 0-based) holding the records of a
    magic 0/1 message set; raises KafkaError with Kafka's code for what is wrong with it.

    The size limit and offsets are left to the v2 path; the timestamp limits are checked here
    per record, because a record without timestamp (-1) is exempt from them (Kafka
    LogValidator.validateTimestamp) and the v2 batch's base/max timestamps cannot say which.
    """
    top = list(iter_messages(records, "message set"))
    first = top[0]
    for message in top:
        # Kafka LogValidator.validateBatch: every "batch" (here: top-level message) shares the
        # first one's magic.
        if message.magic != first.magic:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"message of magic {message.magic} after one of magic {first.magic}")
        if message.size > config.max_message_bytes:
            raise KafkaError(ErrorCode.MESSAGE_TOO_LARGE,
                             f"message of {message.size} bytes, max.message.bytes={config.max_message_bytes}")
        if message.attributes & ATTR_LOG_APPEND_TIME and message.magic == 1:
            raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                             "producers must not set the LogAppendTime timestamp type")
    source_codec = 0
    inner = top
    if any(m.codec for m in top):
        # Kafka LogValidator.getFirstBatchAndMaybeValidateNoMoreBatches: a compressed message
        # set is one wrapper and nothing else.
        if len(top) != 1:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"a compressed message must be alone in its message set, found {len(top)} messages")
        source_codec = first.codec
        inner = _unwrap(first, config.max_decompressed_bytes)
    return memoryview(_build_batch(inner, config, now_ms, source_codec))


def _unwrap(wrapper: Message, limit: int) -> list[Message]:
    inner = list(iter_messages(memoryview(decompress_wrapper(wrapper, limit)), "compressed message set"))
    if not inner:
        raise KafkaError(ErrorCode.INVALID_RECORD, "compressed message with no inner messages")
    for message in inner:
        if message.codec:
            raise _corrupt(f"compressed message (codec {wrapper.codec}) holds a message compressed "
                           f"with codec {message.codec}")
        if message.magic != wrapper.magic:
            raise KafkaError(ErrorCode.INVALID_RECORD,
                             f"inner message of magic {message.magic} in a wrapper of magic {wrapper.magic}")
    # A v1 wrapper's offset is its last inner message's (inner offsets are relative, KIP-31);
    # 0 is what some librdkafka versions send.  Kafka rejects a wrapper offset below the last
    # inner offset (AbstractLegacyRecordBatch.DeepRecordsIterator); the offsets are not used.
    if wrapper.magic == 1 and wrapper.offset != 0 and wrapper.offset < inner[-1].offset:
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"wrapper offset {wrapper.offset} is below its last inner offset {inner[-1].offset}")
    return inner


def _build_batch(messages: list[Message], config: LogConfig, now_ms: int, source_codec: int) -> bytearray:
    compacted = "compact" in config.cleanup_policy
    if config.log_append_time:
        # Every record gets the append time; assign_offsets sets the type and maxTimestamp.
        timestamps = [now_ms] * len(messages)
    else:
        timestamps = [m.timestamp for m in messages]
        before, after = now_ms - config.timestamp_before_max_ms, now_ms + config.timestamp_after_max_ms
        for i, ts in enumerate(timestamps):
            if ts != NO_TIMESTAMP and not before <= ts <= after:
                raise KafkaError(ErrorCode.INVALID_TIMESTAMP,
                                 f"timestamp {ts} of message {i} is outside [{before}, {after}] "
                                 f"(message.timestamp.before/after.max.ms around the broker time {now_ms})")
    base_timestamp = timestamps[0]  # Kafka's MemoryRecordsBuilder: the first record's, even -1
    encode = _native.encode_varint
    section = bytearray()
    for delta, (message, ts) in enumerate(zip(messages, timestamps, strict=True)):
        key, value = message.key, message.value
        if compacted and key is None:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"message {delta} has no key, which a compacted topic needs")
        # Record => length attributes(0) timestampDelta offsetDelta key value headerCount(0)
        body = bytearray(b"\x00")
        body += encode(ts - base_timestamp)
        body += encode(delta)
        if key is None:
            body += b"\x01"  # zigzag -1
        else:
            body += encode(len(key))
            body += key
        if value is None:
            body += b"\x01"
        else:
            body += encode(len(value))
            body += value
        body += b"\x00"
        section += encode(len(body))
        section += body
    codec = config.target_codec if config.target_codec is not None else source_codec
    payload: bytes | bytearray = _native.compress(codec, section) if codec else section
    batch = bytearray(BATCH_HEADER_SIZE + len(payload))
    batch[BATCH_HEADER_SIZE:] = payload
    # No producer id, epoch or sequence: there is no idempotence before v2.
    write_header(batch, BatchHeader(codec, len(messages) - 1, base_timestamp, max(max(timestamps), NO_TIMESTAMP),
                                    len(messages)))
    return batch


def _corrupt(message: str) -> KafkaError:
    return KafkaError(ErrorCode.CORRUPT_MESSAGE, message)
