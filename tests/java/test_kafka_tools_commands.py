"""Kafka's command-line tools give the same answers on pyk as on Apache Kafka.

Each scenario runs the same commands of TopicCommand, ConsumerGroupCommand, ConfigCommand,
TransactionsCommand and GetOffsetShell against `pyk serve` and against the reference Kafka
(`apache_kafka`), and compares exit codes and output once what must differ is normalised: node
ids (each pyk shard is a node), host:port, topic ids, producer ids, wall-clock times, column
widths. What pyk answers differently on purpose is listed in docs/compatibility.md ("Kafka's
command-line tools") and removed here by name, nothing else.

All the commands run in one JVM (tests/java/src/ToolShell.java), not one each.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyk.client import Cluster
from pyk.protocol.apis import ApiKey
from tests.helpers import BrokerProcess, Rec, confluent_produce, create_topic, wait_for
from tests.kafka import ApacheKafka, java_command, java_lib

SRC = Path(__file__).parent / "src" / "ToolShell.java"
TOPICS = "org.apache.kafka.tools.TopicCommand"
GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
CONFIGS = "kafka.admin.ConfigCommand"
TXNS = "org.apache.kafka.tools.TransactionsCommand"
OFFSETS = "org.apache.kafka.tools.GetOffsetShell"

# Topic keys only one side has (docs/compatibility.md, "Kafka's command-line tools").
ONLY_KAFKA_TOPIC_KEYS = {
    "compression.gzip.level", "compression.lz4.level", "compression.zstd.level",  # KIP-390 levels
    "local.retention.bytes", "local.retention.ms", "remote.storage.enable", "remote.log.copy.disable",
    "remote.log.delete.on.disable",  # tiered storage (KIP-405)
}
ONLY_PYK_TOPIC_KEYS = {
    "message.format.version", "message.downconversion.enable", "message.timestamp.difference.max.ms",  # Kafka 3
    "segment.writeback.bytes",  # pyk's own
}


@dataclass
class Result:
    code: int
    out: str
    err: str


class ToolShell:
    """One JVM running Kafka tools on request (tests/java/src/ToolShell.java)."""

    def __init__(self, classes: Path, stderr: Path) -> None:
        command = java_command("ToolShell")
        command[command.index("-cp") + 1] = f"{classes}:{java_lib()}/*"
        self.stderr = open(stderr, "wb")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     text=True, bufsize=1)

    def run(self, main_class: str, *args: str) -> Result:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        assert all("\t" not in a and "\n" not in a for a in args)
        self.proc.stdin.write("\t".join((main_class, *args)) + "\n")
        self.proc.stdin.flush()
        sections: dict[str, list[str]] = {"OUT": [], "ERR": []}
        current = None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"ToolShell ended (exit {self.proc.poll()}) during {main_class} {args}")
            if line.startswith("### EXIT "):
                return Result(int(line.split()[2]), "".join(sections["OUT"]), "".join(sections["ERR"]))
            if line in ("### OUT\n", "### ERR\n"):
                current = line[4:7]
            elif current is not None:
                sections[current].append(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToolShell]:
    classes = tmp_path_factory.mktemp("toolshell")
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{java_lib()}/*", str(SRC)], check=True,
                   capture_output=True, timeout=120)
    shell = ToolShell(classes, classes / "stderr.log")
    yield shell
    shell.close()


def normalise(text: str) -> str:
    """What legitimately differs between two brokers, replaced by placeholders; columns by one space."""
    # Stack traces differ in reflection frames (the JVM generates accessors after a few calls).
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("at "))
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    text = re.sub(r"TopicId: \S+", "TopicId: ID", text)
    text = re.sub(r"\b(Leader|Replicas|Isr): \d+", r"\1: N", text)
    text = re.sub(r"HOST\s+\(\d+\)", "HOST (N)", text)
    text = re.sub(r"\b1[789]\d{11}\b", "TIME", text)  # epoch milliseconds
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def table(text: str, keep: Callable[[list[str]], bool] = lambda row: True,
          blank: tuple[int, ...] = (), header: bool = True) -> list[list[str]]:
    """A tab/space separated table's rows that `keep` (after its header line, if it has one),
    with the columns `blank` (node ids, producer ids, durations) replaced by "_"."""
    rows = [line.split() for line in text.splitlines() if line.strip()]
    head, body = (rows[:1], rows[1:]) if header else ([], rows)
    return head + [["_" if j in blank else cell for j, cell in enumerate(row)] for row in body if keep(row)]


def same(pyk: list[tuple[str, object]], kafka: list[tuple[str, object]]) -> None:
    """Compares two runs step by step, naming the first step that differs."""
    assert [step for step, _ in pyk] == [step for step, _ in kafka]
    for (step, ours), (_, theirs) in zip(pyk, kafka, strict=True):
        assert ours == theirs, f"{step}: pyk and Kafka differ\npyk:   {ours!r}\nKafka: {theirs!r}"


def both(broker: BrokerProcess, kafka: ApacheKafka, scenario: Callable[[str], list[tuple[str, object]]]) -> None:
    same(scenario(broker.bootstrap), scenario(kafka.bootstrap))


def test_topic_command(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell, topic: str) -> None:
    def scenario(b: str) -> list[tuple[str, object]]:
        def run(*args: str) -> tuple[int, str, str]:
            r = tools.run(TOPICS, "--bootstrap-server", b, *args)
            # Kafka 4.1 creates topics with min.insync.replicas set cluster-wide for ELR (KIP-966).
            return r.code, re.sub(r"min\.insync\.replicas=1,?", "", normalise(r.out)), normalise(r.err)

        return [
            ("create", run("--create", "--topic", topic, "--partitions", "3", "--config", "retention.ms=100000")),
            ("create again", run("--create", "--topic", topic, "--partitions", "3")),
            ("create if not exists", run("--create", "--if-not-exists", "--topic", topic, "--partitions", "3")),
            ("describe", run("--describe", "--topic", topic)),
            ("alter partitions", run("--alter", "--topic", topic, "--partitions", "5")),
            ("alter to fewer", run("--alter", "--topic", topic, "--partitions", "2")),
            ("describe after alter", run("--describe", "--topic", topic)),
            ("list", run("--list", "--topic", topic)),
            ("describe missing", run("--describe", "--topic", f"{topic}-missing")),
            ("delete", run("--delete", "--topic", topic)),
            ("delete missing", run("--delete", "--topic", f"{topic}-missing")),
        ]

    both(broker, apache_kafka, scenario)


def _produce_spread(bootstrap: str, topic: str) -> None:
    """3 partitions holding 10, 0 and 4 records."""
    create_topic(bootstrap, topic, partitions=3)
    confluent_produce(bootstrap, topic, [Rec(key=None, value=b"v%d" % i, partition=0) for i in range(10)]
                      + [Rec(key=None, value=b"w%d" % i, partition=2) for i in range(4)])


def test_consumer_group_command(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell,
                                topic: str) -> None:
    group, other = f"{topic}-g", f"{topic}-h"

    def scenario(b: str) -> list[tuple[str, object]]:
        _produce_spread(b, topic)

        def run(*args: str) -> tuple[int, str, str]:
            r = tools.run(GROUPS, "--bootstrap-server", b, *args)
            return r.code, normalise(r.out), normalise(r.err)

        def mine(*args: str) -> tuple[int, list[list[str]]]:
            """Only this test's groups: the reference Kafka is shared by the whole run."""
            r = tools.run(GROUPS, "--bootstrap-server", b, *args)
            return r.code, table(r.out, keep=lambda row: row[0] in (group, other), header="--state" in args)

        reset = ("--reset-offsets", "--group", group)
        return [
            ("reset new group to earliest", run(*reset, "--to-earliest", "--topic", topic, "--execute")),
            ("reset other group to latest", run("--reset-offsets", "--group", other, "--to-latest",
                                                "--topic", topic, "--execute")),
            ("list", mine("--list")),
            ("list with state", mine("--list", "--state")),
            ("describe", run("--describe", "--group", group)),
            ("describe state", run("--describe", "--group", group, "--state")),
            ("describe members", run("--describe", "--group", group, "--members")),
            ("describe offsets", run("--describe", "--group", other, "--offsets")),
            ("to offset", run(*reset, "--to-offset", "5", "--topic", f"{topic}:0,2", "--execute")),
            ("shift by", run(*reset, "--shift-by", "3", "--all-topics", "--execute")),
            ("shift back", run(*reset, "--shift-by", "-7", "--topic", topic, "--execute")),
            ("to latest dry run", run(*reset, "--to-latest", "--all-topics", "--dry-run")),
            ("describe after resets", run("--describe", "--group", group)),
            ("describe missing", run("--describe", "--group", f"{group}-missing")),
            ("delete", run("--delete", "--group", other)),
            ("list after delete", mine("--list")),
        ]

    both(broker, apache_kafka, scenario)


def test_config_command(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell, topic: str) -> None:
    def scenario(b: str) -> list[tuple[str, object]]:
        create_topic(b, topic, partitions=1, config={"retention.ms": "100000"})

        def run(*args: str) -> tuple[int, str, str]:
            r = tools.run(CONFIGS, "--bootstrap-server", b, *args)
            return r.code, normalise(r.out), normalise(r.err)

        def refused(*args: str) -> tuple[int, list[str]]:
            """Exit code and exception classes: the messages are pyk's own words (compatibility.md)."""
            r = tools.run(CONFIGS, "--bootstrap-server", b, *args)
            return r.code, re.findall(r"\b(?:[a-z]+\.)+[A-Z]\w+(?:Exception|Error)\b", r.err)

        def all_keys(*args: str) -> tuple[int, list[str]]:
            r = tools.run(CONFIGS, "--bootstrap-server", b, *args)
            lines = [line for line in r.out.splitlines()
                     if line.split("=")[0].strip() not in ONLY_KAFKA_TOPIC_KEYS | ONLY_PYK_TOPIC_KEYS]
            # Kafka 4.1 sets min.insync.replicas cluster-wide for ELR (KIP-966): strip that layer.
            return r.code, [re.sub(r"DYNAMIC_DEFAULT_BROKER_CONFIG:min\.insync\.replicas=1, ", "", line)
                            for line in lines]

        def cluster_default() -> tuple[int, list[str]]:
            r = tools.run(CONFIGS, "--bootstrap-server", b, "--describe", "--entity-type", "brokers", "--entity-default")
            return r.code, [line for line in r.out.splitlines() if not line.strip().startswith("min.insync.replicas=")]

        def cluster_default_without(key: str) -> tuple[int, list[str]]:
            """The cluster default once the deletion of `key` shows: Kafka's KRaft broker applies a
            dynamic config change a moment after the tool returns."""
            def settled() -> tuple[int, list[str]] | None:
                answer = cluster_default()
                return None if any(line.strip().startswith(key + "=") for line in answer[1]) else answer
            answer: tuple[int, list[str]] = wait_for(settled, timeout=30, what=f"{key} gone from the cluster default")
            return answer

        topic_args = ("--entity-type", "topics", "--entity-name", topic)
        broker_args = ("--entity-type", "brokers", "--entity-name", "1")
        steps: list[tuple[str, object]] = [
            ("describe topic", run("--describe", *topic_args)),
            ("alter topic", run("--alter", *topic_args, "--add-config", "cleanup.policy=compact,segment.bytes=1048576")),
            ("delete topic key", run("--alter", *topic_args, "--delete-config", "retention.ms")),
            ("describe topic after", run("--describe", *topic_args)),
            ("describe topic all", all_keys("--describe", "--all", *topic_args)),
            ("bad value", refused("--alter", *topic_args, "--add-config", "segment.bytes=abc")),
            ("describe broker", run("--describe", *broker_args)),
            ("alter broker", run("--alter", *broker_args, "--add-config", "log.cleaner.backoff.ms=16000")),
            ("alter cluster default", run("--alter", "--entity-type", "brokers", "--entity-default",
                                          "--add-config", "log.retention.ms=604800000")),
            ("describe broker after", run("--describe", *broker_args)),
            ("describe cluster default", cluster_default()),
            ("read-only key", refused("--alter", *broker_args, "--add-config", "log.dirs=/tmp/x")),
        ]
        # Put the shared brokers back as they were.
        steps += [
            ("delete broker key", run("--alter", *broker_args, "--delete-config", "log.cleaner.backoff.ms")),
            ("delete cluster default", run("--alter", "--entity-type", "brokers", "--entity-default",
                                           "--delete-config", "log.retention.ms")),
            ("describe cluster default after", cluster_default_without("log.retention.ms")),
        ]
        return steps

    both(broker, apache_kafka, scenario)


HANGING_PRODUCER = textwrap.dedent("""
    import os, sys
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": sys.argv[1], "transactional.id": sys.argv[3]})
    p.init_transactions()
    p.begin_transaction()
    for i in range(3):
        p.produce(sys.argv[2], b"hanging-%d" % i, partition=0)
    p.flush()
    os._exit(0)  # no commit, no abort: the transaction stays open
""")


def test_transactions_command(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell,
                              topic: str) -> None:
    tid = f"{topic}-txn"

    def scenario(b: str) -> list[tuple[str, object]]:
        create_topic(b, topic, partitions=1)
        subprocess.run([sys.executable, "-c", HANGING_PRODUCER, b, topic, tid], check=True, timeout=60,
                       capture_output=True)

        def txns(*args: str, keep: Callable[[list[str]], bool] = lambda row: True,
                 blank: tuple[int, ...] = ()) -> tuple[int, list[list[str]], str]:
            r = tools.run(TXNS, "--bootstrap-server", b, *args)
            return r.code, table(normalise(r.out), keep, blank), normalise(r.err)

        partition = ("--topic", topic, "--partition", "0")
        return [
            # columns: TransactionalId Coordinator ProducerId TransactionState
            ("list", txns("list", keep=lambda row: row[0] == tid, blank=(1, 2))),
            # CoordinatorId TransactionalId ProducerId ProducerEpoch State TimeoutMs StartTime Duration Partitions
            ("describe", txns("describe", "--transactional-id", tid, blank=(0, 2, 7))),
            # ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTxnStartOffset
            ("describe producers", txns("describe-producers", *partition, blank=(0,))),
            ("find hanging", txns("find-hanging", "--topic", topic)),
            ("abort", txns("abort", *partition, "--start-offset", "0")),
            ("describe producers after abort", txns("describe-producers", *partition, blank=(0,))),
            ("end offset", txns_offsets(b)),
            ("describe missing", txns("describe", "--transactional-id", f"{tid}-missing")),
        ]

    def txns_offsets(b: str) -> tuple[int, str]:
        r = tools.run(OFFSETS, "--bootstrap-server", b, "--topic", topic)
        return r.code, r.out

    both(broker, apache_kafka, scenario)


def test_get_offset_shell(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell, topic: str) -> None:
    def scenario(b: str) -> list[tuple[str, object]]:
        create_topic(b, topic, partitions=3)
        # Timestamps chosen so that -3 (max timestamp) has one answer: the first record holding it.
        stamps = {0: [1_000, 3_000, 2_000, 3_000, 2_500], 2: [5_000]}
        confluent_produce(b, topic, [Rec(key=None, value=b"v", partition=p, timestamp=ts)
                                     for p, tss in stamps.items() for ts in tss])

        def run(*args: str) -> tuple[int, str, str]:
            r = tools.run(OFFSETS, "--bootstrap-server", b, *args)
            return r.code, r.out, normalise(r.err)

        steps: list[tuple[str, object]] = [(f"time {t}", run("--topic", topic, "--time", t))
                                           for t in ("-1", "-2", "-3", "-4", "-5", "0", "2000", "2600", "9999")]
        return steps + [
            ("topic-partitions", run("--topic-partitions", f"{topic}:0-1,{topic}:2")),
            ("partitions", run("--topic", topic, "--partitions", "0,2", "--time", "latest")),
            ("earliest by name", run("--topic", topic, "--time", "earliest")),
            ("unknown topic", run("--topic", f"{topic}-missing")),
        ]

    both(broker, apache_kafka, scenario)


def test_describe_topic_partitions_pages_as_kafka(broker: BrokerProcess, apache_kafka: ApacheKafka,
                                                  topic: str) -> None:
    """DescribeTopicPartitions (what kafka-topics --describe asks): the same topics, errors, pages and
    cursors as Kafka's, leaders aside."""
    a, b = f"{topic}-a", f"{topic}-b"
    requests = [
        {"topics": [{"name": a}, {"name": f"{topic}-missing"}, {"name": "bad name"}],
         "response_partition_limit": 3, "cursor": None},
        {"topics": [{"name": a}, {"name": b}], "response_partition_limit": 3,
         "cursor": {"topic_name": a, "partition_index": 3}},
        {"topics": [{"name": b}, {"name": a}], "response_partition_limit": 5, "cursor": None},
        {"topics": [{"name": a}], "response_partition_limit": 2000, "cursor": {"topic_name": b, "partition_index": 0}},
        {"topics": [{"name": a}], "response_partition_limit": 2000, "cursor": {"topic_name": a, "partition_index": -1}},
        {"topics": [{"name": a}, {"name": b}], "response_partition_limit": 5, "cursor": {"topic_name": b, "partition_index": 7}},
    ]

    async def answers(bootstrap: str) -> list[object]:
        cluster = await Cluster.connect(bootstrap)
        try:
            # Kafka's broker learns a new topic from its controller a moment after CreateTopics answers.
            both_known = {"topics": [{"name": a}, {"name": b}], "response_partition_limit": 2000, "cursor": None}
            deadline = time.monotonic() + 20
            while any(t["error_code"] for t in (await cluster.conn.request(
                    ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, both_known))["topics"]):
                assert time.monotonic() < deadline, f"{a} and {b} not known to {bootstrap}"
                await asyncio.sleep(0.05)
            out: list[object] = []
            for request in requests:
                r = await cluster.conn.request(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, request)
                out.append(([(t["error_code"], t["name"], t["is_internal"],
                              [(p["error_code"], p["partition_index"], len(p["replica_nodes"]), len(p["isr_nodes"]),
                                p["eligible_leader_replicas"], p["last_known_elr"]) for p in t["partitions"]])
                             for t in r["topics"]], r["next_cursor"]))
            return out
        finally:
            cluster.close()

    def scenario(bootstrap: str) -> list[tuple[str, object]]:
        create_topic(bootstrap, a, partitions=5)
        create_topic(bootstrap, b, partitions=1)
        return list(zip(map(str, range(len(requests))), asyncio.run(answers(bootstrap)), strict=True))

    both(broker, apache_kafka, scenario)


def test_consumer_group_command_with_a_member(broker: BrokerProcess, apache_kafka: ApacheKafka, tools: ToolShell,
                                              topic: str) -> None:
    """A group with a live member (librdkafka, classic protocol): its id, client id, host and
    assignment as kafka-consumer-groups shows them."""
    from confluent_kafka import Consumer, TopicPartition

    group = f"{topic}-g"

    def scenario(b: str) -> list[tuple[str, object]]:
        _produce_spread(b, topic)
        consumer = Consumer({"bootstrap.servers": b, "group.id": group, "client.id": "tools-test",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        try:
            consumer.subscribe([topic])
            deadline = time.monotonic() + 60
            while len(consumer.assignment()) < 3:
                assert time.monotonic() < deadline, "no assignment"
                consumer.poll(0.2)
            consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)

            def run(*args: str) -> tuple[int, str, str]:
                r = tools.run(GROUPS, "--bootstrap-server", b, "--describe", "--group", group, *args)
                return r.code, re.sub(r"tools-test-[0-9a-f-]{36}", "MEMBER", normalise(r.out)), normalise(r.err)

            return [("describe", run()), ("members", run("--members", "--verbose")), ("state", run("--state"))]
        finally:
            consumer.close()

    both(broker, apache_kafka, scenario)
