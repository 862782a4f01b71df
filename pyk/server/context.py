"""What a handler is given: the request's context and the shard's services.

`RequestContext` is per request: the decoded header, who sent it (peer address, the principal the
security layer will authenticate) and the connection.  `ShardServices` is per shard: typed
references to everything a handler may call (Kafka's KafkaApis holds the same set), so that a
handler is `handle(ctx, services, request)` and never reaches into the broker object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyk.config import Listener, ServerConfig
from pyk.errors import KafkaError
from pyk.log import LogManager
from pyk.protocol.header import RequestHeader
from pyk.server.admin import AdminManager
from pyk.server.connection import ANONYMOUS, Connection
from pyk.server.metadata_store import MetadataView
from pyk.server.quotas import ClientQuotas
from pyk.server.replica_manager import ReplicaManager
from pyk.server.security.authorizer import (
    CLUSTER_NAME,
    DENIED,
    SUPPORTED_OPERATIONS,
    AclOperation,
    Authorizer,
    ResourceType,
)
from pyk.server.security.inter_broker import InterBrokerClient

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
    inter_broker: InterBrokerClient  # how this node dials others (the inter-broker listener's TLS and SASL)
    supported_apis: list[tuple[int, int, int]]  # (api key, min, max): the ApiVersions answer
    authorizer: Authorizer | None = None  # authorizer.class.name set: ACLs decide (else everything is allowed)

    # Authorization: what handlers ask (Kafka's AuthHelper); always True without an authorizer.
    def authorized(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str,
                   audit: bool = True) -> bool:
        """May the request's principal do `operation` on the resource (`audit`: log a denial)?"""
        return self.authorizer is None or self.authorizer.authorize(ctx.principal, ctx.client_address, operation,
                                                                    resource_type, name, audit)

    def require(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str) -> None:
        """Raises the resource type's *_AUTHORIZATION_FAILED unless the principal may do
        `operation` on it: for the handlers' per-partition `try` blocks."""
        if not self.authorized(ctx, operation, resource_type, name):
            raise KafkaError(DENIED[resource_type], f"{ctx.principal} may not {operation.name} "
                             f"{resource_type.name} {name}")

    def cluster_authorized(self, ctx: RequestContext, operation: AclOperation, audit: bool = True) -> bool:
        return self.authorized(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME, audit)

    def authorized_names(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType,
                         names: Iterable[str], audit: bool = True) -> set[str]:
        """The names among `names` the principal may do `operation` on (Kafka's filterByAuthorized)."""
        if self.authorizer is None:
            return set(names)
        return {n for n in set(names) if self.authorized(ctx, operation, resource_type, n, audit)}

    def authorized_operations(self, ctx: RequestContext, resource_type: ResourceType, name: str) -> int:
        """The bit field of the operations the principal may do on the resource (Kafka's
        AuthHelper.authorizedOperations: every supported one without an authorizer)."""
        return sum(1 << op for op in SUPPORTED_OPERATIONS[resource_type]
                   if self.authorized(ctx, op, resource_type, name, audit=False))

    def authorized_any(self, ctx: RequestContext, operation: AclOperation, resource_type: ResourceType) -> bool:
        """May the principal do `operation` on some resource of the type (KIP-679)?"""
        return self.authorizer is None or self.authorizer.authorize_any(ctx.principal, ctx.client_address, operation,
                                                                        resource_type)

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
        """Every node as Metadata/DescribeCluster list them, on the advertised listener named
        `listener` (the one a request came in on, as Kafka answers; None: the inter-broker
        listener, which other brokers dial): a cluster's live nodes that registered that
        listener, else every shard of this host (on the first listener if it has no such one)."""
        name = listener or self.config.inter_broker_listener.name
        if self.metadata.brokers is not None:
            out = []
            for b in self.metadata.brokers:
                endpoint = b["endpoints"].get(name)
                if endpoint is not None:
                    out.append({"node_id": b["node_id"], "host": endpoint[0], "port": endpoint[1], "rack": b["rack"]})
            return out
        advertised = self.config.advertised_listeners
        adv = next((a for a in advertised if a.name == name), advertised[0])
        return [{"node_id": self.base_node_id + i, "host": adv.host, "port": shard_port(adv, i), "rack": None}
                for i in range(self.shard_count)]


def shard_port(listener: Listener, index: int) -> int:
    """Shard `index` listens on the configured port + index (port 0 stays 0: any free port)."""
    return listener.port + index if listener.port else 0
