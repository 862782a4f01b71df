"""AdminManager: a shard's side of metadata changes (topics, partitions, configs, producer ids).

The orchestrator owns the metadata store (pyk.server.metadata_store); a shard asks it for a
change with `control.call(...)`, which returns once every shard applied the new snapshot, so a
created topic is served everywhere when the call returns.  This is where a cluster's controller
calls will go.

Also the owner of the shard's effective configuration: the static settings (server.properties,
`--override`) under the dynamic broker configs of the metadata (KIP-226), and the log defaults
built from them; a topic's effective LogConfig is those defaults with its overrides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pyk.config import ConfigError, ServerConfig, check_dynamic, loggable
from pyk.configdef import warn_removed
from pyk.errors import ErrorCode, KafkaError
from pyk.log import LogManager
from pyk.log.cleaner import CleanerConfig
from pyk.log.config import LogConfig
from pyk.server.control import ControlClient
from pyk.server.metadata_store import MetadataView, TopicInfo

log = logging.getLogger("pyk.server")


class AdminManager:
    """Metadata changes through the orchestrator and the shard's effective configuration (see
    module docstring).  `control` is the shard's control channel, known once the shard connected
    to its orchestrator."""

    def __init__(self, static_config: ServerConfig, node_id: int, metadata: MetadataView, logs: LogManager,
                 control: Callable[[], ControlClient | None]) -> None:
        self.static_config = static_config  # server.properties + --override
        self.config = static_config  # the effective settings: static under the dynamic broker configs
        self.node_id = node_id
        self.metadata = metadata
        self.logs = logs
        self.log_defaults = logs.defaults
        self._control_client = control

    # Dynamic broker configs ------------------------------------------------------------------
    def _dynamic_layers(self) -> tuple[dict[str, str], dict[str, str]]:
        """(cluster default, this node's own) dynamic broker configs of the current metadata."""
        stored = self.metadata.broker_configs
        return stored.get("", {}), stored.get(str(self.node_id), {})

    def apply_dynamic_configs(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Rebuilds the effective config when this node's dynamic layers changed; True if they did.

        Log defaults follow at once (the caller hands every log its new config); the cleaner is
        restarted with its new settings, as Kafka's LogCleaner.reconfigure restarts its threads.
        Stored values that no longer validate (the static config changed under them) are
        ignored with an error line, as Kafka does with invalid dynamic configs at start-up.
        """
        default, mine = self._dynamic_layers()
        if (default, mine) == (self.config.dynamic_default, self.config.dynamic_broker):
            return False
        try:
            config = self.static_config.with_dynamic(default, mine)
            log_defaults = LogConfig.from_server(config)
        except (ConfigError, KafkaError) as exc:
            log.error("node %d: dynamic broker configs ignored: %s", self.node_id, exc)
            return False
        old_cleaner = CleanerConfig.from_server(self.config)
        self.config, self.log_defaults = config, log_defaults
        self.logs.defaults = log_defaults
        log.info("node %d: dynamic broker configs now default %s, node %s", self.node_id, loggable(default),
                 loggable(mine))
        cleaner = CleanerConfig.from_server(config)
        if self.logs.cleaner is not None and cleaner != old_cleaner:
            assert loop is not None
            self.logs.stop_cleaner()
            self.logs.start_cleaner(cleaner, loop)
        return True

    def validate_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        """Checks a new dynamic set for one BROKER resource ("" or a node id) against this
        node's other layer; INVALID_REQUEST naming the key, as Kafka answers for broker configs."""
        default, mine = self._dynamic_layers()
        if resource:
            mine = configs
        else:
            default = configs
        try:
            check_dynamic(configs)
            LogConfig.from_server(self.static_config.with_dynamic(default, mine))
        except (ConfigError, KafkaError) as exc:
            message = exc.message if isinstance(exc, KafkaError) else str(exc)
            raise KafkaError(ErrorCode.INVALID_REQUEST, message) from None

    # Topics ----------------------------------------------------------------------------------

    def topic_log_config(self, topic: TopicInfo) -> LogConfig:
        return self.log_defaults.with_overrides(topic.configs)

    async def _control(self, op: str, **args: Any) -> Any:
        control = self._control_client()
        assert control is not None, "admin call before the shard joined its orchestrator"
        return await control.call(op, **args)

    async def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                           placement: list[int] | None = None, replication_factor: int | None = None,
                           assignment: list[list[int]] | None = None) -> TopicInfo:
        """Creates a topic; returns once every shard serves its partitions.  `placement` names
        the owning shard of each partition (a manual assignment), else the store places them; in
        a cluster `assignment` names each partition's replicas, else the controller's placement
        gives `replication_factor` replicas (None: default.replication.factor)."""
        self.log_defaults.with_overrides(configs)  # fail fast with INVALID_CONFIG
        warn_removed(configs, f"topic {name}")
        args: dict[str, Any] = {"name": name, "partitions": partitions, "configs": configs, "placement": placement}
        if self.metadata.clustered:
            args.update(replication_factor=replication_factor, assignment=assignment)
        await self._control("create_topic", **args)
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

    async def create_partitions(self, name: str, count: int, placement: list[int] | None = None,
                                assignment: list[list[int]] | None = None) -> None:
        """Grows a topic to `count` partitions; `placement` and (in a cluster) `assignment` as for
        create_topic, for the new ones."""
        args: dict[str, Any] = {"name": name, "count": count, "placement": placement}
        if self.metadata.clustered:
            args["assignment"] = assignment
        await self._control("create_partitions", **args)

    async def elect_leaders(self, election_type: int,
                            partitions: list[tuple[str, int]] | None) -> list[tuple[str, int, int, str | None]]:
        """ElectLeaders in a cluster (0: preferred, 1: unclean) of `partitions` (None: all);
        (topic, partition, error code, message) of each."""
        results = await self._control("elect_leaders", election_type=election_type,
                                      partitions=None if partitions is None else [list(tp) for tp in partitions])
        return [(str(t), int(p), int(code), message) for t, p, code, message in results]

    async def alter_partition_reassignments(self, reassignments: list[tuple[str, int, list[int] | None]],
                                            allow_replication_factor_change: bool
                                            ) -> list[tuple[str, int, int, str | None]]:
        """AlterPartitionReassignments in a cluster, applied by the controller host's ZooKeeper
        session (NOT_CONTROLLER elsewhere); (topic, partition, error code, message) of each."""
        results = await self._control("alter_partition_reassignments", reassignments=[list(r) for r in reassignments],
                                      allow_replication_factor_change=allow_replication_factor_change)
        return [(str(t), int(p), int(code), message) for t, p, code, message in results]

    async def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        warn_removed(configs, f"topic {name}")
        await self._control("set_configs", name=name, configs=configs)

    async def set_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        """Stores the complete dynamic set of a BROKER resource; returns once every shard applied it."""
        warn_removed(configs, f"broker {resource or '<default>'}")
        await self._control("set_broker_configs", resource=resource, configs=configs)
        log.info("dynamic configs of broker %s set to %s", resource or "<default>", loggable(configs))

    async def alter_scram(self, deletions: list[tuple[str, str]],
                          upsertions: list[tuple[str, str, dict[str, object]]]) -> None:
        """Deletes and sets SCRAM credentials (pyk.server.security.scram) in the cluster metadata."""
        await self._control("alter_scram", deletions=deletions, upsertions=upsertions)

    async def alter_acls(self, deletions: list[list[object]], creations: list[list[object]]) -> None:
        """Deletes and adds ACL bindings (AclBinding.to_doc) in the cluster metadata; returns once
        every shard's authorizer has them."""
        await self._control("alter_acls", deletions=deletions, creations=creations)

    async def alter_client_quotas(self, changes: list[tuple[str, dict[str, float | None]]]) -> None:
        """Sets and removes client quota keys (pyk.server.quotas) by entity path in the cluster
        metadata; returns once every shard applies them."""
        await self._control("alter_client_quotas", changes=changes)

    async def next_producer_id(self) -> int:
        return int(await self._control("next_producer_id"))

    async def alter_isr(self, topic: str, partition: int, leader: int, leader_epoch: int, isr: list[int],
                        version: int) -> int:
        """A leader's ISR change, written by the orchestrator to ZooKeeper if the partition state
        is still at `version` (pyk.cluster.zk); returns the state's new version."""
        return int(await self._control("alter_isr", topic=topic, partition=partition, leader=leader,
                                       leader_epoch=leader_epoch, isr=isr, version=version))
