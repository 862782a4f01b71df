"""Topic administration and configs, pyk against Apache Kafka: CreateTopics, DeleteTopics,
CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs.

Every request goes byte for byte to both brokers (tests/differential/peer.py); the answers must
match field by field, up to the differences docs/compatibility.md lists ("Differential tests").
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pyk.protocol import ApiKey
from tests.differential.conftest import Pair
from tests.differential.peer import TIMEOUT_S, Known, Peer, extra_message

TOPIC = 2  # DescribeConfigs resource types
BROKER = 4


def create(p: Peer, topics: list[dict[str, Any]], validate_only: bool = False, version: int = 7) -> dict[str, Any]:
    for t in topics:
        t.setdefault("num_partitions", 1)
        t.setdefault("replication_factor", 1)
    return p.call(ApiKey.CREATE_TOPICS, version, {"topics": topics, "timeout_ms": 30000,
                                                  "validate_only": validate_only})  # fmt: skip


def by_name(items: list[dict[str, Any]], key: str = "name") -> dict[str, Any]:
    return {item[key]: item for item in items}


# Topic keys only one side has (docs/compatibility.md, "Topic configs"): Kafka's compression
# levels (KIP-390) and tiered storage; pyk's keys Kafka 4 removed, and its own
# segment.writeback.bytes.
KAFKA_ONLY_KEYS = frozenset({
    "compression.gzip.level", "compression.lz4.level", "compression.zstd.level", "local.retention.bytes",
    "local.retention.ms", "remote.log.copy.disable", "remote.log.delete.on.disable", "remote.storage.enable",
})  # fmt: skip
PYK_ONLY_KEYS = frozenset({"message.downconversion.enable", "message.format.version",
                           "message.timestamp.difference.max.ms", "segment.writeback.bytes"})


def topic_configs(p: Peer, entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The topic's config entries by name, less the keys only one side has (asserted present on
    that side only)."""
    configs = by_name(entries or [])
    if not configs:  # a topic in error
        return configs
    mine, theirs = (KAFKA_ONLY_KEYS, PYK_ONLY_KEYS) if p.name == "kafka" else (PYK_ONLY_KEYS, KAFKA_ONLY_KEYS)
    assert mine <= configs.keys() and not theirs & configs.keys(), sorted(configs)
    return {k: v for k, v in configs.items() if k not in mine}


def min_isr_known(*path: str | int, overridden: bool = False) -> list[Known]:
    """Kafka's controller stores min.insync.replicas as a cluster-wide dynamic default
    (DYNAMIC_DEFAULT_BROKER_CONFIG, 3); pyk has it from its built-in default (5)."""
    entry = (*path, "configs", "min.insync.replicas")
    kafka = [{"name": "min.insync.replicas", "value": "1", "source": s} for s in (3, 5)]
    pyk = [{"name": "min.insync.replicas", "value": "1", "source": 5}]
    if overridden:
        topic = {"name": "min.insync.replicas", "value": "1", "source": 1}
        return [Known((*entry, "synonyms"), [topic, *kafka], [topic, *pyk])]
    return [Known((*entry, "config_source"), 3, 5), Known((*entry, "synonyms"), kafka, pyk)]


def test_create_existing_topic(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return create(p, [{"name": topic}])

    pair.same(scenario)


def test_create_invalid_names(pair: Pair, topic: str) -> None:
    names = ["", ".", "..", "a" * 250, "bad name!", "bad/name", f"{topic}.x"]

    def scenario(p: Peer) -> Any:
        p.create_topic(f"{topic}_x")  # collides with "<topic>.x" ('.' and '_' clash in metric names)
        return by_name(create(p, [{"name": n} for n in names], validate_only=True)["topics"])

    pair.same(scenario)


def test_create_bad_partition_counts_and_replication_factors(pair: Pair, topic: str) -> None:
    cases = {"p0": (0, 1), "pm2": (-2, 1), "pdefault": (-1, 1), "r0": (1, 0), "rm2": (1, -2), "r2": (1, 2),
             "rdefault": (1, -1)}  # fmt: skip

    def scenario(p: Peer) -> Any:
        topics = [{"name": f"{topic}-{k}", "num_partitions": n, "replication_factor": r} for k, (n, r) in cases.items()]
        return by_name(create(p, topics, validate_only=True)["topics"])

    pair.same(scenario, drop={"configs"})


def test_create_validate_only_creates_nothing(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        created = create(p, [{"name": topic, "num_partitions": 3,
                              "configs": [{"name": "retention.ms", "value": "3600000"}]}], validate_only=True)
        topics = p.metadata([topic])["topics"]
        result = created["topics"][0]
        result["configs"] = topic_configs(p, result["configs"])
        return {"created": created, "metadata": [(t["name"], t["error_code"]) for t in topics]}

    pair.same(scenario, known=[Known(("created", "topics", 0, "configs", "min.insync.replicas", "config_source"), 3, 5)])


def test_create_returns_configs(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        created = create(p, [{"name": topic, "num_partitions": 2, "configs": [
            {"name": "cleanup.policy", "value": "compact"}, {"name": "max.message.bytes", "value": "2048"}]}])
        result = created["topics"][0]
        result["configs"] = topic_configs(p, result["configs"])
        return created

    pair.same(scenario, known=[Known(("topics", 0, "configs", "min.insync.replicas", "config_source"), 3, 5)])


def test_create_invalid_configs(pair: Pair, topic: str) -> None:
    cases = {"policy": ("cleanup.policy", "bogus"), "unknown": ("no.such.config", "1"),
             "negative": ("segment.bytes", "-1"), "notanumber": ("retention.ms", "soon"),
             "null": ("retention.ms", None)}  # fmt: skip

    def scenario(p: Peer) -> Any:
        topics = [{"name": f"{topic}-{k}", "configs": [{"name": n, "value": v}]} for k, (n, v) in cases.items()]
        return by_name(create(p, topics, validate_only=True)["topics"])

    pair.same(scenario, drop={"configs"})


def test_create_duplicate_topic_in_one_request(pair: Pair, topic: str) -> None:
    pair.same(lambda p: create(p, [{"name": topic}, {"name": topic}]))


def test_delete_unknown_topics(pair: Pair, topic: str) -> None:
    unknown_id = uuid.uuid4()

    def scenario(p: Peer) -> Any:
        v6 = p.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": uuid.UUID(int=0)},
                                                         {"name": None, "topic_id": unknown_id}],
                                              "timeout_ms": 30000})  # fmt: skip
        v5 = p.call(ApiKey.DELETE_TOPICS, 5, {"topic_names": [topic], "timeout_ms": 30000})
        v6["responses"].sort(key=lambda r: r["name"] or "")  # Kafka answers the ids first
        return {"v6": v6, "v5": v5}

    pair.same(scenario)


def test_delete_then_describe(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        deleted = p.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": uuid.UUID(int=0)}],
                                                   "timeout_ms": 30000})  # fmt: skip
        again = p.call(ApiKey.DELETE_TOPICS, 6, {"topics": [{"name": topic, "topic_id": uuid.UUID(int=0)}],
                                                 "timeout_ms": 30000})  # fmt: skip
        return {"deleted": deleted, "again": again}

    pair.same(scenario)


def test_create_partitions_fewer_same_more(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic, partitions=3)

        def grow(count: int, validate_only: bool = False, name: str = topic) -> Any:
            return p.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": [{"name": name, "count": count, "assignments": None}],
                                                        "timeout_ms": 30000, "validate_only": validate_only})

        out = {"fewer": grow(2), "same": grow(3), "zero": grow(0), "validate": grow(5, validate_only=True),
               "unknown": grow(4, name=f"{topic}-none"), "more": grow(4)}  # fmt: skip
        deadline = time.monotonic() + TIMEOUT_S  # Kafka answers before its metadata has the new partition
        while (count := len(p.metadata([topic])["topics"][0]["partitions"])) != 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        out["after"] = count
        return out

    pair.same(scenario, known=[extra_message("unknown", "results", 0)])


def test_create_partitions_duplicate_topic(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        twice = [{"name": topic, "count": 2, "assignments": None}] * 2
        return p.call(ApiKey.CREATE_PARTITIONS, 3, {"topics": twice, "timeout_ms": 30000, "validate_only": False})

    pair.same(scenario)


# Configs ---------------------------------------------------------------------------------------


def describe(p: Peer, resources: list[tuple[int, str, list[str] | None]], synonyms: bool = True,
             version: int = 4) -> dict[str, Any]:
    body = {"resources": [{"resource_type": t, "resource_name": n, "configuration_keys": keys} for t, n, keys in resources],
            "include_synonyms": synonyms, "include_documentation": False}  # fmt: skip
    resp = p.call(ApiKey.DESCRIBE_CONFIGS, version, body)
    for r in resp["results"]:
        r["configs"] = topic_configs(p, r["configs"]) if r["resource_type"] == TOPIC and not keys_given(
            body) else by_name(r["configs"])
    return resp


def keys_given(body: dict[str, Any]) -> bool:
    return any(r["configuration_keys"] is not None for r in body["resources"])


def test_describe_topic_configs_defaults(pair: Pair, topic: str) -> None:
    """Every topic key Kafka lists, with its default value, source, read-only and sensitive flags."""

    def scenario(p: Peer) -> Any:
        p.create_topic(topic)
        return describe(p, [(TOPIC, topic, None)])

    pair.same(scenario, known=min_isr_known("results", 0))


def test_describe_topic_config_overrides_and_synonyms(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic, configs={"retention.ms": "7200000", "cleanup.policy": "compact,delete",
                                       "min.insync.replicas": "1"})
        keys = ["retention.ms", "cleanup.policy", "min.insync.replicas", "segment.bytes", "no.such.key"]
        return describe(p, [(TOPIC, topic, keys)])

    pair.same(scenario, known=min_isr_known("results", 0, overridden=True))


def test_describe_configs_unknown_and_bad_resources(pair: Pair, topic: str) -> None:
    resources = [(TOPIC, topic, None), (TOPIC, "", None), (BROKER, "not-a-number", None),
                 (BROKER, "99", ["message.max.bytes"]), (7, "x", None)]  # fmt: skip

    def scenario(p: Peer) -> Any:
        return [describe(p, [resource]) for resource in resources]

    # Kafka's message for an unknown topic is empty; pyk names the topic.
    pair.same(scenario, known=[Known((0, "results", 0, "error_message"), "", "<text>")])


# Broker keys a client or admin tool reads (the fixtures' own overrides are left out: their
# sources differ by construction).
BROKER_KEYS = [
    "message.max.bytes", "num.partitions", "default.replication.factor", "auto.create.topics.enable",
    "log.retention.hours", "log.retention.ms", "log.retention.bytes", "log.segment.bytes", "log.cleanup.policy",
    "compression.type", "min.insync.replicas", "offsets.topic.num.partitions", "offsets.retention.minutes",
    "transaction.max.timeout.ms", "transactional.id.expiration.ms", "group.min.session.timeout.ms",
    "group.max.session.timeout.ms", "group.max.size", "delete.topic.enable", "log.message.timestamp.type",
    "unclean.leader.election.enable", "log.cleaner.enable", "log.roll.hours", "socket.request.max.bytes", "log.flush.interval.messages",
]  # fmt: skip


def test_describe_broker_configs(pair: Pair) -> None:
    def scenario(p: Peer) -> Any:
        node = str(p.metadata([])["controller_id"])
        resp = describe(p, [(BROKER, node, BROKER_KEYS)])
        resp["results"][0]["resource_name"] = "<node>"
        return resp

    pair.same(scenario, known=min_isr_known("results", 0))


# PASSWORD-typed broker keys, which neither broker of the pair sets: no value, is_sensitive.
PASSWORD_KEYS = ["ssl.key.password", "ssl.keystore.password", "ssl.truststore.password", "sasl.jaas.config"]


def test_describe_broker_password_keys(pair: Pair) -> None:
    """Everything as Kafka but read_only: Kafka reloads them per listener at run time, pyk does not
    (docs/compatibility.md)."""
    def scenario(p: Peer) -> Any:
        node = str(p.metadata([])["controller_id"])
        resp = describe(p, [(BROKER, node, PASSWORD_KEYS)])
        resp["results"][0]["resource_name"] = "<node>"
        return resp

    pair.same(scenario, known=[Known(("results", 0, "configs", k, "read_only"), False, True) for k in PASSWORD_KEYS])


def test_alter_topic_configs(pair: Pair, topic: str) -> None:
    def scenario(p: Peer) -> Any:
        p.create_topic(topic)

        def incremental(name: str, op: int, value: str | None, validate_only: bool = False) -> Any:
            body = {"resources": [{"resource_type": TOPIC, "resource_name": topic,
                                   "configs": [{"name": name, "config_operation": op, "value": value}]}],
                    "validate_only": validate_only}  # fmt: skip
            return p.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, body)

        out = {
            "set": incremental("retention.ms", 0, "60000"),
            "bad_value": incremental("retention.ms", 0, "soon"),
            "unknown_key": incremental("no.such.key", 0, "1"),
            "bad_op": incremental("retention.ms", 9, "1"),
            "append": incremental("cleanup.policy", 2, "compact"),
            "subtract_non_list": incremental("retention.ms", 3, "1"),
            "validate_only": incremental("segment.bytes", 0, "1048576", validate_only=True),
            "unknown_topic": p.call(ApiKey.INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [
                {"resource_type": TOPIC, "resource_name": f"{topic}-none",
                 "configs": [{"name": "retention.ms", "config_operation": 0, "value": "1"}]}], "validate_only": False}),
            "legacy_alter": p.call(ApiKey.ALTER_CONFIGS, 2, {"resources": [
                {"resource_type": TOPIC, "resource_name": topic,
                 "configs": [{"name": "max.message.bytes", "value": "4096"}]}], "validate_only": False}),
        }  # fmt: skip
        out["described"] = describe(p, [(TOPIC, topic, ["retention.ms", "cleanup.policy", "segment.bytes",
                                                        "max.message.bytes"])])
        return out

    # An operation code Kafka does not know fails its parsing (UNKNOWN_SERVER_ERROR, no message);
    # pyk answers INVALID_REQUEST naming the operation.
    pair.same(scenario, known=[Known(("bad_op", "responses", 0, "error_code"), -1, 42),
                               extra_message("bad_op", "responses", 0)])


def test_metadata_of_topics(pair: Pair, topic: str) -> None:
    """Topic metadata; which node leads a partition is the brokers' own (a pyk shard each), so
    node ids are only checked to be a single live node."""

    def scenario(p: Peer) -> Any:
        p.create_topic(topic, partitions=2)
        body = {"topics": [{"name": topic}, {"name": f"{topic}-none"}, {"name": "bad name!"}],
                "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}  # fmt: skip
        resp = p.call(ApiKey.METADATA, 12, body)
        nodes = {b["node_id"] for b in resp["brokers"]}
        for t in resp["topics"]:
            t["partitions"].sort(key=lambda part: part["partition_index"])
            for part in t["partitions"]:
                assert part["leader_id"] in nodes and part["replica_nodes"] == part["isr_nodes"] == [part["leader_id"]]
                part["leader_id"] = part["replica_nodes"] = part["isr_nodes"] = "<one live node>"
        return {"topics": sorted(resp["topics"], key=lambda t: t["name"]),
                "controller_is_a_broker": resp["controller_id"] in nodes}

    pair.same(scenario)
