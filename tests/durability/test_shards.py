"""The multi-process layout: partitions spread over shards, each shard its own node; a killed
shard is restarted and recovers while the others keep serving; placement survives restarts and
a change of num.shards."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct

from pyk import protocol
from pyk.protocol import ApiKey
from tests.durability.test_kill9 import PARTITIONS, StreamingProducer, _check_partition
from tests.helpers import (
    Rec,
    confluent_consume,
    confluent_produce,
    create_topic,
    kcat,
    make_records,
    read_batches,
    segment_files,
    unique_topic,
    wait_for,
)


def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    md = json.loads(kcat(["-b", bootstrap, "-L", "-J", "-t", topic]).stdout)
    (entry,) = [t for t in md["topics"] if t["topic"] == topic]
    return {p["partition"]: p["leader"] for p in entry["partitions"]}


def _leader_epochs(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> leader epoch, from a Metadata v9 request over a plain socket."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(protocol.encode_request(ApiKey.METADATA, 9, 1, "test", {"topics": [{"name": topic}]}))
        (size,) = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))
        frame = sock.recv(size, socket.MSG_WAITALL)
    _, body = protocol.decode_response(ApiKey.METADATA, 9, frame)
    (entry,) = body["topics"]
    return {p["partition_index"]: p["leader_epoch"] for p in entry["partitions"]}


def test_partitions_are_spread_and_each_served_by_its_shard(broker_factory):
    b = broker_factory(num_shards=2)
    topic = unique_topic("spread")
    create_topic(b.bootstrap, topic, partitions=4)
    leaders = _leaders(b.bootstrap, topic)
    assert sorted(leaders.values()) == [1, 1, 2, 2], leaders
    for p in range(4):
        sent = make_records(50, prefix=f"p{p}", partition=p)
        assert confluent_produce(b.bootstrap, topic, sent) == [(p, i) for i in range(50)]
        got = confluent_consume(b.bootstrap, topic, p, 0, 50)
        assert [r.value for r in got] == [r.value for r in sent]
    for p, node in leaders.items():
        assert b.partition_dir(topic, p).parent.name == f"shard-{node - 1}"


def test_killed_shard_restarts_while_the_other_keeps_serving(broker_factory):
    b = broker_factory(num_shards=2)
    topic = unique_topic("shard-crash")
    create_topic(b.bootstrap, topic, partitions=PARTITIONS)
    leaders = _leaders(b.bootstrap, topic)
    assert sorted(leaders.values()) == [1, 2], "one partition per shard"
    stream = StreamingProducer(b.bootstrap, topic, {"acks": -1, "linger.ms": 2, "message.timeout.ms": 60000})
    stream.start()
    try:
        wait_for(lambda: stream.acked_count() >= 5_000, timeout=60, what="5000 acknowledged records")
        shard_pids = b.pids()[1:]
        victim = shard_pids[1]  # shard 1 = node 2
        os.kill(victim, signal.SIGKILL)
        # The surviving shard's partition keeps taking writes while shard 1 is down or recovering.
        survivor = next(p for p, node in leaders.items() if node == 1)
        confluent_produce(b.bootstrap, topic, [Rec(b"during", b"crash", (), None, survivor)])
        wait_for(lambda: "restarting it" in b.log_text(), timeout=30, what="the orchestrator restarting shard 1")
        wait_for(lambda: len(b.pids()) == 3 and victim not in b.pids(), timeout=30, what="a new shard 1 process")
        # The stream (with retries) carries on into the restarted shard.
        before = stream.acked_count()
        wait_for(lambda: stream.acked_count() >= before + 2_000, timeout=60, what="acks after the restart")
    finally:
        stream.finish(purge=False, timeout=30)
    assert not stream.errors, stream.errors[:3]
    for p in range(PARTITIONS):
        _check_partition(b.bootstrap, topic, p, stream.acked[p])


def test_placement_is_stable_across_restarts_and_shard_count_changes(broker_factory):
    b = broker_factory(num_shards=2)
    topic = unique_topic("placement")
    create_topic(b.bootstrap, topic, partitions=4)
    before = _leaders(b.bootstrap, topic)
    for p in range(4):
        confluent_produce(b.bootstrap, topic, make_records(20, prefix=f"p{p}", partition=p))
    b.restart()
    assert _leaders(b.bootstrap, topic) == before

    assert set(_leader_epochs(b.bootstrap, topic).values()) == {0}

    # Down to one shard: every partition moves to shard 0 and keeps its records; the moved ones
    # get a new leader epoch (KIP-320), the others keep theirs.
    b.stop()
    b.shards = 1
    b.overrides["num.shards"] = "1"
    b.start()
    assert set(_leaders(b.bootstrap, topic).values()) == {1}
    assert _leader_epochs(b.bootstrap, topic) == {p: 0 if node == 1 else 1 for p, node in before.items()}
    for p in range(4):
        got = confluent_consume(b.bootstrap, topic, p, 0, 20)
        assert [r.value for r in got] == [f"p{p}-{i}".encode() for i in range(20)]
        assert b.partition_dir(topic, p).parent.name == "shard-0"
    assert "placement changed" in b.log_text()
    # Appends under the new epoch are stamped with it.
    moved = next(p for p, node in before.items() if node == 2)
    confluent_produce(b.bootstrap, topic, make_records(1, prefix="after", partition=moved))
    got = confluent_consume(b.bootstrap, topic, moved, 20, 1)
    assert got[0].value == b"after-0"
    epochs = [h.leader_epoch for f in segment_files(b.partition_dir(topic, moved)) for h in read_batches(f)]
    assert epochs == [0] * (len(epochs) - 1) + [1]
