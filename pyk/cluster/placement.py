"""Replica placement and leader election: the controller's decisions, pure functions.

Placement spreads each partition's replicas over failure domains: racks first (`broker.rack`,
Kafka's rack-alternated broker list), then hosts inside a rack, so two replicas of a partition
share a host only when the replication factor exceeds the number of hosts (every shard of a host
is a node, and a host failure takes all of them).  Leaders (first replicas) rotate over hosts and
over the shards of each host.

Election is Kafka's offline-partition election (PartitionLeaderElectionAlgorithms): the first
replica of the assignment that is alive and in the ISR; with unclean election enabled, else the
first live replica, whose log then becomes the truth (the caller logs the data loss).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from pyk.errors import ErrorCode, KafkaError


@dataclass(frozen=True)
class Node:
    """A registered node as placement sees it: its host (the base node id of the pyk host
    process that runs it) and rack."""

    node_id: int
    host: int
    rack: str | None


def _host_order(nodes: Sequence[Node]) -> list[tuple[str, list[int]]]:
    """Hosts (each its rack and the sorted node ids of its shards), interleaved by rack:
    r1h1, r2h1, r1h2, ...; a host without a rack is a rack of its own."""
    hosts: dict[int, list[int]] = {}
    rack_of: dict[int, str] = {}
    for node in sorted(nodes, key=lambda n: n.node_id):
        hosts.setdefault(node.host, []).append(node.node_id)
        rack_of[node.host] = node.rack or f"host-{node.host}"
    by_rack: dict[str, list[int]] = {}
    for host in sorted(hosts):
        by_rack.setdefault(rack_of[host], []).append(host)
    order: list[tuple[str, list[int]]] = []
    racks = [by_rack[r] for r in sorted(by_rack)]
    for i in range(max(len(r) for r in racks)):
        order.extend((rack_of[r[i]], hosts[r[i]]) for r in racks if i < len(r))
    return order


def place_replicas(partitions: int, replication_factor: int, nodes: Sequence[Node], start: int = 0) -> list[list[int]]:
    """Replica lists of `partitions` new partitions (the first of each is its preferred leader);
    `start` rotates the first leader (the number of partitions already placed, so topics spread).
    INVALID_REPLICATION_FACTOR when fewer nodes are alive than the factor asks for."""
    if replication_factor < 1:
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"replication factor must be larger than 0, or -1 for the default; found {replication_factor}")
    if replication_factor > len(nodes):
        raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                         f"replication factor: {replication_factor} larger than available brokers: {len(nodes)}")
    hosts = _host_order(nodes)
    everyone = sorted(n.node_id for n in nodes)
    out = []
    for p in range(start, start + partitions):
        replicas: list[int] = []
        used: list[int] = []  # indexes of the hosts holding a replica
        for k in range(replication_factor):
            if k < len(hosts):
                # The next host after p in rack-alternated order, on a rack without a replica
                # while there is one (Kafka's assignReplicasToBrokersRackAware: with uneven racks
                # the order alone would put two replicas on one rack).
                free = [(p + j) % len(hosts) for j in range(len(hosts)) if (p + j) % len(hosts) not in used]
                racks = {hosts[h][0] for h in used}
                host = next((h for h in free if hosts[h][0] not in racks), free[0])
            else:  # more replicas than hosts: a second shard of each host, in the same order
                host = (p + k) % len(hosts)
            used.append(host)
            shards = hosts[host][1]
            node = shards[(p // len(hosts) + k // len(hosts)) % len(shards)]
            if node in replicas:
                node = next(n for n in everyone if n not in replicas)
            replicas.append(node)
        out.append(replicas)
    return out


def elect_leader(assignment: Sequence[int], isr: Collection[int], live: Collection[int],
                 unclean: bool) -> tuple[int, list[int], bool]:
    """(leader, new ISR, whether the election was unclean) for a partition whose leader is gone;
    leader -1 when no replica may lead (the partition is offline and keeps its ISR)."""
    for replica in assignment:
        if replica in live and replica in isr:
            return replica, [r for r in isr if r in live], False
    if unclean:
        for replica in assignment:
            if replica in live:
                return replica, [replica], True
    return -1, list(isr), False
