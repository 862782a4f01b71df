"""DescribeLogDirs against real clients: kafka-python's admin client and Kafka's own
`kafka-log-dirs.sh --describe` (LogDirsCommand) see each shard's directory and the size of
every partition it holds, equal to the bytes of the partition's segment files."""

from __future__ import annotations

import json

from tests.helpers import BrokerProcess, Rec, confluent_produce, create_topic
from tests.kafka import run_java


def _segment_bytes(broker: BrokerProcess, topic: str, partition: int) -> int:
    return sum(f.stat().st_size for f in broker.partition_dir(topic, partition).glob("*.log"))


def test_kafka_python_describe_log_dirs(broker: BrokerProcess, topic: str) -> None:
    from kafka.admin import KafkaAdminClient

    create_topic(broker.bootstrap, topic, partitions=2)
    confluent_produce(broker.bootstrap, topic, [Rec(None, b"v" * 100, partition=i % 2) for i in range(50)])
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        sizes: dict[int, int] = {}
        dirs = set()
        for broker_dirs in admin.describe_log_dirs():  # every node, v4 (total and usable bytes)
            for d in broker_dirs["log_dirs"]:
                assert d["error_code"] == 0 and 0 < d["usable_bytes"] <= d["total_bytes"]
                dirs.add(d["log_dir"])
                for t in d["topics"]:
                    if t["name"] == topic:
                        sizes.update({p["partition_index"]: p["partition_size"] for p in t["partitions"]})
    finally:
        admin.close()
    assert sizes == {p: _segment_bytes(broker, topic, p) for p in (0, 1)}
    assert all(size > 2500 for size in sizes.values())
    assert dirs == {str(d) for d in broker.shard_dirs()}


def test_kafka_log_dirs_command(broker: BrokerProcess, topic: str) -> None:
    create_topic(broker.bootstrap, topic, partitions=1)
    confluent_produce(broker.bootstrap, topic, [Rec(None, b"x" * 10) for _ in range(5)])
    done = run_java("org.apache.kafka.tools.LogDirsCommand", "--bootstrap-server", broker.bootstrap, "--describe",
                    "--topic-list", topic)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    found = [(p["partition"], p["size"]) for b in report["brokers"] for d in b["logDirs"] for p in d["partitions"]]
    assert found == [(f"{topic}-0", _segment_bytes(broker, topic, 0))]
