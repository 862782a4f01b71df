"""Partition reassignment (KIP-455) and replication throttles (KIP-73) on a pyk cluster, driven
by kafka-python's admin client (confluent-kafka has no reassignment calls) and Kafka's own
`kafka-reassign-partitions` tool (ReassignPartitionsCommand from the Kafka 4.1 jars).

A move that must be seen in progress is held there by a follower throttle of 1 byte/s on the new
replica: its first fetch takes one replica.fetch.max.bytes (the rate starts at 0), then the rate
stays exceeded, so the move waits until the test lifts the throttle."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyk.client import Connection
from pyk.errors import ErrorCode
from pyk.protocol.apis import ApiKey
from tests.cluster.conftest import Cluster
from tests.cluster.test_rolling_restart import _Consumer, _Producer
from tests.helpers import BrokerProcess
from tests.kafka import run_java

MB = 1 << 20
REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"


@contextmanager
def _kafka_admin(cluster: Cluster) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:
        yield admin
    finally:
        admin.close()


def _reassign(cluster: Cluster, topic: str, targets: dict[int, list[int] | None]) -> dict[int, Any]:
    """kafka-python's alter_partition_reassignments: partition -> error class or None."""
    from kafka import TopicPartition

    with _kafka_admin(cluster) as admin:
        results = admin.alter_partition_reassignments({TopicPartition(topic, p): r for p, r in targets.items()})
    return {tp.partition: error for tp, error in results.items()}


def _ongoing(cluster: Cluster) -> dict[tuple[str, int], dict[str, list[int]]]:
    with _kafka_admin(cluster) as admin:
        return {(tp.topic, tp.partition): r for tp, r in admin.list_partition_reassignments().items()}


def _create(cluster: Cluster, topic: str, assignment: list[list[int]], **configs: Any) -> None:
    from confluent_kafka.admin import NewTopic

    admin = cluster.admin()
    new = NewTopic(topic, num_partitions=len(assignment), replication_factor=-1, replica_assignment=assignment,
                   config={k.replace("_", "."): str(v) for k, v in configs.items()})
    admin.create_topics([new])[topic].result(30)
    cluster.wait_for(f"{topic}: every replica in sync", lambda: all(
        p.leader >= 0 and sorted(p.isrs) == sorted(assignment[n])
        for n, p in cluster.admin().list_topics(topic, timeout=10).topics[topic].partitions.items()))


def _alter_configs(cluster: Cluster, kind: str, name: str, configs: dict[str, str | None]) -> None:
    """IncrementalAlterConfigs (confluent-kafka): a value sets the key, None deletes it."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.DELETE if v is None else AlterConfigOpType.SET)
               for k, v in configs.items()]
    resource = ConfigResource(ResourceType[kind], name, incremental_configs=entries)
    admin = cluster.admin()
    admin.incremental_alter_configs([resource])[resource].result(30)


def _preload(cluster: Cluster, topic: str, nbytes: int, partition: int = 0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 20,
                         "compression.type": "none"})
    value = b"p" * 1000
    for _ in range(nbytes // len(value)):
        while True:
            try:
                producer.produce(topic, value, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0


def _replicas(cluster: Cluster, topic: str, partition: int = 0) -> tuple[int, list[int], list[int]]:
    part = cluster.partition(topic, partition)
    return part.leader, list(part.replicas), list(part.isrs)


def _log_dir(cluster: Cluster, node: int, topic: str, partition: int = 0) -> Path:
    return cluster.host_of(node).log_dir / f"shard-{node % 100 - 1}" / f"{topic}-{partition}"


def _hold_move(cluster: Cluster, topic: str, partition: int, nodes: list[int]) -> None:
    """A follower throttle of 1 byte/s on the new replicas: the move stalls after their first fetch."""
    _alter_configs(cluster, "TOPIC", topic, {"follower.replication.throttled.replicas":
                                             ",".join(f"{partition}:{n}" for n in nodes)})
    for node in nodes:
        _alter_configs(cluster, "BROKER", str(node), {"follower.replication.throttled.rate": "1"})


def _release_move(cluster: Cluster, nodes: list[int]) -> None:
    for node in nodes:
        _alter_configs(cluster, "BROKER", str(node), {"follower.replication.throttled.rate": None})


def test_a_move_under_an_acks_all_stream_loses_nothing_and_deletes_the_old_replica(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """{1, 101, 201} -> {101, 201, 301} on four hosts under an idempotent acks=all producer and a
    consumer group: the move is listed while it runs (union of replicas, adding 301, removing 1)
    and not after; the leadership leaves node 1 (leader epoch + 1), node 1's log is deleted, and
    every acknowledged value is consumed."""
    cluster = cluster_factory(hosts=4)
    _create(cluster, topic, [[1, 101, 201], [101, 201, 1], [201, 1, 101]], min_insync_replicas=2)
    _preload(cluster, topic, 3 * MB)
    _hold_move(cluster, topic, 0, [301])
    producer, consumer = _Producer(cluster.bootstrap, topic), _Consumer(cluster.bootstrap, topic)
    producer.start()
    consumer.start()
    cluster.wait_for("the stream flowing", lambda: len(consumer.values) >= 200, 60)
    assert _reassign(cluster, topic, {0: [101, 201, 301]}) == {0: None}
    moving = cluster.wait_for("the move listed", lambda: _ongoing(cluster).get((topic, 0)))
    assert moving == {"replicas": [101, 201, 301, 1], "adding_replicas": [301], "removing_replicas": [1]}
    cluster.wait_for("Metadata listing the union while it runs",
                     lambda: _replicas(cluster, topic)[1] == [101, 201, 301, 1])
    cluster.wait_for("the new replica's log", lambda: _log_dir(cluster, 301, topic).is_dir())
    _release_move(cluster, [301])
    cluster.wait_for("the move complete", lambda: _replicas(cluster, topic)[1] == [101, 201, 301], 90)
    leader, _, isr = cluster.wait_for("the new leader with a full ISR", lambda: (
        lambda r: r if r[0] in (101, 201, 301) and sorted(r[2]) == [101, 201, 301] else None)(
            _replicas(cluster, topic)))
    assert leader == 101, f"leader {leader}, isr {isr}"
    cluster.wait_for("nothing listed", lambda: _ongoing(cluster) == {})
    cluster.wait_for("node 1's log deleted", lambda: not _log_dir(cluster, 1, topic).exists())
    assert "no longer a replica of" in cluster.hosts[0].log_text()
    assert any("reassignment moves the leader 1 -> 101" in h.log_text() for h in cluster.hosts)
    time.sleep(0.5)  # a little more of the stream after the move
    producer.done.set()
    producer.join(150)
    assert not producer.is_alive(), "the producer did not finish"
    assert not producer.errors, f"{len(producer.errors)} deliveries failed, first {producer.errors[0]}"
    cluster.wait_for("every acknowledged value consumed", lambda: producer.acked <= consumer.values, 90)
    consumer.done.set()
    consumer.join(30)
    print(f"{len(producer.acked)} values acknowledged and consumed across the move")


def test_cancel_reverts_a_move_and_errors_are_kafkas(cluster_factory: Callable[..., Cluster], topic: str) -> None:
    from kafka.errors import (
        InvalidReplicationAssignmentError,
        NoReassignmentInProgressError,
        UnknownTopicOrPartitionError,
    )

    cluster = cluster_factory(hosts=3)
    _create(cluster, topic, [[1, 101]])
    _preload(cluster, topic, 2 * MB)
    _hold_move(cluster, topic, 0, [201])
    assert _reassign(cluster, topic, {0: [1, 201]}) == {0: None}
    cluster.wait_for("the move listed", lambda: _ongoing(cluster).get((topic, 0)) == {
        "replicas": [1, 201, 101], "adding_replicas": [201], "removing_replicas": [101]})
    cluster.wait_for("the new replica's log", lambda: _log_dir(cluster, 201, topic).is_dir())
    assert _reassign(cluster, topic, {0: None}) == {0: None}  # cancel
    cluster.wait_for("the cancel applied", lambda: _replicas(cluster, topic)[1] == [1, 101])
    cluster.wait_for("nothing listed", lambda: _ongoing(cluster) == {})
    cluster.wait_for("the cancelled replica's log deleted", lambda: not _log_dir(cluster, 201, topic).exists())
    assert sorted(_replicas(cluster, topic)[2]) == [1, 101]
    assert _reassign(cluster, topic, {0: None}) == {0: NoReassignmentInProgressError}
    assert _reassign(cluster, topic, {0: [1, 1]}) == {0: InvalidReplicationAssignmentError}
    assert _reassign(cluster, topic, {0: [1, 999]}) == {0: InvalidReplicationAssignmentError}  # no such node
    assert _reassign(cluster, topic, {5: [1, 101]}) == {5: UnknownTopicOrPartitionError}
    assert _reassign(cluster, "no-such-topic", {0: [1, 101]}) == {0: UnknownTopicOrPartitionError}

    # Another host than the controller answers NOT_CONTROLLER (clients go to the controller).
    controller = cluster.host_of(cluster.admin().list_topics(timeout=10).controller_id)
    other = next(h for h in cluster.hosts if h is not controller)
    body = {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "replicas": [1, 201]}]}]}
    answer = _call(other, ApiKey.ALTER_PARTITION_REASSIGNMENTS, 1, body)
    assert answer["error_code"] == ErrorCode.NOT_CONTROLLER and answer["responses"] == []
    assert _call(other, ApiKey.LIST_PARTITION_REASSIGNMENTS, 0, {})["error_code"] == ErrorCode.NOT_CONTROLLER
    # KIP-860: a request that may not change the replication factor.
    body["allow_replication_factor_change"] = False
    body["topics"][0]["partitions"][0]["replicas"] = [201]
    answer = _call(controller, ApiKey.ALTER_PARTITION_REASSIGNMENTS, 1, body)
    assert answer["responses"][0]["partitions"][0]["error_code"] == ErrorCode.INVALID_REPLICATION_FACTOR


def _call(host: BrokerProcess, api: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any]:
    """One request to a host's first shard (pyk's own client)."""
    async def run() -> dict[str, Any]:
        conn = await Connection.open(host.host, host.port)
        try:
            return await conn.request(api, version, body)
        finally:
            conn.close()

    return asyncio.run(run())


def test_a_new_controller_completes_a_move_the_old_one_started(cluster_factory: Callable[..., Cluster],
                                                                 topic: str) -> None:
    """The move's state lives in ZooKeeper: after kill -9 of the controller's host, the next
    controller lists the move and completes it."""
    cluster = cluster_factory(hosts=4)
    _create(cluster, topic, [[101, 201]])
    _preload(cluster, topic, 2 * MB)
    _hold_move(cluster, topic, 0, [301])
    assert cluster.admin().list_topics(timeout=10).controller_id == 1  # the first host started
    assert _reassign(cluster, topic, {0: [101, 301]}) == {0: None}
    cluster.hosts[0].kill9()
    cluster.wait_for("another controller", lambda: cluster.admin().list_topics(timeout=10).controller_id in
                     (101, 201, 301), 60)
    assert cluster.wait_for("the move listed by the new controller", lambda: _ongoing(cluster)) == {
        (topic, 0): {"replicas": [101, 301, 201], "adding_replicas": [301], "removing_replicas": [201]}}
    _release_move(cluster, [301])
    cluster.wait_for("the move complete", lambda: _replicas(cluster, topic)[1] == [101, 301], 90)
    cluster.wait_for("nothing listed", lambda: _ongoing(cluster) == {})
    cluster.wait_for("node 201's log deleted", lambda: not _log_dir(cluster, 201, topic).exists())


def test_a_replica_removed_while_its_host_was_down_is_deleted_when_it_returns(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    cluster = cluster_factory(hosts=3)
    _create(cluster, topic, [[1, 101]])
    _preload(cluster, topic, MB)
    host = cluster.host_of(101)
    assert host.stop() == 0
    assert _reassign(cluster, topic, {0: [1, 201]}) == {0: None}  # a removed replica need not be live
    cluster.wait_for("the move complete", lambda: _replicas(cluster, topic)[1] == [1, 201], 60)
    assert _log_dir(cluster, 101, topic).is_dir()
    host.start()
    cluster.wait_for("node 101's stray log deleted", lambda: not _log_dir(cluster, 101, topic).exists(), 60)


def test_a_replica_moves_between_two_shards_of_one_host(cluster_factory: Callable[..., Cluster],
                                                          topic: str) -> None:
    """Two hosts of two shards (nodes 1, 2 and 101, 102): [1, 101] -> [2, 101] moves node 1's
    replica to its host's other shard, which fetches it over TCP like any other node."""
    from tests.helpers import confluent_read_to_end

    cluster = cluster_factory(hosts=2, shards=2)
    _create(cluster, topic, [[1, 101]])
    _preload(cluster, topic, MB)
    assert _reassign(cluster, topic, {0: [2, 101]}) == {0: None}
    cluster.wait_for("the move complete", lambda: _replicas(cluster, topic)[1] == [2, 101], 60)
    cluster.wait_for("node 2 in sync", lambda: sorted(_replicas(cluster, topic)[2]) == [2, 101])
    cluster.wait_for("node 1's log deleted", lambda: not _log_dir(cluster, 1, topic).exists())
    assert _log_dir(cluster, 2, topic).is_dir()
    cluster.wait_for("nothing listed", lambda: _ongoing(cluster) == {})
    assert len(confluent_read_to_end(cluster.bootstrap, topic, timeout=60)) == MB // 1000


THROTTLE = 1 * MB  # bytes/s


def test_a_throttled_move_replicates_near_the_throttle(cluster_factory: Callable[..., Cluster], topic: str) -> None:
    """Leader throttle on the old replicas and follower throttle on the new one, 1 MB/s each,
    rate samples of 1 s x 2 (replication.quota.window.num): an 8 MB move runs at 0.3-2x the
    throttle, and meanwhile 2 MB acks=all to a topic followed by the same node (not throttled)
    are replicated while the move is still going."""
    cluster = cluster_factory(hosts=3, replication_quota_window_num=2)
    _create(cluster, topic, [[1, 101]])
    free = topic + "-free"
    _create(cluster, free, [[1, 201]], min_insync_replicas=2)
    nbytes = 8 * MB
    _preload(cluster, topic, nbytes)
    _alter_configs(cluster, "TOPIC", topic, {"leader.replication.throttled.replicas": "0:1,0:101",
                                             "follower.replication.throttled.replicas": "0:201"})
    for node in (1, 101, 201):
        _alter_configs(cluster, "BROKER", str(node), {"leader.replication.throttled.rate": str(THROTTLE),
                                                      "follower.replication.throttled.rate": str(THROTTLE)})
    started = time.monotonic()
    assert _reassign(cluster, topic, {0: [1, 201]}) == {0: None}
    _preload(cluster, free, 2 * MB)  # acks=all with min.insync.replicas=2: node 201 has each record
    assert (topic, 0) in _ongoing(cluster), "the unthrottled topic was held back as long as the move"
    cluster.wait_for("the move complete", lambda: _replicas(cluster, topic)[1] == [1, 201], 120)
    elapsed = time.monotonic() - started
    rate = nbytes / elapsed
    print(f"throttled move: {nbytes / MB:.0f} MB in {elapsed:.1f} s = {rate / MB:.2f} MB/s (throttle 1 MB/s)")
    assert 0.3 * THROTTLE < rate < 2 * THROTTLE, f"{rate / MB:.2f} MB/s"


def _tool(*args: str) -> str:
    return run_java(REASSIGN, *args, timeout=180).stdout


def test_kafka_reassign_partitions_generate_execute_verify_with_a_throttle(
        cluster_factory: Callable[..., Cluster], topic: str, tmp_path: Path) -> None:
    """Kafka's tool against pyk: --generate proposes an assignment over the given brokers,
    --execute --throttle sets the throttles and starts the move, --verify reports it complete and
    removes the throttles; --list shows a move in progress and --cancel reverts it."""
    cluster = cluster_factory(hosts=4)
    _create(cluster, topic, [[1, 101, 201], [101, 201, 1]])
    _preload(cluster, topic, 3 * MB)
    server = cluster.hosts[0].bootstrap
    to_move = tmp_path / "topics.json"
    to_move.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    generated = _tool("--bootstrap-server", server, "--generate", "--topics-to-move-json-file", str(to_move),
                      "--broker-list", "101,201,301")
    assert "Proposed partition reassignment configuration" in generated
    proposed = json.loads(generated.strip().splitlines()[-1])
    assert all(sorted(p["replicas"]) == [101, 201, 301] for p in proposed["partitions"]), proposed
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": topic, "partition": 0, "replicas": [101, 201, 301]},
        {"topic": topic, "partition": 1, "replicas": [201, 301, 101]}]}))
    executed = _tool("--bootstrap-server", server, "--execute", "--reassignment-json-file", str(plan),
                     "--throttle", str(4 * MB))
    assert "Successfully started partition reassignments" in executed, executed
    from confluent_kafka.admin import ConfigResource, ResourceType

    resource = ConfigResource(ResourceType.TOPIC, topic)

    def throttled(key: str) -> str:
        admin = cluster.admin()
        return str(admin.describe_configs([resource])[resource].result(30)[key].value)

    cluster.wait_for("the throttles set", lambda: "0:1" in throttled("leader.replication.throttled.replicas")
                     and "0:301" in throttled("follower.replication.throttled.replicas"))

    def verified() -> str | None:
        out = _tool("--bootstrap-server", server, "--verify", "--reassignment-json-file", str(plan))
        return out if "is completed" in out and "is still in progress" not in out else None

    out = cluster.wait_for("--verify reporting both moves complete", verified, 120)
    assert "Clearing broker-level throttles" in out and "Clearing topic-level throttles" in out, out
    cluster.wait_for("the metadata naming the targets", lambda: [_replicas(cluster, topic, p)[1] for p in (0, 1)]
                     == [[101, 201, 301], [201, 301, 101]])
    cluster.wait_for("the throttles cleared", lambda: throttled("leader.replication.throttled.replicas") == "")
    cluster.wait_for("node 1's logs deleted", lambda: not any(_log_dir(cluster, 1, topic, p).exists() for p in (0, 1)))

    # --list and --cancel of a move held back by a follower throttle of 1 byte/s on its new
    # replica: with Kafka's 11 rate samples of 1 s, one replica.fetch.max.bytes per ~10 s.
    _hold_move(cluster, topic, 0, [1])
    back = tmp_path / "back.json"
    back.write_text(json.dumps({"version": 1, "partitions": [{"topic": topic, "partition": 0, "replicas": [101, 201, 1]}]}))
    _tool("--bootstrap-server", server, "--execute", "--reassignment-json-file", str(back))
    listed = _tool("--bootstrap-server", server, "--list")
    assert f"{topic}-0" in listed and "adding" in listed.lower(), listed
    cancelled = _tool("--bootstrap-server", server, "--cancel", "--reassignment-json-file", str(back))
    assert "Successfully cancelled" in cancelled, cancelled
    cluster.wait_for("the cancel applied", lambda: _replicas(cluster, topic)[1] == [101, 201, 301])
    cluster.wait_for("node 1's log deleted again", lambda: not _log_dir(cluster, 1, topic).exists())
