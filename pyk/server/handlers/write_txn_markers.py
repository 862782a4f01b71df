"""WriteTxnMarkers: a transaction coordinator asks this node to end a transaction in its partitions.

Sent by the coordinator of the transaction, which may be another shard (inter-broker; Kafka's
clients never send it).  Each partition gets a commit or abort control batch
(PartitionLog.append_control, which fences a stale producer epoch); a marker in
`__consumer_offsets` also makes the producer's pending TxnOffsetCommit offsets committed or
drops them.  Per-partition errors let the coordinator retry exactly the partitions that failed.
"""

from __future__ import annotations

from typing import Any

from pyk.coordinator.transaction_markers import write_markers
from pyk.protocol.apis import ApiKey

API_KEY = ApiKey.WRITE_TXN_MARKERS
MIN_VERSION = 0
MAX_VERSION = 1


def handle(broker: Any, header: Any, request: dict[str, Any]) -> dict[str, Any]:
    return {"markers": write_markers(broker, request["markers"])}
