"""Cluster metadata of a single node: topics, topic ids, partition counts, topic config overrides,
dynamic broker configs, SCRAM credentials, ACLs, client quotas, the cluster id and the producer-id
high-water mark.

This is the control plane's only writer (the "embedded default": no ZooKeeper).  State lives in
one JSON document in the first log directory, replaced atomically (write to a temp file, fsync,
rename, fsync the directory) on every change, so a kill -9 leaves either the old or the new
document, never a torn one.  Changes are rare (admin requests), so rewriting the whole document is
simpler than a metadata log and costs nothing measurable.

Owned by the event loop of the broker process; not thread-safe.  When the data plane moves to one
process per core (shards), this store stays with the single control-plane writer and its
snapshots are what the shards receive.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import TypedDict, cast

from pyk.errors import ErrorCode, KafkaError

FILE_NAME = "pyk-cluster-metadata.json"
# Producer ids are handed out in blocks; only the block's end is persisted, so an id is never
# reused after a restart (a reused id would let a new producer's batches look like duplicates).
PRODUCER_ID_BLOCK = 1000

_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
MAX_TOPIC_NAME = 249
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


def check_topic_name(name: str) -> None:
    """Kafka's rules (Topic.validate): ASCII alphanumerics, '.', '_', '-'; 1..249 chars; not '.' or '..'."""
    if not name or name in (".", "..") or len(name) > MAX_TOPIC_NAME or not _LEGAL_TOPIC.match(name):
        raise KafkaError(
            ErrorCode.INVALID_TOPIC_EXCEPTION,
            f"topic name {name!r} is illegal: expected 1-{MAX_TOPIC_NAME} characters of [a-zA-Z0-9._-], not '.' or '..'",
        )


@dataclass
class TopicInfo:
    """One topic as the control plane knows it."""

    name: str
    topic_id: uuid.UUID
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)  # topic-level overrides only
    placement: list[int] = field(default_factory=list)  # owning shard of each partition
    epochs: list[int] = field(default_factory=list)  # leader epoch of each partition: bumped when it moves
    # In a ZooKeeper cluster (docs/cluster.md), per partition: its replicas' node ids (the first
    # is the preferred leader), its leader's node id (-1: none), its in-sync replicas and the
    # ZooKeeper version of its state (a leader's ISR change is conditional on it).  Empty on a
    # single host, where `placement` names the one shard that holds each partition.
    replicas: list[list[int]] = field(default_factory=list)
    leaders: list[int] = field(default_factory=list)
    isr: list[list[int]] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    # A partition being reassigned (KIP-455): the replicas it is adding and removing (`replicas`
    # is then the union of the old and new sets); empty lists otherwise.
    adding: list[list[int]] = field(default_factory=list)
    removing: list[list[int]] = field(default_factory=list)

    @property
    def internal(self) -> bool:
        return self.name in INTERNAL_TOPICS

    def to_doc(self) -> dict[str, object]:
        doc: dict[str, object] = {"id": str(self.topic_id), "partitions": self.partitions, "configs": self.configs,
                                  "placement": self.placement, "epochs": self.epochs}
        if self.replicas:
            doc.update(replicas=self.replicas, leaders=self.leaders, isr=self.isr, versions=self.versions,
                       adding=self.adding, removing=self.removing)
        return doc

    @classmethod
    def from_doc(cls, name: str, doc: dict[str, object]) -> TopicInfo:
        info = cls(name, uuid.UUID(str(doc["id"])), int(doc["partitions"]),  # type: ignore[call-overload]
                   dict(doc.get("configs", {})), list(doc.get("placement", [])),  # type: ignore[call-overload]
                   list(doc.get("epochs", [])))  # type: ignore[call-overload]
        info.epochs += [0] * (info.partitions - len(info.epochs))
        if "replicas" in doc:
            info.replicas, info.leaders = doc["replicas"], doc["leaders"]  # type: ignore[assignment]
            info.isr, info.versions = doc["isr"], doc["versions"]  # type: ignore[assignment]
            info.adding, info.removing = doc.get("adding", []), doc.get("removing", [])  # type: ignore[assignment]
        return info


class MetadataStore:
    """Topics and cluster identity, persisted as one atomically replaced JSON document."""

    def __init__(self, directory: str, cluster_id: str | None = None, shards: int = 1) -> None:
        self.path = os.path.join(directory, FILE_NAME)
        self.shards = shards
        self.topics: dict[str, TopicInfo] = {}
        self.cluster_id = cluster_id or ""
        # Dynamic broker configs (KIP-226) by resource name: "" is the cluster-wide default,
        # "<node id>" one node's own; each maps Kafka key -> value text.
        self.broker_configs: dict[str, dict[str, str]] = {}
        # SCRAM credentials (pyk.server.security.scram): user -> mechanism -> salt, StoredKey,
        # ServerKey and iterations as stored text; never a password.
        self.scram: dict[str, dict[str, dict[str, object]]] = {}
        # ACL bindings (pyk.server.security.authorizer.AclBinding.to_doc), sorted: what the
        # authorizer of every shard decides on.
        self.acls: list[list[object]] = []
        # Client quotas (pyk.server.quotas) by entity path ("users/alice/clients/<default>"):
        # quota key -> value.
        self.client_quotas: dict[str, dict[str, float]] = {}
        self._producer_id_limit = 0  # persisted: ids below it may have been handed out
        self._next_producer_id = 0
        self._load()
        moved = self._fit_placement()
        if not self.cluster_id or moved:
            self.cluster_id = self.cluster_id or _new_cluster_id()
            self._save()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except FileNotFoundError:
            return
        stored_id = doc.get("cluster_id", "")
        if self.cluster_id and stored_id and stored_id != self.cluster_id:
            raise ValueError(f"cluster.id {self.cluster_id} does not match {stored_id} stored in {self.path}")
        self.cluster_id = self.cluster_id or stored_id
        self._producer_id_limit = self._next_producer_id = int(doc.get("producer_id_limit", 0))
        for name, t in doc.get("topics", {}).items():
            self.topics[name] = TopicInfo.from_doc(name, t)
        self.broker_configs = {str(k): dict(v) for k, v in doc.get("broker_configs", {}).items()}
        self.scram = doc.get("scram", {})
        self.acls = doc.get("acls", [])
        self.client_quotas = doc.get("client_quotas", {})

    def _save(self) -> None:
        doc = {
            "version": 1,
            "cluster_id": self.cluster_id,
            "producer_id_limit": self._producer_id_limit,
            "topics": {t.name: t.to_doc() for t in self.topics.values()},
            "broker_configs": self.broker_configs,
            "scram": self.scram,
            "acls": self.acls,
            "client_quotas": self.client_quotas,
        }
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    # Topics --------------------------------------------------------------------------------
    def get(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                     placement: list[int] | None = None) -> TopicInfo:
        check_topic_name(name)
        if name in self.topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")  # Kafka's words
        info = TopicInfo(name, uuid.uuid4(), 0, dict(configs))
        self._grow(info, partitions, placement)
        self.topics[name] = info
        self._save()
        return info

    def delete_topic(self, name: str) -> TopicInfo:
        info = self.topics.pop(name, None)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        self._save()
        return info

    def set_partitions(self, name: str, count: int, placement: list[int] | None = None) -> None:
        self._grow(self.topics[name], count, placement)
        self._save()

    # Placement -----------------------------------------------------------------------------
    # Each partition belongs to one shard (worker process) for its whole life, so a shard's
    # data plane never shares a partition.  New partitions go to the least-loaded shard; the
    # placement is stored, so it is stable across restarts.  A manual replica assignment
    # (pyk.server.assignment) names the shard of each new partition instead.  Only when
    # num.shards shrinks do the partitions of vanished shards move, again to the least-loaded ones.
    def _load_per_shard(self) -> list[int]:
        load = [0] * self.shards
        for t in self.topics.values():
            for shard in t.placement:
                if shard < self.shards:
                    load[shard] += 1
        return load

    def _grow(self, info: TopicInfo, count: int, placement: list[int] | None = None) -> None:
        """Adds partitions up to `count`, on the shards `placement` names for them (in order) or
        else on the least-loaded ones."""
        first = len(info.placement)
        if placement is not None and (len(placement) != count - first or not all(0 <= s < self.shards for s in placement)):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"placement {placement} does not give one of shards 0..{self.shards - 1} "
                             f"to each of partitions {first}..{count - 1}")
        load = self._load_per_shard()
        for p in range(first, count):
            shard = placement[p - first] if placement is not None else min(range(self.shards), key=lambda s: (load[s], s))
            info.placement.append(shard)
            info.epochs.append(0)
            load[shard] += 1
        info.partitions = count

    def _fit_placement(self) -> bool:
        """Re-homes partitions whose shard no longer exists (or that have none); True if any moved."""
        moved = False
        load = self._load_per_shard()
        for t in self.topics.values():
            t.placement = t.placement[: t.partitions]
            while len(t.placement) < t.partitions:
                t.placement.append(self.shards)  # placeholder: re-homed below
            for p, shard in enumerate(t.placement):
                if shard >= self.shards:
                    target = min(range(self.shards), key=lambda s: (load[s], s))
                    t.placement[p] = target
                    # A new leader: a new leader epoch, so clients that cached the old leader's
                    # epoch detect the change (KIP-320) instead of trusting stale positions.
                    t.epochs[p] += 1
                    load[target] += 1
                    moved = True
        return moved

    def move_partition(self, name: str, partition: int, shard: int) -> int:
        """Places a partition on another shard (the shard balancer moved it there) at the next
        leader epoch, which it returns: clients holding the old epoch are fenced (KIP-320)."""
        info = self.topics[name]
        info.placement[partition] = shard
        info.epochs[partition] += 1
        self._save()
        return info.epochs[partition]

    def snapshot(self) -> dict[str, object]:
        """Everything a shard needs to serve: sent to every shard after each change."""
        return {"cluster_id": self.cluster_id, "topics": {t.name: t.to_doc() for t in self.topics.values()},
                "broker_configs": self.broker_configs, "scram": self.scram, "acls": self.acls,
                "client_quotas": self.client_quotas}

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self.topics[name].configs = dict(configs)
        self._save()

    def set_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        """Replaces the dynamic configs of one BROKER resource ("" = cluster default); an empty
        set removes the resource."""
        if configs:
            self.broker_configs[resource] = dict(configs)
        else:
            self.broker_configs.pop(resource, None)
        self._save()

    def alter_scram(self, deletions: list[tuple[str, str]], upsertions: list[tuple[str, str, dict[str, object]]]) -> None:
        """Removes and sets SCRAM credentials ((user, mechanism[, credential])); a user left with
        none is forgotten."""
        for user, mechanism in deletions:
            self.scram.get(user, {}).pop(mechanism, None)
        for user, mechanism, credential in upsertions:
            self.scram.setdefault(user, {})[mechanism] = credential
        self.scram = {user: creds for user, creds in self.scram.items() if creds}
        self._save()

    def alter_acls(self, deletions: list[list[object]], creations: list[list[object]]) -> None:
        """Removes and adds ACL bindings (their to_doc form); adding one already there is a no-op,
        as in Kafka."""
        self.acls = alter_acl_list(self.acls, deletions, creations)
        self._save()

    def alter_client_quotas(self, changes: list[tuple[str, dict[str, float | None]]]) -> None:
        """Sets (a value) and removes (None) quota keys of entities (path, {key: value}); an entity
        left with no key is forgotten."""
        alter_quotas(self.client_quotas, changes)
        self._save()

    # Producer ids --------------------------------------------------------------------------
    def next_producer_id(self) -> int:
        if self._next_producer_id >= self._producer_id_limit:
            self._producer_id_limit = self._next_producer_id + PRODUCER_ID_BLOCK
            self._save()
        pid = self._next_producer_id
        self._next_producer_id += 1
        return pid


def alter_acl_list(acls: list[list[object]], deletions: list[list[object]],
                   creations: list[list[object]]) -> list[list[object]]:
    """`acls` without `deletions` and with `creations`, sorted, each binding once."""
    gone = {tuple(d) for d in deletions}
    kept = {tuple(a) for a in acls if tuple(a) not in gone} | {tuple(c) for c in creations}
    return [list(a) for a in sorted(kept)]


def alter_quotas(quotas: dict[str, dict[str, float]], changes: list[tuple[str, dict[str, float | None]]]) -> None:
    """Applies client quota changes (see MetadataStore.alter_client_quotas) to `quotas` in place."""
    for path, ops in changes:
        values = quotas.setdefault(path, {})
        for key, value in ops.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
        if not values:
            del quotas[path]


def _new_cluster_id() -> str:
    """Kafka's format: a random UUID as 22 characters of URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class RegisteredNode(TypedDict):
    """A cluster node as ZooKeeper registers it (pyk.cluster.zk.BrokerInfo.node)."""

    node_id: int
    host: str  # the first advertised listener's
    port: int
    rack: str | None
    endpoints: dict[str, tuple[str, int]]  # every advertised listener: name -> (host, port)


class MetadataView:
    """A shard's read-only copy of the cluster metadata, replaced whole by each snapshot.

    Handlers read topics through it; changes go to the orchestrator (the store's only writer)
    over the control channel and come back as the next snapshot.
    """

    def __init__(self) -> None:
        self.cluster_id = ""
        self.topics: dict[str, TopicInfo] = {}
        self.broker_configs: dict[str, dict[str, str]] = {}  # as MetadataStore.broker_configs
        self.scram: dict[str, dict[str, dict[str, object]]] = {}  # as MetadataStore.scram
        self.acls: list[list[object]] = []  # as MetadataStore.acls
        self.client_quotas: dict[str, dict[str, float]] = {}  # as MetadataStore.client_quotas
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        # A ZooKeeper cluster's live nodes and controller; None on a single host, whose nodes
        # are its own shards.
        self.brokers: list[RegisteredNode] | None = None
        self.controller_id = -1
        self.stopping = False
        self._next: list[asyncio.Future[None]] = []  # waiters of the next snapshot

    async def next_snapshot(self) -> None:
        """Waits for the next snapshot to replace this view (a change made elsewhere, e.g. an
        election written to ZooKeeper, reaching this shard)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._next.append(future)
        await future

    def replace(self, snapshot: dict[str, object]) -> None:
        self.cluster_id = str(snapshot["cluster_id"])
        topics = snapshot["topics"]
        assert isinstance(topics, dict)
        self.topics = {name: TopicInfo.from_doc(name, doc) for name, doc in topics.items()}
        self._by_id = {t.topic_id: t for t in self.topics.values()}
        broker_configs = snapshot.get("broker_configs", {})
        assert isinstance(broker_configs, dict)
        self.broker_configs = broker_configs
        scram = snapshot.get("scram", {})
        assert isinstance(scram, dict)
        self.scram = scram
        acls = snapshot.get("acls", [])
        assert isinstance(acls, list)
        self.acls = acls
        client_quotas = snapshot.get("client_quotas", {})
        assert isinstance(client_quotas, dict)
        self.client_quotas = client_quotas
        brokers = snapshot.get("brokers")
        assert brokers is None or isinstance(brokers, list)
        self.brokers = cast("list[RegisteredNode] | None", brokers)
        self.controller_id = int(snapshot.get("controller_id", -1))  # type: ignore[call-overload]
        self.stopping = bool(snapshot.get("stopping", False))  # a cluster host in a controlled shutdown
        waiters, self._next = self._next, []
        for future in waiters:
            if not future.done():
                future.set_result(None)

    @property
    def clustered(self) -> bool:
        """True in a ZooKeeper cluster (partitions replicated across hosts)."""
        return self.brokers is not None

    def get(self, name: str) -> TopicInfo | None:
        return self.topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)
