"""Java transactions (kafka-clients 4.1) against `pyk serve`.

One JVM runs every scenario of tests/java/src/clients/TxnScenarios.java: a consume-transform-produce loop
with sendOffsetsToTransaction (commit, abort, redo), an open transaction seen by the admin client
and by read_committed consumers, and zombie fencing. librdkafka's read_committed consumer must see
exactly what the Java one sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BrokerProcess, ExternalBroker, confluent_read_to_end
from tests.java.scenarios import ok, run_scenarios

Results = dict[str, dict[str, Any]]
# The Java producer reports a fenced epoch as either, depending on the request that meets it.
FENCED = {"ProducerFencedException", "InvalidProducerEpochException"}


@pytest.fixture(scope="module")
def results(broker: BrokerProcess | ExternalBroker, java_classes: Path) -> Results:
    return run_scenarios(java_classes, "clients.TxnScenarios", broker.bootstrap, "java-txn")


def _committed(bootstrap: str, topic: str) -> list[bytes | None]:
    return [r.value for r in confluent_read_to_end(bootstrap, topic, **{"isolation.level": "read_committed"})]


def test_consume_transform_produce(broker: BrokerProcess | ExternalBroker, results: Results) -> None:
    r = ok(results, "consume-transform-produce")
    transformed = [f"R{i}" for i in range(20)]
    assert r["committed_values"] == transformed
    assert r["uncommitted_values"] == transformed[:10] + [f"{v}-aborted" for v in transformed[10:]] + transformed[10:]
    # The abort left the group's offset at 10, the redo moved it to 20.
    assert r["positions"] == [10, 10, 20]
    assert r["group_offset"] == 20
    assert _committed(broker.bootstrap, r["output"]) == [v.encode() for v in transformed]


def test_open_transaction_admin_and_read_committed(broker: BrokerProcess | ExternalBroker, results: Results) -> None:
    r = ok(results, "open-transaction")
    [[producer_id, state]] = r["listed_ongoing"]
    assert state == "Ongoing"
    assert r["listed_ongoing_filter"] == [[producer_id, "Ongoing"]]
    assert r["listed_commit_filter"] == []
    assert r["described_ongoing"] == {"state": "Ongoing", "producer_id": producer_id, "epoch": 0, "timeout_ms": 30000,
                                      "start_time_set": True, "partitions": ["java-txn-open-0"]}
    # describeProducers: the plain idempotent producer (offset 0) and the open transaction from offset 1.
    by_id = {p[0]: p[1:] for p in r["producers_ongoing"]}
    assert by_id.pop(producer_id) == [0, 2, 1]
    assert list(by_id.values()) == [[0, 1, None]]
    # The last stable offset holds read_committed consumers before the open transaction.
    assert (r["read_committed_end"], r["read_uncommitted_end"]) == (1, 5)
    assert r["read_committed_before_commit"] == ["before"]
    # The admin's listOffsets(latest) by isolation level: the last stable offset or the log end.
    assert (r["admin_latest_read_committed"], r["admin_latest_read_uncommitted"]) == (1, 5)
    # Transactions V2 (KIP-890, EndTxn v5) bump the epoch at each commit; V1 (EndTxn v4 and below) keeps it.
    epoch = r["described_ongoing"]["epoch"]
    assert r["described_committed"]["epoch"] in (epoch, epoch + 1)
    assert r["described_committed"] == {**r["described_ongoing"], "state": "CompleteCommit", "partitions": [],
                                        "epoch": r["described_committed"]["epoch"]}
    assert r["read_committed_after_commit"] == ["before", "txn0", "txn1", "txn2", "after"]
    assert _committed(broker.bootstrap, r["topic"]) == [b"before", b"txn0", b"txn1", b"txn2", b"after"]
    assert r["describe_unknown"] == "TransactionalIdNotFoundException"


def test_zombie_fencing(broker: BrokerProcess | ExternalBroker, results: Results) -> None:
    r = ok(results, "fencing")
    assert r["fresh_epoch"] > r["zombie_epoch"]
    assert r["zombie_send"] in FENCED
    assert r["zombie_commit"] in FENCED
    assert r["committed_values"] == ["fresh-1"]
    assert r["uncommitted_values"] == ["zombie-1", "fresh-1"]
    assert _committed(broker.bootstrap, r["topic"]) == [b"fresh-1"]


def test_admin_fence_producers(broker: BrokerProcess | ExternalBroker, results: Results) -> None:
    """Admin.fenceProducers (KIP-618): the producer's epoch is bumped, its open transaction
    aborted, its commit refused; a new producer with the id carries on."""
    r = ok(results, "fence-producers")
    assert r["before"]["state"] == "Ongoing"
    assert r["after"]["producer_id"] == r["before"]["producer_id"]
    assert r["after"]["epoch"] > r["before"]["epoch"]
    assert (r["after"]["state"], r["after"]["partitions"]) == ("Empty", [])
    assert r["commit"] in FENCED
    assert r["committed_values"] == ["after-fence"]
    assert _committed(broker.bootstrap, r["topic"]) == [b"after-fence"]
