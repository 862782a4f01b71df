"""The raw load generator: Produce requests pipelined from pre-built batches, Fetch counted by headers.

Owns the `--client raw` data path, one asyncio loop per process:

* `RecordClock`: when each record of the run is due.  Unlimited rate: a batch's records are
  due when it is built.  With a rate, record i is due at start + i/rate, and a batch closes
  when it holds batch.num.messages / batch.size worth of records or linger.ms after its first
  record was due, as librdkafka's accumulator does; latency counts from the due time, so a
  generator or broker that falls behind shows it (no coordinated omission).
* `produce(...)`: per connection, a sender that takes the next batch from the clock, sends it to
  the next partition of that connection (round robin) as one ProduceRequest with at most
  max.in.flight requests outstanding, and on each response counts the batch's records as
  acknowledged (or failed, by error code) and records their latency.
* `consume(...)`: per leader, one Fetch in flight at a time (as Kafka clients do), records
  counted from batch headers (`batches.count_records`); in e2e mode each batch's stamp gives the
  produce->consume latency of its records.

Why it is fast enough: per request the Python work is a 60-byte header patch, a CRC over the
batch (hardware CRC32C, ~7 GB/s) and one writev; at 100-byte messages and 1 MB batches that is
about 100 requests per 10^6 messages.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyk.bench.batches import BatchTemplate, count_records, read_stamp
from pyk.bench.stats import Interval
from pyk.client import CLIENT_ID, Cluster, Connection, PartitionInfo
from pyk.errors import ErrorCode
from pyk.log.record_batch import BATCH_HEADER_SIZE
from pyk.protocol import ApiKey, decode_response, encode_request

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
RECORD_OVERHEAD = 8  # varint length + attributes + deltas + key/value lengths + headers count, 100 B value
EmitFn = Callable[[int, float, Interval], None]


class Reporter:
    """One worker's current tick: code adds to `current`; `run()` hands it over at each tick.

    Tick k ends at t0 + (k+1) * interval (CLOCK_MONOTONIC, shared by the processes of a run).
    `emit(k, end_s, interval)` receives every tick, the last one cut short when the worker ends;
    end_s counts from t0."""

    def __init__(self, emit: EmitFn, t0_ns: int, interval_s: float) -> None:
        self.emit = emit
        self.t0_ns = t0_ns
        self.interval_ns = int(interval_s * 1e9)
        self.current = Interval()
        self.done = asyncio.Event()
        self.end_ns = 0

    async def run(self) -> None:
        k = 0
        while True:
            target = self.t0_ns + (k + 1) * self.interval_ns
            delay = (target - time.monotonic_ns()) / 1e9
            if delay > 0 and not self.done.is_set():
                try:
                    await asyncio.wait_for(self.done.wait(), delay)
                except TimeoutError:
                    pass
            now = time.monotonic_ns()
            finished = self.done.is_set()
            end = min(now, target) if not finished else max(self.end_ns, self.t0_ns)
            iv, self.current = self.current, Interval()
            self.emit(k, (end - self.t0_ns) / 1e9, iv)
            if finished and end <= target:
                return
            k += 1

    def finish(self, end_ns: int | None = None) -> None:
        """The worker is done; its run ended at end_ns (default now)."""
        self.end_ns = end_ns or time.monotonic_ns()
        self.done.set()


class RecordClock:
    """Hands out batches of due records for one process's share of the run (one event loop)."""

    def __init__(self, rate: float, messages: int, stop_ns: int, t0_ns: int) -> None:
        self.rate = rate
        self.remaining = messages if messages > 0 else -1
        self.stop_ns = stop_ns  # 0: no time bound
        self.t0_ns = t0_ns
        self.next = 0
        self._lock = asyncio.Lock()

    def due(self, i: int) -> int:
        return self.t0_ns + int(i * 1e9 / self.rate)

    async def take(self, max_n: int, linger_ns: int) -> tuple[int, int, int]:
        """(n, first_due_ns, last_due_ns) of the next batch; n == 0 when the run is over."""
        async with self._lock:
            if self.remaining == 0:
                return 0, 0, 0
            if self.remaining > 0:
                max_n = min(max_n, self.remaining)
            if self.rate <= 0:
                now = time.monotonic_ns()
                if self.stop_ns and now >= self.stop_ns:
                    return 0, 0, 0
                n = max_n
            else:
                while True:
                    first_due = self.due(self.next)
                    send_at = min(self.due(self.next + max_n - 1), first_due + linger_ns)
                    if self.stop_ns:
                        if first_due >= self.stop_ns:
                            return 0, 0, 0
                        send_at = min(send_at, self.stop_ns)
                    now = time.monotonic_ns()
                    if send_at > now:
                        await asyncio.sleep((send_at - now) / 1e9)
                        now = time.monotonic_ns()
                    # records due by now (and before the end of the run, which is exclusive)
                    due_by = min(now, self.stop_ns - 1) if self.stop_ns else now
                    due_count = int((due_by - self.t0_ns) * self.rate / 1e9) + 1
                    n = min(max_n, due_count - self.next)
                    if n > 0:
                        break
                first = self.due(self.next)
                last = self.due(self.next + n - 1)
                self.next += n
                if self.remaining > 0:
                    self.remaining -= n
                return n, first, last
            self.next += n
            if self.remaining > 0:
                self.remaining -= n
            return n, now, now


@dataclass
class ProducerSettings:
    """The raw producer's knobs, resolved from librdkafka-named properties."""

    acks: int
    codec: int
    linger_ms: float
    batch_records: int
    max_in_flight: int
    timeout_ms: int
    client_id: str

    @classmethod
    def from_props(cls, props: dict[str, str], size: int, acks: int, codec: int) -> ProducerSettings:
        per_record = size + RECORD_OVERHEAD
        by_bytes = max(1, (int(props["batch.size"]) - BATCH_HEADER_SIZE) // per_record)
        return cls(acks=acks, codec=codec, linger_ms=float(props["linger.ms"]),
                   batch_records=max(1, min(int(props["batch.num.messages"]), by_bytes)),
                   max_in_flight=max(1, int(props["max.in.flight"])),
                   timeout_ms=int(props["request.timeout.ms"]), client_id=props["client.id"])


class _PartitionTarget:
    """A pre-encoded ProduceRequest for one partition, whose size, correlation id and records
    length are patched per send.  Produce v3-v8 end with the records field, so the request is
    prefix + batch bytes."""

    def __init__(self, topic: str, partition: int, version: int, s: ProducerSettings) -> None:
        self.partition = partition
        body = {"transactional_id": None, "acks": s.acks, "timeout_ms": s.timeout_ms,
                "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": b""}]}]}
        self.prefix = encode_request(ApiKey.PRODUCE, version, 0, s.client_id, body)
        # Produce response v3-v8, header v0: correlation_id, [responses] count, name, [partitions]
        # count, index, error_code: the error code sits at a fixed position for a one-partition request.
        self.error_at = 4 + 4 + 2 + len(topic.encode()) + 4 + 4

    def request(self, correlation_id: int, batch_size: int) -> bytearray:
        head = bytearray(self.prefix)
        _I32.pack_into(head, 0, len(head) - 4 + batch_size)
        _I32.pack_into(head, 8, correlation_id)
        _I32.pack_into(head, len(head) - 4, batch_size)
        return head


async def produce(cluster: Cluster, topic: str, parts: list[PartitionInfo], connections: int,
                  settings: ProducerSettings, size: int, clock: RecordClock, reporter: Reporter,
                  stamped: bool = True) -> None:
    """Run the raw producer over `parts` until the clock says the run is over; waits for the last
    responses (up to request.timeout.ms) before returning."""
    version = cluster.version(ApiKey.PRODUCE)
    template = BatchTemplate(size, settings.batch_records, settings.codec, stamped=stamped)
    by_leader: dict[int, list[_PartitionTarget]] = {}
    for p in parts:
        by_leader.setdefault(p.leader, []).append(_PartitionTarget(topic, p.partition, version, settings))
    senders = []
    for leader, targets in by_leader.items():
        for c in range(connections):
            mine = targets[c::connections] or [targets[c % len(targets)]]
            conn = await cluster.connection(leader, fresh=True)
            senders.append(_send_loop(conn, mine, settings, template, size, clock, reporter))
    await asyncio.gather(*senders)


async def _send_loop(conn: Connection, targets: list[_PartitionTarget], s: ProducerSettings,
                     template: BatchTemplate, size: int, clock: RecordClock, reporter: Reporter) -> None:
    slot = asyncio.Event()
    slot.set()
    linger_ns = int(s.linger_ms * 1e6)
    rr = 0
    try:
        while True:
            while conn.in_flight >= s.max_in_flight:
                slot.clear()
                await slot.wait()
            await conn.writable()
            n, first_due, last_due = await clock.take(s.batch_records, linger_ns)
            if n == 0:
                break
            target = targets[rr]
            rr = (rr + 1) % len(targets)
            batch, batch_size = template.build(n, first_due, last_due)
            cid = conn.next_correlation_id()
            head = target.request(cid, batch_size)
            if s.acks == 0:
                conn.send(cid, [head, *batch], None)
                iv = reporter.current
                iv.records += n
                iv.bytes += n * size
                iv.requests += 1
                continue
            conn.send(cid, [head, *batch], _on_produced(reporter, target.error_at, n, size, first_due, last_due, slot))
        deadline = time.monotonic() + s.timeout_ms / 1000
        while conn.in_flight and time.monotonic() < deadline and not conn.closed.done():
            slot.clear()
            try:
                await asyncio.wait_for(slot.wait(), max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                break
        if conn.in_flight:
            reporter.current.error(ErrorCode.REQUEST_TIMED_OUT, conn.in_flight)
    finally:
        conn.close()


def _resolve(fut: asyncio.Future[memoryview], frame: memoryview) -> None:
    if not fut.done():
        fut.set_result(frame)


def _on_produced(reporter: Reporter, error_at: int, n: int, size: int, first_due: int, last_due: int,
                 slot: asyncio.Event) -> Callable[[memoryview], None]:
    def on_response(frame: memoryview) -> None:
        now = time.monotonic_ns()
        iv = reporter.current
        iv.requests += 1
        code = _I16.unpack_from(frame, error_at)[0] if len(frame) >= error_at + 2 else ErrorCode.CORRUPT_MESSAGE
        if code:
            iv.error(code, n)
        else:
            iv.records += n
            iv.bytes += n * size
            iv.latency.record_spread_ns(now, first_due, last_due, n)
        slot.set()

    return on_response


# Consumer ----------------------------------------------------------------------------------------

@dataclass
class ConsumerSettings:
    """The raw consumer's knobs, resolved from librdkafka-named properties (one Fetch in flight
    per leader, as librdkafka and the Java client do)."""

    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    partition_max_bytes: int
    check_crcs: bool

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ConsumerSettings:
        return cls(max_wait_ms=int(props["fetch.wait.max.ms"]), min_bytes=int(props["fetch.min.bytes"]),
                   max_bytes=int(props["fetch.max.bytes"]),
                   partition_max_bytes=int(props["max.partition.fetch.bytes"]),
                   check_crcs=props["check.crcs"].lower() in ("true", "1"))


class ConsumeState:
    """Offsets of a consumer run and when to stop: shared by the per-leader fetch loops."""

    def __init__(self, offsets: dict[int, int], end_offsets: dict[int, int] | None, messages: int,
                 stop_ns: int) -> None:
        self.offsets = offsets
        self.end_offsets = end_offsets  # stop once every partition reaches these (consume mode)
        self.messages = messages  # stop after this many (0: no bound)
        self.stop_ns = stop_ns  # stop at this time (0: no bound); e2e moves it when the producer ends
        self.consumed = 0
        self.last_data_ns = time.monotonic_ns()
        self.idle_ns = 0  # e2e: stop after this long without data once the producer has ended
        self.stopped = False

    def should_stop(self) -> bool:
        if self.stopped:
            return True
        now = time.monotonic_ns()
        if self.messages and self.consumed >= self.messages:
            self.stopped = True
        elif self.end_offsets is not None and all(self.offsets[p] >= e for p, e in self.end_offsets.items()):
            self.stopped = True
        elif self.stop_ns and now >= self.stop_ns:
            self.stopped = True
        elif self.idle_ns and now - self.last_data_ns >= self.idle_ns:
            self.stopped = True
        return self.stopped


async def consume(cluster: Cluster, topic: str, parts: list[PartitionInfo], settings: ConsumerSettings,
                  size: int, state: ConsumeState, reporter: Reporter, latency: bool) -> None:
    """One fetch loop per leader node until `state` says stop."""
    by_leader: dict[int, list[int]] = {}
    for p in parts:
        by_leader.setdefault(p.leader, []).append(p.partition)
    version = cluster.version(ApiKey.FETCH)
    loops = []
    for leader, partitions in by_leader.items():
        conn = await cluster.connection(leader, fresh=True)
        loops.append(_fetch_loop(conn, version, topic, partitions, settings, size, state, reporter, latency))
    await asyncio.gather(*loops)


async def _fetch_loop(conn: Connection, version: int, topic: str, partitions: list[int], s: ConsumerSettings,
                      size: int, state: ConsumeState, reporter: Reporter, latency: bool) -> None:
    from pyk._native import scan_batches

    try:
        while not state.should_stop():
            wait_ms = s.max_wait_ms
            if state.stop_ns:
                wait_ms = max(0, min(wait_ms, (state.stop_ns - time.monotonic_ns()) // 1_000_000))
            body: dict[str, Any] = {
                "replica_id": -1, "max_wait_ms": wait_ms, "min_bytes": s.min_bytes, "max_bytes": s.max_bytes,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [],
                "topics": [{"topic": topic, "partitions": [
                    {"partition": p, "fetch_offset": state.offsets[p], "partition_max_bytes": s.partition_max_bytes}
                    for p in partitions]}],
            }  # fmt: skip
            cid = conn.next_correlation_id()
            frame = encode_request(ApiKey.FETCH, version, cid, CLIENT_ID, body)
            fut: asyncio.Future[memoryview] = asyncio.get_running_loop().create_future()
            conn.send(cid, [frame], functools.partial(_resolve, fut), keep=True)
            response = await fut
            received = time.monotonic_ns()
            _, resp = decode_response(ApiKey.FETCH, version, response)
            iv = reporter.current
            iv.requests += 1
            got = 0
            for t in resp["responses"]:
                for p in t["partitions"]:
                    index = p["partition_index"]
                    if p["error_code"]:
                        iv.error(p["error_code"])
                        continue
                    records = p["records"]
                    if not records:
                        continue
                    blob = memoryview(records)
                    if s.check_crcs:
                        valid = scan_batches(blob).valid_bytes
                        blob = blob[:valid]
                    n, _, next_offset, positions = count_records(blob, state.offsets[index])
                    state.offsets[index] = next_offset
                    got += n
                    iv.bytes += n * size
                    if latency:
                        for pos in positions:
                            stamp = read_stamp(blob, pos)
                            if stamp is not None:
                                iv.latency.record_spread_ns(received, *stamp)
            iv.records += got
            if got:
                state.consumed += got
                state.last_data_ns = received
    finally:
        conn.close()

