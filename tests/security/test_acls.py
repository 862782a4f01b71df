"""ACL authorization against real clients: an authorization matrix (principals x operations x
resources, each case's allow or deny asserted through confluent-kafka, kafka-python or a raw
socket over SASL/PLAIN: MATRIX and ADMIN_MATRIX, 76 cases, counted in docs/security.md), the
ACL APIs through confluent-kafka's AdminClient, the audit line of a denial, ACLs surviving a
restart, and `allow.everyone.if.no.acl.found` both ways.

The broker under test: authorizer.class.name=kafka.security.authorizer.AclAuthorizer,
super.users=User:admin;User:ANONYMOUS (the PLAINTEXT listener carries the shards' own requests
to each other, as Kafka's inter-broker principal needs to be a super user), PLAIN users alice,
bob, carol, dave, frank (ALTER_CONFIGS on the cluster) and grace (ALTER on it) on SASL_PLAINTEXT.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.pki import Pki

USERS = ("admin", "alice", "bob", "carol", "dave", "frank", "grace")
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" ' + " ".join(f'user_{u}="{u}-secret"' for u in USERS) + ";")
AUTHORIZER = {"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer",
              "super.users": "User:admin;User:ANONYMOUS",
              "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS}
TOPICS = ("orders", "logs-app", "logs-secret", "public", "private")
OK = "OK"


def acl_broker(workdir: Path, pki: Pki, **extra: Any) -> SecureBroker:
    return secure_broker(workdir, pki, log_level="DEBUG", **{**AUTHORIZER, **extra})


def sasl(user: str) -> dict[str, Any]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": f"{user}-secret"}


def admin_client(broker: SecureBroker, user: str = "admin") -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user)})


def binding(principal: str | None, operation: str, resource: str, name: str | None, pattern: str = "LITERAL",
            permission: str = "ALLOW", host: str | None = "*", kind: str = "AclBinding") -> Any:
    """A confluent-kafka AclBinding (or, `kind="AclBindingFilter"`, a filter: None matches any)."""
    from confluent_kafka import admin

    return getattr(admin, kind)(admin.ResourceType[resource], name, admin.ResourcePatternType[pattern], principal,
                                host, admin.AclOperation[operation], admin.AclPermissionType[permission])


def create_acls(broker: SecureBroker, bindings: list[Any]) -> None:
    admin = admin_client(broker)
    for future in admin.create_acls(bindings, request_timeout=15).values():
        future.result(20)


# The ACLs of the matrix: prefixed and literal patterns, the wildcard principal, a DENY beating
# an ALLOW (bob's READ on logs-secret, dave's ALL on public).
MATRIX_ACLS = [
    ("User:alice", "WRITE", "TOPIC", "orders", "LITERAL", "ALLOW"),
    ("User:alice", "READ", "TOPIC", "orders", "LITERAL", "ALLOW"),
    ("User:alice", "DESCRIBE_CONFIGS", "TOPIC", "orders", "LITERAL", "ALLOW"),
    ("User:alice", "READ", "GROUP", "g-alice", "LITERAL", "ALLOW"),
    ("User:alice", "CREATE", "TOPIC", "alice-", "PREFIXED", "ALLOW"),
    ("User:bob", "ALL", "TOPIC", "logs-", "PREFIXED", "ALLOW"),
    ("User:bob", "READ", "TOPIC", "logs-secret", "LITERAL", "DENY"),
    ("User:bob", "READ", "GROUP", "bob-", "PREFIXED", "ALLOW"),
    ("User:bob", "WRITE", "TRANSACTIONAL_ID", "tx-bob", "LITERAL", "ALLOW"),
    ("User:*", "READ", "TOPIC", "public", "LITERAL", "ALLOW"),
    ("User:*", "READ", "GROUP", "shared", "LITERAL", "ALLOW"),
    ("User:dave", "ALL", "TOPIC", "public", "LITERAL", "DENY"),
    ("User:frank", "ALTER_CONFIGS", "BROKER", "kafka-cluster", "LITERAL", "ALLOW"),
    ("User:grace", "ALTER", "BROKER", "kafka-cluster", "LITERAL", "ALLOW"),
    ("User:carol", "DESCRIBE", "GROUP", "bob-848", "LITERAL", "ALLOW"),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[SecureBroker]:
    from confluent_kafka.admin import NewTopic

    b = acl_broker(tmp_path_factory.mktemp("pyk-acl"), pki)
    b.start()
    try:
        admin = admin_client(b)
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in TOPICS], operation_timeout=10).values():
            future.result(20)
        for topic in TOPICS:
            assert produce(b, "admin", topic) == OK
        create_acls(b, [binding(p, op, r, n, pt, perm) for p, op, r, n, pt, perm in MATRIX_ACLS])
        yield b
    finally:
        stop_and_check(b)


def _code(err: Any) -> str:
    return str(err.name() if hasattr(err, "name") else err)


# The operations, each through a real client as `user`; OK or the Kafka error's name ----------------
def produce(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import Producer

    errors: list[str] = []
    p = Producer({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user),
                  "message.timeout.ms": 10000})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(_code(err)) if err else None)
    assert p.flush(15) == 0
    return errors[0] if errors else OK


def consume(broker: SecureBroker, user: str, topic: str, group: str) -> str:
    """Subscribe in `group`, read a record, commit it: the group join, fetch and commit path."""
    from confluent_kafka import Consumer, KafkaException

    c = Consumer({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user), "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000})
    try:
        c.subscribe([topic])
        deadline_polls = 60
        for _ in range(deadline_polls):
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                return _code(msg.error())
            try:
                c.commit(msg, asynchronous=False)
            except KafkaException as exc:
                return _code(exc.args[0])
            return OK
        return "TIMED_OUT"
    finally:
        c.close()


def visible_topics(broker: SecureBroker, user: str) -> set[str]:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user)})
    return set(admin.list_topics(timeout=15).topics) & set(TOPICS)


def create(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import NewTopic

    admin = admin_client(broker, user)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10)[topic].result(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    return OK


def describe_configs(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import ConfigResource

    admin = admin_client(broker, user)
    try:
        for future in admin.describe_configs([ConfigResource("topic", topic)], request_timeout=15).values():
            future.result(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    return OK


def transaction(broker: SecureBroker, user: str, transactional_id: str, topic: str) -> str:
    """init_transactions, produce, commit_transaction."""
    from confluent_kafka import KafkaException, Producer

    p = Producer({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user),
                  "transactional.id": transactional_id, "transaction.timeout.ms": 10000})
    try:
        p.init_transactions(20)
        p.begin_transaction()
        p.produce(topic, b"in-txn")
        p.commit_transaction(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    return OK


_SERIAL = itertools.count(1)


def _new(prefix: str) -> str:
    """A topic name no other case uses; numbered, not random, so that every pytest-xdist worker
    collects the same test ids."""
    return f"{prefix}{next(_SERIAL)}"


Case = tuple[str, Callable[..., Any], tuple[Any, ...], Any]
# (principal, operation, its arguments, expected): each row one authorization decision made by a
# real client's request.  Counted in docs/security.md.
MATRIX: list[Case] = [
    # produce: WRITE on the topic
    ("alice", produce, ("orders",), OK),
    ("alice", produce, ("logs-app",), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", produce, ("logs-app",), OK),  # PREFIXED ALL
    ("bob", produce, ("logs-secret",), OK),  # DENY READ does not deny WRITE
    ("carol", produce, ("orders",), "TOPIC_AUTHORIZATION_FAILED"),  # no ACL for carol
    ("carol", produce, ("public",), "TOPIC_AUTHORIZATION_FAILED"),  # User:* may READ, not WRITE
    ("admin", produce, ("private",), OK),  # super user, no ACL on the topic
    # consume in a group and commit: READ on the group and on the topic
    ("alice", consume, ("orders", "g-alice"), OK),
    ("alice", consume, ("orders", "g-other"), "GROUP_AUTHORIZATION_FAILED"),
    ("alice", consume, ("private", "g-alice"), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", consume, ("logs-app", "bob-1"), OK),  # PREFIXED group and topic
    ("bob", consume, ("logs-secret", "bob-1"), "TOPIC_AUTHORIZATION_FAILED"),  # DENY beats ALLOW ALL
    ("carol", consume, ("public", "shared"), OK),  # wildcard principal
    ("dave", consume, ("public", "shared"), "TOPIC_AUTHORIZATION_FAILED"),  # DENY ALL beats User:* ALLOW
    ("admin", consume, ("private", "any-group"), OK),
    # Metadata: only topics the principal may DESCRIBE (READ/WRITE/ALL imply it)
    ("alice", visible_topics, (), {"orders", "public"}),  # public: User:* READ
    ("bob", visible_topics, (), {"logs-app", "logs-secret", "public"}),  # DENY READ does not hide logs-secret
    ("carol", visible_topics, (), {"public"}),
    ("dave", visible_topics, (), set()),
    ("admin", visible_topics, (), set(TOPICS)),
    # CreateTopics: CREATE on the cluster or the topic
    ("alice", create, (_new("alice-"),), OK),  # PREFIXED CREATE
    ("alice", create, (_new("other-"),), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", create, (_new("logs-"),), OK),  # ALL includes CREATE
    ("carol", create, (_new("carol-"),), "TOPIC_AUTHORIZATION_FAILED"),
    # DescribeConfigs: DESCRIBE_CONFIGS on the topic (ALL includes it, READ does not)
    ("alice", describe_configs, ("orders",), OK),
    ("alice", describe_configs, ("public",), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", describe_configs, ("logs-app",), OK),
    ("carol", describe_configs, ("public",), "TOPIC_AUTHORIZATION_FAILED"),
    # transactions: WRITE on the transactional id, WRITE on the topic
    ("bob", transaction, ("tx-bob", "logs-app"), OK),
    ("alice", transaction, ("tx-alice", "orders"), "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    ("carol", transaction, ("tx-bob", "public"), "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"),
    ("admin", transaction, ("tx-admin", "private"), OK),
]


@pytest.mark.parametrize(("user", "operation", "args", "expected"), MATRIX,
                         ids=[f"{u}-{op.__name__}-{'-'.join(map(str, a))}" for u, op, a, _ in MATRIX])
def test_matrix(broker: SecureBroker, user: str, operation: Callable[..., Any], args: tuple[Any, ...],
                expected: Any) -> None:
    assert operation(broker, user, *args) == expected


# Admin APIs through confluent-kafka's AdminClient: OK or the error's name -------------------------------
def admin_call(broker: SecureBroker, user: str, call: Callable[[Any], Any]) -> str:
    """`call(admin)` returns a future or a dict of them; every one must succeed."""
    from confluent_kafka import KafkaException

    admin = admin_client(broker, user)
    try:
        futures = call(admin)
        for future in futures.values() if isinstance(futures, dict) else [futures]:
            future.result(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    return OK


def delete_topic(broker: SecureBroker, user: str, topic: str) -> str:
    assert create(broker, "admin", topic) == OK
    return admin_call(broker, user, lambda a: a.delete_topics([topic], operation_timeout=10))


def create_partitions(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka.admin import NewPartitions

    assert create(broker, "admin", topic) == OK
    return admin_call(broker, user, lambda a: a.create_partitions([NewPartitions(topic, 2)]))


def delete_records(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import TopicPartition

    return admin_call(broker, user, lambda a: a.delete_records([TopicPartition(topic, 0, 0)]))


def list_offsets(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import OffsetSpec

    return admin_call(broker, user, lambda a: a.list_offsets({TopicPartition(topic, 0): OffsetSpec.latest()}))


def list_offsets_raw(broker: SecureBroker, user: str, topic: str) -> str:
    """ListOffsets itself: a client refused DESCRIBE never sends it (its Metadata is refused
    first, which librdkafka reports as _NOENT), so this one goes over a raw SASL/PLAIN socket."""
    from pyk.errors import ErrorCode
    from tests.security.wire import Wire

    with Wire(broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        assert wire.authenticate("PLAIN", f"\0{user}\0{user}-secret".encode())["error_code"] == 0
        body = {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": topic, "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}
        code = wire.request(2, 7, body)["topics"][0]["partitions"][0]["error_code"]
    return ErrorCode(code).name if code else OK


def alter_configs(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    entry = ConfigEntry("retention.ms", "86400000", incremental_operation=AlterConfigOpType.SET)
    return admin_call(broker, user, lambda a: a.incremental_alter_configs(
        [ConfigResource("topic", topic, incremental_configs=[entry])]))


def describe_group(broker: SecureBroker, user: str, group: str) -> str:
    return admin_call(broker, user, lambda a: a.describe_consumer_groups([group], request_timeout=15))


def group_offsets(broker: SecureBroker, user: str, group: str) -> str:
    from confluent_kafka import ConsumerGroupTopicPartitions

    return admin_call(broker, user, lambda a: a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]))


def delete_group(broker: SecureBroker, user: str, group: str) -> str:
    return admin_call(broker, user, lambda a: a.delete_consumer_groups([group], request_timeout=15))


def listed_groups(broker: SecureBroker, user: str) -> set[str]:
    admin = admin_client(broker, user)
    listed = admin.list_consumer_groups(request_timeout=15).result(20)
    return {g.group_id for g in listed.valid} & {"g-alice", "bob-1", "shared"}


def elect_leaders(broker: SecureBroker, user: str, topic: str) -> str:
    from confluent_kafka import ElectionType, TopicPartition

    return admin_call(broker, user, lambda a: a.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]))


def scram_users(broker: SecureBroker, user: str) -> str:
    """(A refusal is not asked for here: librdkafka 2.16 aborts the process on
    DescribeUserScramCredentials' CLUSTER_AUTHORIZATION_FAILED, Kafka's answer too.)"""
    return admin_call(broker, user, lambda a: a.describe_user_scram_credentials())


def commit_offsets(broker: SecureBroker, user: str, group: str, topic: str) -> str:
    """OffsetCommit from the admin API (alter_consumer_group_offsets): READ on the group and the topic."""
    from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition

    admin = admin_client(broker, user)
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])]
    try:
        done = admin.alter_consumer_group_offsets(request)[group].result(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    errors = [_code(tp.error) for tp in done.topic_partitions if tp.error]  # a partition's own error
    return errors[0] if errors else OK


def transaction_offsets(broker: SecureBroker, user: str, transactional_id: str, topic: str, group: str) -> str:
    """A transaction that also commits a consumer's offsets (AddOffsetsToTxn: READ on the group;
    TxnOffsetCommit: READ on the group and the topic)."""
    from confluent_kafka import KafkaException, Producer, TopicPartition

    p = Producer({"bootstrap.servers": broker.bootstrap_of("SASL_PLAINTEXT"), **sasl(user),
                  "transactional.id": transactional_id, "transaction.timeout.ms": 10000})
    try:
        p.init_transactions(20)
        p.begin_transaction()
        p.produce(topic, b"with-offsets")
        metadata = _group_metadata(group)
        p.send_offsets_to_transaction([TopicPartition(topic, 0, 1)], metadata, 20)
        p.commit_transaction(20)
    except KafkaException as exc:
        return _code(exc.args[0])
    return OK


def _group_metadata(group: str) -> Any:
    """A consumer's group metadata (what send_offsets_to_transaction takes), without joining."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": "127.0.0.1:1", "group.id": group})
    try:
        return consumer.consumer_group_metadata()
    finally:
        consumer.close()


def _raw(broker: SecureBroker, user: str, api_key: int, version: int, body: dict[str, Any],
         bootstrap: str | None = None) -> dict[str, Any]:
    """A request no client sends on a user's behalf (the brokers' own), over SASL/PLAIN, to
    `bootstrap` (default: the SASL_PLAINTEXT listener's first node)."""
    from tests.security.wire import Wire

    with Wire(bootstrap or broker.bootstrap_of("SASL_PLAINTEXT")) as wire:
        assert wire.authenticate("PLAIN", f"\0{user}\0{user}-secret".encode())["error_code"] == 0
        return wire.request(api_key, version, body)


def _name(code: int) -> str:
    from pyk.errors import ErrorCode

    return ErrorCode(code).name if code else OK


def follower_fetch(broker: SecureBroker, user: str, topic: str) -> str:
    """Fetch with a replica id: CLUSTER_ACTION on the cluster."""
    body = {"replica_id": 1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1, "fetch_offset": 0,
                                                        "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]}
    return _name(_raw(broker, user, 1, 11, body)["responses"][0]["partitions"][0]["error_code"])


def write_txn_markers(broker: SecureBroker, user: str, topic: str) -> str:
    body = {"markers": [{"producer_id": 1, "producer_epoch": 0, "transaction_result": True, "coordinator_epoch": 0,
                         "topics": [{"name": topic, "partition_indexes": [0]}]}]}
    return _name(_raw(broker, user, 27, 0, body)["markers"][0]["topics"][0]["partitions"][0]["error_code"])


def offset_delete(broker: SecureBroker, user: str, group: str, topic: str) -> str:
    """OffsetDelete (confluent-kafka 2.16 has no call for it): DELETE on the group."""
    body = {"group_id": group, "topics": [{"name": topic, "partitions": [{"partition_index": 0}]}]}
    return _name(_raw(broker, user, 47, 0, body)["error_code"])


def alter_client_quotas(broker: SecureBroker, user: str) -> str:
    """AlterClientQuotas (neither confluent-kafka 2.16 nor kafka-python has a call for it):
    ALTER_CONFIGS on the cluster."""
    from pyk.protocol.apis import ApiKey

    body = {"entries": [{"entity": [{"entity_type": "client-id", "entity_name": "acl-matrix"}],
                         "ops": [{"key": "producer_byte_rate", "value": 1048576.0, "remove": False}]}],
            "validate_only": False}
    return _name(_raw(broker, user, ApiKey.ALTER_CLIENT_QUOTAS, 1, body)["entries"][0]["error_code"])


def describe_client_quotas(broker: SecureBroker, user: str) -> str:
    """DescribeClientQuotas (no client call either): DESCRIBE_CONFIGS on the cluster."""
    from pyk.protocol.apis import ApiKey

    return _name(_raw(broker, user, ApiKey.DESCRIBE_CLIENT_QUOTAS, 1, {"components": [], "strict": False})["error_code"])


def kafka_python_admin(broker: SecureBroker, user: str) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=broker.bootstrap_of("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username=user, sasl_plain_password=f"{user}-secret")


def alter_reassignment(broker: SecureBroker, user: str, topic: str) -> str:
    """AlterPartitionReassignments (kafka-python; confluent-kafka 2.16 has no call): ALTER on the
    cluster.  The target is the partition's own replica (a single host's only valid one), so an
    allowed move is a no-op."""
    from kafka import TopicPartition
    from kafka.errors import KafkaError

    leader = admin_client(broker).list_topics(topic, timeout=15).topics[topic].partitions[0].leader
    kp = kafka_python_admin(broker, user)
    try:
        errors = kp.alter_partition_reassignments({TopicPartition(topic, 0): [leader]})
    except KafkaError as exc:  # the request's own error
        return str(exc.message)
    finally:
        kp.close()
    return next((str(e.message) for e in errors.values() if e is not None), OK)


def list_reassignments(broker: SecureBroker, user: str) -> str:
    """ListPartitionReassignments (kafka-python): DESCRIBE on the cluster (ALTER implies it)."""
    from kafka.errors import KafkaError

    kp = kafka_python_admin(broker, user)
    try:
        kp.list_partition_reassignments()
    except KafkaError as exc:
        return str(exc.message)
    finally:
        kp.close()
    return OK


def _at_coordinator(broker: SecureBroker, user: str, group: str, api_key: int, version: int,
                    body: dict[str, Any]) -> dict[str, Any]:
    """A raw request to the group's coordinator (FindCoordinator first, as `user`)."""
    from pyk.protocol.apis import ApiKey

    found = _raw(broker, user, ApiKey.FIND_COORDINATOR, 3, {"key": group, "key_type": 0})
    assert found["error_code"] == 0, found
    return _raw(broker, user, api_key, version, body, f"{found['host']}:{found['port']}")


def group_heartbeat(broker: SecureBroker, user: str, group: str, topic: str) -> str:
    """A consumer-protocol member joining (ConsumerGroupHeartbeat, KIP-848) subscribed to `topic`:
    READ on the group, DESCRIBE on the topic.  Raw, for the exact code of the first heartbeat."""
    from pyk.protocol.apis import ApiKey

    body = {"group_id": group, "member_id": "", "member_epoch": 0, "rebalance_timeout_ms": 30000,
            "subscribed_topic_names": [topic], "topic_partitions": []}
    return _name(_at_coordinator(broker, user, group, ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, body)["error_code"])


def describe_848_group(broker: SecureBroker, user: str, group: str, topic: str) -> str:
    """ConsumerGroupDescribe of a consumer-protocol group bob just joined on `topic` (raw: the
    group's own error code): DESCRIBE on the group and on every topic of its assignments."""
    from pyk.protocol.apis import ApiKey

    assert group_heartbeat(broker, "bob", group, topic) == OK
    body = {"group_ids": [group], "include_authorized_operations": False}
    answer = _at_coordinator(broker, user, group, ApiKey.CONSUMER_GROUP_DESCRIBE, 0, body)["groups"][0]
    assert answer["error_code"] or answer["members"], answer  # an allowed answer shows bob's member
    return _name(answer["error_code"])


def created_configs(broker: SecureBroker, user: str, topic: str) -> str:
    """CreateTopics v7 (raw: confluent-kafka does not show the configs it answers): the new topic's
    configs come back only with DESCRIBE_CONFIGS on it, else topic_config_error_code says why."""
    from pyk.protocol.apis import ApiKey

    body = {"topics": [{"name": topic, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}],
            "timeout_ms": 15000, "validate_only": False}
    result = _raw(broker, user, ApiKey.CREATE_TOPICS, 7, body)["topics"][0]
    assert result["error_code"] == 0, result
    code = result.get("topic_config_error_code", 0)
    assert bool(result["configs"]) == (code == 0) and (result["num_partitions"] == 1) == (code == 0), result
    return _name(code)


# The groups these cases look at were made by the consume cases of MATRIX (they run first).
ADMIN_MATRIX: list[Case] = [
    ("alice", delete_topic, (_new("alice-"),), "TOPIC_AUTHORIZATION_FAILED"),  # CREATE is not DELETE
    ("bob", delete_topic, (_new("logs-"),), OK),
    ("alice", create_partitions, (_new("alice-"),), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", create_partitions, (_new("logs-"),), OK),
    ("alice", delete_records, ("orders",), "TOPIC_AUTHORIZATION_FAILED"),
    ("bob", delete_records, ("logs-app",), OK),
    ("alice", list_offsets, ("orders",), OK),  # READ implies DESCRIBE
    ("alice", list_offsets_raw, ("private",), "TOPIC_AUTHORIZATION_FAILED"),
    ("alice", alter_configs, ("orders",), "TOPIC_AUTHORIZATION_FAILED"),  # DESCRIBE_CONFIGS is not ALTER_CONFIGS
    ("bob", alter_configs, ("logs-app",), OK),
    ("alice", describe_group, ("g-alice",), OK),
    ("alice", describe_group, ("bob-1",), "GROUP_AUTHORIZATION_FAILED"),
    ("alice", group_offsets, ("g-alice",), OK),
    ("carol", group_offsets, ("bob-1",), "GROUP_AUTHORIZATION_FAILED"),
    ("alice", delete_group, ("g-alice",), "GROUP_AUTHORIZATION_FAILED"),  # READ is not DELETE
    ("carol", listed_groups, (), {"shared"}),  # without DESCRIBE on the cluster: the groups it may describe
    ("bob", listed_groups, (), {"bob-1", "shared"}),
    ("admin", listed_groups, (), {"g-alice", "bob-1", "shared"}),
    ("alice", elect_leaders, ("orders",), "CLUSTER_AUTHORIZATION_FAILED"),
    ("admin", scram_users, (), OK),
    ("alice", commit_offsets, ("g-alice", "orders"), OK),
    ("alice", commit_offsets, ("g-alice", "private"), "TOPIC_AUTHORIZATION_FAILED"),
    ("alice", commit_offsets, ("g-other", "orders"), "GROUP_AUTHORIZATION_FAILED"),
    ("bob", transaction_offsets, ("tx-bob", "logs-app", "bob-tx"), OK),  # PREFIXED group bob-
    ("bob", transaction_offsets, ("tx-bob", "logs-app", "g-alice"), "GROUP_AUTHORIZATION_FAILED"),
    # the brokers' own requests, from a user (raw socket): CLUSTER_ACTION, or DELETE on the group
    ("alice", follower_fetch, ("orders",), "TOPIC_AUTHORIZATION_FAILED"),
    ("alice", write_txn_markers, ("orders",), "CLUSTER_AUTHORIZATION_FAILED"),
    ("alice", offset_delete, ("g-alice", "orders"), "GROUP_AUTHORIZATION_FAILED"),
    ("grace", write_txn_markers, ("private",), OK),  # ALTER on the cluster (an admin's abort, KIP-664)
    ("alice", created_configs, (_new("alice-"),), "TOPIC_AUTHORIZATION_FAILED"),  # CREATE, no DESCRIBE_CONFIGS
    ("bob", created_configs, (_new("logs-"),), OK),  # ALL includes DESCRIBE_CONFIGS
    ("bob", group_heartbeat, ("bob-848", "logs-app"), OK),
    ("bob", group_heartbeat, ("bob-848", "private"), "TOPIC_AUTHORIZATION_FAILED"),  # a topic it may not describe
    ("bob", describe_848_group, ("bob-848", "logs-app"), OK),
    ("carol", describe_848_group, ("bob-848", "logs-app"), "TOPIC_AUTHORIZATION_FAILED"),  # the group, not its topic
    # client quotas and reassignments: on the cluster, ALTER_CONFIGS / DESCRIBE_CONFIGS and ALTER / DESCRIBE
    ("alice", alter_client_quotas, (), "CLUSTER_AUTHORIZATION_FAILED"),
    ("frank", alter_client_quotas, (), OK),
    ("alice", describe_client_quotas, (), "CLUSTER_AUTHORIZATION_FAILED"),
    ("frank", describe_client_quotas, (), OK),  # ALTER_CONFIGS implies DESCRIBE_CONFIGS
    ("alice", alter_reassignment, ("orders",), "CLUSTER_AUTHORIZATION_FAILED"),
    ("frank", alter_reassignment, ("orders",), "CLUSTER_AUTHORIZATION_FAILED"),  # ALTER_CONFIGS is not ALTER
    ("grace", alter_reassignment, ("orders",), OK),
    ("alice", list_reassignments, (), "CLUSTER_AUTHORIZATION_FAILED"),
    ("grace", list_reassignments, (), OK),  # ALTER implies DESCRIBE
]


@pytest.mark.parametrize(("user", "operation", "args", "expected"), ADMIN_MATRIX,
                         ids=[f"{u}-{op.__name__}-{'-'.join(map(str, a))}" for u, op, a, _ in ADMIN_MATRIX])
def test_admin_matrix(broker: SecureBroker, user: str, operation: Callable[..., Any], args: tuple[Any, ...],
                      expected: Any) -> None:
    assert operation(broker, user, *args) == expected


def test_denial_is_audited(broker: SecureBroker) -> None:
    """carol may describe `public` (User:* READ), so her producer sends the Produce request that is
    denied; `orders` is refused at Metadata already (DESCRIBE)."""
    assert produce(broker, "carol", "public") == "TOPIC_AUTHORIZATION_FAILED"
    assert produce(broker, "carol", "orders") == "TOPIC_AUTHORIZATION_FAILED"
    for line in ("principal=User:carol host=127.0.0.1 operation=WRITE resource=TOPIC:public",
                 "principal=User:carol host=127.0.0.1 operation=DESCRIBE resource=TOPIC:orders"):
        wait_for(lambda line=line: f"pyk.audit: authorization denied: {line}" in broker.log_text(),  # type: ignore[misc]
                 what=f"the audit line {line}")


# The ACL APIs through confluent-kafka's AdminClient ---------------------------------------------------
def _filter(resource: str = "ANY", name: str | None = None, pattern: str = "ANY", principal: str | None = None,
            operation: str = "ANY", permission: str = "ANY") -> Any:
    return binding(principal, operation, resource, name, pattern, permission, None, kind="AclBindingFilter")


def _described(broker: SecureBroker, acl_filter: Any, user: str = "admin") -> set[tuple[Any, ...]]:
    admin = admin_client(broker, user)  # alive until the answer: a destroyed handle fails its futures
    found = admin.describe_acls(acl_filter, request_timeout=15).result(20)
    return {(b.restype.name, b.name, b.resource_pattern_type.name, b.principal, b.host, b.operation.name,
             b.permission_type.name) for b in found}


def test_describe_acls_filters(broker: SecureBroker) -> None:
    every = _described(broker, _filter())
    assert {(r, n, pt, p, "*", op, perm) for p, op, r, n, pt, perm in MATRIX_ACLS} <= every
    # ANY by name: both pattern kinds of exactly that name
    assert _described(broker, _filter("TOPIC", "logs-", "ANY")) == {
        ("TOPIC", "logs-", "PREFIXED", "User:bob", "*", "ALL", "ALLOW")}
    # MATCH: every binding that applies to the named resource (literal, wildcard, prefixes)
    assert _described(broker, _filter("TOPIC", "logs-secret", "MATCH")) == {
        ("TOPIC", "logs-", "PREFIXED", "User:bob", "*", "ALL", "ALLOW"),
        ("TOPIC", "logs-secret", "LITERAL", "User:bob", "*", "READ", "DENY")}
    assert _described(broker, _filter("GROUP", principal="User:*")) == {
        ("GROUP", "shared", "LITERAL", "User:*", "*", "READ", "ALLOW")}
    assert _described(broker, _filter(permission="DENY")) == {
        ("TOPIC", "logs-secret", "LITERAL", "User:bob", "*", "READ", "DENY"),
        ("TOPIC", "public", "LITERAL", "User:dave", "*", "ALL", "DENY")}


def test_acl_apis_need_cluster_permissions(broker: SecureBroker) -> None:
    """DescribeAcls needs DESCRIBE on the cluster, CreateAcls and DeleteAcls ALTER.  librdkafka
    reads a DescribeAcls error as no ACLs (as against Kafka), so kafka-python shows the code."""
    from confluent_kafka import KafkaException
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )
    from kafka.errors import ClusterAuthorizationFailedError

    assert _described(broker, _filter(), user="alice") == set()
    kp = kafka_python_admin(broker, "alice")
    try:
        with pytest.raises(ClusterAuthorizationFailedError):
            kp.describe_acls(ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                                       permission_type=ACLPermissionType.ANY,
                                       resource_pattern=ResourcePatternFilter(ResourceType.ANY, None,
                                                                              ACLResourcePatternType.ANY)))
    finally:
        kp.close()
    admin = admin_client(broker, "alice")
    with pytest.raises(KafkaException) as info:
        admin.create_acls([binding("User:alice", "ALL", "TOPIC", "*")], request_timeout=15)[
            binding("User:alice", "ALL", "TOPIC", "*")].result(20)
    assert info.value.args[0].name() == "CLUSTER_AUTHORIZATION_FAILED"
    with pytest.raises(KafkaException) as info:
        admin.delete_acls([_filter()], request_timeout=15)[_filter()].result(20)
    assert info.value.args[0].name() == "CLUSTER_AUTHORIZATION_FAILED"
    assert produce(broker, "alice", "private") == "TOPIC_AUTHORIZATION_FAILED"  # nothing was granted


def test_create_refuses_invalid_bindings(broker: SecureBroker) -> None:
    from confluent_kafka import KafkaException

    bad = binding("User:erin", "WRITE", "GROUP", "g")  # groups have no WRITE
    admin = admin_client(broker)
    with pytest.raises(KafkaException) as info:
        admin.create_acls([bad], request_timeout=15)[bad].result(20)
    assert info.value.args[0].name() == "INVALID_REQUEST"
    assert _described(broker, _filter(principal="User:erin")) == set()


def test_create_enforce_delete(broker: SecureBroker) -> None:
    """A grant takes effect on the next request and its deletion too (the decision cache is
    dropped with each change); DeleteAcls answers what it removed."""
    topic = _new("grant-")
    assert create(broker, "admin", topic) == OK
    assert produce(broker, "carol", topic) == "TOPIC_AUTHORIZATION_FAILED"
    create_acls(broker, [binding("User:carol", "WRITE", "TOPIC", topic)])
    assert produce(broker, "carol", topic) == OK
    admin = admin_client(broker)
    deleted = admin.delete_acls([_filter("TOPIC", topic, "MATCH", "User:carol")], request_timeout=15)
    removed = [b for future in deleted.values() for b in future.result(20)]
    assert [(b.name, b.principal, b.operation.name) for b in removed] == [(topic, "User:carol", "WRITE")]
    assert produce(broker, "carol", topic) == "TOPIC_AUTHORIZATION_FAILED"
    assert _described(broker, _filter("TOPIC", topic)) == set()


def test_host_restriction(broker: SecureBroker) -> None:
    """An ACL for another host does not apply to a client connecting from 127.0.0.1."""
    topic = _new("host-")
    assert create(broker, "admin", topic) == OK
    create_acls(broker, [binding("User:carol", "WRITE", "TOPIC", topic, host="10.1.2.3")])
    assert produce(broker, "carol", topic) == "TOPIC_AUTHORIZATION_FAILED"
    create_acls(broker, [binding("User:carol", "WRITE", "TOPIC", topic, host="127.0.0.1")])
    assert produce(broker, "carol", topic) == OK


# Persistence and allow.everyone.if.no.acl.found (brokers of their own) --------------------------------
def test_acls_survive_a_restart(tmp_path: Path, pki: Pki) -> None:
    b = acl_broker(tmp_path, pki)
    b.start()
    try:
        assert create(b, "admin", "kept") == OK
        create_acls(b, [binding("User:carol", "WRITE", "TOPIC", "kept")])
        assert produce(b, "carol", "kept") == OK
        b.restart()
        assert _described(b, _filter(principal="User:carol")) == {
            ("TOPIC", "kept", "LITERAL", "User:carol", "*", "WRITE", "ALLOW")}
        assert produce(b, "carol", "kept") == OK
        assert produce(b, "dave", "kept") == "TOPIC_AUTHORIZATION_FAILED"
    finally:
        stop_and_check(b)


@pytest.mark.parametrize("allow", [True, False])
def test_allow_everyone_if_no_acl_found(tmp_path: Path, pki: Pki, allow: bool) -> None:
    """true: a resource no ACL names is open to everyone, one that has an ACL only to those it
    allows; false (the default): closed."""
    b = acl_broker(tmp_path, pki, **{"allow.everyone.if.no.acl.found": str(allow).lower()})
    b.start()
    try:
        for topic in ("open", "guarded"):
            assert create(b, "admin", topic) == OK
        create_acls(b, [binding("User:alice", "WRITE", "TOPIC", "guarded")])
        assert produce(b, "carol", "open") == (OK if allow else "TOPIC_AUTHORIZATION_FAILED")
        assert produce(b, "carol", "guarded") == "TOPIC_AUTHORIZATION_FAILED"
        assert produce(b, "alice", "guarded") == OK
    finally:
        stop_and_check(b)


def pyk_acls(broker: SecureBroker, *argv: str) -> str:
    admin = [f"-X{k}={v}" for k, v in sasl("admin").items()]
    done = subprocess.run([sys.executable, "-m", "pyk", "acls", "--bootstrap", broker.bootstrap_of("SASL_PLAINTEXT"),
                           *admin, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_pyk_acls_cli(broker: SecureBroker) -> None:
    topic = _new("cli-")
    assert create(broker, "admin", topic) == OK
    out = pyk_acls(broker, "add", "--allow-principal", "User:carol", "--operation", "Write", "--operation",
                   "DescribeConfigs", "--topic", topic)
    assert "added 2 ACL(s)" in out
    assert produce(broker, "carol", topic) == OK
    assert describe_configs(broker, "carol", topic) == OK
    listed = pyk_acls(broker, "list", "--topic", topic)
    assert f"ResourcePattern(resourceType=TOPIC, name={topic}, patternType=LITERAL)" in listed
    assert "(principal=User:carol, host=*, operation=DESCRIBE_CONFIGS, permissionType=ALLOW)" in listed
    out = pyk_acls(broker, "add", "--deny-principal", "User:carol", "--topic", topic[:4],
                   "--resource-pattern-type", "prefixed")
    assert produce(broker, "carol", topic) == "TOPIC_AUTHORIZATION_FAILED"  # DENY ALL on the prefix
    assert "removed 1 ACL(s)" in pyk_acls(broker, "remove", "--deny-principal", "User:carol", "--topic", topic[:4],
                                          "--resource-pattern-type", "prefixed")
    assert produce(broker, "carol", topic) == OK
    assert "removed 2 ACL(s)" in pyk_acls(broker, "remove", "--topic", topic)  # every ACL of the resource
    assert produce(broker, "carol", topic) == "TOPIC_AUTHORIZATION_FAILED"
    assert topic not in pyk_acls(broker, "list", "--principal", "User:carol")


def test_authorized_operations(broker: SecureBroker) -> None:
    """Metadata (describe_topics, describe_cluster) and DescribeGroups report the principal's own
    operations when asked, as Kafka computes them: implied ones included, 0 on the cluster
    without DESCRIBE there; a super user has every operation of the resource type."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation

    def topic_ops(user: str) -> set[str]:
        admin = admin_client(broker, user)
        described = admin.describe_topics(TopicCollection(["orders"]), include_authorized_operations=True)
        return {op.name for op in described["orders"].result(20).authorized_operations}

    def cluster_ops(user: str) -> set[str]:
        admin = admin_client(broker, user)
        return {op.name for op in admin.describe_cluster(include_authorized_operations=True).result(20)
                .authorized_operations or []}

    assert topic_ops("alice") == {"READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"}
    assert topic_ops("admin") == {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS",
                                  "ALTER_CONFIGS"}
    assert cluster_ops("alice") == set()
    assert cluster_ops("admin") == {"CREATE", "ALTER", "DESCRIBE", "CLUSTER_ACTION", "DESCRIBE_CONFIGS",
                                    "ALTER_CONFIGS", "IDEMPOTENT_WRITE"}
    admin = admin_client(broker, "alice")
    group = admin.describe_consumer_groups(["g-alice"], include_authorized_operations=True)["g-alice"].result(20)
    assert set(group.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}
