"""A tiny hand-packed Kafka wire client for sending what real clients never send.

Owns: framing over a raw socket (`WireClient`), struct-packed request bodies for the handful of
APIs the adversity tests need (ApiVersions v0, Metadata v4 to find a partition's leader, Produce v3, Fetch v4,
ListOffsets v1/v2, InitProducerId v0),
their response decoders, and a v2 record-batch builder that can be told to lie (wrong CRC, wrong
length, wrong magic).

It is written from the protocol documentation independently of `pyk.protocol` on purpose: a
test that shared the broker's codec would share its bugs.

Request header v1: api_key int16, api_version int16, correlation_id int32, client_id nullable
string.  Response header v0: correlation_id int32.  Strings are int16 length + bytes (-1 = null).
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from dataclasses import dataclass

import crc32c

from pyk import _native

API_PRODUCE, API_FETCH, API_LIST_OFFSETS, API_METADATA, API_API_VERSIONS, API_INIT_PRODUCER_ID = 0, 1, 2, 3, 18, 22


def string(s: str | None) -> bytes:
    if s is None:
        return struct.pack(">h", -1)
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def request_header(
    api_key: int,
    version: int,
    correlation_id: int,
    client_id: str | None = "pyk-adversity",
    flexible: bool = False,
) -> bytes:
    """Request header v1, or v2 (flexible: v1 plus an empty tagged-field section) for flexible API versions."""
    tagged_fields = b"\x00" if flexible else b""
    return struct.pack(">hhi", api_key, version, correlation_id) + string(client_id) + tagged_fields


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


class Reader:
    """Bounds-checked big-endian reads over one response body."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, fmt: str) -> tuple[int, ...]:
        values = struct.unpack_from(">" + fmt, self.data, self.pos)
        self.pos += struct.calcsize(">" + fmt)
        return values

    def int16(self) -> int:
        return self.take("h")[0]

    def int32(self) -> int:
        return self.take("i")[0]

    def int64(self) -> int:
        return self.take("q")[0]

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        s = self.data[self.pos : self.pos + n].decode()
        self.pos += n
        return s


class WireClient:
    """One raw connection: send frames (or any bytes), read response frames, detect a close."""

    def __init__(self, bootstrap: str, timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> None:
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self._next_cid = 1
        self._host, self._port, self._timeout = host, int(port), timeout
        self._leaders: dict[int, WireClient] = {}  # port -> connection to that node

    def close(self) -> None:
        self.sock.close()
        for conn in self._leaders.values():
            conn.close()

    def leader(self, topic: str, partition: int) -> WireClient:
        """A connection to the partition's leader (a pyk shard, or a Kafka broker), found with
        Metadata v4 (no auto-creation) on this connection; this connection itself when it leads
        the partition or nobody does (the broker then answers with the error to test)."""
        r = self.request(API_METADATA, 4, struct.pack(">i", 1) + string(topic) + b"\x00")
        r.int32()  # throttle
        ports = {}
        for _ in range(r.int32()):
            node_id = r.int32()
            r.string()
            ports[node_id] = r.int32()
            r.string()  # rack
        r.string()  # cluster id
        r.int32()  # controller id
        leader = None
        for _ in range(r.int32()):
            r.int16()
            r.string()
            r.take("b")  # is_internal
            for _ in range(r.int32()):
                _err, index, node = r.take("hii")
                for _ in range(2):  # replicas, isr (offline replicas come in v5)
                    for _ in range(r.int32()):
                        r.int32()
                if index == partition:
                    leader = node
        if leader not in ports:
            return self
        port = ports[leader]
        if port == self._port:
            return self
        if port not in self._leaders:
            self._leaders[port] = WireClient(f"{self._host}:{port}", self._timeout)
        return self._leaders[port]

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError(f"closed by the broker after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self.recv_exact(4))
        return self.recv_exact(size)

    def send_request(self, api_key: int, version: int, body: bytes, flexible: bool = False) -> int:
        """Sends one request (header v1, or v2 when flexible); returns its correlation id."""
        cid = self._next_cid
        self._next_cid += 1
        self.send_raw(frame(request_header(api_key, version, cid, flexible=flexible) + body))
        return cid

    def request(self, api_key: int, version: int, body: bytes) -> Reader:
        """Sends one request, reads its response, checks the correlation id; a Reader at the body."""
        cid = self.send_request(api_key, version, body)
        resp = self.recv_frame()
        (got,) = struct.unpack_from(">i", resp, 0)
        assert got == cid, f"correlation id {got}, expected {cid}"
        return Reader(resp, 4)

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the broker has closed this connection (EOF or reset) within `timeout`.

        Any bytes that arrive first are read and ignored: the question is only whether the
        connection ends.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                return True
            except TimeoutError:
                return False
        return False

    # APIs -----------------------------------------------------------------------------------------

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """ApiVersions v0: {api_key: (min, max)}; asserts error code 0."""
        r = self.request(API_API_VERSIONS, 0, b"")
        assert r.int16() == 0
        return {k: (lo, hi) for k, lo, hi in (r.take("hhh") for _ in range(r.int32()))}

    def produce(self, topic: str, partition: int, records: bytes, acks: int = -1,
                transactional_id: str | None = None) -> ProduceResult:
        """Produce v3 (the first with v2 batches): one batch to one partition."""
        body = (
            string(transactional_id)
            + struct.pack(">hi", acks, 10_000)  # acks, timeout_ms
            + struct.pack(">i", 1) + string(topic)
            + struct.pack(">i", 1) + struct.pack(">i", partition)
            + struct.pack(">i", len(records)) + records
        )  # fmt: skip
        r = self.leader(topic, partition).request(API_PRODUCE, 3, body)
        assert r.int32() == 1 and r.string() == topic and r.int32() == 1
        index, error_code, base_offset, log_append_time = r.take("ihqq")
        assert index == partition
        return ProduceResult(error_code, base_offset, log_append_time)

    def list_offset(self, topic: str, partition: int, timestamp: int = -1,
                    isolation_level: int | None = None) -> tuple[int, int]:
        """ListOffsets v1, or v2 with an isolation level: (error_code, offset) for one partition;
        -1 latest, -2 earliest."""
        version = 1 if isolation_level is None else 2
        body = (
            struct.pack(">i", -1)
            + (b"" if isolation_level is None else struct.pack(">b", isolation_level))
            + struct.pack(">i", 1)
            + string(topic)
            + struct.pack(">iiq", 1, partition, timestamp)
        )
        r = self.leader(topic, partition).request(API_LIST_OFFSETS, version, body)
        if version >= 2:
            r.int32()  # throttle_time_ms
        assert r.int32() == 1 and r.string() == topic and r.int32() == 1
        index, error_code, _ts, offset = r.take("ihqq")
        assert index == partition
        return error_code, offset

    def fetch(self, topic: str, partition: int, offset: int, isolation_level: int = 0, max_wait_ms: int = 0,
              min_bytes: int = 1, max_bytes: int = 1 << 20) -> FetchResult:
        """Fetch v4 (the first with isolation levels) of one partition."""
        body = fetch_body(topic, partition, offset, isolation_level, max_wait_ms, min_bytes, max_bytes)
        return parse_fetch(self.leader(topic, partition).request(API_FETCH, 4, body), topic, partition)

    def init_producer_id(self) -> tuple[int, int, int]:
        """InitProducerId v0 for an idempotent (non-transactional) producer: (error_code, pid, epoch)."""
        r = self.request(API_INIT_PRODUCER_ID, 0, string(None) + struct.pack(">i", 60_000))
        _throttle, error_code, pid, epoch = r.take("ihqh")
        return error_code, pid, epoch


def fetch_body(topic: str, partition: int, offset: int, isolation_level: int = 0, max_wait_ms: int = 0,
               min_bytes: int = 1, max_bytes: int = 1 << 20) -> bytes:
    """Fetch v4 request body for one partition."""
    return (
        struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, isolation_level)
        + struct.pack(">i", 1) + string(topic)
        + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    )  # fmt: skip


def parse_fetch(r: Reader, topic: str, partition: int) -> FetchResult:
    """Fetch v4 response body of one partition."""
    r.int32()  # throttle_time_ms
    assert r.int32() == 1 and r.string() == topic and r.int32() == 1
    index, error_code, high_watermark, last_stable_offset = r.take("ihqq")
    assert index == partition
    count = r.int32()
    aborted = None if count < 0 else [r.take("qq") for _ in range(count)]
    size = r.int32()
    records = r.data[r.pos : r.pos + max(size, 0)]
    return FetchResult(error_code, high_watermark, last_stable_offset, aborted, records)


@dataclass(frozen=True)
class FetchResult:
    error_code: int
    high_watermark: int
    last_stable_offset: int
    aborted_transactions: list[tuple[int, ...]] | None  # (producer id, first offset); None: null
    records: bytes

    def batches(self) -> list[tuple[int, int, int]]:
        """(base offset, last offset, attributes) of each complete batch in `records`."""
        out, pos = [], 0
        while pos + 61 <= len(self.records):
            base, length = struct.unpack_from(">qi", self.records, pos)
            if pos + 12 + length > len(self.records):
                break
            (attributes,) = struct.unpack_from(">h", self.records, pos + 21)
            (delta,) = struct.unpack_from(">i", self.records, pos + 23)
            out.append((base, base + delta, attributes))
            pos += 12 + length
        return out


@dataclass(frozen=True)
class ProduceResult:
    error_code: int
    base_offset: int
    log_append_time: int


# Record batches (magic v2, KIP-98) ---------------------------------------------------------------
#
# RecordBatch => baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
#                crc uint32 (CRC32C of everything after it), attributes int16, lastOffsetDelta int32,
#                baseTimestamp int64, maxTimestamp int64, producerId int64, producerEpoch int16,
#                baseSequence int32, records [Record]
# Record => length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
#           key varint-length bytes, value varint-length bytes, headers [varint-length key, value]


def varint(n: int) -> bytes:
    """Zigzag varint (Kafka's signed varint/varlong)."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        byte = z & 0x7F
        z >>= 7
        if z:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes_field(b: bytes | None) -> bytes:
    return varint(-1) if b is None else varint(len(b)) + b


def record_batch(
    records: list[tuple[bytes | None, bytes | None]],
    *,
    timestamp: int | None = None,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    magic: int = 2,
    bad_crc: bool = False,
    length_delta: int = 0,
    transactional: bool = False,
    codec: int = 0,
    records_section: bytes | None = None,
) -> bytes:
    """A batch of (key, value) records at base offset 0 (the broker assigns offsets).

    bad_crc flips the stored CRC; length_delta makes batchLength disagree with the bytes sent;
    codec sets the compression bits (the records are compressed with pyk's codecs) and
    records_section replaces the records bytes outright (under a CRC that matches them).
    """
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    body = bytearray()
    for i, (key, value) in enumerate(records):
        rec = b"\x00" + varint(0) + varint(i) + _bytes_field(key) + _bytes_field(value) + varint(0)
        body += varint(len(rec)) + rec
    if codec:
        body = bytearray(_native.compress(codec, bytes(body)))
    if records_section is not None:
        body = bytearray(records_section)
    attributes = (0x10 if transactional else 0) | codec
    after_crc = (
        struct.pack(">hiqqqhi", attributes, len(records) - 1, ts, ts, producer_id, producer_epoch,
                    base_sequence)
        + struct.pack(">i", len(records))
        + bytes(body)
    )
    crc = crc32c.crc32c(after_crc)
    if bad_crc:
        crc ^= 0xDEADBEEF
    batch_length = 4 + 1 + 4 + len(after_crc) + length_delta
    return struct.pack(">qiib", 0, batch_length, -1, magic) + struct.pack(">I", crc) + after_crc
