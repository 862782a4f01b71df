"""Helpers of the retention tests (tests/lifecycle/test_retention*.py) against a real `pyk serve`.

Owns: a broker configured for fast retention passes, topic config changes, the live and the
renamed (`.deleted`) segment files of a partition, a raw Fetch over a socket whose receive
buffer is small (so a large response stays in flight while the test holds it), and a check
that a Fetch response's record bytes are whole, CRC-valid batches.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path
from typing import Any

from pyk import _native
from pyk.protocol import decode_response, encode_request
from tests.adversity.wire import WireClient
from tests.helpers import BrokerProcess, confluent_admin, read_batches, segment_files

CHECK_INTERVAL_MS = 200  # log.retention.check.interval.ms of the test brokers: passes every 0.2 s
FETCH_VERSION = 4  # the oldest Fetch pyk serves: no sessions, plain (non-flexible) encoding


def retention_broker(broker_factory: Any, **overrides: Any) -> BrokerProcess:
    """A broker whose retention pass runs every CHECK_INTERVAL_MS."""
    return broker_factory(overrides={"log.retention.check.interval.ms": CHECK_INTERVAL_MS, **overrides})


def alter_topic(bootstrap: str, topic: str, **configs: str) -> None:
    """IncrementalAlterConfigs SET of topic keys ('_' in a keyword stands for '.')."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    admin = confluent_admin(bootstrap)
    entries = [ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
               for k, v in configs.items()]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    admin.incremental_alter_configs([res])[res].result(timeout=20)


def live_segments(partition_dir: Path) -> list[Path]:
    return segment_files(partition_dir, ".log")


def deleted_files(partition_dir: Path) -> list[Path]:
    return sorted(partition_dir.glob("*.deleted"))


def log_bytes(partition_dir: Path) -> int:
    """Bytes of the live segments of a partition (what retention.bytes bounds); a segment renamed
    between listing and stat() is no longer live."""
    total = 0
    for path in live_segments(partition_dir):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


def open_slow_fetch(bootstrap: str, topic: str, partition: int, offset: int, max_bytes: int) -> socket.socket:
    """Sends one Fetch to the partition's leader on a socket with a small receive buffer and
    reads nothing: a response larger than the socket buffers stays in flight on the broker."""
    with WireClient(bootstrap) as probe:
        leader = probe.leader(topic, partition)
        host, port = leader.sock.getpeername()[:2]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # before connect: fixes the window
    sock.settimeout(30)
    sock.connect((host, port))
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": max_bytes, "isolation_level": 0,
            "topics": [{"topic": topic, "partitions": [
                {"partition": partition, "fetch_offset": offset, "partition_max_bytes": max_bytes}]}]}
    sock.sendall(encode_request(1, FETCH_VERSION, 7, "retention-test", body))
    return sock


def read_fetch_response(sock: socket.socket) -> dict[str, Any]:
    """The one partition of the Fetch response waiting on `sock`."""
    (size,) = struct.unpack(">i", _recv(sock, 4))
    _cid, body = decode_response(1, FETCH_VERSION, _recv(sock, size))
    (topic,) = body["responses"]
    (part,) = topic["partitions"]
    return part  # type: ignore[no-any-return]


def whole_batches(records: bytes, tmp: Path) -> list[tuple[int, int]]:
    """(base offset, last offset) of every complete batch, each checked with the broker's own
    CRC/format validation; a partial last batch (allowed by Kafka) is left out."""
    path = tmp / "fetched.log"
    path.write_bytes(records)
    out = []
    for header in read_batches(path):
        raw = records[header.position: header.position + header.size]
        assert _native.validate_batch(raw, 1 << 30) == 0, f"batch at {header.base_offset} is damaged"
        out.append((header.base_offset, header.last_offset))
    return out


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)
