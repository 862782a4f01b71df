"""CoordinatorHost: what the group and transaction coordinators need of the node they run on.

Topic and node lookups, the local logs of their internal topics (`__consumer_offsets`,
`__transaction_state`) with appends through the node's ReplicaManager (which wakes fetchers
tailing them), the creation of those topics and producer ids from the control plane.  The
server implements it (pyk.server.coordinator_host); the coordinators' unit tests implement it
over real logs.  Nothing here knows the broker object.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pyk.config import ServerConfig
    from pyk.log import PartitionLog
    from pyk.server.metadata_store import TopicInfo
    from pyk.server.replica_manager import ReplicaManager
    from pyk.server.security.inter_broker import InterBrokerClient


class CoordinatorHost(Protocol):
    """See the module docstring."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def node_id(self) -> int:
        """The node the coordinators run on."""
        ...

    @property
    def replicas(self) -> ReplicaManager:
        """Appends to the local partitions (and control markers into them)."""
        ...

    def topic(self, name: str) -> TopicInfo | None: ...

    def user_topics(self) -> list[TopicInfo]:
        """Every topic but the internal ones (what a regex subscription may match)."""
        ...

    def local_log(self, topic: str, partition: int) -> PartitionLog | None:
        """The log of a partition this node leads, None when another node leads it."""
        ...

    def leader(self, info: TopicInfo, partition: int) -> int:
        """The node id leading a partition of a known topic."""
        ...

    def node(self, node_id: int) -> dict[str, Any] | None:
        """{"node_id", "host", "port", "rack"} of a live node on the inter-broker listener, None
        when unknown."""
        ...

    @property
    def inter_broker(self) -> InterBrokerClient:
        """Opens (and re-authenticates) connections to other nodes, with the inter-broker security."""
        ...

    def create_topic(self, name: str, partitions: int, configs: dict[str, str]) -> Awaitable[TopicInfo]: ...

    def next_producer_id(self) -> Awaitable[int]: ...
