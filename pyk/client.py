"""pyk's internal Kafka client: pipelined requests over asyncio, no per-record work.

Shared by the load generator (pyk/bench), the admin tools (pyk/tools) and the broker itself,
whose transaction coordinator sends WriteTxnMarkers to the shard leading each partition of a
transaction (pyk/coordinator/transaction_markers.py).

Owns:
* `Connection`: one TCP connection to one broker node.  Requests are written as lists of parts
  (`transport.writelines`, a writev in uvloop), so a record batch held in a template buffer is
  sent without being copied into a request; responses come back in request order (Kafka's rule
  for one connection), each matched to the callback or future registered when it was sent.
* `Cluster`: bootstrap, ApiVersions negotiation, Metadata (leader of every partition, one
  `Connection` per leader node), CreateTopics and ListOffsets.  Its connections are opened by a
  `Connector`: plain TCP by default; the broker's inter-broker client
  (pyk.server.security.inter_broker) is one that does the listener's TLS and SASL, so a Cluster
  can reach a secured listener with the broker's own credentials (the web console does).

Receiving: small frames land in one staging buffer and are handed to their callback as a
memoryview valid only during the call (no copy); a frame larger than the staging buffer gets a
buffer of its own and is received straight into it, so an 8 MB Fetch response costs one copy
(kernel -> buffer), never a Python-level join.

Messages are encoded and decoded with `pyk.protocol` (the client side of its contract), except
the two hot paths of the load generator, which patch a pre-encoded Produce request prefix and
read a Produce response's error code at a fixed position (see pyk/bench/generator.py).
"""

from __future__ import annotations

import asyncio
import ssl
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol import SUPPORTED, ApiKey, decode_response, encode_request

_I32 = struct.Struct(">i")
STAGING_BYTES = 256 * 1024  # frames up to this size are parsed in place; larger ones get their own buffer
CLIENT_ID = "pyk-bench"  # the default; a Connection may carry its own (`client_id`)

# Versions the bench never goes above although pyk.protocol could: Produce <= 8 keeps the
# records field last in the frame (no tagged fields after it), which the generator's request
# prefix relies on; the others are the newest both sides speak.
VERSION_CAPS = {ApiKey.PRODUCE: 8}

ResponseCallback = Callable[[memoryview], None]


class BrokerError(RuntimeError):
    """A broker answered a set-up request (metadata, topic creation, offsets) with an error."""


class Connection(asyncio.BufferedProtocol):
    """One connection to one broker node, owned by one event loop (not thread-safe).

    Lifecycle: `await Connection.open(host, port)` -> `send()` / `request()` any number of
    times -> `close()`.  Invariant: `_waiters` holds one entry per request sent that expects a
    response, in send order; a response frame always pops the leftmost entry.  When the
    connection breaks, every waiting future fails with ConnectionError and `closed` is set.
    """

    client_id: str = CLIENT_ID
    reauth_at: float | None = None  # monotonic time to re-authenticate by (a broker's SASL session, KIP-368)
    host = ""  # the host it was opened to (GSSAPI names its target after it)

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._staging = bytearray(STAGING_BYTES)
        self._sview = memoryview(self._staging)
        self._filled = 0  # bytes of the staging buffer holding unparsed data
        self._big: bytearray | None = None  # the dedicated buffer of a large frame being received
        self._big_pos = 0
        # (correlation id, callback or future, whether the callback keeps the frame)
        self._waiters: deque[tuple[int, ResponseCallback | asyncio.Future[Any], bool]] = deque()
        self._correlation_id = 0
        self._writable = asyncio.Event()
        self._writable.set()

    @classmethod
    async def open(cls, host: str, port: int, tls: ssl.SSLContext | None = None) -> Connection:
        """Connects (with TLS when `tls` is given: the server's certificate is checked against
        `host` when the context checks host names)."""
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(cls, host, port, ssl=tls, server_hostname=host if tls else None)
        conn.host = host
        return conn

    # -- asyncio protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        writable: asyncio.Transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport subclasses
        self.transport = writable
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Produce requests are written while earlier ones are still queued: let the transport
        # hold a few MB before it asks us to pause, as a client's socket buffer would.
        writable.set_write_buffer_limits(high=8 << 20, low=2 << 20)

    def connection_lost(self, exc: Exception | None) -> None:
        err = ConnectionError(f"connection to the broker lost: {exc or 'closed by peer'}")
        while self._waiters:
            _, waiter, _ = self._waiters.popleft()
            if isinstance(waiter, asyncio.Future) and not waiter.done():
                waiter.set_exception(err)
        if not self.closed.done():
            self.closed.set_result(None)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._big is not None:
            return memoryview(self._big)[self._big_pos :]
        return self._sview[self._filled :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._big is not None:
            self._big_pos += nbytes
            if self._big_pos == len(self._big):
                frame, self._big = self._big, None
                self._deliver(memoryview(frame), owned=True)
            return
        self._filled += nbytes
        self._parse_staging()

    def _parse_staging(self) -> None:
        pos, end, view = 0, self._filled, self._sview
        while end - pos >= 4:
            size = _I32.unpack_from(view, pos)[0]
            if size < 0:
                self._fail(f"negative response frame size {size}")
                return
            if end - pos - 4 >= size:
                self._deliver(view[pos + 4 : pos + 4 + size], owned=False)
                pos += 4 + size
                continue
            if size + 4 > STAGING_BYTES:
                # Too big for staging: move what arrived into a buffer of the frame's size and
                # receive the rest straight into it.
                have = end - pos - 4
                self._big = bytearray(size)
                self._big[:have] = view[pos + 4 : end]
                self._big_pos = have
                pos = end
            break
        if pos:
            rest = end - pos
            if rest:
                view[:rest] = view[pos:end]
            self._filled = rest

    def _deliver(self, frame: memoryview, owned: bool) -> None:
        if not self._waiters:
            self._fail("response frame without a request waiting for it")
            return
        correlation_id, waiter, keep = self._waiters.popleft()
        got = _I32.unpack_from(frame, 0)[0]
        if got != correlation_id:
            self._fail(f"response correlation id {got}, expected {correlation_id}")
            return
        if keep and not owned:
            frame = memoryview(bytes(frame))
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(frame)
        else:
            waiter(frame)

    def _fail(self, why: str) -> None:
        assert self.transport is not None
        self.transport.close()
        self.connection_lost(ConnectionError(why))

    # -- sending ---------------------------------------------------------------------------------

    def next_correlation_id(self) -> int:
        self._correlation_id = (self._correlation_id + 1) & 0x7FFFFFFF
        return self._correlation_id

    @property
    def in_flight(self) -> int:
        return len(self._waiters)

    async def writable(self) -> None:
        """Returns once the transport's write buffer is below its low-water mark."""
        await self._writable.wait()
        if self.closed.done():
            raise ConnectionError("connection to the broker is closed")

    def send(self, correlation_id: int, parts: Sequence[Any], on_response: ResponseCallback | None,
             keep: bool = False) -> None:
        """Write one request (its parts in order); `on_response(frame)` runs when its answer arrives.

        `frame` is the response without its size prefix, valid only during the call unless `keep`
        (then a small frame is copied out of the staging buffer; a large one has its own buffer
        anyway).  None means no response is expected (Produce with acks=0)."""
        if self.closed.done() or self.transport is None:
            raise ConnectionError("connection to the broker is closed")
        if on_response is not None:
            self._waiters.append((correlation_id, on_response, keep))
        self.transport.writelines(parts)

    async def request(self, api_key: int, version: int, body: dict[str, Any]) -> dict[str, Any]:
        """One request/response round trip through pyk.protocol's codecs."""
        correlation_id = self.next_correlation_id()
        frame = encode_request(api_key, version, correlation_id, self.client_id, body)
        fut: asyncio.Future[memoryview] = asyncio.get_running_loop().create_future()
        if self.closed.done() or self.transport is None:
            raise ConnectionError("connection to the broker is closed")
        self._waiters.append((correlation_id, fut, True))
        self.transport.write(frame)
        response = await fut
        return decode_response(api_key, version, response)[1]

    @property
    def usable(self) -> bool:
        """Open, and not past the time its SASL session wants re-authenticating by: a shared
        connection is then replaced rather than used until the broker closes it."""
        return not self.closed.done() and (self.reauth_at is None or time.monotonic() < self.reauth_at)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


Connector = Callable[[str, int], Awaitable[Connection]]  # opens a connection to (host, port), ready for requests


@dataclass
class PartitionInfo:
    """Where one partition lives: its leader node."""

    partition: int
    leader: int


@dataclass
class Cluster:
    """What the client knows about the cluster behind `bootstrap`, and its connections.

    Lifecycle: `await Cluster.connect(bootstrap, connector)` -> `versions` negotiated ->
    `metadata(topic)` / `create_topic()` / `list_offsets()` / `connection(node)` -> `close()`.
    One event loop.  Every connection, the bootstrap one included, comes from `connector`.
    """

    bootstrap: str
    conn: Connection
    connector: Connector = Connection.open
    versions: dict[int, int] = field(default_factory=dict)  # api key -> version this client uses
    nodes: dict[int, tuple[str, int]] = field(default_factory=dict)  # node id -> (host, port)
    _conns: dict[int, Connection] = field(default_factory=dict)

    @classmethod
    async def connect(cls, bootstrap: str, connector: Connector = Connection.open) -> Cluster:
        errors = []
        for item in bootstrap.split(","):
            host, _, port = item.strip().rpartition(":")
            try:
                conn = await connector(host or "127.0.0.1", int(port))
            except OSError as exc:  # an authentication refused by the broker is a ConnectionError
                errors.append(f"{item}: {exc}")
                continue
            cluster = cls(bootstrap, conn, connector)
            await cluster._negotiate()
            return cluster
        raise ConnectionError(f"no bootstrap server reachable ({'; '.join(errors)})")

    async def _negotiate(self) -> None:
        body = await self.conn.request(ApiKey.API_VERSIONS, 0, {})
        if body["error_code"] != ErrorCode.NONE:
            raise BrokerError(f"ApiVersions failed with error code {body['error_code']}")
        broker = {k["api_key"]: (k["min_version"], k["max_version"]) for k in body["api_keys"]}
        for key, (ours_lo, ours_hi) in SUPPORTED.items():
            if key not in broker:
                continue
            lo, hi = broker[key]
            hi = min(hi, ours_hi, VERSION_CAPS.get(key, hi))
            if hi >= max(lo, ours_lo):
                self.versions[int(key)] = hi

    def version(self, api_key: ApiKey) -> int:
        v = self.versions.get(int(api_key))
        if v is None:
            raise BrokerError(f"the broker and pyk's client share no version of {api_key.name}")
        return v

    async def metadata(self, topic: str) -> list[PartitionInfo]:
        """Partitions of `topic` and their leaders (UNKNOWN_TOPIC_OR_PARTITION -> BrokerError)."""
        version = self.version(ApiKey.METADATA)
        body: dict[str, Any] = {"topics": [{"name": topic}]}
        if version >= 4:
            body["allow_auto_topic_creation"] = False
        resp = await self.conn.request(ApiKey.METADATA, version, body)
        self.nodes = {b["node_id"]: (b["host"], b["port"]) for b in resp["brokers"]}
        for t in resp["topics"]:
            if t["name"] != topic:
                continue
            if t["error_code"] != ErrorCode.NONE:
                raise BrokerError(f"metadata of {topic}: {_name(t['error_code'])}")
            parts = [PartitionInfo(p["partition_index"], p["leader_id"]) for p in t["partitions"]]
            return sorted(parts, key=lambda p: p.partition)
        raise BrokerError(f"metadata of {topic}: not in the answer")

    async def create_topic(self, topic: str, partitions: int, replication: int = 1,
                           configs: dict[str, str] | None = None) -> bool:
        """Creates the topic; False if it already existed (its partition count is then kept)."""
        version = self.version(ApiKey.CREATE_TOPICS)
        body = {"topics": [{
            "name": topic, "num_partitions": partitions, "replication_factor": replication,
            "assignments": [], "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()],
        }], "timeout_ms": 30000}  # fmt: skip
        resp = await self.conn.request(ApiKey.CREATE_TOPICS, version, body)
        code = resp["topics"][0]["error_code"]
        if code == ErrorCode.TOPIC_ALREADY_EXISTS:
            return False
        if code != ErrorCode.NONE:
            msg = resp["topics"][0].get("error_message") or ""
            raise BrokerError(f"creating {topic}: {_name(code)} {msg}".rstrip())
        # Kafka answers before every broker has the new partitions' metadata: wait for leaders.
        for _ in range(100):
            try:
                parts = await self.metadata(topic)
                if len(parts) == partitions and all(p.leader >= 0 for p in parts):
                    break
            except BrokerError:
                pass
            await asyncio.sleep(0.05)
        return True

    async def list_offsets(self, topic: str, parts: Sequence[PartitionInfo], timestamp: int) -> dict[int, int]:
        """Partition -> offset for `timestamp` (-1 latest, -2 earliest), asked of each leader."""
        version = self.version(ApiKey.LIST_OFFSETS)
        out: dict[int, int] = {}
        by_leader: dict[int, list[int]] = {}
        for p in parts:
            by_leader.setdefault(p.leader, []).append(p.partition)
        for leader, indexes in by_leader.items():
            conn = await self.connection(leader)
            body = {"replica_id": -1, "isolation_level": 0, "topics": [{
                "name": topic, "partitions": [{"partition_index": i, "timestamp": timestamp} for i in indexes],
            }]}  # fmt: skip
            resp = await conn.request(ApiKey.LIST_OFFSETS, version, body)
            for t in resp["topics"]:
                for p in t["partitions"]:
                    if p["error_code"] != ErrorCode.NONE:
                        raise BrokerError(f"ListOffsets {topic}-{p['partition_index']}: {_name(p['error_code'])}")
                    out[p["partition_index"]] = p["offset"]
        return out

    async def connection(self, node: int, fresh: bool = False) -> Connection:
        """The shared connection to `node` (a new, unshared one with fresh=True)."""
        shared = self._conns.get(node)
        if not fresh and shared is not None:
            if shared.usable:
                return shared
            shared.close()
        host, port = self.nodes[node]
        conn = await self.connector(host, port)
        if not fresh:
            self._conns[node] = conn
        return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self.conn.close()


def _name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error code {code}"
