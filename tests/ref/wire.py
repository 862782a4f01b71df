"""Pure-Python twins of ext/wire.pyx: the ProduceRequest and FetchRequest scans, the Produce
and Fetch response writers and the request header scan.

Written straight from the wire format (see the BNF at the top of ext/wire.pyx) with struct
and plain loops, independent of both the Cython code and pyk/protocol/compile.py.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pyk.errors import ProtocolViolation

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")


class _Reader:
    def __init__(self, buf: memoryview, pos: int, flexible: bool) -> None:
        self.buf, self.pos, self.flexible = buf, pos, flexible

    def take(self, n: int, what: str) -> int:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolViolation(f"expected {n} bytes ({what}) at offset {self.pos}")
        start = self.pos
        self.pos += n
        return start

    def int16(self, what: str) -> int:
        return int(_I16.unpack_from(self.buf, self.take(2, what))[0])

    def int32(self, what: str) -> int:
        return int(_I32.unpack_from(self.buf, self.take(4, what))[0])

    def int64(self, what: str) -> int:
        return int(_I64.unpack_from(self.buf, self.take(8, what))[0])

    def uvarint(self, what: str) -> int:
        value = 0
        for i in range(5):
            b = self.buf[self.take(1, what)]
            value |= (b & 0x7F) << (7 * i)
            if b < 0x80:
                if value > 0xFFFFFFFF:
                    raise ProtocolViolation(f"{what}: unsigned varint exceeds 32 bits")
                return value
        raise ProtocolViolation(f"{what}: unsigned varint longer than 5 bytes")

    def length(self, width: int, what: str) -> int:
        if self.flexible:
            return self.uvarint(what) - 1
        return self.int16(what) if width == 2 else self.int32(what)

    def count(self, what: str) -> int:
        n = self.length(4, what)
        if n < 0 or n > len(self.buf) - self.pos:
            raise ProtocolViolation(f"{what}: bad count {n}")
        return n

    def string(self, nullable: bool, what: str) -> str | None:
        n = self.length(2, what)
        if n < 0:
            if n == -1 and nullable:
                return None
            raise ProtocolViolation(f"{what}: length {n}")
        start = self.take(n, what)
        try:
            return str(self.buf[start:start + n], "utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation(f"{what} is not UTF-8") from None

    def skip_tags(self) -> None:
        count = self.uvarint("tag count")
        if count > len(self.buf) - self.pos:
            raise ProtocolViolation(f"{count} tagged fields, {len(self.buf) - self.pos} bytes left")
        prev = -1
        for _ in range(count):
            tag = self.uvarint("tag")
            if tag <= prev:
                raise ProtocolViolation(f"tag {tag} after {prev}")
            prev = tag
            self.take(self.uvarint("tag size"), "tagged field")


class ProduceRequestScan:
    """A scanned ProduceRequest: per-topic-entry names and counts, per-partition lists."""

    def __init__(self, frame: Any, offset: int, version: int) -> None:
        if not 0 <= version <= 9:
            raise ValueError(f"ProduceRequest v{version} is not implemented")
        buf = memoryview(frame)
        if not 0 <= offset <= len(buf):
            raise ValueError(f"offset {offset} outside a frame of {len(buf)} bytes")
        r = _Reader(buf, offset, version >= 9)
        self.transactional_id = r.string(True, "transactional_id") if version >= 3 else None
        self.acks = r.int16("acks")
        self.timeout_ms = r.int32("timeout_ms")
        self.topic_names: list[str] = []
        self.topic_counts: list[int] = []
        self.topics: list[str] = []
        self.partitions: list[int] = []
        self.records: list[memoryview | None] = []
        for _ in range(r.count("topic_data")):
            name = r.string(False, "name")
            assert name is not None
            n_parts = r.count("partition_data")
            self.topic_names.append(name)
            self.topic_counts.append(n_parts)
            for _ in range(n_parts):
                self.topics.append(name)
                self.partitions.append(r.int32("index"))
                n = r.length(4, "records")
                if n < -1:
                    raise ProtocolViolation(f"records length {n}")
                if n == -1:
                    self.records.append(None)
                else:
                    start = r.take(n, "records")
                    self.records.append(buf[start:start + n])
                if r.flexible:
                    r.skip_tags()
            if r.flexible:
                r.skip_tags()
        if r.flexible:
            r.skip_tags()


def scan_produce_request(frame: Any, offset: int, version: int) -> ProduceRequestScan:
    return ProduceRequestScan(frame, offset, version)


def scan_fetch_request(frame: Any, offset: int, version: int) -> dict[str, Any]:
    """Twin of pyk._native.scan_fetch_request: the declarative decoder's dict of a FetchRequest."""
    if not 4 <= version <= 12:
        raise ValueError(f"FetchRequest v{version} is not implemented")
    buf = memoryview(frame)
    if not 0 <= offset <= len(buf):
        raise ValueError(f"offset {offset} outside a frame of {len(buf)} bytes")
    r = _Reader(buf, offset, version >= 12)
    body: dict[str, Any] = {"cluster_id": None}
    for key in ("replica_id", "max_wait_ms", "min_bytes", "max_bytes"):
        body[key] = r.int32(key)
    body["isolation_level"] = struct.unpack_from(">b", buf, r.take(1, "isolation_level"))[0]
    body["session_id"], body["session_epoch"] = (r.int32("session_id"), r.int32("session_epoch")) if version >= 7 \
        else (0, -1)
    body["topics"] = []
    for _ in range(r.count("topics")):
        topic: dict[str, Any] = {"topic": r.string(False, "topic"), "partitions": []}
        for _ in range(r.count("partitions")):
            part = {"partition": r.int32("partition"),
                    "current_leader_epoch": r.int32("current_leader_epoch") if version >= 9 else -1,
                    "fetch_offset": r.int64("fetch_offset"),
                    "last_fetched_epoch": r.int32("last_fetched_epoch") if version >= 12 else -1,
                    "log_start_offset": r.int64("log_start_offset") if version >= 5 else -1,
                    "partition_max_bytes": r.int32("partition_max_bytes")}
            if r.flexible:
                r.skip_tags()
            topic["partitions"].append(part)
        if r.flexible:
            r.skip_tags()
        body["topics"].append(topic)
    body["forgotten_topics_data"] = []
    if version >= 7:
        for _ in range(r.count("forgotten_topics_data")):
            name = r.string(False, "forgotten topic")
            indexes = [r.int32("forgotten partition") for _ in range(r.count("forgotten partitions"))]
            if r.flexible:
                r.skip_tags()
            body["forgotten_topics_data"].append({"topic": name, "partitions": indexes})
    body["rack_id"] = r.string(False, "rack_id") if version >= 11 else ""
    if r.flexible:
        # Tag 0 is cluster_id, read from where its value starts; the next tag starts where the
        # size says (tags in any order; the last cluster_id counts).
        for _ in range(r.uvarint("tag count")):
            tag = r.uvarint("tag")
            size = r.uvarint("tag size")
            end = r.take(size, "tagged field") + size
            if tag == 0:
                r.pos = end - size
                body["cluster_id"] = r.string(True, "cluster_id")
                r.pos = end
    return body


def _put_len(out: bytearray, flexible: bool, width: int, n: int) -> None:
    if flexible:
        value = n + 1
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    else:
        out += (_I16 if width == 2 else _I32).pack(n)


def encode_produce_response(version: int, correlation_id: int, topic_names: Sequence[str],
                            topic_counts: Sequence[int], partitions: Sequence[int], results: Sequence[Any],
                            throttle_time_ms: int = 0) -> bytes:
    if not 0 <= version <= 9:
        raise ValueError(f"ProduceResponse v{version} is not implemented")
    if len(topic_counts) != len(topic_names) or len(partitions) != len(results) or sum(topic_counts) != len(results):
        raise ValueError("topics, counts, partitions and results do not match")
    flexible = version >= 9
    out = bytearray(_I32.pack(correlation_id))
    if flexible:
        out.append(0)
    _put_len(out, flexible, 4, len(topic_names))
    i = 0
    for name, count in zip(topic_names, topic_counts, strict=True):
        raw = name.encode()
        _put_len(out, flexible, 2, len(raw))
        out += raw
        _put_len(out, flexible, 4, count)
        for _ in range(count):
            r = results[i]
            out += _I32.pack(partitions[i]) + _I16.pack(r.error) + _I64.pack(r.base_offset)
            if version >= 2:
                out += _I64.pack(r.log_append_time)
            if version >= 5:
                out += _I64.pack(r.log_start_offset)
            if version >= 8:
                _put_len(out, flexible, 4, 0)
                if r.message is None:
                    _put_len(out, flexible, 2, -1)
                else:
                    msg = r.message.encode()
                    _put_len(out, flexible, 2, len(msg))
                    out += msg
            if flexible:
                out.append(0)
            i += 1
        if flexible:
            out.append(0)
    if version >= 1:
        out += _I32.pack(throttle_time_ms)
    if flexible:
        out.append(0)
    return _I32.pack(len(out)) + bytes(out)


def encode_fetch_response(version: int, correlation_id: int, throttle_time_ms: int, error_code: int,
                          session_id: int, topic_names: Sequence[str], topic_counts: Sequence[int],
                          partitions: Sequence[int], results: Sequence[Any]) -> list[Any]:
    if not 4 <= version <= 12:
        raise ValueError(f"FetchResponse v{version} is not implemented")
    if len(topic_counts) != len(topic_names) or len(partitions) != len(results) or sum(topic_counts) != len(results):
        raise ValueError("topics, counts, partitions and results do not match")
    flexible = version >= 12
    parts: list[Any] = []
    out = bytearray(_I32.pack(correlation_id))
    if flexible:
        out.append(0)
    out += _I32.pack(throttle_time_ms)
    if version >= 7:
        out += _I16.pack(error_code) + _I32.pack(session_id)
    _put_len(out, flexible, 4, len(topic_names))
    i = 0
    for name, count in zip(topic_names, topic_counts, strict=True):
        raw = name.encode()
        _put_len(out, flexible, 2, len(raw))
        out += raw
        _put_len(out, flexible, 4, count)
        for _ in range(count):
            r = results[i]
            out += _I32.pack(partitions[i]) + _I16.pack(r.error) + _I64.pack(r.high_watermark)
            out += _I64.pack(r.last_stable_offset)
            if version >= 5:
                out += _I64.pack(r.log_start_offset)
            aborted = r.aborted_transactions
            _put_len(out, flexible, 4, -1 if aborted is None else len(aborted))
            for producer_id, first_offset in aborted or ():
                out += _I64.pack(producer_id) + _I64.pack(first_offset)
                if flexible:
                    out.append(0)
            if version >= 11:
                out += _I32.pack(r.preferred_read_replica)
            records = b"" if r.records is None else r.records
            if isinstance(records, (bytes, bytearray, memoryview)):
                _put_len(out, flexible, 4, len(records))
                out += records
            else:
                _put_len(out, flexible, 4, records.size)
                parts += [out, records]
                out = bytearray()
            if flexible:
                out.append(0)
            i += 1
        if flexible:
            out.append(0)
    if flexible:
        out.append(0)
    parts.append(out)
    total = sum(len(p) if isinstance(p, bytearray) else p.size for p in parts)
    parts[0] = _I32.pack(total) + parts[0]
    return [bytes(p) if isinstance(p, bytearray) else p for p in parts if not isinstance(p, bytearray) or p]


def scan_request_header(frame: Any, kinds: dict[int, tuple[Any, int, int]]) -> tuple[tuple[Any, int, int, str | None], int]:
    """Twin of pyk._native.scan_request_header."""
    r = _Reader(memoryview(frame), 0, False)
    raw_key, version = r.int16("api key"), r.int16("api version")
    correlation_id = r.int32("correlation id")
    kind = kinds.get(raw_key)
    if kind is None:
        raise ProtocolViolation(f"unknown api key {raw_key}")
    client_id = None
    if version >= kind[1]:
        # Kafka's RequestHeaderData reads any negative client_id length as null (body strings
        # are stricter: only -1 is null).
        length = r.int16("client_id length")
        if length >= 0:
            r.pos -= 2
            client_id = r.string(True, "client_id")
        if version >= kind[2]:
            r.skip_tags()
    return (kind[0], version, correlation_id, client_id), r.pos


def frame_buffer(size: int) -> bytearray:
    """Twin of pyk._native.frame_buffer (whose bytes are left unzeroed: only the length and
    the type are its contract)."""
    if size < 0:
        raise ValueError(f"negative frame size {size}")
    return bytearray(size)
