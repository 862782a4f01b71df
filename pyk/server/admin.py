"""AdminManager: a shard's side of metadata changes (topics, partitions, configs, producer ids).

The orchestrator owns the metadata store (pyk.server.metadata_store); a shard asks it for a
change with `control.call(...)`, which returns once every shard applied the new snapshot, so a
created topic is served everywhere when the call returns.  This is where a cluster's controller
calls will go.  Also the home of the shard's log-config defaults: a topic's effective LogConfig
is the broker defaults with its overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pyk.config import ServerConfig
from pyk.errors import ErrorCode, KafkaError
from pyk.log.config import LogConfig
from pyk.server.control import ControlClient
from pyk.server.metadata_store import MetadataView, TopicInfo

log = logging.getLogger("pyk.server")


class AdminManager:
    """Metadata changes through the orchestrator (see module docstring).  `control` is the
    shard's control channel, known once the shard connected to its orchestrator."""

    def __init__(self, config: ServerConfig, metadata: MetadataView, log_defaults: LogConfig,
                 control: Callable[[], ControlClient | None]) -> None:
        self.config = config
        self.metadata = metadata
        self.log_defaults = log_defaults
        self._control_client = control

    def topic_log_config(self, topic: TopicInfo) -> LogConfig:
        return self.log_defaults.with_overrides(topic.configs)

    async def _control(self, op: str, **args: Any) -> Any:
        control = self._control_client()
        assert control is not None, "admin call before the shard joined its orchestrator"
        return await control.call(op, **args)

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                           placement: list[int] | None = None) -> TopicInfo:
        """Creates a topic; returns once every shard serves its partitions.  `placement` names
        the owning shard of each partition (a manual assignment), else the store places them."""
        self.log_defaults.with_overrides(configs)  # fail fast with INVALID_CONFIG
        await self._control("create_topic", name=name, partitions=partitions, configs=configs, placement=placement)
        info = self.metadata.get(name)
        assert info is not None
        log.info("created topic %s with %d partitions%s", name, partitions, f" configs {configs}" if configs else "")
        return info

    async def maybe_auto_create(self, name: str) -> TopicInfo | None:
        if not self.config["auto.create.topics.enable"]:
            return None
        try:
            return await self.create_topic(name, self.config["num.partitions"], {})
        except KafkaError as exc:
            if exc.code != ErrorCode.TOPIC_ALREADY_EXISTS:  # a concurrent request created it: fine
                raise
            return self.metadata.get(name)

    async def delete_topic(self, name: str) -> None:
        await self._control("delete_topic", name=name)

    async def create_partitions(self, name: str, count: int, placement: list[int] | None = None) -> None:
        """Grows a topic to `count` partitions; `placement` as for create_topic, for the new ones."""
        await self._control("create_partitions", name=name, count=count, placement=placement)

    async def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        await self._control("set_configs", name=name, configs=configs)

    async def next_producer_id(self) -> int:
        return int(await self._control("next_producer_id"))
