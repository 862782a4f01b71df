"""TransactionCoordinator: the transactional ids this process hosts (KIP-98), and their state machine.

A transactional id T lives in partition abs(javaHashCode(T)) % transaction.state.log.num.partitions
of `__transaction_state` (Kafka's TransactionStateManager.partitionFor), and its coordinator is
that partition's leader: the shard it is placed on, exactly as groups and `__consumer_offsets`.

States (Kafka's TransactionState; ids are stored in TransactionLogValue, see transaction_log.py):

    Empty --AddPartitions/AddOffsets--> Ongoing --EndTxn(commit)--> PrepareCommit --markers--> CompleteCommit
                                          |     --EndTxn(abort) / timeout / fencing InitProducerId-->
                                          |                        PrepareAbort --markers--> CompleteAbort
    Empty, Complete* --InitProducerId (epoch bump)--> Empty;   Complete* --AddPartitions--> Ongoing
    PrepareEpochFence: in memory only, while an Ongoing transaction's epoch is being bumped to
    fence its producer (timeout, or InitProducerId from a new instance); what is written is the
    PrepareAbort with the bumped epoch.   Dead: the id expired (a tombstone is written).

Durability: every transition is written to the id's `__transaction_state` partition (the page
cache: a kill -9 of the broker keeps it) before the client is answered and before anything else
acts on it; in a cluster it becomes the id's state in memory only once the partition's ISR has
it (Kafka's appendTransactionToLog with acks=-1; `_write`), so a coordinator elected after a
kill -9 knows every transition a client was told of.  PrepareCommit/PrepareAbort are the commit
points: once one is written (and replicated), the outcome is decided, EndTxn is answered, and
the markers are sent to every partition of the transaction (transaction_markers.py); only when
each of them has its marker is Complete* written.  At start-up the local partitions are
replayed, and every transaction found in Prepare* gets its markers sent again and completes, so
a coordinator killed between the two records finishes the commit it promised.  Ongoing transactions found at load keep running until
they end or time out.

Fencing: InitProducerId bumps the producer epoch (a new producer id when the epoch is exhausted),
so requests of an older instance carry a stale epoch and get PRODUCER_FENCED (INVALID_PRODUCER_EPOCH
for versions that predate that code), and the markers written with the new epoch fence its
stale batches in the partitions.  KIP-360: a producer that names its id and epoch in
InitProducerId (v3+) gets the bump only if it is the current instance (or retries a bump whose
answer it lost).

Timeouts: every transaction.abort.timed.out.transaction.cleanup.interval.ms, transactions Ongoing
for longer than their transaction.timeout.ms are aborted with a bumped epoch (so the producer that
forgot them is fenced), and ids idle for transactional.id.expiration.ms are removed.

Threading: everything runs on the hosting process's event loop.  A transaction with a write or
marker phase under way is `pending`: requests for it get CONCURRENT_TRANSACTIONS (clients retry),
so no two transitions of one id ever interleave across an await.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyk.coordinator.batch import replay
from pyk.coordinator.offsets import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, CoordinatorTopic
from pyk.coordinator.transaction_log import (
    TransactionLogValue,
    TxnState,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
)
from pyk.coordinator.transaction_markers import MarkerSender
from pyk.errors import ErrorCode, KafkaError, ProtocolViolation

if TYPE_CHECKING:
    from pyk.coordinator.coordinator import GroupCoordinator
    from pyk.coordinator.host import CoordinatorHost

log = logging.getLogger("pyk.coordinator")

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
# Kafka's TransactionMetadata.isEpochExhausted: the last epoch is kept back so that fencing an
# ongoing transaction (one more bump) is always possible.
EPOCH_EXHAUSTED = 2**15 - 2
# Fault hook for tests: when set to a file path that does not exist yet, the process creates the
# file and exits right after a PrepareCommit record is written, before any marker is sent (the
# test then restarts the broker and expects the commit to complete from the log).
CRASH_AFTER_PREPARE_ENV = "PYK_TXN_CRASH_AFTER_PREPARE"

# How long AddPartitionsToTxn/AddOffsetsToTxn wait for the previous transaction's markers
# before answering CONCURRENT_TRANSACTIONS (see await_completion).
COMPLETION_WAIT_S = 1.0

_COMPLETE = {TxnState.PREPARE_COMMIT: TxnState.COMPLETE_COMMIT, TxnState.PREPARE_ABORT: TxnState.COMPLETE_ABORT}


@dataclass
class TransactionMetadata:
    """One transactional id's state (Kafka's TransactionMetadata), owned by the coordinator.

    `partitions` is the set of partitions of the current transaction (topic -> indexes).  While
    `pending` is set a transition is being written or markers are being sent.
    """

    transactional_id: str
    partition: int  # its __transaction_state partition
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    last_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    partitions: dict[str, set[int]] = field(default_factory=dict)
    start_ms: int = -1
    last_update_ms: int = -1
    pending: bool = False
    completion: asyncio.Future[None] | None = None  # set while markers are being sent

    def value(self) -> TransactionLogValue:
        return TransactionLogValue(self.producer_id, self.producer_epoch, self.timeout_ms, self.state,
                                   {t: set(p) for t, p in self.partitions.items()}, self.last_update_ms, self.start_ms)

    def has_partitions(self, wanted: dict[str, list[int]]) -> bool:
        return all(set(parts) <= self.partitions.get(topic, set()) for topic, parts in wanted.items())


def fenced_code(version: int, first_with_fenced: int) -> ErrorCode:
    """PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for versions that predate it (Kafka's KafkaApis)."""
    return ErrorCode.PRODUCER_FENCED if version >= first_with_fenced else ErrorCode.INVALID_PRODUCER_EPOCH


class TransactionCoordinator:
    """The transaction coordinator of one broker process (see the module docstring).

    Lifecycle: built with its CoordinatorHost and the node's GroupCoordinator; `start(loop)` loads the local `__transaction_state`
    partitions (before the listener opens), restarts the markers of prepared transactions and
    arms the periodic timeout check; `stop()` cancels the timers and the marker tasks (a
    prepared transaction completes after the next start).  Request methods raise KafkaError
    with the code for the client, or return the response fields.
    """

    def __init__(self, host: CoordinatorHost, groups: GroupCoordinator,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.host = host
        self.groups = groups  # AddOffsetsToTxn places groups; coordinator nodes
        config = host.config
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        self.topic = CoordinatorTopic(host, self.clock_ms, TRANSACTION_STATE_TOPIC,
                                      "transaction.state.log.num.partitions", "transaction.state.log.segment.bytes",
                                      "request.timeout.ms")
        self.txns: dict[str, TransactionMetadata] = {}
        self.max_timeout_ms: int = config["transaction.max.timeout.ms"]
        self.abort_interval_ms: int = config["transaction.abort.timed.out.transaction.cleanup.interval.ms"]
        self.expiration_ms: int = config["transactional.id.expiration.ms"]
        self.expiration_interval_ms: int = config["transaction.remove.expired.transaction.cleanup.interval.ms"]
        self.markers = MarkerSender(host, groups)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Produce verifications under way, by (topic, partition, producer id, epoch): pipelined
        # batches of one producer share one, so they resume, and append, in arrival order.
        self._verifying: dict[tuple[str, int, int, int], asyncio.Future[ErrorCode]] = {}

    # Lifecycle ---------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        started = time.monotonic()
        for partition in self.topic.local_partitions():
            self._load_partition(partition)
        if self.txns:
            log.info("loaded %d transactional ids from %s in %.2fs", len(self.txns), TRANSACTION_STATE_TOPIC,
                     time.monotonic() - started)
        self._resume(list(self.txns.values()))
        self._arm(self.abort_interval_ms, self._abort_timed_out)
        self._arm(self.expiration_interval_ms, self._expire_ids)

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        self.markers.close()

    def _arm(self, interval_ms: int, job: Callable[[], None]) -> None:
        assert self.loop is not None

        def run() -> None:
            try:
                job()
            except Exception:
                log.exception("transaction coordinator housekeeping failed; retrying next interval")
            self._timers.remove(handle)
            self._arm(interval_ms, job)

        handle = self.loop.call_later(interval_ms / 1000, run)
        self._timers.append(handle)

    # Failover (a cluster's leadership changes) ---------------------------------------------------
    def elected(self, partition: int) -> None:
        """This node became the leader of `partition` of `__transaction_state`: its transactional
        ids are served from here, and those decided before the old leader went get their markers."""
        if self.loop is None:  # not started yet: start() loads every partition led by then
            return
        self._load_partition(partition)
        mine = [txn for txn in self.txns.values() if txn.partition == partition]
        log.info("%s-%d led here: loaded %d transactional ids", TRANSACTION_STATE_TOPIC, partition, len(mine))
        self._resume(mine)

    def _resume(self, loaded: list[TransactionMetadata]) -> None:
        for txn in loaded:
            if txn.state in _COMPLETE:  # decided before a crash or failover: finish it
                log.info("transaction %r was %s at load: sending its markers", txn.transactional_id,
                         txn.state.kafka_name)
                self._send_markers(txn)

    def resigned(self, partition: int) -> None:
        """This node no longer leads `partition`: its transactional ids are dropped (the new
        leader finishes what was decided)."""
        gone = [tid for tid, txn in self.txns.items() if txn.partition == partition]
        for tid in gone:
            del self.txns[tid]
        log.info("%s-%d led elsewhere now: unloaded %d transactional ids", TRANSACTION_STATE_TOPIC, partition,
                 len(gone))

    def _load_partition(self, partition: int) -> None:
        plog = self.topic.log_for(partition)
        for batch in replay(plog, f"{TRANSACTION_STATE_TOPIC}-{partition}"):
            for offset, key, value in batch.records:
                try:
                    if key is None:
                        raise ProtocolViolation("record without a key")
                    tid = decode_key(key)
                    if value is None:
                        self.txns.pop(tid, None)
                        continue
                    v = decode_value(value)
                except ProtocolViolation as exc:
                    log.error("%s-%d offset %d: undecodable record skipped: %s", TRANSACTION_STATE_TOPIC, partition,
                              offset, exc)
                    continue
                self.txns[tid] = TransactionMetadata(tid, partition, v.producer_id, v.producer_epoch, v.timeout_ms,
                                                     v.state, v.previous_producer_id, NO_PRODUCER_EPOCH,
                                                     v.partitions, v.start_ms, v.last_update_ms)

    # Placement ---------------------------------------------------------------------------------
    def needs_topic(self) -> bool:
        return not self.topic.topic_exists()

    async def ensure_topic(self) -> None:
        await self.topic.ensure_topic()

    def find_coordinator(self, transactional_id: str) -> dict[str, Any]:
        """{"node_id", "host", "port"} of the coordinator of `transactional_id`."""
        if not self.topic.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{TRANSACTION_STATE_TOPIC} does not exist yet")
        return self.groups.coordinator_node(TRANSACTION_STATE_TOPIC, self.topic.partition_for(transactional_id))

    def _check_local(self, transactional_id: str) -> int:
        if not transactional_id:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "the transactional id is empty")
        if not self.topic.topic_exists():
            raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, f"{TRANSACTION_STATE_TOPIC} does not exist yet")
        partition = self.topic.partition_for(transactional_id)
        if self.topic.log_for(partition) is None:
            raise KafkaError(ErrorCode.NOT_COORDINATOR,
                             f"transactional id {transactional_id!r} lives in {TRANSACTION_STATE_TOPIC}-{partition}, "
                             "not led here")
        return partition

    def _coordinator_epoch(self, partition: int) -> int:
        """Kafka's coordinator epoch: the leader epoch of the id's state partition (markers carry
        it so a partition can refuse markers of a deposed coordinator)."""
        plog = self.topic.log_for(partition)
        return int(plog.leader_epoch) if plog is not None else 0

    def _write(self, txn: TransactionMetadata, **changes: Any) -> Awaitable[None] | None:
        """Writes the transaction with `changes` applied; they are applied in memory once the
        ISR of its partition has the record (Kafka's appendTransactionToLog with acks=-1 within
        request.timeout.ms, completing the transition in its callback): at once on a single
        host (None), else in the awaitable returned.  Meanwhile the id is `pending` (its other
        requests get CONCURRENT_TRANSACTIONS).  A failed write, or one the ISR does not confirm
        in time, changes nothing in memory and raises KafkaError with the code for the client
        (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR), who retries."""
        value = txn.value()
        for name, new in changes.items():  # the record's fields are named as the metadata's
            setattr(value, name, new)
        self.topic.append(txn.partition, [(encode_key(txn.transactional_id), encode_value(value))])
        waiting = self.topic.replication(txn.partition)
        if waiting is None:
            _apply(txn, changes)
            return None
        was_pending, txn.pending = txn.pending, True
        return self._applied_once_replicated(txn, changes, waiting, was_pending)

    @staticmethod
    async def _applied_once_replicated(txn: TransactionMetadata, changes: dict[str, Any],
                                       waiting: Awaitable[ErrorCode], was_pending: bool) -> None:
        try:
            code = await waiting
        finally:
            txn.pending = was_pending
        if code != ErrorCode.NONE:
            raise KafkaError(code, f"the state of {txn.transactional_id!r} did not reach the ISR of "
                                   f"{TRANSACTION_STATE_TOPIC}-{txn.partition} in time")
        _apply(txn, changes)

    def _owned(self, transactional_id: str, producer_id: int, epoch: int, fenced: ErrorCode) -> TransactionMetadata:
        """The id's metadata when the request comes from its current producer instance."""
        self._check_local(transactional_id)
        txn = self.txns.get(transactional_id)
        if txn is None or txn.producer_id != producer_id:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_ID_MAPPING,
                             f"producer id {producer_id} is not the one of transactional id {transactional_id!r}")
        if txn.producer_epoch != epoch:
            raise KafkaError(fenced, f"producer epoch {epoch} is not the current epoch {txn.producer_epoch} "
                                     f"of {transactional_id!r}: fenced by a newer instance")
        if txn.pending:
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"{transactional_id!r} is completing a transaction")
        return txn

    # InitProducerId ----------------------------------------------------------------------------
    async def init_producer_id(self, transactional_id: str, timeout_ms: int, producer_id: int, epoch: int,
                               version: int) -> tuple[int, int]:
        """(producer id, epoch) for the new instance of `transactional_id`; KafkaError otherwise."""
        partition = self._check_local(transactional_id)
        if not 0 < timeout_ms <= self.max_timeout_ms:
            raise KafkaError(ErrorCode.INVALID_TRANSACTION_TIMEOUT,
                             f"transaction.timeout.ms {timeout_ms} must be in 1..{self.max_timeout_ms} "
                             "(transaction.max.timeout.ms)")
        txn = self.txns.get(transactional_id)
        if txn is None:
            new_id = await self.host.next_producer_id()
            txn = self.txns.get(transactional_id)  # another instance may have raced us over the await
            if txn is None:
                txn = TransactionMetadata(transactional_id, partition, new_id, NO_PRODUCER_EPOCH, timeout_ms)
                self.txns[transactional_id] = txn
        if txn.pending:
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"{transactional_id!r} is completing a transaction")
        fenced = fenced_code(version, 4)
        if producer_id != NO_PRODUCER_ID and not (
                txn.producer_epoch == NO_PRODUCER_EPOCH or producer_id == txn.producer_id
                or (producer_id == txn.last_producer_id and epoch >= EPOCH_EXHAUSTED)):
            raise KafkaError(fenced, f"producer id {producer_id} is not the current one of {transactional_id!r}")
        if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"{transactional_id!r} is completing a transaction")
        if txn.state == TxnState.ONGOING:
            # A new instance while the old one's transaction is open: bump the epoch (fencing the
            # old one) and abort with it; the client retries and gets a second bump (Kafka does
            # the same, so the abort never races the new instance's first transaction).
            await _done(self._fence_and_abort(txn, "a new producer instance called InitProducerId"))
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"aborting the open transaction of {transactional_id!r}")
        now = self.clock_ms()
        if txn.producer_epoch >= EPOCH_EXHAUSTED and (producer_id == NO_PRODUCER_ID or epoch == txn.producer_epoch):
            txn.pending = True
            try:
                new_id = await self.host.next_producer_id()
            finally:
                txn.pending = False
            last_id, last_epoch = txn.producer_id, txn.producer_epoch
            await _done(self._write(txn, producer_id=new_id, producer_epoch=0, timeout_ms=timeout_ms,
                                    state=TxnState.EMPTY, partitions={}, start_ms=-1, last_update_ms=now))
            txn.last_producer_id, txn.last_producer_epoch = last_id, last_epoch
            return txn.producer_id, txn.producer_epoch
        if producer_id == NO_PRODUCER_ID or txn.producer_epoch == NO_PRODUCER_EPOCH or epoch == txn.producer_epoch:
            last_epoch = txn.producer_epoch if producer_id != NO_PRODUCER_ID else NO_PRODUCER_EPOCH
            await _done(self._write(txn, producer_epoch=txn.producer_epoch + 1, timeout_ms=timeout_ms,
                                    state=TxnState.EMPTY, partitions={}, start_ms=-1, last_update_ms=now))
            txn.last_producer_epoch = last_epoch
        elif epoch != txn.last_producer_epoch:  # not a retry of the last bump
            raise KafkaError(fenced, f"producer epoch {epoch} of {transactional_id!r} is stale")
        return txn.producer_id, txn.producer_epoch

    # AddPartitionsToTxn / AddOffsetsToTxn ------------------------------------------------------
    async def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                             partitions: dict[str, list[int]], version: int) -> None:
        """Adds `partitions` to the producer's transaction (starting one if none is open)."""
        txn = self._owned(transactional_id, producer_id, epoch, fenced_code(version, 2))
        if txn.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT):
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"{transactional_id!r} is completing a transaction")
        if txn.state not in (TxnState.EMPTY, TxnState.ONGOING, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            raise KafkaError(ErrorCode.INVALID_TXN_STATE, f"{transactional_id!r} is {txn.state.kafka_name}")
        if txn.state == TxnState.ONGOING and txn.has_partitions(partitions):
            return
        now = self.clock_ms()
        merged = {t: set(p) for t, p in txn.partitions.items()} if txn.state == TxnState.ONGOING else {}
        for topic, parts in partitions.items():
            merged.setdefault(topic, set()).update(parts)
        start = txn.start_ms if txn.state == TxnState.ONGOING else now
        await _done(self._write(txn, state=TxnState.ONGOING, partitions=merged, start_ms=start, last_update_ms=now))

    async def add_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str,
                          version: int) -> None:
        """AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
        the group's TxnOffsetCommit is accepted and gets the transaction's marker."""
        self._check_local(transactional_id)
        await self.groups.ensure_offsets_topic()
        await self.await_completion(transactional_id)
        partition = self.groups.topic.partition_for(group_id)
        await self.add_partitions(transactional_id, producer_id, epoch, {OFFSETS_TOPIC: [partition]}, version)

    def verify_local(self, transactional_id: str, producer_id: int, epoch: int, topic: str, partition: int) -> ErrorCode:
        """KIP-890 verification: NONE when `topic`-`partition` is in the producer's open
        transaction; INVALID_TXN_STATE when it is not (it was never added)."""
        try:
            txn = self._owned(transactional_id, producer_id, epoch, ErrorCode.PRODUCER_FENCED)
        except KafkaError as exc:
            if exc.code != ErrorCode.CONCURRENT_TRANSACTIONS:
                return exc.code
            txn = self.txns[transactional_id]
        if txn.state == TxnState.ONGOING and partition in txn.partitions.get(topic, ()):
            return ErrorCode.NONE
        return ErrorCode.INVALID_TXN_STATE

    async def verify_partition(self, transactional_id: str, producer_id: int, epoch: int, topic: str,
                               partition: int) -> ErrorCode:
        """verify_local, asked of whichever node coordinates `transactional_id`."""
        try:
            node = self.find_coordinator(transactional_id)
        except KafkaError as exc:
            return exc.code
        if node["node_id"] == self.host.node_id:
            return self.verify_local(transactional_id, producer_id, epoch, topic, partition)
        return await self.markers.verify(node["node_id"], transactional_id, producer_id, epoch, topic, partition)

    def verify_produce(self, transactional_id: str, producer_id: int, epoch: int, topic: str,
                       partition: int) -> asyncio.Future[ErrorCode]:
        """KIP-890 part 1 for Produce: the error a transactional batch starting the producer's
        transaction in `topic`-`partition` gets, NONE when AddPartitionsToTxn added it.  This
        closes Kafka's "hanging transaction" hole: a late batch of an aborted transaction would
        otherwise open a transaction no coordinator knows of, holding the LSO forever."""
        key = (topic, partition, producer_id, epoch)
        shared = self._verifying.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.verify_partition(transactional_id, producer_id, epoch, topic, partition))
            self._verifying[key] = shared
            shared.add_done_callback(lambda _: self._verifying.pop(key, None))
        return shared

    # EndTxn ------------------------------------------------------------------------------------
    async def end_txn(self, transactional_id: str, producer_id: int, epoch: int, commit: bool, version: int) -> None:
        """Commits or aborts the open transaction: answered once Prepare* is written (in a
        cluster: once its ISR has it)."""
        txn = self._owned(transactional_id, producer_id, epoch, fenced_code(version, 2))
        wanted = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        done = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
        if txn.state == TxnState.ONGOING:
            await _done(self._prepare(txn, wanted))
            return
        if txn.state == done:
            return  # a retry of an EndTxn that completed
        if txn.state == wanted:
            raise KafkaError(ErrorCode.CONCURRENT_TRANSACTIONS, f"{transactional_id!r} is completing that transaction")
        raise KafkaError(ErrorCode.INVALID_TXN_STATE,
                         f"cannot {'commit' if commit else 'abort'} {transactional_id!r}: it is {txn.state.kafka_name}")

    def _prepare(self, txn: TransactionMetadata, state: TxnState, epoch: int | None = None) -> Awaitable[None] | None:
        """Writes the commit point, then, once the ISR has it (`_write`), sends the markers in
        the background: no partition gets a marker of an outcome a new coordinator could
        still decide otherwise (Kafka sends them from the append's callback)."""
        changes: dict[str, Any] = {"state": state, "last_update_ms": self.clock_ms()}
        if epoch is not None:
            changes["producer_epoch"] = epoch
        waiting = self._write(txn, **changes)
        if waiting is None:
            self._decided(txn)
            return None
        return self._decided_once_replicated(txn, waiting)

    async def _decided_once_replicated(self, txn: TransactionMetadata, waiting: Awaitable[None]) -> None:
        await waiting
        self._decided(txn)

    def _decided(self, txn: TransactionMetadata) -> None:
        if txn.state == TxnState.PREPARE_COMMIT:
            crash_file = os.environ.get(CRASH_AFTER_PREPARE_ENV)
            if crash_file and not os.path.exists(crash_file):
                with open(crash_file, "w") as fh:
                    fh.write(txn.transactional_id)
                log.error("%s: exiting after PrepareCommit of %r (test fault hook)", CRASH_AFTER_PREPARE_ENV,
                          txn.transactional_id)
                os._exit(17)
        self._send_markers(txn)

    def _fence_and_abort(self, txn: TransactionMetadata, why: str) -> Awaitable[None] | None:
        """Bumps the epoch of an Ongoing transaction (its producer is fenced) and aborts it
        (in a cluster: in the awaitable returned, once the ISR has the PrepareAbort)."""
        log.info("aborting transaction of %r (producer %d epoch %d): %s", txn.transactional_id, txn.producer_id,
                 txn.producer_epoch, why)
        txn.state = TxnState.PREPARE_EPOCH_FENCE  # visible to DescribeTransactions for the write
        try:
            bumped = txn.producer_epoch + 1 if txn.producer_epoch < 2**15 - 1 else txn.producer_epoch
            waiting = self._prepare(txn, TxnState.PREPARE_ABORT, bumped)
        except BaseException:
            txn.state = TxnState.ONGOING
            raise
        return None if waiting is None else _fenced_once_replicated(txn, waiting)

    def _send_markers(self, txn: TransactionMetadata) -> None:
        txn.pending = True
        assert self.loop is not None
        txn.completion = self.loop.create_future()
        self._background(self._complete(txn))

    def _background(self, job: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, txn: TransactionMetadata) -> None:
        """Markers to every partition, then Complete* (retried until it is written)."""
        commit = txn.state == TxnState.PREPARE_COMMIT
        started = time.monotonic()
        try:
            await self.markers.write(txn.producer_id, txn.producer_epoch, commit,
                                     self._coordinator_epoch(txn.partition), txn.partitions)
            while True:
                try:
                    await _done(self._write(txn, state=_COMPLETE[txn.state], partitions={},
                                            last_update_ms=self.clock_ms()))
                    break
                except KafkaError as exc:
                    if exc.code == ErrorCode.NOT_COORDINATOR:  # the partition moved: its new leader completes it
                        log.warning("transaction %r: %s", txn.transactional_id, exc)
                        return
                    log.warning("transaction %r: writing %s failed (%s); retrying", txn.transactional_id,
                                _COMPLETE[txn.state].kafka_name, exc)
                    await asyncio.sleep(0.1)
            log.debug("transaction %r %s in %.1f ms", txn.transactional_id, txn.state.kafka_name,
                      (time.monotonic() - started) * 1000)
        finally:
            txn.pending = False
            if txn.completion is not None and not txn.completion.done():
                txn.completion.set_result(None)
            txn.completion = None

    async def await_completion(self, transactional_id: str) -> None:
        """Waits (up to COMPLETION_WAIT_S) for the markers of the id's previous transaction.

        A producer starts its next transaction right after EndTxn is answered, typically while
        the markers are still on their way; Kafka answers its AddPartitionsToTxn with
        CONCURRENT_TRANSACTIONS and the client backs off (librdkafka: tens of ms).  Parking the
        request for the milliseconds the markers take instead keeps short transactions fast;
        past the wait, the request gets CONCURRENT_TRANSACTIONS as in Kafka."""
        txn = self.txns.get(transactional_id)
        if txn is not None and txn.completion is not None and not txn.completion.done():
            try:
                await asyncio.wait_for(asyncio.shield(txn.completion), COMPLETION_WAIT_S)
            except asyncio.TimeoutError:
                pass

    # Timeouts and expiration -------------------------------------------------------------------
    def _abort_timed_out(self) -> None:
        now = self.clock_ms()
        for txn in list(self.txns.values()):
            if txn.state == TxnState.ONGOING and not txn.pending and txn.start_ms + txn.timeout_ms < now:
                try:
                    waiting = self._fence_and_abort(txn, f"open for longer than its timeout of {txn.timeout_ms} ms")
                except KafkaError as exc:
                    log.warning("aborting timed-out transaction %r failed: %s", txn.transactional_id, exc)
                    continue
                if waiting is not None:  # a cluster: the id is pending until the ISR has the abort
                    self._background(_logged(txn, waiting))

    def _expire_ids(self) -> None:
        now = self.clock_ms()
        idle = (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        for txn in list(self.txns.values()):
            if txn.state in idle and not txn.pending and txn.last_update_ms + self.expiration_ms < now:
                try:
                    self.topic.append(txn.partition, [(encode_key(txn.transactional_id), None)])
                except KafkaError as exc:
                    log.warning("expiring transactional id %r failed: %s", txn.transactional_id, exc)
                    continue
                waiting = self.topic.replication(txn.partition)
                if waiting is None:
                    self._expired(txn, now)
                else:  # a cluster: gone once the ISR has the tombstone (Kafka's pending Dead state)
                    txn.pending = True
                    self._background(self._expired_once_replicated(txn, now, waiting))

    def _expired(self, txn: TransactionMetadata, now: int) -> None:
        txn.state = TxnState.DEAD
        del self.txns[txn.transactional_id]
        log.info("transactional id %r expired (idle for %d ms)", txn.transactional_id, now - txn.last_update_ms)

    async def _expired_once_replicated(self, txn: TransactionMetadata, now: int, waiting: Awaitable[ErrorCode]) -> None:
        code = await waiting
        txn.pending = False
        if self.txns.get(txn.transactional_id) is not txn:  # unloaded meanwhile (the partition moved)
            return
        if code == ErrorCode.NONE:
            self._expired(txn, now)
        else:
            log.warning("expiring transactional id %r: its tombstone did not reach the ISR (%s)", txn.transactional_id,
                        code.name)

    # DescribeTransactions / ListTransactions ---------------------------------------------------
    def describe(self, transactional_id: str) -> dict[str, Any]:
        # An id in error gets Kafka's field defaults (0 and ""), as its generated classes send them.
        entry: dict[str, Any] = {"transactional_id": transactional_id, "error_code": ErrorCode.NONE,
                                 "transaction_state": "", "transaction_timeout_ms": 0,
                                 "transaction_start_time_ms": 0, "producer_id": 0, "producer_epoch": 0, "topics": []}
        try:
            self._check_local(transactional_id)
            txn = self.txns.get(transactional_id)
            if txn is None:
                raise KafkaError(ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, f"{transactional_id!r} is unknown")
        except KafkaError as exc:
            entry["error_code"] = exc.code
            return entry
        entry.update(transaction_state=txn.state.kafka_name, transaction_timeout_ms=txn.timeout_ms,
                     transaction_start_time_ms=txn.start_ms, producer_id=txn.producer_id,
                     producer_epoch=txn.producer_epoch,
                     topics=[{"topic": t, "partitions": sorted(p)} for t, p in sorted(txn.partitions.items())])
        return entry

    def list_transactions(self, states: list[str], producer_ids: list[int],
                          min_duration_ms: int) -> tuple[list[str], list[dict[str, Any]]]:
        """(unknown state filters, matching transactions) among the ids hosted here."""
        unknown = [s for s in states if TxnState.from_kafka_name(s) is None]
        wanted = {TxnState.from_kafka_name(s) for s in states} - {None}
        now = self.clock_ms()
        out = []
        for txn in self.txns.values():
            if states and txn.state not in wanted:
                continue
            if producer_ids and txn.producer_id not in producer_ids:
                continue
            if min_duration_ms >= 0 and (txn.start_ms < 0 or now - txn.start_ms < min_duration_ms):
                continue
            out.append({"transactional_id": txn.transactional_id, "producer_id": txn.producer_id,
                        "transaction_state": txn.state.kafka_name})
        return unknown, out


def _apply(txn: TransactionMetadata, changes: dict[str, Any]) -> None:
    for name, new in changes.items():
        setattr(txn, name, new)


async def _done(waiting: Awaitable[None] | None) -> None:
    """Waits for a transition that the ISR must confirm first (nothing on a single host)."""
    if waiting is not None:
        await waiting


async def _fenced_once_replicated(txn: TransactionMetadata, waiting: Awaitable[None]) -> None:
    try:
        await waiting
    except BaseException:
        if txn.state == TxnState.PREPARE_EPOCH_FENCE:  # the abort was not written: still open
            txn.state = TxnState.ONGOING
        raise


async def _logged(txn: TransactionMetadata, waiting: Awaitable[None]) -> None:
    try:
        await waiting
    except KafkaError as exc:
        log.warning("aborting timed-out transaction %r failed: %s", txn.transactional_id, exc)
