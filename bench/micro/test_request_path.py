"""The produce request path per request, in process: a Produce frame (librdkafka's shape: one
batch of one 100 B record per partition) through Dispatcher.on_frame -> produce handler ->
ReplicaManager -> PartitionLog.append (a real log in a temp dir) -> the encoded response, with
1 and 100 partitions; and its wire pieces alone (Produce and Fetch request decode, response
encode) through the Cython path (ext/wire.pyx) and the declarative codec (pyk.protocol) side by
side.

The whole-path numbers are what one shard core pays per request, minus the socket: the
end-to-end rate is bounded by their inverse.  The file runs unchanged against an older tree
(it only uses Dispatcher.on_frame), for before/after numbers on the same machine.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bench_inputs import ROOT  # noqa: F401  (puts the repository root on sys.path)

from pyk import _native, protocol
from pyk.log.config import LogConfig
from pyk.log.manager import LogManager
from pyk.protocol import ApiKey
from pyk.server.context import ShardServices
from pyk.server.dispatch import Dispatcher
from pyk.server.metadata_store import MetadataView
from pyk.server.quotas import ClientQuotas
from pyk.server.replica_manager import ReplicaManager
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000
VERSION = 7  # what librdkafka 2.x sends
TOPIC = "bench"


@dataclass
class _Conn:
    client_id: str | None = None
    client_address: str = "127.0.0.1"
    read_ns: int = 0  # Connection.read_ns (the request metrics' receive time; absent in older trees)
    principal: str = "User:ANONYMOUS"  # Connection.principal (the security layer's; absent in older trees)
    # Connection.responses (the answers its sender has not written: the send-time metrics; absent
    # in older trees)
    responses: Any = field(default_factory=lambda: getattr(_native, "InflightResponses", lambda: None)())


def _frame(partitions: int) -> bytes:
    """A Produce request frame without its size prefix."""
    batch = bytes(build_batch([Record(b"x" * 100, timestamp=NOW)]))
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30000, "topic_data": [
        {"name": TOPIC, "partition_data": [{"index": p, "records": batch} for p in range(partitions)]}]}
    return protocol.encode_request(ApiKey.PRODUCE, VERSION, 1, "rdkafka", body)[4:]


@pytest.fixture(scope="module")
def dispatcher() -> Iterator[Dispatcher]:
    with tempfile.TemporaryDirectory() as tmp:
        config = LogConfig().with_overrides({"segment.bytes": str(1 << 30),
                                             "message.timestamp.before.max.ms": str(1 << 62)})
        logs = LogManager([tmp], config)
        replicas = ReplicaManager(logs, MetadataView(), 0, 0)
        for p in range(100):
            replicas.attach(logs.create(TOPIC, p), 0, group_commit_flushes=False)
        # Produce reaches only the ReplicaManager: the other services stay unset (those an older
        # tree's ShardServices lacks are left out, so the file runs against it too).
        unset = {f.name: None for f in dataclasses.fields(ShardServices)
                 if f.name in ("admin", "groups", "txn", "inter_broker")}
        services = ShardServices(node_id=0, base_node_id=0, shard_count=1, metadata=replicas.metadata, logs=logs,
                                 replicas=replicas, quotas=ClientQuotas(), supported_apis=[], **unset)
        yield Dispatcher(services)
        logs.close()


@pytest.mark.parametrize("partitions", [1, 100])
def test_produce_request(benchmark: Any, dispatcher: Dispatcher, partitions: int) -> None:
    template = _frame(partitions)
    conn = _Conn()
    written = [0]

    def one() -> Any:
        parts = dispatcher.on_frame(conn, bytearray(template))  # type: ignore[arg-type]
        if conn.responses is not None:  # the sender's share: the answer handed over and written
            written[0] += len(parts)
            conn.responses.handed(written[0])
            conn.responses.written(written[0])
        return parts

    parts = one()
    _, body = protocol.decode_response(ApiKey.PRODUCE, VERSION, b"".join(parts)[4:])
    assert all(p["error_code"] == 0 for t in body["responses"] for p in t["partition_responses"])
    benchmark.group = f"produce request, {partitions} partition(s), Dispatcher.on_frame"
    benchmark(one)


# The pieces -------------------------------------------------------------------------------------
native = pytest.importorskip("pyk._native")


@pytest.mark.parametrize("partitions", [1, 100])
@pytest.mark.parametrize("path", ["native", "generic"])
def test_decode(benchmark: Any, path: str, partitions: int) -> None:
    if path == "native" and not hasattr(native, "scan_produce_request"):
        pytest.skip("no Cython produce scan in this tree")
    view = memoryview(bytearray(_frame(partitions)))
    _, offset = protocol.decode_request_header(view)
    benchmark.group = f"produce request decode, {partitions} partition(s)"
    if path == "native":
        benchmark(native.scan_produce_request, view, offset, VERSION)
    else:
        benchmark(protocol.decode_request, ApiKey.PRODUCE, VERSION, view, offset)


@dataclass
class _Result:
    error: int = 0
    base_offset: int = 12345
    log_append_time: int = -1
    log_start_offset: int = 0
    message: str | None = None


@pytest.mark.parametrize("partitions", [1, 100])
@pytest.mark.parametrize("path", ["native", "generic"])
def test_encode(benchmark: Any, path: str, partitions: int) -> None:
    if path == "native" and not hasattr(native, "encode_produce_response"):
        pytest.skip("no Cython produce response writer in this tree")
    benchmark.group = f"produce response encode, {partitions} partition(s)"
    results = [_Result() for _ in range(partitions)]
    indexes = list(range(partitions))
    if path == "native":
        benchmark(native.encode_produce_response, VERSION, 1, [TOPIC], [partitions], indexes, results)
        return

    def generic() -> list[Any]:  # the dicts a handler builds, then the declarative encoder
        parts = [{"index": i, "error_code": r.error, "base_offset": r.base_offset,
                  "log_append_time_ms": r.log_append_time, "log_start_offset": r.log_start_offset,
                  "error_message": r.message} for i, r in zip(indexes, results, strict=True)]
        body = {"responses": [{"name": TOPIC, "partition_responses": parts}], "throttle_time_ms": 0}
        return protocol.encode_response(ApiKey.PRODUCE, VERSION, 1, body)

    benchmark(generic)


@dataclass
class _Read:
    error: int = 0
    high_watermark: int = 1000
    last_stable_offset: int = 1000
    log_start_offset: int = 0
    records: Any = None
    aborted_transactions: list[tuple[int, int]] | None = None
    preferred_read_replica: int = -1


@pytest.mark.parametrize("partitions", [8, 1000])
@pytest.mark.parametrize("path", ["native", "generic"])
def test_fetch_encode(benchmark: Any, path: str, partitions: int) -> None:
    """A FetchResponse v11 around one file slice per partition."""
    if path == "native" and not hasattr(native, "encode_fetch_response"):
        pytest.skip("no Cython fetch response writer in this tree")
    from pyk.log.segment import FileSlice

    benchmark.group = f"fetch response encode, {partitions} partition(s)"
    reads = [_Read(records=FileSlice(5, 4096 * i, 4096)) for i in range(partitions)]
    indexes = list(range(partitions))
    if path == "native":
        benchmark(native.encode_fetch_response, 11, 1, 0, 0, 0, [TOPIC], [partitions], indexes, reads)
        return

    def generic() -> list[Any]:  # the dicts the handler built, then the declarative encoder
        parts = [{"partition_index": i, "error_code": r.error, "high_watermark": r.high_watermark,
                  "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
                  "aborted_transactions": None, "preferred_read_replica": -1, "records": r.records}
                 for i, r in zip(indexes, reads, strict=True)]
        body = {"throttle_time_ms": 0, "error_code": 0, "session_id": 0,
                "responses": [{"topic": TOPIC, "partitions": parts}]}
        return protocol.encode_response(ApiKey.FETCH, 11, 1, body)

    benchmark(generic)


@pytest.mark.parametrize("partitions", [8, 1000])
@pytest.mark.parametrize("path", ["native", "generic"])
def test_fetch_decode(benchmark: Any, path: str, partitions: int) -> None:
    """A FetchRequest v11 (librdkafka 2.0.2's) of one topic: the Cython scan against the
    declarative decoder, which give the same dict."""
    if path == "native" and not hasattr(native, "scan_fetch_request"):
        pytest.skip("no Cython fetch request scan in this tree")
    body = {"replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 52428800, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "",
            "topics": [{"topic": TOPIC, "partitions": [
                {"partition": p, "current_leader_epoch": 0, "fetch_offset": 1000 * p, "log_start_offset": -1,
                 "partition_max_bytes": 1048576} for p in range(partitions)]}]}
    view = memoryview(bytearray(protocol.encode_request(ApiKey.FETCH, 11, 1, "rdkafka", body)[4:]))
    _, offset = protocol.decode_request_header(view)
    benchmark.group = f"fetch request decode, {partitions} partition(s)"
    if path == "native":
        assert native.scan_fetch_request(view, offset, 11) == protocol.decode_request(ApiKey.FETCH, 11, view, offset)
        benchmark(native.scan_fetch_request, view, offset, 11)
    else:
        benchmark(protocol.decode_request, ApiKey.FETCH, 11, view, offset)
