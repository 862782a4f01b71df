"""What a handler is given: the request's context and the shard's services.

`RequestContext` is per request: the decoded header, who sent it (peer address, the principal the
security layer will authenticate) and the connection.  `ShardServices` is per shard: typed
references to everything a handler may call (Kafka's KafkaApis holds the same set), so that a
handler is `handle(ctx, services, request)` and never reaches into the broker object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyk.config import Listener, ServerConfig
from pyk.log import LogManager
from pyk.protocol.header import RequestHeader
from pyk.server.admin import AdminManager
from pyk.server.connection import ANONYMOUS, Connection
from pyk.server.metadata_store import MetadataView
from pyk.server.quotas import ClientQuotas
from pyk.server.replica_manager import ReplicaManager

if TYPE_CHECKING:
    from pyk.coordinator import GroupCoordinator, TransactionCoordinator



@dataclass(slots=True)
class RequestContext:
    """One request as received (Kafka's RequestContext)."""

    header: RequestHeader
    connection: Connection
    client_address: str  # the peer's IP address, as the socket gives it
    principal: str = ANONYMOUS  # the authenticated identity ("User:name"): what an authorizer checks
    throttle_time_ms: int = 0  # a client quota's throttle (pyk.server.quotas): answered, then the connection mutes

    @property
    def client_id(self) -> str:
        return self.header.client_id or ""

    @property
    def client_host(self) -> str:
        """The peer as Kafka reports it in group descriptions (Java's InetAddress.toString())."""
        return "/" + self.client_address


@dataclass(slots=True)
class ShardServices:
    """A shard's services and identity as handlers use them (see module docstring)."""

    node_id: int  # this shard's node
    base_node_id: int  # node.id: shard i is node base_node_id + i
    shard_count: int
    metadata: MetadataView
    logs: LogManager
    replicas: ReplicaManager
    admin: AdminManager
    groups: GroupCoordinator
    txn: TransactionCoordinator
    quotas: ClientQuotas  # the client quotas this node enforces
    supported_apis: list[tuple[int, int, int]]  # (api key, min, max): the ApiVersions answer

    @property
    def config(self) -> ServerConfig:
        """The effective settings (they change with the dynamic broker configs)."""
        return self.admin.config

    @property
    def controller_id(self) -> int:
        return self.metadata.controller_id if self.metadata.clustered else self.base_node_id

    @property
    def node_ids(self) -> range:
        """The node ids of every shard of this host."""
        return range(self.base_node_id, self.base_node_id + self.shard_count)

    def brokers(self, listener: str | None = None) -> list[dict[str, Any]]:
        """Every node as Metadata/DescribeCluster list them: a cluster's live nodes (their
        registered endpoint), else every shard of this host on the advertised listener named
        `listener` (the one a request came in on, as Kafka answers), else the first one."""
        if self.metadata.brokers is not None:
            return [dict(b) for b in self.metadata.brokers]
        advertised = self.config.advertised_listeners
        adv = next((a for a in advertised if a.name == listener), advertised[0])
        return [{"node_id": self.base_node_id + i, "host": adv.host, "port": shard_port(adv, i), "rack": None}
                for i in range(self.shard_count)]


def shard_port(listener: Listener, index: int) -> int:
    """Shard `index` listens on the configured port + index (port 0 stays 0: any free port)."""
    return listener.port + index if listener.port else 0
