"""`pyk produce`, `pyk consume` and `pyk configs` against a real broker, checked with another
client (confluent-kafka's consumer and AdminClient) on the other side."""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka import TopicPartition
from confluent_kafka.admin import ConfigResource, ConfigSource, ResourceType

from tests.helpers import REPO, confluent_admin, confluent_consume, confluent_consumer, create_topic, wait_for


def _pyk(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pyk", *args], cwd=REPO, input=stdin, capture_output=True,
                          timeout=120)


def _consume(bootstrap: str, topic: str, *args: str) -> list[str]:
    out = _pyk("consume", topic, "-b", bootstrap, *args)
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().splitlines()


def test_produce_keys_headers_and_formats(broker, topic) -> None:
    create_topic(broker.bootstrap, topic, partitions=2)
    out = _pyk("produce", topic, "-b", broker.bootstrap, "-p", "1", "-K", ":", "-H", "src=cli", "-H", "n=1",
               "-T", "1700000000000", stdin=b"k1:v1\nk2:v:2\nno-key\n")
    assert out.returncode == 0, out.stderr.decode()
    assert b"produced 3 records" in out.stderr

    lines = _consume(broker.bootstrap, topic, "-p", "1", "-e", "-f", "%p|%o|%k|%s|%h|%T|%K|%S\\n")
    assert lines == ["1|0|k1|v1|src=cli,n=1|1700000000000|2|2",
                     "1|1|k2|v:2|src=cli,n=1|1700000000000|2|3",
                     "1|2||no-key|src=cli,n=1|1700000000000|-1|6"]
    seen = confluent_consume(broker.bootstrap, topic, partition=1, count=3)
    assert [(r.key, r.value, r.headers) for r in seen] == [
        (b"k1", b"v1", (("src", b"cli"), ("n", b"1"))), (b"k2", b"v:2", (("src", b"cli"), ("n", b"1"))),
        (None, b"no-key", (("src", b"cli"), ("n", b"1")))]


def test_consume_offset_and_timestamp_ranges(broker, topic) -> None:
    create_topic(broker.bootstrap, topic)
    for ts, values in ((1_700_000_000_000, b"a0\na1\na2\n"), (1_700_000_100_000, b"b0\nb1\nb2\n")):
        assert _pyk("produce", topic, "-b", broker.bootstrap, "-T", str(ts), stdin=values).returncode == 0
    assert _consume(broker.bootstrap, topic, "-e") == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert _consume(broker.bootstrap, topic, "-o", "2", "--to", "5", "-f", "%o %s\\n") == ["2 a2", "3 b0", "4 b1"]
    assert _consume(broker.bootstrap, topic, "-o", "-2", "-e") == ["b1", "b2"]
    assert _consume(broker.bootstrap, topic, "-o", "s@1700000050000", "-e") == ["b0", "b1", "b2"]
    assert _consume(broker.bootstrap, topic, "--to", "e@1700000050000") == ["a0", "a1", "a2"]
    assert _consume(broker.bootstrap, topic, "-c", "4") == ["a0", "a1", "a2", "b0"]
    assert _consume(broker.bootstrap, topic, "-o", "end", "--to", "end") == []


def test_consume_as_a_group_commits(broker, topic, tmp_path) -> None:
    create_topic(broker.bootstrap, topic, partitions=2)
    (tmp_path / "records").write_bytes(b"".join(b"%d\n" % i for i in range(25)))
    assert _pyk("produce", topic, "-b", broker.bootstrap, "-p", "0", "--file", str(tmp_path / "records")).returncode == 0
    more = b"".join(b"%d\n" % i for i in range(25, 40))
    assert _pyk("produce", topic, "-b", broker.bootstrap, "-p", "1", stdin=more).returncode == 0
    group = f"g-{topic}"
    lines = _consume(broker.bootstrap, topic, "-G", group, "--to", "end")
    assert sorted(int(v) for v in lines) == list(range(40))
    consumer = confluent_consumer(broker.bootstrap, **{"group.id": group})
    try:
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        ends = [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in (0, 1)]
    finally:
        consumer.close()
    assert [tp.offset for tp in committed] == ends == [25, 15]
    assert _consume(broker.bootstrap, topic, "-G", group, "-e") == []  # resumes at its committed offsets


def test_configs_describe_and_alter(broker, topic) -> None:
    create_topic(broker.bootstrap, topic)
    out = _pyk("configs", "-b", broker.bootstrap, "alter", "--topic", topic, "--set", "retention.ms=1234567",
               "--set", "cleanup.policy=compact")
    assert out.returncode == 0, out.stderr.decode()
    admin = confluent_admin(broker.bootstrap)
    resource = ConfigResource(ResourceType.TOPIC, topic)

    def described() -> dict:
        return admin.describe_configs([resource])[resource].result(timeout=20)

    entries = wait_for(lambda: (d := described())["retention.ms"].value == "1234567" and d,
                       what="the altered retention.ms")
    assert entries["cleanup.policy"].value == "compact"
    table = _pyk("configs", "-b", broker.bootstrap, "describe", "--topic", topic).stdout.decode()
    assert "retention.ms" in table and "1234567" in table and "cleanup.policy" in table
    assert "segment.bytes" not in table  # a default: listed only with --all
    assert "segment.bytes" in _pyk("configs", "-b", broker.bootstrap, "describe", "--topic", topic, "--all").stdout.decode()

    assert _pyk("configs", "-b", broker.bootstrap, "alter", "--topic", topic, "--delete", "retention.ms").returncode == 0
    wait_for(lambda: described()["retention.ms"].value != "1234567", what="retention.ms back to its default")
    node = _pyk("configs", "-b", broker.bootstrap, "describe", "--broker", "1", "--all").stdout.decode()
    assert "log.retention.hours" in node
    missing = _pyk("configs", "-b", broker.bootstrap, "describe", "--topic", f"{topic}-missing")
    assert missing.returncode == 1 and b"UNKNOWN_TOPIC_OR_PART: topic" in missing.stderr


def test_configs_alter_broker_and_cluster_default(broker) -> None:
    """`--broker ID` alters one node; `--broker` alone, the cluster-wide default every node takes
    (librdkafka cannot name it: pyk's own client does), each seen by confluent-kafka's AdminClient
    with its source."""
    admin = confluent_admin(broker.bootstrap)
    node = str(min(n.id for n in admin.describe_cluster().result(timeout=20).nodes))
    resource = ConfigResource(ResourceType.BROKER, node)

    def described() -> tuple[str, int]:
        entry = admin.describe_configs([resource])[resource].result(timeout=20)["message.max.bytes"]
        return entry.value, entry.source

    out = _pyk("configs", "-b", broker.bootstrap, "alter", "--broker", "--set", "message.max.bytes=1500000")
    assert out.returncode == 0 and b"altered 1 set" in out.stdout, out.stderr.decode()
    wait_for(lambda: described() == ("1500000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
             what="the cluster default on the node")
    defaults = _pyk("configs", "-b", broker.bootstrap, "describe", "--broker").stdout.decode()
    assert "message.max.bytes" in defaults and "1500000" in defaults and "DYNAMIC_DEFAULT_BROKER_CONFIG" in defaults

    out = _pyk("configs", "-b", broker.bootstrap, "alter", "--broker", node, "--set", "message.max.bytes=1200000")
    assert out.returncode == 0, out.stderr.decode()
    wait_for(lambda: described() == ("1200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), what="the node's own value")
    for which in ((node,), ()):
        out = _pyk("configs", "-b", broker.bootstrap, "alter", "--broker", *which, "--delete", "message.max.bytes")
        assert out.returncode == 0, out.stderr.decode()
    wait_for(lambda: described()[1] != ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value
             and described()[1] != ConfigSource.DYNAMIC_BROKER_CONFIG.value, what="both layers deleted")

    refused = _pyk("configs", "-b", broker.bootstrap, "alter", "--broker", "--set", "log.dirs=/elsewhere")
    assert refused.returncode == 1 and b"error:" in refused.stderr and b"Traceback" not in refused.stderr
