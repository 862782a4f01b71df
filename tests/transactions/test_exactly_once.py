"""Exactly-once end to end, with failures: consume-transform-produce with a processor killed -9
mid-way and restarted with the same transactional.id, and a coordinator shard killed between
writing PrepareCommit and sending the markers (PYK_TXN_CRASH_AFTER_PREPARE), then a kill -9 and
restart of the whole broker.  2 shards: the coordinator and the partitions sit on different nodes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from confluent_kafka import KafkaException

from pyk.coordinator.transaction import CRASH_AFTER_PREPARE_ENV
from tests.helpers import REPO, confluent_produce, create_topic, make_records, wait_for
from tests.transactions.helpers import describe, read_all, txn_producer, values

PARTITIONS = 2
INPUT_RECORDS = 400


def _processor(bootstrap: str, source: str, sink: str, group: str, tid: str, batch: int,
               hold_after: int, log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "tests.transactions.processor", bootstrap, source, sink, group,
                             tid, str(batch), str(hold_after)], cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_consume_transform_produce_survives_kill9_of_the_processor(broker, topic, tmp_path):
    source, sink, group, tid = f"{topic}-in", f"{topic}-out", f"{topic}-g", f"{topic}-tx"
    create_topic(broker.bootstrap, source, PARTITIONS)
    create_topic(broker.bootstrap, sink, PARTITIONS)
    records = [r for p in range(PARTITIONS)
               for r in make_records(INPUT_RECORDS // PARTITIONS, partition=p, prefix=f"p{p}", headers=False)]
    confluent_produce(broker.bootstrap, source, records)
    log = tmp_path / "processor.log"
    first = _processor(broker.bootstrap, source, sink, group, tid, 25, 3, log)
    try:
        # Three commits, then 25 records written in a fourth transaction left open: the kill
        # lands inside it, and its writes must never become visible.
        wait_for(lambda: log.exists() and "holding an open transaction of 25 records" in log.read_text(),
                 timeout=60, what="the first processor to hold an open transaction after three commits")
        assert log.read_text().count("committed") == 3
        state = describe(broker.bootstrap, tid)
        assert state["transaction_state"] == "Ongoing" and state["topics"], state
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_epoch = describe(broker.bootstrap, tid)["producer_epoch"]
        second = _processor(broker.bootstrap, source, sink, group, tid, 50, 0, log)
        assert second.wait(120) == 0, log.read_text()[-3000:]
    finally:
        first.kill()
    assert describe(broker.bootstrap, tid)["producer_epoch"] > killed_epoch  # the killed instance is fenced
    out = read_all(broker.bootstrap, sink, PARTITIONS, "read_committed", expect=INPUT_RECORDS)
    got = sorted(v for recs in out.values() for _, v in recs)
    assert got == sorted(b"out:" + r.value for r in records)  # each input exactly once
    uncommitted = read_all(broker.bootstrap, sink, PARTITIONS, "read_uncommitted", expect=INPUT_RECORDS)
    # The killed transaction's 25 records are in the log, aborted: read_uncommitted sees them.
    assert sum(len(v) for v in uncommitted.values()) >= INPUT_RECORDS + 25


def test_coordinator_killed_between_prepare_commit_and_markers(broker_factory, topic, tmp_path, monkeypatch):
    crashed = tmp_path / "crashed"
    monkeypatch.setenv(CRASH_AFTER_PREPARE_ENV, str(crashed))
    b = broker_factory()
    create_topic(b.bootstrap, topic, 4)
    tid = f"{topic}-tx"
    p = txn_producer(b.bootstrap, tid, **{"transaction.timeout.ms": 60000})
    p.begin_transaction()
    for i in range(40):
        p.produce(topic, value=b"v%d" % i, partition=i % 4)
    p.flush(10)
    try:
        # The coordinator's shard exits after writing PrepareCommit.  librdkafka retries EndTxn
        # by itself, so if the orchestrator restarts the shard quickly enough the call succeeds.
        p.commit_transaction(5)
        answered = True
    except KafkaException as exc:
        assert not exc.args[0].fatal() and not exc.args[0].txn_requires_abort(), exc  # retriable
        answered = False
    wait_for(crashed.exists, timeout=10, what="the fault hook to fire")
    b.kill9()  # and the whole broker goes down before anyone could send the markers
    b.start()
    # Without any client help, the restarted coordinator finds PrepareCommit and finishes it.
    wait_for(lambda: describe(b.bootstrap, tid)["transaction_state"] == "CompleteCommit", timeout=30)
    committed = read_all(b.bootstrap, topic, 4, "read_committed", expect=40)
    assert values(committed) == {b"v%d" % i for i in range(40)}
    if not answered:
        p.commit_transaction(30)  # the producer's retry is answered as a completed commit
    assert "PrepareCommit" in b.log_text() and "sending its markers" in b.log_text()

