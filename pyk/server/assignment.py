"""Manual replica assignments: Kafka's checks on them, and the shard each assigned partition goes to.

A manual assignment (CreateTopics `assignments`, CreatePartitions `assignments`) lists, for each
partition, the nodes that hold its replicas; the first is the preferred leader.  pyk's nodes are
its shards (node id = node.id + shard index, docs/shards.md), so a one-replica assignment names
the shard that owns the partition.

The checks are the KRaft controller's (ReplicationControlManager: createTopic, createPartitions,
validateManualPartitionAssignment), in its order and with its error codes, so a client is refused
exactly where Kafka would refuse it.  On a single host the only thing Kafka would accept and pyk
cannot honour is a partition with more than one replica: a single host does not replicate, and
says so with the code Kafka gives for a replication factor it cannot reach
(INVALID_REPLICATION_FACTOR; docs/compatibility.md), naming the way to replicas on one host.  A
ZooKeeper cluster (docs/cluster.md) replicates, even of one host (its shards are its nodes):
there an assignment names any live nodes (`topic_assignment`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyk.errors import ErrorCode, KafkaError

NOT_REPLICATED = ("a pyk host without zookeeper.connect does not replicate partitions (each has one replica, on one "
                  "shard); for replicas on one host, run it with zookeeper.connect, e.g. `pyk cluster up --hosts 1 "
                  "--shards 2`, whose shards then hold each other's replicas (docs/cluster.md)")


def check_replication_factor(replication_factor: int) -> None:
    """The replication factor of a new topic, given or implied by its assignment: only 1 can be kept.

    Kafka answers INVALID_REPLICATION_FACTOR when a factor cannot be reached ("only N broker(s)
    are registered"); a host's shards are several nodes, but without zookeeper.connect no
    partition has a second replica, so any factor above 1 is one such a host cannot reach.
    """
    if replication_factor < 1:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"replication factor must be larger than 0, or -1 for the default; found {replication_factor}")
    if replication_factor > 1:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"replication factor {replication_factor} cannot be honoured: {NOT_REPLICATED}")


def check_replicas(replicas: Sequence[int], nodes: Sequence[int], replication_factor: int | None) -> None:
    """One partition's replica list: not empty, only live nodes, each once, and as many replicas
    as the partitions before it (Kafka's validateManualPartitionAssignment)."""
    if not replicas:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "the manual partition assignment includes an empty replica list")
    unknown = sorted(set(replicas) - set(nodes))
    if unknown:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"the manual partition assignment includes node(s) {unknown}, which are not live nodes; "
                         f"the live nodes are {list(nodes)}")
    repeated = sorted({r for r in replicas if replicas.count(r) > 1})
    if repeated:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"the manual partition assignment includes node(s) {repeated} more than once: {list(replicas)}")
    if replication_factor is not None and len(replicas) != replication_factor:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"the manual partition assignment includes a partition with {len(replicas)} replica(s), but this "
                         f"is not consistent with previous partitions, which have {replication_factor} replica(s)"
                         + (f" ({NOT_REPLICATED})" if replication_factor == 1 else ""))


def topic_placement(assignments: list[dict[str, Any]], nodes: range) -> list[int]:
    """The owning shard of each partition of a new topic from CreateTopics `assignments`
    (entries of partition_index and broker_ids); raises Kafka's error for a bad assignment."""
    replicas = topic_assignment(assignments, nodes)
    check_replication_factor(len(replicas[0]))
    return [r[0] - nodes.start for r in replicas]


def topic_assignment(assignments: list[dict[str, Any]], nodes: Sequence[int]) -> list[list[int]]:
    """The replicas of each partition of a new topic from CreateTopics `assignments`, checked
    against the live `nodes` (Kafka's validateManualPartitionAssignment)."""
    replicas_of: dict[int, list[int]] = {}
    replication_factor: int | None = None
    for a in assignments:
        partition, replicas = a["partition_index"], a["broker_ids"]
        if partition in replicas_of:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"found multiple manual partition assignments for partition {partition}")
        check_replicas(replicas, nodes, replication_factor)
        replication_factor = len(replicas)
        replicas_of[partition] = replicas
    if sorted(replicas_of) != list(range(len(replicas_of))):
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"partitions should be a consecutive 0-based integer sequence, found {sorted(replicas_of)}")
    return [list(replicas_of[p]) for p in range(len(replicas_of))]


def new_partitions_placement(assignments: list[dict[str, Any]], added: int, nodes: range,
                             replication_factor: int) -> list[int]:
    """The owning shard of each partition CreatePartitions adds, from its `assignments` (one
    broker_ids list per new partition, in order) for a topic of `replication_factor`."""
    return [r[0] - nodes.start for r in new_partitions_assignment(assignments, added, nodes, replication_factor)]


def new_partitions_assignment(assignments: list[dict[str, Any]], added: int, nodes: Sequence[int],
                              replication_factor: int) -> list[list[int]]:
    """The replicas of each partition CreatePartitions adds, checked against the live `nodes`."""
    if len(assignments) != added:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         f"attempted to add {added} additional partition(s), but {len(assignments)} assignment(s) were specified")
    for a in assignments:
        check_replicas(a["broker_ids"], nodes, replication_factor)
    return [list(a["broker_ids"]) for a in assignments]
