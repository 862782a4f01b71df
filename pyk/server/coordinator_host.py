"""The server's CoordinatorHost (pyk.coordinator.host): the shard's metadata view, nodes,
ReplicaManager and AdminManager as the coordinators see them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pyk.config import ServerConfig
from pyk.log import PartitionLog
from pyk.server.admin import AdminManager
from pyk.server.metadata_store import MetadataView, TopicInfo
from pyk.server.replica_manager import ReplicaManager
from pyk.server.security.inter_broker import InterBrokerClient


class ShardCoordinatorHost:
    def __init__(self, admin: AdminManager, node_id: int, metadata: MetadataView, replicas: ReplicaManager,
                 brokers: Callable[[], list[dict[str, Any]]], inter_broker: InterBrokerClient) -> None:
        self._node_id = node_id
        self._inter_broker = inter_broker
        self._metadata = metadata
        self._replicas = replicas
        self._admin = admin
        self._brokers = brokers

    @property
    def config(self) -> ServerConfig:
        return self._admin.config

    @property
    def node_id(self) -> int:
        return self._node_id

    @property
    def replicas(self) -> ReplicaManager:
        return self._replicas

    def topic(self, name: str) -> TopicInfo | None:
        return self._metadata.get(name)

    def user_topics(self) -> list[TopicInfo]:
        return [info for info in self._metadata.topics.values() if not info.internal]

    def local_log(self, topic: str, partition: int) -> PartitionLog | None:
        return self._replicas.led_log(topic, partition)

    def leader(self, info: TopicInfo, partition: int) -> int:
        return self._replicas.leader_of(info, partition)

    def node(self, node_id: int) -> dict[str, Any] | None:
        return next((n for n in self._brokers() if n["node_id"] == node_id), None)

    @property
    def inter_broker(self) -> InterBrokerClient:
        return self._inter_broker

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> Awaitable[TopicInfo]:
        return self._admin.create_topic(name, partitions, configs)

    def next_producer_id(self) -> Awaitable[int]:
        return self._admin.next_producer_id()
