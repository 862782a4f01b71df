"""The controller's pure decisions (pyk.cluster.placement): replica placement over racks and
hosts, and Kafka's offline-partition leader election."""

from __future__ import annotations

import pytest

from pyk.cluster.placement import Node, elect_leader, place_replicas
from pyk.errors import ErrorCode, KafkaError


def _hosts(count: int, shards: int, racks: list[str] | None = None) -> list[Node]:
    return [Node(1 + 100 * h + s, 1 + 100 * h, racks[h] if racks else None) for h in range(count) for s in range(shards)]


def test_replicas_of_a_partition_never_share_a_host_while_other_hosts_exist() -> None:
    nodes = _hosts(3, 4)
    assignment = place_replicas(24, 3, nodes)
    for replicas in assignment:
        assert len({r // 100 for r in replicas}) == 3, replicas
    # leaders spread over every shard of every host
    assert sorted({r[0] for r in assignment}) == sorted(n.node_id for n in nodes)


def test_racks_come_before_hosts() -> None:
    nodes = _hosts(4, 1, racks=["a", "a", "b", "b"])
    rack = {n.node_id: n.rack for n in nodes}
    for replicas in place_replicas(8, 2, nodes):
        assert {rack[r] for r in replicas} == {"a", "b"}, replicas


def test_uneven_racks_still_hold_a_replica_each() -> None:
    """Two hosts on rack a, one on rack b: every partition has a replica on each rack (the
    alternated order alone would give one partition in three two replicas on rack a)."""
    nodes = _hosts(3, 2, racks=["a", "a", "b"])
    rack = {n.node_id: n.rack for n in nodes}
    for rf in (2, 3):
        assignment = place_replicas(12, rf, nodes)
        for replicas in assignment:
            assert {rack[r] for r in replicas} == {"a", "b"}, replicas
            assert len({r // 100 for r in replicas}) == rf, replicas
        assert len({r[0] // 100 for r in assignment}) == 3  # leaders on every host


def test_a_factor_above_the_hosts_uses_more_shards_of_a_host() -> None:
    for replicas in place_replicas(4, 3, _hosts(2, 2)):
        assert len(set(replicas)) == 3 and len({r // 100 for r in replicas}) == 2


def test_a_factor_above_the_live_nodes_is_refused() -> None:
    with pytest.raises(KafkaError) as info:
        place_replicas(1, 4, _hosts(3, 1))
    assert info.value.code == ErrorCode.INVALID_REPLICATION_FACTOR


def test_clean_election_takes_the_first_live_isr_member_in_assignment_order() -> None:
    assert elect_leader([1, 101, 201], isr=[201, 101], live={101, 201}, unclean=False) == (101, [201, 101], False)
    # no live ISR member: offline, ISR kept
    assert elect_leader([1, 101, 201], isr=[1], live={101, 201}, unclean=False) == (-1, [1], False)


def test_unclean_election_takes_a_live_replica_outside_the_isr() -> None:
    assert elect_leader([1, 101, 201], isr=[1], live={201}, unclean=True) == (201, [201], True)
