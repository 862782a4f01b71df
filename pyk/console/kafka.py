"""The console's Kafka side: everything it shows or changes goes through the Kafka protocol.

Like Redpanda Console, the console is a client of its own broker and knows nothing of shards'
insides: admin and offsets go through pyk's client (`pyk.client.Cluster`, one request at a time
on the orchestrator's event loop); messages are read with librdkafka (confluent-kafka) in a
worker thread, which decompresses batches, skips control records and aborted transactions, and
hands back keys, values, headers and timestamps.

Both connect to the broker's inter-broker listener as the broker itself: pyk's client through
the broker's inter-broker client (pyk.server.security.inter_broker: the listener's TLS, and its
SASL login from the JAAS line), librdkafka with the same settings in its own names
(`librdkafka_security`).  So the console works on a broker whose listeners are all secured and
passes ACLs as the broker's principal (a super user, as inter-broker requests need), which is
why it must not be reachable by anyone the operator would not give that principal to.
librdkafka as shipped in confluent-kafka's wheels has no GSSAPI: on a GSSAPI inter-broker
listener the message browser answers with librdkafka's error; the other pages work.

Owns `ConsoleClient`: one connection set to the broker (reconnected after a failure), the
requests of each page, and `decode()` (how a key, value or header is shown: JSON pretty-printed,
UTF-8 text, else hex).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from pyk.client import BrokerError, Cluster, Connection, Connector
from pyk.config import ServerConfig
from pyk.coordinator.consumer_protocol import PROTOCOL_TYPE, decode_assignment
from pyk.errors import ErrorCode, ProtocolViolation
from pyk.protocol import ApiKey
from pyk.server.security.inter_broker import InterBrokerClient, password_login
from pyk.server.security.settings import setting
from pyk.tools.groups import _commit, _committed, _describe_group, error_name, find_coordinator

LATEST, EARLIEST = -1, -2
TOPIC_RESOURCE = 2
_ABORT_TIMEOUT_S = 30.0  # InitProducerId answers CONCURRENT_TRANSACTIONS until the abort is written
_REQUEST_TIMEOUT_S = 45.0  # a page's requests (an abort may wait for its markers up to _ABORT_TIMEOUT_S)
_FETCH_TIMEOUT_S = 5.0  # a browse that finds fewer messages than asked returns after this
_HEX_BYTES = 4096  # longer binary values are cut in the page (the rest is counted)

T = TypeVar("T")
CLIENT_ID = "pyk-console"  # of its requests and its consumer's, as the broker's request log and quotas see them
_LIBRDKAFKA_LOG = logging.getLogger("pyk.console.librdkafka")  # librdkafka's lines, not on stderr raw


def check(code: int, what: str, message: str | None = None) -> None:
    if code != ErrorCode.NONE:
        raise BrokerError(f"{what}: {error_name(code)}{' ' + message if message else ''}")


@dataclass
class Shown:
    """A key, value or header value as the page shows it: `kind` is json, text, hex or null."""

    kind: str
    text: str
    size: int


def decode(data: bytes | None) -> Shown:
    if data is None:
        return Shown("null", "null", 0)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        shown = data[:_HEX_BYTES].hex(" ")
        if len(data) > _HEX_BYTES:
            shown += f" ... ({len(data) - _HEX_BYTES} more bytes)"
        return Shown("hex", shown, len(data))
    if text[:1] in ("{", "["):
        try:
            return Shown("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False), len(data))
        except ValueError:
            pass
    return Shown("text", text, len(data))


@dataclass
class Message:
    """One record read by the message browser."""

    partition: int
    offset: int
    timestamp_ms: int
    key: Shown
    value: Shown
    headers: list[tuple[str, Shown]] = field(default_factory=list)


@dataclass
class PartitionRow:
    partition: int
    leader: int
    shard: int
    log_start: int
    log_end: int
    size: int  # bytes of its segment files (DescribeLogDirs); -1 unknown


@dataclass
class LogDir:
    """One log directory of one node, from DescribeLogDirs."""

    node: int
    path: str
    total_bytes: int  # of the file system holding it (-1: unknown)
    usable_bytes: int
    sizes: dict[tuple[str, int], int]  # bytes of each partition in it

    @property
    def used_bytes(self) -> int:
        return sum(self.sizes.values())


def librdkafka_security(config: ServerConfig, client: InterBrokerClient) -> dict[str, str]:
    """librdkafka's settings for connecting as `client` does: TLS checked against the listener's
    truststore (else the system's CAs) and its host name unless ssl.endpoint.identification.algorithm
    is empty, the keystore (a PEM file: key and chain) as client certificate; the SASL mechanism
    with the JAAS line's username and password (PLAIN, SCRAM)."""
    out = {"security.protocol": client.protocol}
    listener = client.listener
    if client.tls is not None:
        out["ssl.ca.location"] = setting(config, listener, "ssl.truststore.location") or "probe"
        keystore = setting(config, listener, "ssl.keystore.location")
        if keystore:
            out["ssl.certificate.location"] = out["ssl.key.location"] = keystore
            password = setting(config, listener, "ssl.key.password")
            if password:
                out["ssl.key.password"] = password
        https = setting(config, listener, "ssl.endpoint.identification.algorithm") == "https"
        out["ssl.endpoint.identification.algorithm"] = "https" if https else "none"
    if client.mechanism is not None:
        out["sasl.mechanism"] = client.mechanism
        if client.mechanism != "GSSAPI":
            out["sasl.username"], out["sasl.password"] = password_login(config, listener, client.mechanism)
    return out


def browse(settings: dict[str, str], topic: str, partition: int, offset: int | None, timestamp_ms: int | None,
           limit: int) -> tuple[list[Message], int]:
    """Up to `limit` messages of one partition from `offset` (or the first at or after
    `timestamp_ms`; neither: the last `limit` offsets), and the offset to continue from.
    `settings`: bootstrap.servers and security (ConsoleClient.librdkafka).
    Blocking (librdkafka): run in a thread."""
    # read_committed (librdkafka's default, said here): the browser shows what consumers see.
    try:
        consumer = Consumer({**settings, "group.id": CLIENT_ID, "enable.auto.commit": False,
                             "client.id": CLIENT_ID, "enable.partition.eof": True,
                             "isolation.level": "read_committed", "logger": _LIBRDKAFKA_LOG})
    except KafkaException as exc:  # settings librdkafka cannot use (GSSAPI in the wheels, an unreadable keystore)
        raise BrokerError(f"the message browser's consumer: {exc.args[0].str()}") from None
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=_FETCH_TIMEOUT_S)
        if timestamp_ms is not None:
            found = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)],
                                               timeout=_FETCH_TIMEOUT_S)[0].offset
            start = high if found in (OFFSET_END, -1) else found
        elif offset is None:
            start = max(low, high - limit)
        else:
            start = min(max(offset, low), high)
        if start >= high:
            return [], high
        consumer.assign([TopicPartition(topic, partition, start)])
        out: list[Message] = []
        next_offset = start
        deadline = time.monotonic() + _FETCH_TIMEOUT_S
        while len(out) < limit and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    # Continue from the end, past control records and aborted transactions.
                    next_offset = max(next_offset, msg.offset() or 0)
                    break
                raise BrokerError(f"reading {topic}-{partition}: {err.str()}")
            _, ts = msg.timestamp()
            at = msg.offset()
            assert at is not None  # set on every message that is not an error
            given = msg.headers() or []
            headers = [(k, decode(_raw(v))) for k, v in (given.items() if isinstance(given, dict) else given)]
            out.append(Message(partition, at, ts, decode(_raw(msg.key())), decode(_raw(msg.value())), headers))
            next_offset = at + 1
        return out, next_offset
    finally:
        consumer.close()


def _raw(data: str | bytes | None) -> bytes | None:
    """A consumer's key, value or header value: bytes (str only where a serializer made one)."""
    return data.encode() if isinstance(data, str) else data


class ConsoleClient:
    """The console's connection to its broker (see module docstring).

    Owned by the orchestrator's event loop; requests are serialized by one lock (the pages are
    few and small; the broker answers them in order anyway).  A broken connection is dropped and
    the next call reconnects, so a restarted shard 0 does not break the console.
    """

    def __init__(self, bootstrap: str, connector: Connector, security: dict[str, str]) -> None:
        self.bootstrap = bootstrap
        self.connector = connector  # how pyk's client connects (TLS, SASL)
        self.librdkafka = {"bootstrap.servers": bootstrap, **security}  # the message browser's settings
        self._cluster: Cluster | None = None
        self._lock = asyncio.Lock()

    async def run(self, work: Callable[[Cluster], Awaitable[T]]) -> T:
        """`work` on the (re)connected cluster; TimeoutError after _REQUEST_TIMEOUT_S, so a stuck
        shard cannot hold the console (the connection is then dropped: a late answer would
        otherwise be taken for the next request's)."""
        async with self._lock:
            try:
                async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                    if self._cluster is None or not self._cluster.conn.usable:
                        self.close()
                        self._cluster = await Cluster.connect(self.bootstrap, self.connector)
                    return await work(self._cluster)
            except (ConnectionError, TimeoutError):
                self.close()
                raise

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    # Cluster and topics ------------------------------------------------------------------------
    @staticmethod
    async def metadata(cluster: Cluster, topics: list[str] | None = None) -> dict[str, Any]:
        version = cluster.version(ApiKey.METADATA)
        body: dict[str, Any] = {"topics": None if topics is None else [{"name": t} for t in topics]}
        if version >= 4:
            body["allow_auto_topic_creation"] = False
        resp = await cluster.conn.request(ApiKey.METADATA, version, body)
        cluster.nodes = {b["node_id"]: (b["host"], b["port"]) for b in resp["brokers"]}
        return resp

    @staticmethod
    async def offsets(cluster: Cluster, leaders: dict[tuple[str, int], int], timestamp: int) -> dict[tuple[str, int], int]:
        """ListOffsets for many partitions at once, one request per leader."""
        version = cluster.version(ApiKey.LIST_OFFSETS)
        by_leader: dict[int, dict[str, list[int]]] = {}
        for (topic, partition), leader in leaders.items():
            by_leader.setdefault(leader, {}).setdefault(topic, []).append(partition)
        out: dict[tuple[str, int], int] = {}
        for leader, topics in by_leader.items():
            if leader < 0:
                continue
            conn = await cluster.connection(leader)
            body = {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": t, "partitions": [{"partition_index": p, "timestamp": timestamp} for p in ps]}
                for t, ps in topics.items()]}
            resp = await conn.request(ApiKey.LIST_OFFSETS, version, body)
            for t in resp["topics"]:
                for p in t["partitions"]:
                    if p["error_code"] == ErrorCode.NONE:
                        out[(t["name"], p["partition_index"])] = p["offset"]
        return out

    @staticmethod
    def leaders(md: dict[str, Any]) -> dict[tuple[str, int], int]:
        return {(t["name"], p["partition_index"]): p["leader_id"]
                for t in md["topics"] if t["error_code"] == ErrorCode.NONE for p in t["partitions"]}

    async def log_dirs(self, cluster: Cluster, topics: list[str] | None = None) -> list[LogDir]:
        """DescribeLogDirs on every node (each answers for its own directories)."""
        md = await self.metadata(cluster, topics)
        body: dict[str, Any] = {"topics": None if topics is None else [
            {"topic": t["name"], "partitions": [p["partition_index"] for p in t["partitions"]]} for t in md["topics"]]}
        out = []
        for node in sorted(b["node_id"] for b in md["brokers"]):
            conn = await cluster.connection(node)
            resp = await conn.request(ApiKey.DESCRIBE_LOG_DIRS, cluster.version(ApiKey.DESCRIBE_LOG_DIRS), body)
            for d in resp["results"]:
                sizes = {(t["name"], p["partition_index"]): p["partition_size"] for t in d["topics"] for p in t["partitions"]}
                out.append(LogDir(node, d["log_dir"], d.get("total_bytes", -1), d.get("usable_bytes", -1), sizes))
        return out

    async def topic(self, name: str) -> tuple[list[PartitionRow], list[dict[str, Any]]]:
        """Partitions (leader, shard, offsets) and configs of one topic."""

        async def work(cluster: Cluster) -> tuple[list[PartitionRow], list[dict[str, Any]]]:
            md = await self.metadata(cluster, [name])
            entry = md["topics"][0]
            check(entry["error_code"], f"topic {name}")
            first = min(b["node_id"] for b in md["brokers"])
            leaders = self.leaders(md)
            start = await self.offsets(cluster, leaders, EARLIEST)
            end = await self.offsets(cluster, leaders, LATEST)
            sizes = {tp: n for d in await self.log_dirs(cluster, [name]) for tp, n in d.sizes.items()}
            rows = [PartitionRow(p, leader, leader - first, start.get((name, p), -1), end.get((name, p), -1),
                                 sizes.get((name, p), -1))
                    for (_, p), leader in sorted(leaders.items())]
            resp = await cluster.conn.request(ApiKey.DESCRIBE_CONFIGS, cluster.version(ApiKey.DESCRIBE_CONFIGS), {
                "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": name, "configuration_keys": None}]})
            result = resp["results"][0]
            check(result["error_code"], f"configs of {name}", result.get("error_message"))
            return rows, sorted(result["configs"], key=lambda c: c["name"])

        return await self.run(work)

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> None:
        async def work(cluster: Cluster) -> None:
            if not await cluster.create_topic(name, partitions, 1, configs):
                raise BrokerError(f"topic {name} already exists")

        await self.run(work)

    async def delete_topic(self, name: str) -> None:
        async def work(cluster: Cluster) -> None:
            version = cluster.version(ApiKey.DELETE_TOPICS)
            body: dict[str, Any] = {"timeout_ms": 30000}
            if version >= 6:
                body["topics"] = [{"name": name}]
            else:
                body["topic_names"] = [name]
            resp = await cluster.conn.request(ApiKey.DELETE_TOPICS, version, body)
            result = resp["responses"][0]
            check(result["error_code"], f"deleting {name}", result.get("error_message"))

        await self.run(work)

    async def create_partitions(self, name: str, count: int) -> None:
        async def work(cluster: Cluster) -> None:
            resp = await cluster.conn.request(ApiKey.CREATE_PARTITIONS, cluster.version(ApiKey.CREATE_PARTITIONS), {
                "topics": [{"name": name, "count": count, "assignments": None}], "timeout_ms": 30000,
                "validate_only": False})
            result = resp["results"][0]
            check(result["error_code"], f"adding partitions to {name}", result.get("error_message"))

        await self.run(work)

    # Groups ----------------------------------------------------------------------------------------
    @staticmethod
    async def coordinator(cluster: Cluster, key: str, key_type: int) -> Connection:
        """A connection to the coordinator of a group (key_type 0) or transactional id (1)."""
        return await find_coordinator(cluster, key, key_type)

    async def each_node(self, cluster: Cluster, api: ApiKey, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The same request to every node (groups and transactions are listed per coordinator)."""
        md = await self.metadata(cluster, [])
        out = []
        for node in sorted(b["node_id"] for b in md["brokers"]):
            conn = await cluster.connection(node)
            out.append(await conn.request(api, cluster.version(api), body))
        return out

    async def groups(self) -> list[dict[str, Any]]:
        async def work(cluster: Cluster) -> list[dict[str, Any]]:
            groups: dict[str, dict[str, Any]] = {}
            for resp in await self.each_node(cluster, ApiKey.LIST_GROUPS, {"states_filter": []}):
                check(resp["error_code"], "ListGroups")
                for g in resp["groups"]:
                    groups[g["group_id"]] = g
            return [groups[name] for name in sorted(groups)]

        return await self.run(work)

    async def group(self, group: str) -> dict[str, Any]:
        """State, members with their assignment, and per partition committed offset, log end and lag."""

        async def work(cluster: Cluster) -> dict[str, Any]:
            conn = await self.coordinator(cluster, group, 0)
            described = await _describe_group(cluster, conn, group)
            committed = await _committed(cluster, conn, group)
            owner: dict[tuple[str, int], str] = {}
            members = []
            for m in described["members"]:
                assigned: dict[str, list[int]] = {}
                if described["protocol_type"] == PROTOCOL_TYPE:
                    try:
                        assigned = decode_assignment(m["member_assignment"])
                    except ProtocolViolation:
                        assigned = {}
                for topic, parts in assigned.items():
                    for p in parts:
                        owner[(topic, p)] = m["member_id"]
                members.append({**m, "assigned": sorted(assigned.items())})
            topics = sorted({t for t, _ in committed} | {t for t, _ in owner})
            md = await self.metadata(cluster, topics) if topics else {"topics": []}
            leaders = self.leaders(md)
            ends = await self.offsets(cluster, leaders, LATEST)
            rows = []
            for tp in sorted(set(committed) | set(owner)):
                current, end = committed.get(tp), ends.get(tp)
                lag = end - current if current is not None and end is not None else None
                rows.append({"topic": tp[0], "partition": tp[1], "label": f"{tp[0]}-{tp[1]}", "committed": current, "end": end, "lag": lag,
                             "member": owner.get(tp)})
            return {"group": group, "state": described["group_state"], "protocol_type": described["protocol_type"],
                    "protocol": described["protocol_data"], "members": members, "partitions": rows,
                    "topics": topics}

        return await self.run(work)

    async def reset_offsets(self, group: str, topic: str, to: str, value: int | None) -> dict[tuple[str, int], int]:
        """Commits new offsets of an inactive group for every partition of `topic`: `to` is
        earliest, latest, offset (value) or timestamp (value, ms); clamped to [log start, log end]
        as Kafka's kafka-consumer-groups.sh --reset-offsets does."""

        async def work(cluster: Cluster) -> dict[tuple[str, int], int]:
            conn = await self.coordinator(cluster, group, 0)
            described = await _describe_group(cluster, conn, group)
            if described["members"]:
                raise BrokerError(f"group {group} has {len(described['members'])} active members: offsets can only "
                                  "be reset while its consumers are stopped")
            md = await self.metadata(cluster, [topic])
            check(md["topics"][0]["error_code"], f"topic {topic}")
            leaders = self.leaders(md)
            earliest = await self.offsets(cluster, leaders, EARLIEST)
            latest = await self.offsets(cluster, leaders, LATEST)
            chosen = {"earliest": earliest, "latest": latest}.get(to)
            if chosen is None and to == "timestamp":
                assert value is not None
                chosen = {tp: o if o >= 0 else latest[tp]
                          for tp, o in (await self.offsets(cluster, leaders, value)).items()}
            if chosen is None:
                if to != "offset" or value is None:
                    raise BrokerError(f"unknown reset target {to!r}")
                chosen = dict.fromkeys(leaders, value)
            new = {tp: min(max(chosen[tp], earliest[tp]), latest[tp]) for tp in sorted(leaders)}
            await _commit(cluster, conn, group, new)
            return new

        return await self.run(work)

    # Transactions ----------------------------------------------------------------------------------
    async def transactions(self) -> list[dict[str, Any]]:
        """Every transactional id (ListTransactions on each node), described by its coordinator."""

        async def work(cluster: Cluster) -> list[dict[str, Any]]:
            ids = []
            body = {"state_filters": [], "producer_id_filters": [], "duration_filter": -1}
            for resp in await self.each_node(cluster, ApiKey.LIST_TRANSACTIONS, body):
                check(resp["error_code"], "ListTransactions")
                ids += [t["transactional_id"] for t in resp["transaction_states"]]
            out = []
            for tid in sorted(ids):
                conn = await self.coordinator(cluster, tid, 1)
                resp = await conn.request(ApiKey.DESCRIBE_TRANSACTIONS, cluster.version(ApiKey.DESCRIBE_TRANSACTIONS),
                                          {"transactional_ids": [tid]})
                state = resp["transaction_states"][0]
                if state["error_code"] == ErrorCode.NONE:
                    out.append(state)
            return out

        return await self.run(work)

    async def abort_transaction(self, transactional_id: str) -> None:
        """Aborts the open transaction of `transactional_id` and fences its producer.

        This is Kafka's `kafka-transactions.sh force-terminate` (Admin.forceTerminateTransaction,
        KIP-939): InitProducerId for the id, as a new producer instance would send; the
        coordinator bumps the epoch, so the old producer is fenced, and writes abort markers to
        every partition of the transaction.  It answers CONCURRENT_TRANSACTIONS until the abort
        is complete, so this retries until it answers NONE.
        """

        async def work(cluster: Cluster) -> None:
            deadline = time.monotonic() + _ABORT_TIMEOUT_S
            while True:
                conn = await self.coordinator(cluster, transactional_id, 1)
                resp = await conn.request(ApiKey.INIT_PRODUCER_ID, cluster.version(ApiKey.INIT_PRODUCER_ID), {
                    "transactional_id": transactional_id, "transaction_timeout_ms": 60000})
                code = resp["error_code"]
                if code == ErrorCode.NONE:
                    return
                if not ErrorCode(code).retriable or time.monotonic() > deadline:
                    check(code, f"aborting the transaction of {transactional_id}")
                await asyncio.sleep(0.1)

        await self.run(work)
