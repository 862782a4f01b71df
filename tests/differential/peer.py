"""The differential harness: the same requests to Apache Kafka and to pyk, the answers compared.

Owns:
* `Peer`: one broker under test seen through pyk's own protocol layer (`pyk.protocol`'s client
  side): a request is encoded once at a version the scenario chooses and sent as those bytes,
  on a plain blocking socket, to the node that must answer it (the bootstrap node, a partition's
  leader, a group's or transaction's coordinator), and its answer decoded into a dict.  Both
  peers therefore receive byte-identical requests (up to the correlation id).
* `normalise()`: what must differ between two brokers replaced by stable placeholders (node ids,
  hosts, ports, cluster and topic ids, member and producer ids, in order of first appearance,
  so "the leader is the member that joined" still compares); throttle times dropped; free-text
  error messages reduced to whether there is one.
* `assert_same()`: the two normalised answers compared field by field.  A known difference is
  named by its path with the value each broker gives, and asserted as such, so the test fails
  when a difference changes or disappears (then docs/compatibility.md needs updating too).
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyk.errors import ErrorCode
from pyk.protocol import ApiKey, decode_response, encode_request
from tests.helpers import recv_exact

CLIENT_ID = "pyk-differential"
TIMEOUT_S = 30.0
# Retriable set-up codes: Kafka creates its internal topics and elects their leaders on first use.
_SETUP_RETRIABLE = {
    ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NOT_COORDINATOR,
    ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.CONCURRENT_TRANSACTIONS,
}  # fmt: skip


class Conn:
    """One blocking connection; requests may be pipelined (`send` now, `recv` later, in order)."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._cid = 0

    def send(self, api: ApiKey, version: int, body: dict[str, Any]) -> int:
        self._cid += 1
        self.sock.sendall(encode_request(api, version, self._cid, CLIENT_ID, body))
        return self._cid

    def recv(self, api: ApiKey, version: int, cid: int) -> dict[str, Any]:
        (size,) = struct.unpack(">i", recv_exact(self.sock, 4))
        got, body = decode_response(api, version, recv_exact(self.sock, size))
        assert got == cid, f"{api.name}: correlation id {got}, expected {cid}"
        return body

    def close(self) -> None:
        self.sock.close()


@dataclass
class Peer:
    """A broker under test: `kafka` or `pyk` at `bootstrap`; nodes are found with Metadata."""

    name: str
    bootstrap: str
    _conns: dict[tuple[str, int], Conn] = field(default_factory=dict)
    _nodes: dict[int, tuple[str, int]] = field(default_factory=dict)

    def conn(self, node: int | None = None) -> Conn:
        """The shared connection to `node` (None: the bootstrap node)."""
        if node is None:
            host, port = self.bootstrap.rsplit(":", 1)
            addr = (host, int(port))
        else:
            if node not in self._nodes:
                self.metadata([])
            addr = self._nodes[node]
        if addr not in self._conns:
            self._conns[addr] = Conn(*addr)
        return self._conns[addr]

    def fresh(self, node: int | None = None) -> Conn:
        """A new, unshared connection (a second client, for requests that wait on each other)."""
        if node is None:
            host, port = self.bootstrap.rsplit(":", 1)
            return Conn(host, int(port))
        return Conn(*self._nodes[node])

    def call(self, api: ApiKey, version: int, body: dict[str, Any], node: int | None = None) -> dict[str, Any]:
        conn = self.conn(node)
        try:
            return conn.recv(api, version, conn.send(api, version, body))
        except OSError:
            conn.close()  # the next request gets a new connection
            self._conns = {a: c for a, c in self._conns.items() if c is not conn}
            raise

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # Routing (set-up requests: their answers are not compared) -------------------------------

    def metadata(self, topics: list[str]) -> dict[str, Any]:
        body = self.call(ApiKey.METADATA, 12, {"topics": [{"name": t} for t in topics],
                                                "allow_auto_topic_creation": False})
        self._nodes.update({b["node_id"]: (b["host"], b["port"]) for b in body["brokers"]})
        return body

    def nodes(self) -> list[int]:
        return sorted(b["node_id"] for b in self.metadata([])["brokers"])

    def leader(self, topic: str, partition: int = 0) -> int | None:
        """The partition's leader (None when the topic does not exist: the bootstrap node answers)."""
        for t in self.metadata([topic])["topics"]:
            for p in t["partitions"]:
                if p["partition_index"] == partition and p["leader_id"] >= 0:
                    return int(p["leader_id"])
        return None

    def coordinator(self, key: str, key_type: int = 0) -> int:
        """The group's (0) or transactional id's (1) coordinator, once it is available."""
        body = self.until_ok(ApiKey.FIND_COORDINATOR, 4, {"key_type": key_type, "coordinator_keys": [key]},
                             lambda b: b["coordinators"][0]["error_code"])  # fmt: skip
        node = body["coordinators"][0]
        self._nodes[node["node_id"]] = (node["host"], node["port"])
        return int(node["node_id"])

    def ready(self) -> None:
        """Returns once the group and transaction coordinators serve: Kafka creates and loads
        `__consumer_offsets` and `__transaction_state` on first use, answering with retriable
        errors meanwhile, which would otherwise land in the first scenario's answers."""
        key = "pyk-differential-ready"
        body = {"groups": [key], "include_authorized_operations": False}
        self.until_ok(ApiKey.DESCRIBE_GROUPS, 5, body, lambda r: r["groups"][0]["error_code"], self.coordinator(key))
        body = {"transactional_id": key, "transaction_timeout_ms": 60000, "producer_id": -1, "producer_epoch": -1}
        self.until_ok(ApiKey.INIT_PRODUCER_ID, 4, body, lambda r: r["error_code"], self.coordinator(key, 1))

    def until_ok(self, api: ApiKey, version: int, body: dict[str, Any], code: Callable[[dict[str, Any]], int],
                 node: int | None = None) -> dict[str, Any]:
        """Repeats a set-up request while it fails with a retriable code (Kafka's internal topics
        are created on first use); any other error fails the test."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            resp = self.call(api, version, body, node)
            err = code(resp)
            if err == ErrorCode.NONE:
                return resp
            if err not in _SETUP_RETRIABLE or time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: set-up {api.name} failed with {ErrorCode(err).name}: {resp}")
            time.sleep(0.05)

    def create_topic(self, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
        """Creates a topic and waits until every partition has a leader."""
        body = {"topics": [{"name": name, "num_partitions": partitions, "replication_factor": 1,
                            "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
                "timeout_ms": 30000}  # fmt: skip
        resp = self.call(ApiKey.CREATE_TOPICS, 7, body)
        assert resp["topics"][0]["error_code"] == 0, f"{self.name}: creating {name}: {resp}"
        deadline = time.monotonic() + TIMEOUT_S
        for p in range(partitions):  # Kafka's metadata may name a leader before it serves the partition
            body = {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": name, "partitions": [{"partition_index": p, "timestamp": -1}]}]}  # fmt: skip
            while (leader := self.leader(name, p)) is None or self.call(ApiKey.LIST_OFFSETS, 7, body, leader)[
                    "topics"][0]["partitions"][0]["error_code"] != ErrorCode.NONE:  # fmt: skip
                assert time.monotonic() < deadline, f"{self.name}: {name}-{p} has no leader"
                time.sleep(0.05)


# Normalisation ---------------------------------------------------------------------------------

# Values that name something a broker chose: replaced by "<key#n>" in order of first appearance.
RENAMED = frozenset({
    "node_id", "leader_id", "controller_id", "host", "port", "cluster_id", "topic_id", "member_id", "leader",
    "producer_id", "replica_nodes", "isr_nodes", "offline_replicas",
})  # fmt: skip
# Keys whose values share one numbering: a node id is the same node whichever field names it.
FAMILY = {
    "node_id": "node", "leader_id": "node", "controller_id": "node", "replica_nodes": "node", "isr_nodes": "node",
    "offline_replicas": "node", "member_id": "member", "leader": "member",
}  # fmt: skip
DROPPED = frozenset({"throttle_time_ms"})
FREE_TEXT = frozenset({"error_message"})
_NO_VALUE = (None, "", -1)
ZERO_UUID = uuid.UUID(int=0)


class Normaliser:
    """Placeholders for broker-chosen values; one instance per scenario run (per broker)."""

    def __init__(self, drop: Iterable[str] = ()) -> None:
        self.dropped = DROPPED | set(drop)
        self.names: dict[tuple[str, Any], str] = {}

    def value(self, key: str, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(key, x) for x in v]
        if v in _NO_VALUE or isinstance(v, bool) or v == ZERO_UUID:
            return v
        family = FAMILY.get(key, key)
        if isinstance(v, (bytes, bytearray, memoryview)):
            v = bytes(v)
        return self.names.setdefault((family, v), f"<{family}#{sum(f == family for f, _ in self.names)}>")

    def __call__(self, obj: Any, key: str = "") -> Any:
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if k in self.dropped:
                    continue
                if k in FREE_TEXT:
                    out[k] = "<text>" if v else v
                elif k in RENAMED:
                    out[k] = self.value(k, v)
                else:
                    out[k] = self(v, k)
            return out
        if isinstance(obj, list):
            return [self(x, key) for x in obj]
        if isinstance(obj, (bytes, bytearray, memoryview)):
            return bytes(obj)
        return obj


def normalise(obj: Any, drop: Iterable[str] = ()) -> Any:
    """`obj` with broker-chosen values replaced, throttle times and the keys in `drop` left out."""
    return Normaliser(drop)(obj)


# Comparison ------------------------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Known:
    """A documented difference (docs/compatibility.md): at `path`, Kafka has `kafka`, pyk `pyk`."""

    path: Path
    kafka: Any
    pyk: Any


def extra_message(*path: str | int) -> Known:
    """pyk explains an error where Kafka sends a null message (docs/compatibility.md)."""
    return Known((*path, "error_message"), None, "<text>")


_KNOWN_MARK = "<known difference>"


def _get(obj: Any, path: Path) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def _set(obj: Any, path: Path, value: Any) -> None:
    _get(obj, path[:-1])[path[-1]] = value


def differences(kafka: Any, pyk: Any, path: Path = ()) -> list[str]:
    """Every path where the two differ, with both values."""
    if isinstance(kafka, dict) and isinstance(pyk, dict):
        out = []
        for k in sorted(set(kafka) | set(pyk), key=str):
            if k not in pyk or k not in kafka:
                out.append(f"{(*path, k)}: kafka {kafka.get(k, '<absent>')!r}, pyk {pyk.get(k, '<absent>')!r}")
            else:
                out += differences(kafka[k], pyk[k], (*path, k))
        return out
    if isinstance(kafka, list) and isinstance(pyk, list) and len(kafka) == len(pyk):
        return [d for i, (a, b) in enumerate(zip(kafka, pyk, strict=True)) for d in differences(a, b, (*path, i))]
    return [] if kafka == pyk else [f"{path}: kafka {kafka!r}, pyk {pyk!r}"]


def assert_same(kafka: Any, pyk: Any, known: Iterable[Known] = ()) -> None:
    """Fails with every difference, unless it is one of the `known` ones (each of which must
    still hold exactly)."""
    for k in known:
        got = (_get(kafka, k.path), _get(pyk, k.path))
        assert got == (k.kafka, k.pyk), f"known difference at {k.path} changed: kafka {got[0]!r}, pyk {got[1]!r}"
        _set(kafka, k.path, _KNOWN_MARK)
        _set(pyk, k.path, _KNOWN_MARK)
    diffs = differences(kafka, pyk)
    assert not diffs, "pyk differs from Apache Kafka:\n" + "\n".join(diffs)
