"""Helpers for the suites that run against a real `pyk serve` process (clients, durability, adversity).

Owns:
* `BrokerProcess`: one `python -m pyk serve` subprocess on an ephemeral loopback port with its
  own log directory; start (ready once a TCP connect plus an ApiVersions round trip succeed),
  stop (SIGTERM), kill -9, restart on the same directory and port, its log for failure reports.
* `ExternalBroker`: the same face for a broker someone else runs (`PYK_TEST_BOOTSTRAP=host:port`),
  so the client suite can be pointed at Kafka or another peer to check the tests themselves.
* `Rec` plus one produce and one consume adapter per real client (confluent-kafka, kafka-python,
  aiokafka, kcat), all returning the same normalised records so tests compare across clients.

The readiness probe packs its ApiVersions v0 request by hand on purpose: the fixture must not
depend on the protocol layer it is there to test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 30.0  # imports + log recovery; generous because CI shares 2 cores
STOP_TIMEOUT_S = 30.0
LOG_TAIL_BYTES = 30_000


# Shards per test broker: the machine's cores (pyk's default) unless PYK_TEST_SHARDS says otherwise,
# so the same suite runs with 1 and with 2 shards.
TEST_SHARDS = int(os.environ.get("PYK_TEST_SHARDS", "0")) or len(os.sched_getaffinity(0))
# The I/O engine of test brokers (io.engine) unless a test sets its own: PYK_TEST_ENGINE=io_uring
# or =epoll runs the same suite on each engine; unset, the config default (auto).
TEST_ENGINE = os.environ.get("PYK_TEST_ENGINE")


# The operator's HTTP listeners (web console, metrics) default to fixed loopback ports; test brokers turn
# them off unless a test sets one.
OPERATOR_LISTENERS = ("console.listener", "metrics.listener")


# Listening ports come from a slice of 20000-31999 per pytest-xdist worker: below Linux's
# ephemeral range (32768+), where clients' source ports and other workers' picks would take a
# port a broker gives up for a restart.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0) % 8
_PORT_SLICE = range(20000 + 1500 * _WORKER, 20000 + 1500 * (_WORKER + 1))
_next_port = [_PORT_SLICE.start + (os.getpid() * 37) % len(_PORT_SLICE)]


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive loopback ports that were free a moment ago (shard i of a
    broker listens on port + i), from this worker's slice, each handed out once per run."""
    for _ in range(len(_PORT_SLICE)):
        port = _next_port[0]
        if port + count > _PORT_SLICE.stop:
            port = _PORT_SLICE.start
        _next_port[0] = port + count
        try:
            for offset in range(count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} consecutive free loopback ports")


def find_coordinator_v0(broker: Any) -> bool:
    """Whether the broker advertises FindCoordinator v0, which librdkafka needs for its LZ4 feature."""
    from tests.adversity.wire import WireClient

    with WireClient(broker.bootstrap) as client:
        low, _ = client.api_versions().get(10, (1, -1))
    return low == 0


def unique_topic(label: str = "t") -> str:
    """A topic name no other test uses: label (sanitised to Kafka's legal characters) + random suffix."""
    clean = "".join(c if c.isalnum() or c in "._-" else "-" for c in label)[:150]
    return f"{clean}-{uuid.uuid4().hex[:10]}"


# Readiness probe ---------------------------------------------------------------------------------


def api_versions_probe(host: str, port: int, timeout: float = 2.0,
                       tls: ssl.SSLContext | None = None) -> list[tuple[int, int, int]]:
    """One ApiVersions v0 round trip on a fresh connection (TLS with `tls`: a broker whose only
    listener is SSL or SASL_SSL; SASL listeners answer ApiVersions before authentication);
    returns [(api_key, min, max)].

    Request header v1: api_key int16, api_version int16, correlation_id int32, client_id string.
    Response v0: correlation_id int32, error_code int16, [api_key int16, min int16, max int16].
    """
    correlation_id = 0x5EED
    client_id = b"pyk-tests-probe"
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as raw:
        s = tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        frame = recv_exact(s, size)
    got_cid, error_code, count = struct.unpack_from(">ihi", frame, 0)
    if got_cid != correlation_id or error_code != 0:
        raise ConnectionError(f"ApiVersions v0: correlation id {got_cid} error code {error_code}")
    return [struct.unpack_from(">hhh", frame, 10 + 6 * i) for i in range(count)]


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly n bytes from sock; ConnectionError when the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


# The broker process ------------------------------------------------------------------------------


class BrokerStartError(RuntimeError):
    """The broker exited or never answered during start-up; the message carries its log."""


@dataclass
class BrokerProcess:
    """A `pyk serve` subprocess bound to 127.0.0.1:`port` with its logs under `workdir/data`.

    Lifecycle: `start()` -> (`stop()` | `kill9()`) -> `start()`/`restart()` again on the same port
    and directory, as often as a test needs.  stdout and stderr of every run are appended to
    `workdir/broker.log`, separated by a banner line, so a failure report shows the whole story.
    Not thread-safe: one test drives it (a test may produce from a background thread, but
    start/stop stay on the test's thread).
    """

    workdir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    port: int = 0
    shards: int = TEST_SHARDS
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the process
    log_level: str = "INFO"  # DEBUG for a test that waits for a debug line (fetch parked, cleaner idle)
    host: str = "127.0.0.1"  # the listener's address (a network namespace's in tests/cluster/netns.py)
    netns: str | None = None  # run inside this network namespace (`ip netns exec`)
    probe_tls: ssl.SSLContext | None = None  # the readiness probe's TLS, when `port` is an SSL/SASL_SSL listener
    runs: int = 0
    log_checked: int = 0  # characters of the log already searched for tracebacks (tests/conftest.py)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        if not self.port:
            self.port = free_port(self.shards)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [
            *(["ip", "netns", "exec", self.netns] if self.netns else []),
            sys.executable, "-m", "pyk", "--log-level", self.log_level, "serve",
            "--override", f"listeners=PLAINTEXT://{self.host}:{self.port}",
            "--override", f"log.dirs={self.log_dir}",
            "--override", f"num.shards={self.shards}",
        ]  # fmt: skip
        if TEST_ENGINE and "io.engine" not in self.overrides:
            cmd += ["--override", f"io.engine={TEST_ENGINE}"]
        for key in OPERATOR_LISTENERS:  # off unless a test asks: fixed default ports would collide
            if key not in self.overrides:
                cmd += ["--override", f"{key}="]
        for key, value in self.overrides.items():
            cmd += ["--override", f"{key}={value}"]
        return cmd

    def start(self, timeout: float = START_TIMEOUT_S) -> BrokerProcess:
        """Starts the process and returns once it answers ApiVersions; BrokerStartError otherwise.

        On the very first start only, a port taken between `free_port()` and the broker's bind (by
        another process on a shared machine) is replaced by a new one; restarts keep their port.
        """
        for attempt in range(3):
            try:
                return self._start_once(timeout)
            except BrokerStartError as exc:
                if self.runs > 1 or "Address already in use" not in str(exc) or attempt == 2:
                    raise
                self.runs = 0
                self.port = free_port(self.shards)
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> BrokerProcess:
        assert not self.running, "broker already running"
        self.runs += 1
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", **self.env)
        with open(self.log_file, "ab") as log:
            log.write(f"\n===== pyk-tests: start #{self.runs}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(),
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill9() takes the shards down with it
            )
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerStartError(
                    f"pyk serve exited with code {self.proc.returncode} during start-up\n{self.log_tail()}"
                )
            try:
                api_versions_probe(self.host, self.port, tls=self.probe_tls)
                return self
            except OSError as exc:  # ConnectionError is an OSError too
                last_error = exc
                time.sleep(0.05)
        self.kill9()
        raise BrokerStartError(
            f"pyk serve not ready after {timeout}s (last probe error: {last_error})\n{self.log_tail()}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait: returns the exit code; kills and raises if it does not stop in time."""
        assert self.proc is not None, "broker never started"
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"pyk serve ignored SIGTERM for {timeout}s; killed\n{self.log_tail()}"
                ) from None
        return int(self.proc.returncode)

    def kill9(self) -> None:
        """SIGKILL to the orchestrator and every shard at once, as a crash: no flush, no
        clean-shutdown marker."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def pids(self) -> list[int]:
        """The orchestrator and its shard processes (children of the orchestrator)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [self.proc.pid, *map(int, children)]

    def restart(self, timeout: float = START_TIMEOUT_S) -> BrokerProcess:
        """Clean stop (if running) then start again on the same port and log directory."""
        if self.running:
            code = self.stop()
            assert code == 0, f"pyk serve exited with {code} on SIGTERM\n{self.log_tail()}"
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        text = self.log_text()
        return text if len(text) <= nbytes else "[...]\n" + text[-nbytes:]

    def shard_dirs(self) -> list[Path]:
        """Each shard's log directory (`<log.dirs>/shard-<i>`)."""
        return sorted(self.log_dir.glob("shard-*"))

    def partition_dir(self, topic: str, partition: int) -> Path:
        """The partition's directory, in whichever shard owns it."""
        found = list(self.log_dir.glob(f"shard-*/{topic}-{partition}"))
        assert len(found) == 1, f"{topic}-{partition} found in {found}"
        return found[0]


@dataclass
class ExternalBroker:
    """A broker this test run did not start (PYK_TEST_BOOTSTRAP): only `bootstrap` is known."""

    bootstrap: str
    log_dir: Path | None = None

    def log_tail(self, nbytes: int = LOG_TAIL_BYTES) -> str:
        return "(external broker: no log)"

    def log_text(self) -> str:
        return ""


# Records, normalised across clients ---------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    """One record as a consumer saw it (or as a producer meant it: offset -1, partition as chosen)."""

    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: int | None = None  # ms; None: let the client stamp it
    partition: int | None = 0  # None: let the client's partitioner choose
    offset: int = -1

    def content(self) -> tuple[Any, ...]:
        """What must survive a round trip whatever the client: key, value, headers."""
        return (self.key, self.value, self.headers)


def _headers(raw: Iterable[tuple[str, bytes | None]] | None) -> tuple[tuple[str, bytes], ...]:
    return tuple((k, b"" if v is None else bytes(v)) for k, v in (raw or ()))


def make_records(
    n: int,
    *,
    partition: int = 0,
    prefix: str = "r",
    value_size: int = 0,
    ts_base: int | None = None,
    headers: bool = True,
) -> list[Rec]:
    """n distinct records: key k-<i>, value <prefix>-<i> padded to value_size, a header per record."""
    out = []
    for i in range(n):
        value = f"{prefix}-{i}".encode()
        if value_size > len(value):
            value += b"." * (value_size - len(value))
        out.append(Rec(
            key=f"k-{i}".encode(), value=value,
            headers=((("i", str(i).encode()), ("src", prefix.encode())) if headers else ()),
            timestamp=None if ts_base is None else ts_base + i, partition=partition,
        ))  # fmt: skip
    return out


class ClientError(AssertionError):
    """A client reported an error for a produce or consume step (message says which client and what)."""


# confluent-kafka (librdkafka 2.x bundled in the wheel) ------------------------------------------


def confluent_produce(
    bootstrap: str, topic: str, records: Sequence[Rec], **conf: Any
) -> list[tuple[int, int]]:
    """Produces records in order; returns [(partition, offset)] per record; raises on any delivery error."""
    from confluent_kafka import Producer

    results: list[Any] = [None] * len(records)

    def on_delivery(i: int) -> Any:
        def cb(err: Any, msg: Any) -> None:
            results[i] = err if err is not None else (msg.partition(), msg.offset())

        return cb

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 20000, **conf})
    for i, r in enumerate(records):
        kwargs: dict[str, Any] = {"key": r.key, "value": r.value, "on_delivery": on_delivery(i)}
        if r.partition is not None:
            kwargs["partition"] = r.partition
        if r.headers:
            kwargs["headers"] = list(r.headers)
        if r.timestamp is not None:
            kwargs["timestamp"] = r.timestamp
        while True:
            try:
                p.produce(topic, **kwargs)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                p.poll(0.1)
        p.poll(0)
    left = p.flush(30)
    if left:
        raise ClientError(f"confluent-kafka: {left} messages undelivered after 30s")
    errors = [(i, e) for i, e in enumerate(results) if not isinstance(e, tuple)]
    if errors:
        raise ClientError(
            f"confluent-kafka produce to {topic}: {len(errors)} failed, first: record {errors[0][0]}: {errors[0][1]}"
        )
    return list(results)


def confluent_consumer(bootstrap: str, **conf: Any) -> Any:
    """A confluent Consumer for assign()-only use: librdkafka insists on a group.id, nothing is committed."""
    from confluent_kafka import Consumer

    return Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"pyk-tests-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100, **conf,
    })  # fmt: skip


def confluent_consume(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    start: int = 0,
    count: int = 1,
    timeout: float = 20.0,
    **conf: Any,
) -> list[Rec]:
    """Up to `count` records from `start` (assign, no group); returns what arrived before `timeout`."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    c = confluent_consumer(bootstrap, **conf)
    out: list[Rec] = []
    try:
        c.assign([TopicPartition(topic, partition, start)])
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for m in c.consume(num_messages=min(1000, count - len(out)), timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                ts_type, ts = m.timestamp()
                out.append(Rec(m.key(), m.value(), _headers(m.headers()), ts, m.partition(), m.offset()))
    finally:
        c.close()
    return out


def confluent_read_to_end(bootstrap: str, topic: str, partition: int = 0, timeout: float = 20.0,
                          **conf: Any) -> list[Rec]:
    """Every record a consumer reads from the start of the partition up to its end (a compacted
    or transactional log has fewer records than offsets); AssertionError if the end is not
    reached within `timeout`."""
    from confluent_kafka import KafkaError, KafkaException, TopicPartition

    c = confluent_consumer(bootstrap, **{"enable.partition.eof": True, **conf})
    out: list[Rec] = []
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise KafkaException(msg.error())
            out.append(Rec(msg.key(), msg.value(), _headers(msg.headers()), msg.timestamp()[1], msg.partition(),
                           msg.offset()))
        raise AssertionError(f"{topic}: end of partition {partition} not reached in {timeout:g} s")
    finally:
        c.close()


def confluent_watermarks(bootstrap: str, topic: str, partition: int = 0) -> tuple[int, int]:
    """(low, high) watermark offsets from ListOffsets earliest/latest."""
    from confluent_kafka import TopicPartition

    c = confluent_consumer(bootstrap)
    try:
        return tuple(c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False))  # type: ignore[return-value]
    finally:
        c.close()


def confluent_admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(
    bootstrap: str, topic: str, partitions: int = 1, config: dict[str, str] | None = None
) -> None:
    """Creates a topic with confluent's AdminClient and waits for the answer."""
    from confluent_kafka.admin import NewTopic

    admin = confluent_admin(
        bootstrap
    )  # keep the handle alive until the answer: destroying it fails the future
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10,
    )
    futures[topic].result(timeout=20)


# kafka-python -----------------------------------------------------------------------------------


def kafka_python_produce(
    bootstrap: str, topic: str, records: Sequence[Rec], **conf: Any
) -> list[tuple[int, int]]:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **conf)
    try:
        futures = [
            p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers) or None,
                   timestamp_ms=r.timestamp)
            for r in records
        ]  # fmt: skip
        p.flush(timeout=30)
        out = []
        for i, f in enumerate(futures):
            try:
                md = f.get(timeout=30)
            except Exception as exc:
                raise ClientError(f"kafka-python produce to {topic}: record {i}: {exc!r}") from exc
            out.append((md.partition, md.offset))
        return out
    finally:
        p.close(timeout=10)


def kafka_python_consume(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    start: int = 0,
    count: int = 1,
    timeout: float = 20.0,
    **conf: Any,
) -> list[Rec]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100, **conf
    )
    out: list[Rec] = []
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for msgs in c.poll(timeout_ms=500, max_records=count - len(out)).values():
                out += [
                    Rec(m.key, m.value, _headers(m.headers), m.timestamp, m.partition, m.offset) for m in msgs
                ]
    finally:
        c.close()
    return out


# aiokafka ------------------------------------------------------------------------------------------


def aiokafka_produce(
    bootstrap: str, topic: str, records: Sequence[Rec], **conf: Any
) -> list[tuple[int, int]]:
    from aiokafka import AIOKafkaProducer

    async def run() -> list[tuple[int, int]]:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, **conf)
        await p.start()
        try:
            futures = [
                await p.send(topic, key=r.key, value=r.value, partition=r.partition,
                             headers=list(r.headers) or None, timestamp_ms=r.timestamp)
                for r in records
            ]  # fmt: skip
            out = []
            for i, (r, f) in enumerate(zip(records, futures, strict=True)):
                try:
                    md = await asyncio.wait_for(f, 30)
                except Exception as exc:
                    raise ClientError(f"aiokafka produce to {topic}: record {i}: {exc!r}") from exc
                # acks=0: aiokafka resolves the future with None (no broker answer to report).
                out.append((r.partition, -1) if md is None else (md.partition, md.offset))
            return out
        finally:
            await p.stop()

    return asyncio.run(run())


def aiokafka_consume(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    start: int = 0,
    count: int = 1,
    timeout: float = 20.0,
    **conf: Any,
) -> list[Rec]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> list[Rec]:
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             fetch_max_wait_ms=100, **conf)  # fmt: skip
        await c.start()
        out: list[Rec] = []
        try:
            tp = TopicPartition(topic, partition)
            c.assign([tp])
            c.seek(tp, start)
            deadline = time.monotonic() + timeout
            while len(out) < count and time.monotonic() < deadline:
                batches = await c.getmany(tp, timeout_ms=500, max_records=count - len(out))
                for msgs in batches.values():
                    out += [
                        Rec(m.key, m.value, _headers(m.headers), m.timestamp, m.partition, m.offset)
                        for m in msgs
                    ]
        finally:
            await c.stop()
        return out

    return asyncio.run(run())


# kcat (Debian's, on the system librdkafka) ----------------------------------------------------------

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(
    args: list[str], stdin: bytes | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    """Runs kcat; raises ClientError with its stderr when it fails."""
    if KCAT is None:
        raise ClientError("kcat is not installed (ci/install.sh installs it)")
    proc = subprocess.run([KCAT, *args], input=stdin, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise ClientError(
            f"kcat {' '.join(args)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
        )
    return proc


def kcat_produce(bootstrap: str, topic: str, records: Sequence[Rec], *extra: str) -> str:
    """kcat -P with keys (-K) from text records; headers must be the same on every record (-H applies to all).

    kcat reports no offsets, so callers verify by consuming.  Returns kcat's stderr (its log).
    """
    assert all(r.key is not None and r.value is not None for r in records), (
        "kcat records need text keys and values"
    )
    assert all(b"\n" not in r.key + r.value and b"\t" not in r.key for r in records)  # type: ignore[operator]
    args = ["-b", bootstrap, "-t", topic, "-P", "-K", "\t", *extra]
    if records[0].partition is not None:
        args += ["-p", str(records[0].partition)]
    for k, v in records[0].headers:
        args += ["-H", f"{k}={v.decode()}"]
    data = b"".join(r.key + b"\t" + r.value + b"\n" for r in records)  # type: ignore[operator]
    return kcat(args, stdin=data).stderr.decode(errors="replace")


def kcat_consume(
    bootstrap: str,
    topic: str,
    partition: int = 0,
    start: int = 0,
    count: int = 1,
    timeout: float = 30.0,
    extra: Sequence[str] = (),
) -> list[Rec]:
    """kcat -C -J from `start` for `count` records (or to the end, -e); parses its JSON envelopes."""
    args = [
        "-b",
        bootstrap,
        "-t",
        topic,
        "-p",
        str(partition),
        "-C",
        "-o",
        str(start),
        "-c",
        str(count),
        "-e",
        "-J",
        "-q",
        *extra,
    ]
    proc = kcat(args, timeout=timeout)
    out = []
    for line in proc.stdout.decode().splitlines():
        if not line.strip():
            continue
        env = json.loads(line)
        hdrs = env.get("headers") or []
        headers = tuple((hdrs[i], (hdrs[i + 1] or "").encode()) for i in range(0, len(hdrs), 2))
        key = env.get("key")
        value = env.get("payload")
        out.append(Rec(
            None if key is None else key.encode(), None if value is None else value.encode(), headers,
            env.get("ts"), env["partition"], env["offset"],
        ))  # fmt: skip
    return out


PRODUCERS = {
    "confluent": confluent_produce,
    "kafka-python": kafka_python_produce,
    "aiokafka": aiokafka_produce,
}
CONSUMERS = {
    "confluent": confluent_consume,
    "kafka-python": kafka_python_consume,
    "aiokafka": aiokafka_consume,
    "kcat": kcat_consume,
}


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Polls predicate() until it returns a truthy value; AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last value {last!r})")


# Segment files on disk -------------------------------------------------------------------------

CODEC_IDS = {"none": 0, "uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass(frozen=True)
class BatchHeader:
    """The fixed header of one v2 record batch in a `.log` file, with its file position.

    Layout (KIP-98): baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8,
    crc uint32, attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64,
    producerId int64, producerEpoch int16, baseSequence int32, recordCount int32 (61 bytes).
    """

    position: int
    base_offset: int
    length: int  # batchLength: bytes after the length field
    magic: int
    attributes: int
    last_offset_delta: int
    record_count: int
    leader_epoch: int  # partitionLeaderEpoch, stamped by the broker on append

    @property
    def size(self) -> int:
        return 12 + self.length

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def codec(self) -> int:
        return self.attributes & 0x7


def read_batches(path: Path) -> list[BatchHeader]:
    """Every complete batch header of a segment file, in file order (a torn tail is left out)."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + 61 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, pos)
        if length < 49 or pos + 12 + length > len(data):
            break
        magic = data[pos + 16]
        attributes, last_delta = struct.unpack_from(">hi", data, pos + 21)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        (epoch,) = struct.unpack_from(">i", data, pos + 12)
        out.append(BatchHeader(pos, base_offset, length, magic, attributes, last_delta, count, epoch))
        pos += 12 + length
    return out


def segment_files(partition_dir: Path, suffix: str = ".log") -> list[Path]:
    """The partition's segment files with `suffix`, in base-offset order (names are 20-digit offsets)."""
    return sorted(partition_dir.glob(f"*{suffix}"))
