"""A host's ZooKeeper session: registration, controller, metadata changes, cluster state.

One `ZkCluster` per pyk host, owned by its orchestrator (pyk.server.shard), which calls it from
one worker thread (kazoo calls block); kazoo's own thread only runs the watch and state
callbacks, which set flags and call `notify`.  The orchestrator answers a notification with
`refresh()` and sends the resulting snapshot to its shards.  The layout is Kafka 2.x's
(docs/cluster.md has the paths and JSON):

* every shard of the host is registered as an ephemeral `/brokers/ids/<node id>` (endpoint,
  rack, and the host it runs on), once all shards listen;
* the controller is elected through the ephemeral `/controller`; the winner increments
  `/controller_epoch` and makes each of its writes conditional on that node's version, so a
  deposed controller cannot change state;
* topics are `/brokers/topics/<t>` (topic id and replica assignment), each partition's state
  `/brokers/topics/<t>/partitions/<p>/state` (leader, leader_epoch, isr, controller_epoch),
  topic configs `/config/topics/<t>`, dynamic broker configs `/config/brokers/<id|<default>>`,
  client quotas `/config/users/<u>[/clients/<c>]`, `/config/clients/<c>`, `/config/ips/<ip>`;
  each config write announced by a sequential `/config/changes/config_change_<seq>` that every
  host watches (Kafka 2.x's change notifications; quotas are read again on a new one),
  producer-id blocks `/latest_producer_id_block`, the cluster id `/cluster/id`;
* ACLs are Kafka's AclAuthorizer store: `/kafka-acl/<ResourceType>/<name>` (LITERAL) and
  `/kafka-acl-extended/prefixed/<ResourceType>/<name>` (PREFIXED), each change announced by a
  sequential node under `/kafka-acl-changes` / `/kafka-acl-extended-changes`; a host reads the
  ACLs again when those lists change;
* topic creation writes the assignment and the initial partition states in one multi-op;
  the controller elects new leaders from the ISR when a leader's node goes, bumping the leader
  epoch, and drops dead followers from the ISR; a leader changes its ISR itself (`alter_isr`,
  conditional on the state's version), the ZooKeeper-era path;
* a session expiry fences the host: until it has a new session and has registered again, its
  snapshot names no leader, so its shards stop acting as leaders;
* partition reassignments (KIP-455) are the controller's: AlterPartitionReassignments writes the
  adding / removing replicas into the topic's node, and the controller makes the target the
  assignment once it is in sync (docs/cluster.md, "Reassignment").

Instead of LeaderAndIsr / UpdateMetadata requests from the controller, every host watches the
state in ZooKeeper and rebuilds its snapshot from it (fine for the cluster sizes pyk targets; a
large cluster would want the controller's requests or per-partition deltas).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import BadVersionError, KazooException, NodeExistsError, NoNodeError, RolledBackError
from kazoo.retry import KazooRetry

from pyk.cluster.placement import Node, elect_leader, place_replicas
from pyk.config import Listener, ServerConfig, parse_listeners
from pyk.errors import ErrorCode, KafkaError
from pyk.server.metadata_store import PRODUCER_ID_BLOCK, check_topic_name
from pyk.server.quotas import CLIENT_KEYS, IP_KEYS
from pyk.server.security.authorizer import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
)

log = logging.getLogger("pyk.cluster")

CLUSTER_ID = "/cluster/id"
BROKER_IDS = "/brokers/ids"
TOPICS = "/brokers/topics"
CONTROLLER = "/controller"
CONTROLLER_EPOCH = "/controller_epoch"
CONFIG_TOPICS = "/config/topics"
CONFIG_BROKERS = "/config/brokers"
CONFIG_USERS = "/config/users"  # SCRAM credentials, as Kafka 2.x keeps them (KIP-554's ZooKeeper form)
CONFIG_CHANGES = "/config/changes"  # config_change_<seq>: a config was written (Kafka 2.x's notifications)
CONFIG_CHANGE = CONFIG_CHANGES + "/config_change_"  # + ZooKeeper's 10-digit sequence
CONFIG_CHANGE_EXPIRATION_S = 15 * 60  # notifications older than this are purged (Kafka's changeExpirationMs)
QUOTA_ROOTS = ("users", "clients", "ips")  # under /config: the client quota entities
PRODUCER_IDS = "/latest_producer_id_block"
CONTROLLED_SHUTDOWN = "/pyk/controlled_shutdown"  # pyk's: children are hosts shutting down (ephemeral)
DEFAULT_BROKER_CONFIG = "<default>"
ACLS = "/kafka-acl"  # LITERAL ACLs (Kafka's ZkAclStore)
PREFIXED_ACLS = "/kafka-acl-extended/prefixed"
ACL_CHANGES = "/kafka-acl-changes"  # a sequential node per change of a LITERAL resource
PREFIXED_ACL_CHANGES = "/kafka-acl-extended-changes"
_ACL_CHANGES_KEPT = 100  # older change notifications are deleted (Kafka expires them after 15 minutes)
# The replication factor of the coordinators' topics, created on first use.
_INTERNAL_REPLICATION = {"__consumer_offsets": "offsets.topic.replication.factor",
                         "__transaction_state": "transaction.state.log.replication.factor"}
_PERSISTENT = (BROKER_IDS, TOPICS, CONFIG_TOPICS, CONFIG_BROKERS, CONFIG_CHANGES,
               *(f"/config/{root}" for root in QUOTA_ROOTS), "/cluster", "/admin/delete_topics",
               "/isr_change_notification", CONTROLLED_SHUTDOWN, ACLS, PREFIXED_ACLS, ACL_CHANGES,
               PREFIXED_ACL_CHANGES)


def topic_path(topic: str) -> str:
    return f"{TOPICS}/{topic}"


def state_path(topic: str, partition: int) -> str:
    return f"{TOPICS}/{topic}/partitions/{partition}/state"


def _dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def kafka_uuid(value: uuid.UUID) -> str:
    """Kafka's text form of a Uuid (topic ids): URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def parse_kafka_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


@dataclass(frozen=True)
class BrokerInfo:
    """One registered node: `/brokers/ids/<id>` (Kafka's version 5 JSON plus pyk's `host_id`,
    the base node id of the pyk host that runs it, which placement needs and Kafka ignores).

    `endpoints` are every advertised listener of the node (name, host, port) with its security
    protocol in `protocols`: clients get the endpoint of the listener they came in on, other
    brokers connect to the inter-broker listener's.  `host`/`port` repeat the first one (Kafka
    writes the PLAINTEXT endpoint's there; pyk's readers use `endpoints`)."""

    node_id: int
    host: str
    port: int
    rack: str | None
    host_id: int
    endpoints: tuple[tuple[str, str, int], ...] = ()
    protocols: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> bytes:
        endpoints = self.endpoints or (("PLAINTEXT", self.host, self.port),)
        protocols = dict(self.protocols) or {"PLAINTEXT": "PLAINTEXT"}
        doc = {"version": 5, "host": self.host, "port": self.port, "jmx_port": -1,
               "timestamp": str(int(time.time() * 1000)),
               "endpoints": [str(Listener(name, host, port)) for name, host, port in endpoints],
               "listener_security_protocol_map": protocols, "features": {}, "rack": self.rack,
               "host_id": self.host_id}
        return _dumps(doc)

    @classmethod
    def from_json(cls, node_id: int, data: bytes) -> BrokerInfo:
        doc = json.loads(data)
        host, port = doc["host"], int(doc["port"])
        endpoints = tuple((e.name, e.host, e.port) for e in parse_listeners(",".join(doc.get("endpoints", []))
                                                                            or f"PLAINTEXT://{host}:{port}"))
        protocols = tuple(sorted(doc.get("listener_security_protocol_map", {}).items()))
        return cls(node_id, host, port, doc.get("rack"), int(doc.get("host_id", node_id)), endpoints, protocols)

    def node(self) -> dict[str, object]:
        """The node as the shards' snapshot carries it: the first endpoint as host/port, and
        every listener's (name -> (host, port))."""
        return {"node_id": self.node_id, "host": self.host, "port": self.port, "rack": self.rack,
                "endpoints": {name: (host, port) for name, host, port in self.endpoints}}


@dataclass
class PartitionState:
    """`/brokers/topics/<t>/partitions/<p>/state` and its ZooKeeper version."""

    leader: int
    leader_epoch: int
    isr: list[int]
    controller_epoch: int
    version: int = -1

    def to_json(self) -> bytes:
        return _dumps({"controller_epoch": self.controller_epoch, "leader": self.leader, "version": 1,
                       "leader_epoch": self.leader_epoch, "isr": self.isr})

    @classmethod
    def from_json(cls, data: bytes, version: int) -> PartitionState:
        doc = json.loads(data)
        return cls(int(doc["leader"]), int(doc["leader_epoch"]), [int(r) for r in doc["isr"]],
                   int(doc["controller_epoch"]), version)


@dataclass
class Topic:
    """`/brokers/topics/<t>` (version 3: topic id and assignment), its partitions' states and
    its config overrides.

    A partition being reassigned (KIP-455) has `adding` / `removing` replicas: its `replicas`
    are then the union of the target and the origin (target first), the target is `replicas`
    less `removing`, the origin `replicas` less `adding` (Kafka's ReplicaAssignment)."""

    name: str
    topic_id: uuid.UUID
    replicas: list[list[int]]
    version: int
    states: list[PartitionState | None]
    configs: dict[str, str]
    adding: dict[int, list[int]] = field(default_factory=dict)
    removing: dict[int, list[int]] = field(default_factory=dict)

    def assignment_json(self) -> bytes:
        return _dumps({"version": 3, "topic_id": kafka_uuid(self.topic_id),
                       "partitions": {str(p): r for p, r in enumerate(self.replicas)},
                       "adding_replicas": {str(p): r for p, r in sorted(self.adding.items())},
                       "removing_replicas": {str(p): r for p, r in sorted(self.removing.items())}})

    def reassigning(self, partition: int) -> bool:
        return partition in self.adding or partition in self.removing

    def origin(self, partition: int) -> list[int]:
        adding = self.adding.get(partition, [])
        return [r for r in self.replicas[partition] if r not in adding]

    def target(self, partition: int) -> list[int]:
        removing = self.removing.get(partition, [])
        return [r for r in self.replicas[partition] if r not in removing]

    def reassign_to(self, partition: int, target: list[int]) -> None:
        """Kafka's ReplicaAssignment.reassignTo: the replicas become target + origin (each
        once); adding = those not in the origin, removing = those not in the target.  A target
        equal to the origin (a cancel) leaves no reassignment."""
        origin = self.origin(partition)
        full = list(dict.fromkeys(target + origin))
        self.replicas[partition] = full
        adding = [r for r in full if r not in origin]
        removing = [r for r in full if r not in target]
        for changes, members in ((self.adding, adding), (self.removing, removing)):
            if members:
                changes[partition] = members
            else:
                changes.pop(partition, None)

    def finish_reassignment(self, partition: int) -> None:
        """The target replicas are the assignment now."""
        self.replicas[partition] = self.target(partition)
        self.adding.pop(partition, None)
        self.removing.pop(partition, None)


def _config_json(configs: dict[str, str]) -> bytes:
    return _dumps({"version": 1, "config": configs})


def _camel(name: str) -> str:
    """An enum name as Kafka's ZooKeeper JSON spells it: TRANSACTIONAL_ID -> TransactionalId."""
    return "".join(word.capitalize() for word in name.split("_"))


def acl_path(binding: AclBinding) -> str:
    root = ACLS if binding.pattern_type == PatternType.LITERAL else PREFIXED_ACLS
    return f"{root}/{_camel(binding.resource_type.name)}/{binding.name}"


def acl_entry_json(binding: AclBinding) -> dict[str, str]:
    """One entry of an ACL node's `acls` list (Kafka's AclEntry JSON)."""
    return {"principal": binding.principal, "permissionType": _camel(binding.permission.name),
            "operation": _camel(binding.operation.name), "host": binding.host}


def _acl_changes(root: str, resource: str) -> tuple[str, bytes]:
    """The change notification of one resource pattern: Kafka's literal form `Topic:name`, or
    the extended JSON."""
    rtype, _, name = resource.partition("/")
    if root == ACLS:
        return ACL_CHANGES, f"{rtype}:{name}".encode()
    return PREFIXED_ACL_CHANGES, _dumps({"version": 1, "resourceType": rtype, "name": name, "patternType": "Prefixed"})


_RESOURCE_TYPES = {_camel(t.name): t for t in ResourceType}
_OPERATIONS = {_camel(o.name): o for o in AclOperation}
_PERMISSIONS = {_camel(p.name): p for p in AclPermissionType}


def _scram_text(credential: dict[str, Any]) -> str:
    """Kafka's ScramCredentialUtils form: salt=..,stored_key=..,server_key=..,iterations=N (base64)."""
    return (f"salt={credential['salt']},stored_key={credential['stored_key']},server_key={credential['server_key']},"
            f"iterations={credential['iterations']}")


def _scram_doc(text: str) -> dict[str, Any]:
    fields = dict(item.split("=", 1) for item in text.split(","))
    return {"salt": fields["salt"], "stored_key": fields["stored_key"], "server_key": fields["server_key"],
            "iterations": int(fields["iterations"])}


class ZkCluster:
    """A host's session and view of the cluster (see module docstring).  `nodes` are the host's
    shards; `notify` is called (from kazoo's thread) whenever the state may have changed."""

    def __init__(self, config: ServerConfig, nodes: list[BrokerInfo], notify: Callable[[], None]) -> None:
        self.config = config
        self.nodes = nodes
        self.host_id = nodes[0].host_id
        self._notify = notify
        session_s = config["zookeeper.session.timeout.ms"] / 1000
        self.zk = KazooClient(hosts=config["zookeeper.connect"], timeout=session_s,
                              connection_retry=KazooRetry(max_tries=-1, max_delay=1.0),
                              command_retry=KazooRetry(max_tries=3, max_delay=1.0))
        self.zk.add_listener(self._on_state)
        self.cluster_id = ""
        self.serving = False  # set once every shard listens: only then are the nodes registered
        self._lock = threading.Lock()  # flags shared with kazoo's thread
        self._fenced = False  # the session expired; no leadership until registered again
        self._registered = False
        self._controller_epoch: int | None = None  # set while this host is the controller
        self._controller_epoch_version = -1
        self.controller_id = -1
        self.brokers: dict[int, BrokerInfo] = {}
        self.shutting_down: set[int] = set()  # hosts in a controlled shutdown
        self.topics: dict[str, Topic] = {}
        self.broker_configs: dict[str, dict[str, str]] = {}
        self.acls: list[list[object]] = []  # AclBinding.to_doc of every ACL, sorted
        self._acl_changes: tuple[list[str], list[str]] | None = None  # the notifications the ACLs were read at
        self.scram: dict[str, dict[str, dict[str, Any]]] = {}  # user -> mechanism -> credential (MetadataStore's form)
        self.client_quotas: dict[str, dict[str, float]] = {}  # as MetadataStore.client_quotas
        self._last_change: str | None = None  # the newest /config/changes node when quotas were read
        self._producer_ids = (0, 0)  # [next, end) of this host's current block
        self._snapshot: dict[str, Any] = {}

    # Session ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Connects, creates the persistent paths and the cluster id, reads the state."""
        timeout_ms = self.config["zookeeper.connection.timeout.ms"] or self.config["zookeeper.session.timeout.ms"]
        servers, _, chroot = self.config["zookeeper.connect"].partition("/")
        if chroot:
            _ensure_chroot(servers, "/" + chroot, timeout_ms / 1000)
        self.zk.start(timeout=timeout_ms / 1000)
        for path in _PERSISTENT:
            self.zk.ensure_path(path)
        try:
            self.zk.create(CONTROLLER_EPOCH, b"0")
        except NodeExistsError:
            pass
        wanted = self.config["cluster.id"] or _new_cluster_id()
        try:
            self.zk.create(CLUSTER_ID, _dumps({"version": "1", "id": wanted}))
        except NodeExistsError:
            pass
        self.cluster_id = json.loads(self.zk.get(CLUSTER_ID)[0])["id"]
        if self.config["cluster.id"] and self.config["cluster.id"] != self.cluster_id:
            raise ValueError(f"cluster.id {self.config['cluster.id']} does not match {self.cluster_id} in ZooKeeper")
        self.refresh()

    def close(self) -> None:
        """Ends the session: the host's registrations (and /controller, if it held it) vanish at
        once, so the controller reacts without waiting for the session timeout."""
        self.zk.stop()
        self.zk.close()

    def _on_state(self, state: str) -> None:
        with self._lock:
            if state == KazooState.LOST:
                log.error("ZooKeeper session lost: host %d stops leading until it registers again", self.host_id)
                self._fenced = True
                self._registered = False
                self._resign("its ZooKeeper session expired")
        self._notify()

    def _resign(self, why: str) -> None:
        """Stops acting as controller (called with `_lock` held)."""
        if self._controller_epoch is not None:
            log.warning("host %d is no longer the controller (controller epoch %d): %s", self.host_id,
                        self._controller_epoch, why)
            self._controller_epoch = None

    def _watch(self, _event: object) -> None:
        self._notify()

    def _register(self) -> None:
        """The host's nodes as ephemeral registrations; waits out the ones a previous session
        of this host left (a restart inside the session timeout), as Kafka does."""
        deadline = time.monotonic() + self.config["zookeeper.session.timeout.ms"] / 1000 + 5
        session = self.zk.client_id[0] if self.zk.client_id else None
        for node in self.nodes:
            path = f"{BROKER_IDS}/{node.node_id}"
            while True:
                try:
                    self.zk.create(path, node.to_json(), ephemeral=True)
                    break
                except NodeExistsError:
                    stat = self.zk.exists(path)
                    if stat is not None and stat.ephemeralOwner == session:
                        break
                    if time.monotonic() > deadline:
                        raise KafkaError(ErrorCode.BROKER_NOT_AVAILABLE,
                                         f"node {node.node_id} is registered by another session") from None
                    time.sleep(0.5)
        log.info("registered nodes %s in ZooKeeper", [n.node_id for n in self.nodes])

    # State --------------------------------------------------------------------------------------
    def refresh(self) -> dict[str, Any]:
        """Registers and elects as needed, reads the state, acts as controller if elected;
        returns the snapshot for the shards."""
        with self._lock:
            fenced = self._fenced
        if fenced and self.zk.connected and self.serving:
            with self._lock:
                self._fenced = False
            fenced = False
        if not fenced and self.serving and not self._registered:
            self._register()
            self._registered = True
        self._read()
        if self._controller_epoch is not None and self.controller_id != self.host_id:
            with self._lock:  # /controller is another host's: this one was deposed
                self._resign("/controller is gone" if self.controller_id < 0 else
                             f"/controller names host {self.controller_id}")
        if self.serving and not fenced:
            if self.controller_id < 0:
                self._elect()
                self._read()
            if self._controller_epoch is not None and self.controller_id == self.host_id and self._control():
                self._read()
        self._snapshot = self._build_snapshot(fenced)
        return self._snapshot

    def snapshot(self) -> dict[str, Any]:
        return self._snapshot

    # Metrics: read on the orchestrator's loop, from the snapshot the ZooKeeper thread replaces whole.
    def is_active_controller(self) -> bool:
        """Kafka's ActiveControllerCount (1 on the controller)."""
        return self._controller_epoch is not None and self._snapshot.get("controller_id") == self.host_id

    def offline_partitions(self) -> int:
        """Kafka's OfflinePartitionsCount: partitions whose leader is no live node (none
        elected, or its node gone), as the controller reports it; 0 on the other hosts."""
        if not self.is_active_controller():
            return 0
        live = {b["node_id"] for b in self._snapshot["brokers"]}
        return sum(version >= 0 and leader not in live  # version -1: no state written yet (a new partition)
                   for t in self._snapshot["topics"].values()
                   for leader, version in zip(t["leaders"], t["versions"], strict=True))

    def _read(self) -> None:
        zk, watch = self.zk, self._watch
        self.brokers = {}
        for child in zk.get_children(BROKER_IDS, watch=watch):
            try:
                self.brokers[int(child)] = BrokerInfo.from_json(int(child), zk.get(f"{BROKER_IDS}/{child}")[0])
            except NoNodeError:
                continue
        self.shutting_down = {int(child) for child in zk.get_children(CONTROLLED_SHUTDOWN, watch=watch)}
        self.controller_id = -1
        if zk.exists(CONTROLLER, watch=watch) is not None:
            try:
                self.controller_id = int(json.loads(zk.get(CONTROLLER)[0])["brokerid"])
            except NoNodeError:
                pass
        topics = {}
        for name in zk.get_children(TOPICS, watch=watch):
            try:
                data, stat = zk.get(topic_path(name), watch=watch)
            except NoNodeError:
                continue
            doc = json.loads(data)
            replicas = [[int(r) for r in doc["partitions"][str(p)]] for p in range(len(doc["partitions"]))]
            states: list[PartitionState | None] = []
            for p in range(len(replicas)):
                if zk.exists(state_path(name, p), watch=watch) is None:
                    states.append(None)
                    continue
                try:
                    sdata, sstat = zk.get(state_path(name, p), watch=watch)
                    states.append(PartitionState.from_json(sdata, sstat.version))
                except NoNodeError:
                    states.append(None)
            configs: dict[str, str] = {}
            if zk.exists(f"{CONFIG_TOPICS}/{name}", watch=watch) is not None:
                configs = json.loads(zk.get(f"{CONFIG_TOPICS}/{name}")[0])["config"]
            topic_id = parse_kafka_uuid(doc["topic_id"]) if "topic_id" in doc else uuid.uuid5(uuid.NAMESPACE_URL, name)
            moving = [{int(p): [int(r) for r in rs] for p, rs in (doc.get(key) or {}).items() if rs}
                      for key in ("adding_replicas", "removing_replicas")]
            topics[name] = Topic(name, topic_id, replicas, stat.version, states, configs, *moving)
        self.topics = topics
        self.broker_configs = {}
        for child in zk.get_children(CONFIG_BROKERS, watch=watch):
            data = zk.get(f"{CONFIG_BROKERS}/{child}", watch=watch)[0]
            self.broker_configs["" if child == DEFAULT_BROKER_CONFIG else child] = json.loads(data)["config"]
        self.scram = {}
        for child in zk.get_children(CONFIG_USERS, watch=watch):
            try:
                data = zk.get(f"{CONFIG_USERS}/{child}", watch=watch)[0]
            except NoNodeError:
                continue
            configs = json.loads(data)["config"] if data else {}  # empty: only the parent of user/client quotas
            creds = {m: _scram_doc(text) for m, text in configs.items() if m.startswith("SCRAM-")}
            if creds:
                self.scram[urllib.parse.unquote(child)] = creds
        changes = (sorted(zk.get_children(ACL_CHANGES, watch=watch)),
                   sorted(zk.get_children(PREFIXED_ACL_CHANGES, watch=watch)))
        if changes != self._acl_changes:
            self.acls = self._read_acls()
            self._acl_changes = changes
        # A new notification: every config is read again (above), the quotas when it is new.
        newest = max(zk.get_children(CONFIG_CHANGES, watch=watch), default="")
        if newest != self._last_change:
            self.client_quotas = self._read_quotas()
            self._last_change = newest

    def _read_acls(self) -> list[list[object]]:
        """Every ACL node, as the authorizer's bindings (read after a change notification)."""
        found: list[AclBinding] = []
        for root, pattern in ((ACLS, PatternType.LITERAL), (PREFIXED_ACLS, PatternType.PREFIXED)):
            for rtype in self.zk.get_children(root):
                if rtype not in _RESOURCE_TYPES:
                    continue
                for name in self.zk.get_children(f"{root}/{rtype}"):
                    try:
                        data = self.zk.get(f"{root}/{rtype}/{name}")[0]
                    except NoNodeError:
                        continue
                    for e in json.loads(data)["acls"] if data else []:
                        found.append(AclBinding(_RESOURCE_TYPES[rtype], name, pattern, e["principal"], e["host"],
                                                _OPERATIONS[e["operation"]], _PERMISSIONS[e["permissionType"]]))
        return [b.to_doc() for b in sorted(set(found))]

    def _read_quotas(self) -> dict[str, dict[str, float]]:
        """Every client quota entity's quota keys, by entity path (Kafka 2.x's /config/users/<u>,
        /config/users/<u>/clients/<c>, /config/clients/<c>, /config/ips/<ip>; a user's node also
        holds its SCRAM credentials in Kafka, which are not quotas and left out)."""
        out: dict[str, dict[str, float]] = {}
        paths = []
        for root in QUOTA_ROOTS:
            for child in self.zk.get_children(f"/config/{root}"):
                paths.append(f"{root}/{child}")
                if root == "users" and self.zk.exists(f"/config/users/{child}/clients") is not None:
                    paths += [f"users/{child}/clients/{c}" for c in self.zk.get_children(f"/config/users/{child}/clients")]
        for path in paths:
            try:
                data = self.zk.get(f"/config/{path}")[0]
            except NoNodeError:
                continue
            configs = json.loads(data)["config"] if data else {}
            values = {k: float(v) for k, v in configs.items() if k in CLIENT_KEYS or k in IP_KEYS}
            if values:
                out[path] = values
        return out

    def _build_snapshot(self, fenced: bool) -> dict[str, Any]:
        topics = {}
        for t in self.topics.values():
            states = [s or PartitionState(-1, 0, [], 0) for s in t.states]
            topics[t.name] = {
                "id": str(t.topic_id), "partitions": len(t.replicas), "configs": t.configs, "placement": [],
                "epochs": [s.leader_epoch for s in states], "replicas": t.replicas,
                # fenced: this host must not act on any leadership (pyk.server.broker follows)
                "leaders": [-1 if fenced else s.leader for s in states],
                "isr": [s.isr for s in states], "versions": [s.version for s in states],
                "adding": [t.adding.get(p, []) for p in range(len(t.replicas))],
                "removing": [t.removing.get(p, []) for p in range(len(t.replicas))],
            }
        return {"cluster_id": self.cluster_id, "topics": topics, "broker_configs": self.broker_configs,
                "acls": self.acls, "client_quotas": self.client_quotas,
                "brokers": [b.node() for _, b in sorted(self.brokers.items())],
                "controller_id": self.controller_id, "scram": self.scram,
                # In a controlled shutdown the host's followers stop fetching (Kafka's
                # StopReplica), so leaders do not take them back into the ISRs.
                "stopping": self.host_id in self.shutting_down}

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    # Controller ---------------------------------------------------------------------------------
    def _elect(self) -> None:
        """Tries to become the controller (Kafka's KafkaController.elect)."""
        try:
            self.zk.create(CONTROLLER, _dumps({"version": 1, "brokerid": self.host_id,
                                               "timestamp": str(int(time.time() * 1000))}), ephemeral=True)
        except NodeExistsError:
            return
        data, stat = self.zk.get(CONTROLLER_EPOCH)
        epoch = int(data or b"0") + 1
        new = self.zk.set(CONTROLLER_EPOCH, str(epoch).encode(), version=stat.version)
        with self._lock:
            self._controller_epoch, self._controller_epoch_version = epoch, new.version
        log.info("host %d is the controller (controller epoch %d)", self.host_id, epoch)

    def _control(self) -> bool:
        """The controller's duties on the current state: a new leader from the ISR for every
        partition whose leader is gone (leader epoch + 1), dead followers out of the ISR,
        reassignments whose target replicas are all in sync completed.  Every write is
        conditional on the controller epoch and the state's version."""
        live = set(self.brokers)
        eligible = self._eligible(live)
        unclean_default = self.config.with_dynamic(self.broker_configs.get("", {}), {})["unclean.leader.election.enable"]
        changed = False
        for topic in self.topics.values():
            unclean = topic.configs.get("unclean.leader.election.enable", str(unclean_default)).lower() == "true"
            finished: dict[int, tuple[PartitionState, int]] = {}  # moves to complete: new state, old version
            for p, state in enumerate(topic.states):
                if state is None:
                    continue
                new: PartitionState | None = None
                if state.leader not in live:
                    leader, isr, was_unclean = elect_leader(topic.replicas[p], state.isr, self._eligible(live), unclean)
                    if leader < 0:
                        leader, isr, was_unclean = elect_leader(topic.replicas[p], state.isr, live, unclean)
                    if leader < 0 and state.leader < 0:
                        continue  # still offline
                    if was_unclean:
                        log.warning("unclean leader election for %s-%d: node %d leads although it was not in the "
                                    "ISR %s; records the old leader had acknowledged may be lost",
                                    topic.name, p, leader, state.isr)
                    new = PartitionState(leader, state.leader_epoch + 1, isr, self._controller_epoch or 0)
                    log.info("%s-%d: leader %d -> %d (leader epoch %d), isr %s", topic.name, p, state.leader,
                             leader, new.leader_epoch, isr)
                elif self._leader_shutting_down(state.leader):
                    new = self._move_for_shutdown(topic.name, p, state, live)
                if new is None and state.leader in live:
                    # Dead followers leave the ISR, and so do those of a host in a controlled
                    # shutdown (Kafka's controller takes them out before the host stops).
                    isr = [r for r in state.isr if r == state.leader or r in eligible]
                    if isr != state.isr:
                        new = PartitionState(state.leader, state.leader_epoch, isr, self._controller_epoch or 0)
                        log.info("%s-%d: isr %s -> %s (leader %d)", topic.name, p, state.isr, isr, state.leader)
                if new is None and topic.reassigning(p):
                    done = self._reassigned_state(topic, p, state, live)
                    if done is not None:
                        finished[p] = (done, state.version)
                if new is not None:
                    changed |= self._controller_write(state_path(topic.name, p), new.to_json(), state.version)
            if finished:
                changed |= self._finish_reassignments(topic, finished)
        return changed

    # Partition reassignment (KIP-455) ---------------------------------------------------------
    def _is_controller(self) -> bool:
        return self._controller_epoch is not None and self.controller_id == self.host_id

    def _reassigned_state(self, topic: Topic, p: int, state: PartitionState,
                          live: set[int]) -> PartitionState | None:
        """The state that completes a reassignment whose target replicas are all in the ISR
        (Kafka's isReassignmentComplete), else None: the ISR keeps only target replicas, and a
        leader leaving the replicas hands over to the first live in-sync target replica
        (leader epoch + 1, Kafka's reassignPartitionLeaderElection)."""
        target = topic.target(p)
        if not all(r in state.isr for r in target):
            return None
        isr = [r for r in state.isr if r in target]
        epoch = self._controller_epoch or 0
        if state.leader in target:
            return PartitionState(state.leader, state.leader_epoch, isr, epoch)
        eligible = self._eligible(live)
        leader = next((r for r in target if r in eligible), next((r for r in target if r in live), -1))
        if leader < 0:
            return None
        log.info("%s-%d: reassignment moves the leader %d -> %d (leader epoch %d)", topic.name, p, state.leader,
                 leader, state.leader_epoch + 1)
        return PartitionState(leader, state.leader_epoch + 1, isr, epoch)

    def _finish_reassignments(self, topic: Topic, finished: dict[int, tuple[PartitionState, int]]) -> bool:
        """The assignment becomes the target and the states above are written, in one multi-op:
        the removed replicas see themselves gone from the replicas, stop and delete their logs."""
        done = replace(topic, replicas=[list(r) for r in topic.replicas], adding=dict(topic.adding),
                       removing=dict(topic.removing))
        writes = []
        for p, (state, version) in finished.items():
            done.finish_reassignment(p)
            writes.append((state_path(topic.name, p), state.to_json(), version))
        if not self._controller_commit([(topic_path(topic.name), done.assignment_json(), topic.version), *writes]):
            return False
        for p, (state, _) in finished.items():
            log.info("%s-%d: reassignment complete: replicas %s, leader %d, isr %s", topic.name, p, done.replicas[p],
                     state.leader, state.isr)
        return True

    def _op_alter_partition_reassignments(self, reassignments: list[list[Any]],
                                          allow_replication_factor_change: bool = True
                                          ) -> list[tuple[str, int, int, str | None]]:
        """AlterPartitionReassignments on the controller (Kafka's onApiPartitionReassignment):
        each partition's new target (None: cancel, back to the origin) is validated and written
        into its topic's assignment (adding / removing replicas); the controller completes each
        move once its target replicas are in sync (`_control`).  NOT_CONTROLLER on another host."""
        if not self._is_controller():
            raise KafkaError(ErrorCode.NOT_CONTROLLER, f"host {self.host_id} is not the controller "
                             f"(node {self.controller_id} is)")
        live = set(self.brokers)
        results: list[tuple[str, int, int, str | None]] = []
        changed: dict[str, Topic] = {}
        for name, p, target in reassignments:
            topic = changed.get(name) or self.topics.get(name)
            if topic is None or not 0 <= p < len(topic.replicas) or topic.states[p] is None:
                results.append((name, p, int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
                                "The partition does not exist."))
                continue
            error = self._check_reassignment(topic, p, target, live, allow_replication_factor_change)
            if error is not None:
                results.append((name, p, int(error.code), error.message))
                continue
            if name not in changed:
                topic = changed[name] = replace(topic, replicas=[list(r) for r in topic.replicas],
                                                adding=dict(topic.adding), removing=dict(topic.removing))
            topic.reassign_to(p, topic.origin(p) if target is None else [int(r) for r in target])
            log.info("%s-%d: reassignment %s: replicas %s, adding %s, removing %s", name, p,
                     "cancelled" if target is None else f"to {target}", topic.replicas[p], topic.adding.get(p, []),
                     topic.removing.get(p, []))
            results.append((name, p, int(ErrorCode.NONE), None))
        for name, topic in changed.items():
            if not self._controller_commit([(topic_path(name), topic.assignment_json(), topic.version)]):
                code = ErrorCode.NOT_CONTROLLER if not self._is_controller() else ErrorCode.REQUEST_TIMED_OUT
                results = [(t, p, int(code), f"the assignment of {name} changed meanwhile; try again")
                           if t == name and c == ErrorCode.NONE else (t, p, c, m) for t, p, c, m in results]
        return results

    @staticmethod
    def _check_reassignment(topic: Topic, p: int, target: list[int] | None, live: set[int],
                            allow_rf_change: bool) -> KafkaError | None:
        """Kafka's validateReplicas (and KIP-860's replication factor check)."""
        if target is None:
            if not topic.reassigning(p):
                return KafkaError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
                                  f"no reassignment of {topic.name}-{p} is in progress")
            return None
        if not target:
            return KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "Empty replica list specified in partition "
                              "reassignment.")
        if len(set(target)) != len(target):
            return KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Duplicate replica ids in partition "
                              f"reassignment replica list: {target}")
        if any(r < 0 for r in target):
            return KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Invalid broker id in replica list: {target}")
        origin = topic.origin(p)
        if not allow_rf_change and len(target) != len(origin):
            return KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, f"The replication factor is changed from "
                              f"{len(origin)} to {len(target)}")
        added = [r for r in target if r not in origin]
        if any(r not in live for r in added):
            return KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Replica assignment has brokers that are not "
                              f"alive. Replica list: {added}, live broker list: {sorted(live)}")
        return None

    # Controlled shutdown -------------------------------------------------------------------------
    def _host_of(self, node_id: int) -> int:
        info = self.brokers.get(node_id)
        return info.host_id if info is not None else -1

    def _leader_shutting_down(self, leader: int) -> bool:
        return bool(self.shutting_down) and self._host_of(leader) in self.shutting_down

    def _eligible(self, live: set[int]) -> set[int]:
        """The live nodes that may take a leadership (not on a host shutting down)."""
        return {n for n in live if self._host_of(n) not in self.shutting_down}

    def _move_for_shutdown(self, topic: str, partition: int, state: PartitionState,
                           live: set[int]) -> PartitionState | None:
        """Kafka's ControlledShutdownLeaderSelector: another live in-sync replica leads (leader
        epoch + 1) and the ISR keeps only replicas of hosts not shutting down; none: the leader
        stays (the partition goes offline when the host stops)."""
        others = [r for r in state.isr if r in self._eligible(live)]
        if not others:
            return None
        log.info("%s-%d: controlled shutdown of host %d moves the leader %d -> %d (leader epoch %d), isr %s", topic,
                 partition, self._host_of(state.leader), state.leader, others[0], state.leader_epoch + 1, others)
        return PartitionState(others[0], state.leader_epoch + 1, others, self._controller_epoch or 0)

    @property
    def connected(self) -> bool:
        return bool(self.zk.connected)

    def begin_controlled_shutdown(self) -> None:
        """Announces this host's controlled shutdown to the controller (an ephemeral node, gone
        with the session)."""
        try:
            self.zk.create(f"{CONTROLLED_SHUTDOWN}/{self.host_id}", b"", ephemeral=True)
        except NodeExistsError:
            pass

    def partitions_to_release(self) -> int:
        """Partitions still led by this host or listing it in their ISR although another live,
        eligible replica is in sync (what the controlled shutdown waits for)."""
        self._read()
        live = set(self.brokers)
        eligible = self._eligible(live)
        mine = {n.node_id for n in self.nodes}
        return sum(1 for t in self.topics.values() for s in t.states
                   if s is not None and any(r in mine for r in s.isr) and any(r in eligible for r in s.isr))

    # Leader elections on request (ElectLeaders) and preferred-leader rebalance -------------------
    def _op_elect_leaders(self, election_type: int,
                          partitions: list[list[Any]] | None) -> list[tuple[str, int, int, str | None]]:
        """ElectLeaders on the controller, as Kafka's: each new state carries this controller's
        epoch and is written conditionally on it and on the state's version, so neither a deposed
        controller nor a state changed meanwhile is overwritten.  Another host answers each named
        partition NOT_CONTROLLER (Kafka 2.x's KafkaController); asked for every partition, it
        fails the request with NOT_CONTROLLER instead of Kafka's empty answer."""
        if not self._is_controller():
            if partitions is None:
                raise KafkaError(ErrorCode.NOT_CONTROLLER, f"host {self.host_id} is not the controller "
                                 f"(node {self.controller_id} is)")
            return [(str(t), int(p), int(ErrorCode.NOT_CONTROLLER), None) for t, p in partitions]
        wanted = [(str(t), int(p)) for t, p in partitions] if partitions is not None else \
            [(t.name, p) for t in self.topics.values() for p in range(len(t.replicas))]
        live = set(self.brokers)
        results: list[tuple[str, int, int, str | None]] = []
        for name, p in wanted:
            topic = self.topics.get(name)
            state = topic.states[p] if topic is not None and 0 <= p < len(topic.states) else None
            if topic is None or state is None:
                results.append((name, p, int(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), None))
                continue
            code, new = (self._preferred_election if election_type == 0 else self._unclean_election)(
                topic, p, state, live)
            if new is not None:
                if self._controller_write(state_path(name, p), new.to_json(), state.version):
                    log.info("%s-%d: %s election: leader %d -> %d (leader epoch %d, controller epoch %d)", name, p,
                             "preferred" if election_type == 0 else "unclean", state.leader, new.leader,
                             new.leader_epoch, new.controller_epoch)
                elif not self._is_controller():
                    code = ErrorCode.NOT_CONTROLLER
                else:
                    code = ErrorCode.ELECTION_NOT_NEEDED if election_type == 0 else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
            results.append((name, p, int(code), None if code == ErrorCode.NONE else code.name))
        return results

    def _preferred_election(self, topic: Topic, p: int, state: PartitionState,
                            live: set[int]) -> tuple[ErrorCode, PartitionState | None]:
        preferred = topic.replicas[p][0]
        if state.leader == preferred:
            return ErrorCode.ELECTION_NOT_NEEDED, None
        if preferred not in live or preferred not in state.isr or self._host_of(preferred) in self.shutting_down:
            return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, None
        return ErrorCode.NONE, PartitionState(preferred, state.leader_epoch + 1, state.isr, self._controller_epoch or 0)

    def _unclean_election(self, topic: Topic, p: int, state: PartitionState,
                          live: set[int]) -> tuple[ErrorCode, PartitionState | None]:
        if state.leader in live:
            return ErrorCode.ELECTION_NOT_NEEDED, None
        leader, isr, was_unclean = elect_leader(topic.replicas[p], state.isr, live, True)
        if leader < 0:
            return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, None
        if was_unclean:
            log.warning("unclean leader election (ElectLeaders) for %s-%d: node %d leads although it was not in "
                        "the ISR %s; records the old leader had acknowledged may be lost", topic.name, p, leader,
                        state.isr)
        return ErrorCode.NONE, PartitionState(leader, state.leader_epoch + 1, isr, self._controller_epoch or 0)

    def rebalance_leaders(self) -> None:
        """auto.leader.rebalance.enable, on the controller: a node leading fewer of the
        partitions it is the preferred replica of than leader.imbalance.per.broker.percentage
        allows gets them back (where it is in sync), as Kafka's checkAndTriggerAutoLeaderRebalance."""
        if self._controller_epoch is None or self.controller_id != self.host_id:
            return
        self._read()
        live = set(self.brokers)
        allowed = self.config["leader.imbalance.per.broker.percentage"] / 100
        preferred_of: dict[int, list[tuple[Topic, int, PartitionState]]] = {}
        for topic in self.topics.values():
            for p, state in enumerate(topic.states):
                if state is not None and topic.replicas[p] and not topic.reassigning(p):
                    preferred_of.setdefault(topic.replicas[p][0], []).append((topic, p, state))
        for node, owned in preferred_of.items():
            off = [(t, p, s) for t, p, s in owned if s.leader != node]
            if node not in live or not off or len(off) / len(owned) <= allowed:
                continue
            for topic, p, state in off:
                code, new = self._preferred_election(topic, p, state, live)
                if new is not None and code == ErrorCode.NONE:
                    if self._controller_write(state_path(topic.name, p), new.to_json(), state.version):
                        log.info("%s-%d: leader rebalance back to the preferred replica %d (leader epoch %d)",
                                 topic.name, p, node, new.leader_epoch)

    def _controller_write(self, path: str, data: bytes, version: int) -> bool:
        return self._controller_commit([(path, data, version)])

    def _controller_commit(self, writes: list[tuple[str, bytes, int]]) -> bool:
        """Sets every node at its version in one multi-op conditional on the controller epoch;
        False if any version changed meanwhile (nothing written)."""
        txn = self.zk.transaction()
        txn.check(CONTROLLER_EPOCH, self._controller_epoch_version)
        for path, data, version in writes:
            txn.set_data(path, data, version=version)
        results = txn.commit()
        # A failed multi-op reports RolledBackError for the operations that were not at fault.
        if isinstance(results[0], Exception) and not isinstance(results[0], RolledBackError):
            with self._lock:
                self._resign("/controller_epoch moved on (another host was elected); its write was refused")
            return False
        return not any(isinstance(r, Exception) for r in results)

    # Changes from the shards ----------------------------------------------------------------------
    def apply(self, op: str, args: dict[str, Any]) -> Any:
        """One metadata change asked for by a shard (the ops of the single-host store, plus
        alter_isr); the state is read again after it."""
        with self._lock:
            if self._fenced:
                raise KafkaError(ErrorCode.NOT_CONTROLLER, "this host lost its ZooKeeper session")
        handler = getattr(self, "_op_" + op, None)
        if handler is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"unknown control operation {op!r}")
        try:
            result = handler(**args)
            self.refresh()
        except KazooException as exc:  # connection lost or session expired meanwhile: retriable
            self._notify()
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, f"ZooKeeper did not answer ({type(exc).__name__}); "
                             f"{op} may or may not have been applied") from None
        return result

    def _live_nodes(self) -> list[Node]:
        return [Node(b.node_id, b.host_id, b.rack) for b in self.brokers.values()]

    def _initial_states(self, assignment: list[list[int]]) -> list[PartitionState]:
        live = set(self.brokers)
        epoch = int(self.zk.get(CONTROLLER_EPOCH)[0] or b"0")
        states = []
        for replicas in assignment:
            isr = [r for r in replicas if r in live]
            states.append(PartitionState(isr[0] if isr else -1, 0, isr or list(replicas), epoch))
        return states

    def _assignment(self, name: str, count: int, first: int, replication_factor: int | None,
                    assignment: list[list[int]] | None) -> list[list[int]]:
        if assignment is not None:
            return assignment
        rf = replication_factor if replication_factor is not None and replication_factor > 0 \
            else self.config[_INTERNAL_REPLICATION.get(name, "default.replication.factor")]
        placed = sum(len(t.replicas) for t in self.topics.values())
        return place_replicas(count, rf, self._live_nodes(), placed + first)

    def _op_create_topic(self, name: str, partitions: int, configs: dict[str, str], placement: list[int] | None = None,
                         replication_factor: int | None = None, assignment: list[list[int]] | None = None) -> dict[str, object]:
        check_topic_name(name)
        if self.zk.exists(topic_path(name)) is not None:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        replicas = self._assignment(name, partitions, 0, replication_factor, assignment)
        topic = Topic(name, uuid.uuid4(), replicas, 0, [], dict(configs))
        txn = self.zk.transaction()
        txn.create(f"{CONFIG_TOPICS}/{name}", _config_json(configs))
        txn.create(topic_path(name), topic.assignment_json())
        txn.create(f"{topic_path(name)}/partitions")
        self._create_states(txn, name, 0, self._initial_states(replicas))
        results = txn.commit()
        if any(isinstance(r, NodeExistsError) for r in results):
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        _raise_first(results)
        log.info("created topic %s: assignment %s", name, replicas)
        return {"id": str(topic.topic_id), "replicas": replicas}

    @staticmethod
    def _create_states(txn: Any, name: str, first: int, states: list[PartitionState]) -> None:
        for p, state in enumerate(states, first):
            txn.create(f"{topic_path(name)}/partitions/{p}")
            txn.create(state_path(name, p), state.to_json())

    def _op_delete_topic(self, name: str) -> dict[str, object]:
        topic = self.topics.get(name)
        if topic is None or self.zk.exists(topic_path(name)) is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        self.zk.delete(topic_path(name), recursive=True)
        try:
            self.zk.delete(f"{CONFIG_TOPICS}/{name}")
        except NoNodeError:
            pass
        return {"id": str(topic.topic_id)}

    def _op_create_partitions(self, name: str, count: int, placement: list[int] | None = None,
                              assignment: list[list[int]] | None = None) -> None:
        topic = self.topics.get(name)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        if topic.adding or topic.removing:
            raise KafkaError(ErrorCode.REASSIGNMENT_IN_PROGRESS, f"a reassignment of {name} is in progress")
        first = len(topic.replicas)
        added = self._assignment(name, count - first, first, len(topic.replicas[0]), assignment)
        grown = Topic(name, topic.topic_id, topic.replicas + added, topic.version, [], topic.configs)
        txn = self.zk.transaction()
        txn.set_data(topic_path(name), grown.assignment_json(), version=topic.version)
        self._create_states(txn, name, first, self._initial_states(added))
        _raise_first(txn.commit())

    def _op_set_configs(self, name: str, configs: dict[str, str]) -> None:
        if name not in self.topics:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {name!r} does not exist")
        self._put(f"{CONFIG_TOPICS}/{name}", _config_json(configs))
        self._config_changed(f"topics/{name}")

    def _op_set_broker_configs(self, resource: str, configs: dict[str, str]) -> None:
        entity = f"brokers/{resource or DEFAULT_BROKER_CONFIG}"
        path = f"/config/{entity}"
        if configs:
            self._put(path, _config_json(configs))
        else:
            try:
                self.zk.delete(path)
            except NoNodeError:
                pass
        self._config_changed(entity)

    def _config_changed(self, entity_path: str) -> None:
        """Kafka 2.x's change notification (AdminZkClient.changeConfigs): a sequential
        `/config/changes/config_change_<seq>` naming the entity, which every host (and a Kafka
        broker) watches to apply the new config at once; notifications older than 15 minutes
        are purged here, as Kafka's listeners purge them."""
        self.zk.create(CONFIG_CHANGE, _dumps({"version": 2, "entity_path": entity_path}), sequence=True)
        expired_ms = (time.time() - CONFIG_CHANGE_EXPIRATION_S) * 1000
        for child in self.zk.get_children(CONFIG_CHANGES):
            stat = self.zk.exists(f"{CONFIG_CHANGES}/{child}")
            if stat is not None and stat.ctime < expired_ms:
                try:
                    self.zk.delete(f"{CONFIG_CHANGES}/{child}")
                except NoNodeError:
                    pass

    def _op_alter_scram(self, deletions: list[tuple[str, str]],
                        upsertions: list[tuple[str, str, dict[str, Any]]]) -> None:
        """SCRAM credentials in `/config/users/<user>` (Kafka's text form per mechanism); a user
        left with none loses the node."""
        users: dict[str, dict[str, Any]] = {}
        for user, mechanism in deletions:
            users.setdefault(user, dict(self.scram.get(user, {}))).pop(mechanism, None)
        for user, mechanism, credential in upsertions:
            users.setdefault(user, dict(self.scram.get(user, {})))[mechanism] = credential
        for user, creds in users.items():
            path = f"{CONFIG_USERS}/{urllib.parse.quote(user, safe='')}"
            try:  # the node also holds the user's quotas (Kafka keeps both there): those stay
                data = self.zk.get(path)[0]
                configs = {k: v for k, v in (json.loads(data)["config"] if data else {}).items()
                           if not k.startswith("SCRAM-")}
            except NoNodeError:
                configs = {}
            configs.update({m: _scram_text(c) for m, c in creds.items()})
            if configs:
                self._put(path, _config_json(configs))
            else:
                try:
                    self.zk.delete(path)
                except NoNodeError:
                    pass

    def _op_alter_client_quotas(self, changes: list[tuple[str, dict[str, float | None]]]) -> None:
        """Writes each entity's new quota config (Kafka's JSON, values as text), then announces
        them with one /config/changes node per entity, as Kafka 2.x's AdminZkClient does."""
        for path, ops in changes:
            node = f"/config/{path}"
            try:
                data = self.zk.get(node)[0]
                configs = json.loads(data)["config"] if data else {}
            except NoNodeError:
                configs = {}
            for key, value in ops.items():
                if value is None:
                    configs.pop(key, None)
                else:
                    configs[key] = _quota_text(value)
            self._put(node, _config_json(configs))
            self._config_changed(path)

    def _put(self, path: str, data: bytes) -> None:
        try:
            self.zk.set(path, data)
        except NoNodeError:
            self.zk.create(path, data, makepath=True)

    def _op_alter_acls(self, deletions: list[list[object]], creations: list[list[object]]) -> None:
        """Removes and adds ACLs, one resource node at a time, each write conditional on the
        node's version (another host may change the same resource), then announces the change."""
        by_path: dict[str, tuple[set[AclBinding], set[AclBinding]]] = {}
        for docs, index in ((deletions, 0), (creations, 1)):
            for doc in docs:
                binding = AclBinding.from_doc(doc)
                by_path.setdefault(acl_path(binding), (set(), set()))[index].add(binding)
        for path, (gone, added) in sorted(by_path.items()):
            self._alter_acl_node(path, gone, added)
            root = ACLS if path.startswith(ACLS + "/") else PREFIXED_ACLS
            changes, data = _acl_changes(root, path[len(root) + 1:])
            self.zk.create(f"{changes}/acl_changes_", data, sequence=True)
            self._prune_acl_changes(changes)

    def _alter_acl_node(self, path: str, gone: set[AclBinding], added: set[AclBinding]) -> None:
        sample = next(iter(gone or added))
        while True:
            try:
                data, stat = self.zk.get(path)
                entries = json.loads(data)["acls"] if data else []
                version = stat.version
            except NoNodeError:
                entries, version = [], -1
            drop = [acl_entry_json(b) for b in gone]
            kept = [e for e in entries if e not in drop]
            kept += [e for e in (acl_entry_json(b) for b in sorted(added)) if e not in kept]
            doc = _dumps({"version": 1, "acls": kept})
            try:
                if version < 0:
                    if kept:
                        self.zk.create(path, doc, makepath=True)
                elif kept:
                    self.zk.set(path, doc, version=version)
                else:
                    self.zk.delete(path, version=version)
                return
            except (BadVersionError, NodeExistsError, NoNodeError):
                log.info("ACLs of %s changed meanwhile (%s:%s); again", path, sample.resource_type.name, sample.name)

    def _prune_acl_changes(self, changes: str) -> None:
        for old in sorted(self.zk.get_children(changes))[:-_ACL_CHANGES_KEPT]:
            try:
                self.zk.delete(f"{changes}/{old}")
            except NoNodeError:
                pass

    def _op_next_producer_id(self) -> int:
        """Producer ids from blocks claimed in /latest_producer_id_block (Kafka's
        ProducerIdManager): each claim is conditional on the node's version, so two hosts never
        get the same block."""
        nxt, end = self._producer_ids
        while nxt >= end:
            try:
                data, stat = self.zk.get(PRODUCER_IDS)
                start = int(json.loads(data)["block_end"]) + 1 if data else 0
                version = stat.version
            except NoNodeError:
                start, version = 0, -2
            block = _dumps({"version": 1, "broker": self.host_id, "block_start": str(start),
                            "block_end": str(start + PRODUCER_ID_BLOCK - 1)})
            try:
                if version == -2:
                    self.zk.create(PRODUCER_IDS, block)
                else:
                    self.zk.set(PRODUCER_IDS, block, version=version)
            except (BadVersionError, NodeExistsError):
                continue
            nxt, end = start, start + PRODUCER_ID_BLOCK
        self._producer_ids = (nxt + 1, end)
        return nxt

    def _op_alter_isr(self, topic: str, partition: int, leader: int, leader_epoch: int, isr: list[int],
                      version: int) -> int:
        """A leader's new ISR, written only if the state is still the version it saw (a new
        leader or a controller change makes the write fail): the new version."""
        assigned = self.topics.get(topic)
        if assigned is not None and partition < len(assigned.replicas) and \
                any(r not in assigned.replicas[partition] for r in isr):
            raise KafkaError(ErrorCode.INVALID_UPDATE_VERSION, f"{topic}-{partition}: isr {isr} names a node "
                             f"that is not a replica ({assigned.replicas[partition]})")
        try:
            data, stat = self.zk.get(state_path(topic, partition))
            current = PartitionState.from_json(data, stat.version)
            if stat.version != version or current.leader != leader or current.leader_epoch != leader_epoch:
                raise BadVersionError()
            state = PartitionState(leader, leader_epoch, isr, current.controller_epoch)
            stat = self.zk.set(state_path(topic, partition), state.to_json(), version=version)
        except (BadVersionError, NoNodeError):
            raise KafkaError(ErrorCode.INVALID_UPDATE_VERSION,
                             f"{topic}-{partition}: partition state changed since version {version}") from None
        log.info("%s-%d: isr now %s (leader %d, epoch %d)", topic, partition, isr, leader, leader_epoch)
        return int(stat.version)


def _quota_text(value: float) -> str:
    """A quota as Kafka's ConfigCommand writes it: whole numbers without a fraction."""
    return str(int(value)) if value == int(value) else repr(value)


def _raise_first(results: list[Any]) -> None:
    for r in results:
        if isinstance(r, Exception):
            raise KafkaError(ErrorCode.UNKNOWN_SERVER_ERROR, f"ZooKeeper refused the change: {type(r).__name__}")


def _ensure_chroot(servers: str, chroot: str, timeout_s: float) -> None:
    """Creates the connect string's chroot path if missing, through a session without it, as
    Kafka 2.x's KafkaServer does before its own session (a chrooted session cannot create it)."""
    zk = KazooClient(hosts=servers, timeout=timeout_s)
    zk.start(timeout=timeout_s)
    try:
        if zk.exists(chroot) is None:
            zk.ensure_path(chroot)
            log.info("created the ZooKeeper path %s", chroot)
    finally:
        zk.stop()
        zk.close()


def _new_cluster_id() -> str:
    return kafka_uuid(uuid.uuid4())
