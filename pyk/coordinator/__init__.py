"""pyk.coordinator: consumer groups (classic and KIP-848 protocols) and their committed offsets.

Modules, top to bottom:
  * coordinator.py      GroupCoordinator: placement, start-up load, the group table, the
                        group-level admin APIs; owns the three parts below (Kafka's split);
  * classic.py          ClassicGroupManager: JoinGroup / SyncGroup / Heartbeat / LeaveGroup, the
                        rebalance state machine's driver and member liveness timers;
  * consumer.py         ConsumerGroupManager: ConsumerGroupHeartbeat (KIP-848), its timers and
                        the persistence of its records;
  * offset_metadata.py  OffsetMetadataManager: OffsetCommit / OffsetFetch / OffsetDelete /
                        TxnOffsetCommit and offset retention;
  * api.py              the typed arguments and results of those parts' request methods
                        (Kafka's names); the handlers translate wire dicts to and from them;
  * group.py            Group / Member / GroupState: one group's state and its invariants;
  * offsets.py          OffsetManager: `__consumer_offsets` (placement of groups on partitions,
                        appends, start-up load);
  * records.py          Kafka's record schemas for that topic (OffsetCommitKey/Value,
                        GroupMetadataKey/Value, the KIP-848 ConsumerGroup*Key/Value);
  * consumer_group.py   a KIP-848 (consumer-protocol) group's epochs, assignor and reconciliation;
  * consumer_group_records.py  such a group as its records, and back (restart without rejoin);
  * batch.py            the record batches the coordinator writes and reads back;
  * consumer_protocol.py  the consumer protocol's subscription and assignment encodings;
  * transaction.py      TransactionCoordinator (KIP-98): transactional ids, their state machine,
                        `__transaction_state`, timeouts;
  * transaction_log.py  Kafka's TransactionLogKey/Value records and the transaction states;
  * transaction_markers.py  WriteTxnMarkers to the partitions of a transaction, on any shard.

One GroupCoordinator per broker process hosts the groups whose `__consumer_offsets` partition
that process leads (all of them on a single process), and one TransactionCoordinator the
transactional ids whose `__transaction_state` partition it leads.  The server's handlers
(pyk/server/handlers/{find_coordinator,join_group,end_txn,...}.py) call them through
`services.groups` and `services.txn` (pyk.server.context); the coordinators reach their node
through a CoordinatorHost (host.py), never the broker object.
"""

from pyk.coordinator.coordinator import GroupCoordinator
from pyk.coordinator.offsets import OFFSETS_TOPIC, partition_for
from pyk.coordinator.transaction import TransactionCoordinator

__all__ = ["OFFSETS_TOPIC", "GroupCoordinator", "TransactionCoordinator", "partition_for"]
