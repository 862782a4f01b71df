"""Reassignment measurements for docs/cluster.md: the time to move one replica of an N MB
partition to another host, without and with a replication throttle, alternating in one run
(medians of the passes), and the brokers' CPU per MB moved.

    python3 bench/reassign.py --mb 64 --throttle-mb 8 --passes 3

One ZooKeeper (tick 500 ms) and three single-shard hosts (bench/cluster.py's), with
replication.quota.window.num=2 so that a throttled move starts with at most one second's worth
of burst (Kafka's default of 11 samples lets the first 10 s of the rate through at once).  The
partition is created on nodes [1, 101] and filled with N MB of 1 KB records (acks=all); each
move swaps the second replica between 101 and 201 (the throttled ones with the leader throttle
on every replica and the follower throttle on the new one, as kafka-reassign-partitions sets
them), timed from AlterPartitionReassignments to the metadata naming the target."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from cluster import Host, cpu_seconds  # bench/cluster.py (this directory is on sys.path)

from pyk.tools.cluster import free_port, start_zookeeper

MB = 1 << 20


def configs(boot: str, kind: str, name: str, values: dict[str, str | None]) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.DELETE if v is None else AlterConfigOpType.SET)
               for k, v in values.items()]
    resource = ConfigResource(ResourceType[kind], name, incremental_configs=entries)
    admin = AdminClient({"bootstrap.servers": boot})  # kept until the answer: a destroyed handle fails its futures
    admin.incremental_alter_configs([resource])[resource].result(30)


def replicas(boot: str, topic: str) -> tuple[list[int], list[int]]:
    from confluent_kafka.admin import AdminClient

    part = AdminClient({"bootstrap.servers": boot}).list_topics(topic, timeout=10).topics[topic].partitions[0]
    return list(part.replicas), list(part.isrs)


def wait(what: str, check: object, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:  # a host busy: ask again
            pass
        time.sleep(0.05)
    raise TimeoutError(what)


def fill(boot: str, topic: str, nbytes: int) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": boot, "acks": "all", "linger.ms": 20})
    value = os.urandom(1000)
    for _ in range(nbytes // len(value)):
        while True:
            try:
                producer.produce(topic, value, partition=0)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


def move(boot: str, hosts: list[Host], topic: str, target: list[int], throttle: int | None) -> tuple[float, float]:
    """(seconds, broker CPU seconds) of one move to `target`."""
    from kafka import KafkaAdminClient, TopicPartition

    nodes = (1, 101, 201)
    if throttle is not None:
        configs(boot, "TOPIC", topic, {"leader.replication.throttled.replicas": ",".join(f"0:{n}" for n in nodes),
                                       "follower.replication.throttled.replicas": f"0:{target[1]}"})
        for node in nodes:
            configs(boot, "BROKER", str(node), {"leader.replication.throttled.rate": str(throttle),
                                                "follower.replication.throttled.rate": str(throttle)})
    pids = [pid for h in hosts for pid in h.pids()]
    admin = KafkaAdminClient(bootstrap_servers=boot)
    cpu0, started = cpu_seconds(pids), time.monotonic()
    errors = admin.alter_partition_reassignments({TopicPartition(topic, 0): target})
    assert all(e is None for e in errors.values()), errors
    wait("the move", lambda: replicas(boot, topic)[0] == target)
    elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu0
    admin.close()
    if throttle is not None:
        configs(boot, "TOPIC", topic, {"leader.replication.throttled.replicas": None,
                                       "follower.replication.throttled.replicas": None})
        for node in nodes:
            configs(boot, "BROKER", str(node), {"leader.replication.throttled.rate": None,
                                                "follower.replication.throttled.rate": None})
    wait("the ISR whole", lambda: sorted(replicas(boot, topic)[1]) == sorted(target))
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--throttle-mb", type=float, default=8)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    from confluent_kafka.admin import AdminClient, NewTopic

    root = Path(tempfile.mkdtemp(prefix="pyk-reassign-bench-"))
    zk_port = free_port()
    zk = start_zookeeper(root / "zookeeper", zk_port, tick_ms=500)
    hosts = [Host(i, f"127.0.0.1:{zk_port}", root) for i in range(3)]
    try:
        for h in hosts:
            h.cmd += ["--override", "replication.quota.window.num=2", "--override", "console.listener=",
                      "--override", "metrics.listener="]
            h.start()
        boot = ",".join(f"127.0.0.1:{h.port}" for h in hosts)
        wait("three nodes", lambda: len(AdminClient({"bootstrap.servers": boot}).list_topics(timeout=10).brokers) == 3)
        topic = "moved"
        new = NewTopic(topic, num_partitions=1, replication_factor=-1, replica_assignment=[[1, 101]])
        admin = AdminClient({"bootstrap.servers": boot})
        admin.create_topics([new])[topic].result(30)
        wait("the topic in sync", lambda: sorted(replicas(boot, topic)[1]) == [1, 101])
        fill(boot, topic, args.mb * MB)
        print(f"# {args.mb} MB in {topic}; load average before: {os.getloadavg()}", flush=True)
        throttle = int(args.throttle_mb * MB)
        rows: dict[str, list[tuple[float, float]]] = {"unthrottled": [], f"throttle {args.throttle_mb:g} MB/s": []}
        second = 101
        for p in range(args.passes):
            for name, limit in (("unthrottled", None), (f"throttle {args.throttle_mb:g} MB/s", throttle)):
                second = 201 if second == 101 else 101
                elapsed, cpu = move(boot, hosts, topic, [1, second], limit)
                rows[name].append((elapsed, cpu))
                print(f"pass {p} {name}: {args.mb} MB to node {second} in {elapsed:.2f} s "
                      f"({args.mb / elapsed:.1f} MB/s), broker CPU {cpu:.1f} s; load {os.getloadavg()[0]:.1f}",
                      flush=True)
        print(f"\n| move of {args.mb} MB | seconds | MB/s | broker CPU ms per MB |\n|---|---|---|---|")
        for name, vals in rows.items():
            secs = statistics.median(v[0] for v in vals)
            print(f"| {name} | {secs:.2f} ({min(v[0] for v in vals):.2f}-{max(v[0] for v in vals):.2f}) | "
                  f"{args.mb / secs:.1f} | {1000 * statistics.median(v[1] for v in vals) / args.mb:.1f} |")
        print(f"# load average after: {os.getloadavg()}")
    finally:
        for h in hosts:
            h.stop()
        os.killpg(zk.pid, signal.SIGTERM)
        zk.wait(30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
