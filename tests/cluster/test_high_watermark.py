"""High-watermark checkpoints (Kafka's replication-offset-checkpoint): every host writes its
replicas' high watermarks per log dir every replica.high.watermark.checkpoint.interval.ms and at
a clean shutdown; a restarted replica starts its high watermark there, not at its log end, and
a follower that finds no leader epoch in common with its leader truncates to it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import ElectionType, TopicPartition

from tests.cluster.conftest import Cluster
from tests.helpers import BrokerProcess, confluent_produce, confluent_read_to_end, make_records

PARKED_FETCH_WAIT_MS = 100  # replica.fetch.wait.max.ms: parked follower fetches answer quickly


def _checkpointed(host: BrokerProcess, topic: str, partition: int = 0) -> int | None:
    """The partition's offset in the host's replication-offset-checkpoint (None: not listed)."""
    for path in host.log_dir.glob("shard-*/replication-offset-checkpoint"):
        for line in Path(path).read_text().splitlines()[2:]:
            name, index, offset = line.split()
            if (name, int(index)) == (topic, partition):
                return int(offset)
    return None


def test_a_restarted_follower_with_a_diverged_tail_truncates_to_its_checkpointed_high_watermark(
        cluster_factory: Callable[..., Cluster], topic: str) -> None:
    # A long session and lag time: the paused follower keeps its session and its ISR place.
    cluster = cluster_factory(hosts=2, zookeeper_session_timeout_ms=20000, replica_lag_time_max_ms=60000,
                              replica_fetch_wait_max_ms=PARKED_FETCH_WAIT_MS, auto_leader_rebalance_enable="false",
                              replica_high_watermark_checkpoint_interval_ms=200)
    cluster.create_topic(topic, replication_factor=2)
    part = cluster.partition(topic)
    assert part.leader == part.replicas[0]  # the preferred replica: elected back at the end
    follower = part.replicas[1]
    old, new = cluster.host_of(part.leader), cluster.host_of(follower)
    confluent_produce(old.bootstrap, topic, make_records(20, prefix="both"), acks="all")
    # The periodic checkpoint: both replicas record the committed offset.
    cluster.wait_for("both hosts' checkpoints at 20", lambda: _checkpointed(old, topic) == _checkpointed(new, topic) == 20)
    pids = new.pids()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(PARKED_FETCH_WAIT_MS / 1000 * 10)  # the follower's parked fetch answered empty first
        # Beyond the high watermark: the follower is in the ISR but does not fetch.
        confluent_produce(old.bootstrap, topic, make_records(30, prefix="lost"), acks=1)
        # A clean stop: the controlled shutdown moves the leadership to the paused follower,
        # and the checkpoint written at the shutdown holds the high watermark, not the log end.
        assert old.stop() == 0
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert _checkpointed(old, topic) == 20
    cluster.wait_for("the follower leading", lambda: cluster.partition(topic).leader == follower)
    confluent_produce(new.bootstrap, topic, make_records(40, prefix="new"), acks="all")
    # Without its leader-epoch-checkpoint the old leader finds no epoch in common with the new
    # one (OffsetForLeaderEpoch answers none for epoch -1): it truncates to its high watermark,
    # 20 from the checkpoint; from its log end (50) it would keep the lost records and append
    # the new leader's from 50 on.
    (old.partition_dir(topic, 0) / "leader-epoch-checkpoint").unlink()
    old.start()
    cluster.wait_for("the old leader back in the ISR", lambda: part.leader in cluster.partition(topic).isrs, 60)
    assert "truncating from 50 to 20" in old.log_text()
    tp, admin = TopicPartition(topic, 0), cluster.admin()  # kept until the answer
    assert admin.elect_leaders(ElectionType.PREFERRED, [tp]).result(30)[tp] is None
    cluster.wait_for("the old leader leading again", lambda: cluster.partition(topic).leader == part.leader)
    values = [r.value.split(b"-")[0] for r in confluent_read_to_end(old.bootstrap, topic)]
    assert values == [b"both"] * 20 + [b"new"] * 40
