"""Cluster metadata of a single node: topics, topic ids, partition counts, topic config overrides,
the cluster id and the producer-id high-water mark.

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

import base64
import json
import os
import re
import uuid
from dataclasses import dataclass, field

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

    @property
    def internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


class MetadataStore:
    """Topics and cluster identity, persisted as one atomically replaced JSON document."""

    def __init__(self, directory: str, cluster_id: str | None = None) -> None:
        self.path = os.path.join(directory, FILE_NAME)
        self.topics: dict[str, TopicInfo] = {}
        self.cluster_id = cluster_id or ""
        self._producer_id_limit = 0  # persisted: ids below it may have been handed out
        self._next_producer_id = 0
        self._load()
        if not self.cluster_id:
            self.cluster_id = _new_cluster_id()
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
            self.topics[name] = TopicInfo(name, uuid.UUID(t["id"]), int(t["partitions"]), dict(t.get("configs", {})))

    def _save(self) -> None:
        doc = {
            "version": 1,
            "cluster_id": self.cluster_id,
            "producer_id_limit": self._producer_id_limit,
            "topics": {
                t.name: {"id": str(t.topic_id), "partitions": t.partitions, "configs": t.configs}
                for t in self.topics.values()
            },
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

    def by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return next((t for t in self.topics.values() if t.topic_id == topic_id), None)

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> TopicInfo:
        check_topic_name(name)
        if name in self.topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        info = TopicInfo(name, uuid.uuid4(), partitions, dict(configs))
        self.topics[name] = info
        self._save()
        return info

    def delete_topic(self, name: str) -> TopicInfo:
        info = self.topics.pop(name, None)
        if info is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        self._save()
        return info

    def set_partitions(self, name: str, count: int) -> None:
        self.topics[name].partitions = count
        self._save()

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self.topics[name].configs = dict(configs)
        self._save()

    # Producer ids --------------------------------------------------------------------------
    def next_producer_id(self) -> int:
        if self._next_producer_id >= self._producer_id_limit:
            self._producer_id_limit = self._next_producer_id + PRODUCER_ID_BLOCK
            self._save()
        pid = self._next_producer_id
        self._next_producer_id += 1
        return pid


def _new_cluster_id() -> str:
    """Kafka's format: a random UUID as 22 characters of URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
