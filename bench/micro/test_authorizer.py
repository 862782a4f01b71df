"""What ACL authorization costs the data plane, in process: a Produce request (librdkafka's shape,
1 and 100 partitions of one topic) and a Fetch request (the same partitions, nothing new to read)
through Dispatcher.on_frame, with no authorizer (authorizer.class.name empty: one `is None` test
per request) and with one that allows the principal by an ACL (a cached decision per topic: one
dict lookup), side by side; and one cached `Authorizer.authorize` call alone.

    python -m pytest bench/micro/test_authorizer.py --benchmark-only --benchmark-columns=median,ops
    python bench/micro/test_authorizer.py      # the two side by side, alternating: CPU us per request
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from bench_inputs import ROOT  # noqa: F401  (puts the repository root on sys.path)

from pyk import protocol
from pyk.log.config import LogConfig
from pyk.log.manager import LogManager
from pyk.protocol import ApiKey
from pyk.server.context import ShardServices
from pyk.server.dispatch import Dispatcher
from pyk.server.metadata_store import MetadataView
from pyk.server.quotas import ClientQuotas
from pyk.server.replica_manager import ReplicaManager
from pyk.server.security.authorizer import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    Authorizer,
    PatternType,
    ResourceType,
)
from tests.ref.builder import Record, build_batch

NOW = 1_700_000_000_000
PRODUCE_VERSION, FETCH_VERSION = 7, 11  # what librdkafka 2.x sends
TOPIC = "bench"
PRINCIPAL = "User:alice"


@dataclass
class _Conn:
    client_id: str | None = None
    client_address: str = "127.0.0.1"
    principal: str = PRINCIPAL
    read_ns: int = 0
    responses: None = None  # Connection.responses: no send time recorded here


def _produce(partitions: int) -> bytes:
    batch = bytes(build_batch([Record(b"x" * 100, timestamp=NOW)]))
    body = {"transactional_id": None, "acks": 1, "timeout_ms": 30000, "topic_data": [
        {"name": TOPIC, "partition_data": [{"index": p, "records": batch} for p in range(partitions)]}]}
    return protocol.encode_request(ApiKey.PRODUCE, PRODUCE_VERSION, 1, "rdkafka", body)[4:]


def _fetch(partitions: int) -> bytes:
    """A consumer's fetch at the log end (max_wait 0: answered at once, with no records)."""
    body = {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 52428800, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": TOPIC, "partitions": [
                {"partition": p, "current_leader_epoch": -1, "fetch_offset": 1 << 40, "log_start_offset": -1,
                 "partition_max_bytes": 1048576} for p in range(partitions)]}]}
    return protocol.encode_request(ApiKey.FETCH, FETCH_VERSION, 1, "rdkafka", body)[4:]


def _authorizer() -> Authorizer:
    authorizer = Authorizer([], allow_everyone_if_no_acl_found=False)
    authorizer.update([AclBinding(ResourceType.TOPIC, TOPIC, PatternType.LITERAL, PRINCIPAL, "*", op,
                                  AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)])
    return authorizer


def _services(directory: str) -> ShardServices:
    config = LogConfig().with_overrides({"segment.bytes": str(1 << 30), "message.timestamp.before.max.ms": str(1 << 62)})
    logs = LogManager([directory], config)
    replicas = ReplicaManager(logs, MetadataView(), 0, 0)
    for p in range(100):
        replicas.attach(logs.create(TOPIC, p), 0, group_commit_flushes=False)
    # Produce and Fetch reach only the ReplicaManager (and the config, for fetch.max.bytes).
    admin = type("Admin", (), {"config": {"fetch.max.bytes": 52428800}})()
    return ShardServices(node_id=0, base_node_id=0, shard_count=1, metadata=replicas.metadata, logs=logs,
                         replicas=replicas, admin=admin, groups=None, txn=None,  # type: ignore[arg-type]
                         quotas=ClientQuotas(), inter_broker=None, supported_apis=[])


@pytest.fixture(scope="module")
def services() -> Iterator[ShardServices]:
    with tempfile.TemporaryDirectory() as tmp:
        services = _services(tmp)
        yield services
        services.logs.close()


@pytest.mark.parametrize("partitions", [1, 100])
@pytest.mark.parametrize("api", ["produce", "fetch"])
@pytest.mark.parametrize("authorizer", ["none", "acl"])
def test_request(benchmark: Any, services: ShardServices, api: str, partitions: int, authorizer: str) -> None:
    services.authorizer = _authorizer() if authorizer == "acl" else None
    dispatcher = Dispatcher(services)
    template = (_produce if api == "produce" else _fetch)(partitions)
    conn = _Conn()

    def one() -> Any:
        return dispatcher.on_frame(conn, bytearray(template))  # type: ignore[arg-type]

    assert isinstance(one(), list)
    benchmark.group = f"{api} request, {partitions} partition(s), Dispatcher.on_frame"
    benchmark(one)


def test_cached_decision(benchmark: Any) -> None:
    authorizer = _authorizer()
    assert authorizer.authorize(PRINCIPAL, "127.0.0.1", AclOperation.WRITE, ResourceType.TOPIC, TOPIC)
    benchmark.group = "Authorizer.authorize, cached"
    benchmark(authorizer.authorize, PRINCIPAL, "127.0.0.1", AclOperation.WRITE, ResourceType.TOPIC, TOPIC)


def _side_by_side(rounds: int = 5, requests: int = 2000) -> None:
    """CPU time per request without and with the authorizer, alternating in one run (the
    machine is shared: a ratio taken side by side is the steadier figure); medians of `rounds`."""
    import statistics
    import time

    with tempfile.TemporaryDirectory() as tmp:
        services = _services(tmp)
        for api, frame in (("produce", _produce), ("fetch", _fetch)):
            for partitions in (1, 100):
                template = frame(partitions)
                count = requests if partitions == 1 else requests // 20
                cpu: dict[str, list[float]] = {"none": [], "acl": []}
                for _ in range(rounds):
                    for name, authorizer in (("none", None), ("acl", _authorizer())):
                        services.authorizer = authorizer
                        dispatcher, conn = Dispatcher(services), _Conn()
                        dispatcher.on_frame(conn, bytearray(template))  # type: ignore[arg-type]  # warm the cache
                        started = time.process_time()
                        for _ in range(count):
                            dispatcher.on_frame(conn, bytearray(template))  # type: ignore[arg-type]
                        cpu[name].append((time.process_time() - started) / count * 1e6)
                none, acl = statistics.median(cpu["none"]), statistics.median(cpu["acl"])
                print(f"{api:8} {partitions:3} partition(s): no authorizer {none:8.1f} us, ACLs {acl:8.1f} us "
                      f"(+{acl - none:.1f} us, x{acl / none:.3f})")
        services.logs.close()


if __name__ == "__main__":
    _side_by_side()
