"""Client quotas (KIP-13, KIP-55, KIP-124, KIP-219, KIP-546): what they are, where they apply, and
the rates they are measured against.

Configuration.  A quota is a set of keys (`producer_byte_rate`, `consumer_byte_rate`,
`request_percentage`, and `connection_creation_rate` of an `ip`) on an entity: a user, a
client id, a user with a client id, or the `<default>` of either.  They are stored by the path
Kafka 2.x keeps under ZooKeeper's /config ("users/alice/clients/app", "clients/<default>"),
entity names sanitized as Kafka's Sanitizer does (URL-encoding), in the cluster metadata
(pyk.server.metadata_store, or ZooKeeper in a cluster: pyk.cluster.zk).

Precedence (Kafka's DefaultQuotaCallback), for each key on its own: the first of
  users/<user>/clients/<client-id>, users/<user>/clients/<default>, users/<user>,
  users/<default>/clients/<client-id>, users/<default>/clients/<default>, users/<default>,
  clients/<client-id>, clients/<default>
that sets the key.  The entity that matched decides what is measured together: a quota on
users/<user> is shared by all of that user's client ids, one on users/<user>/clients/<default>
is each (user, client id)'s own.  The user is the principal's name ("User:alice" -> "alice").

Enforcement (KIP-219), on each node (a pyk shard is a node, as each Kafka broker enforces its
own): the amount of a request is recorded into its entity's sampled rate (`quota.window.num`
windows of `quota.window.size.seconds`); when the rate then exceeds the quota, the throttle time
is the time the rate needs to fall back to it, ((rate - quota) / quota) x the measured window.
The response carries it as throttle_time_ms and is sent at once; the connection is then muted
(not read) for that long (pyk.server.connection.Connection.mute).  Produce records the request's
size, Fetch its response's (a throttled Fetch is answered empty and its bytes taken back, as
Kafka's KafkaApis does), request_percentage the request's handling time as a percentage of one
thread (the request throttle is capped at one window, Kafka's ClientRequestQuotaManager).

Nothing is measured for a client no quota applies to, and with no quota at all `ClientQuotas.active`
is False: the dispatcher checks that flag and nothing else.

Owned by one shard's event loop; not thread-safe.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from pyk.errors import ErrorCode, KafkaError

USER, CLIENT_ID, IP = "user", "client-id", "ip"
DEFAULT = "<default>"  # the default entity's name in a path (a null entity name on the wire)
_DIR = {USER: "users", CLIENT_ID: "clients", IP: "ips"}  # entity type -> its /config directory
_TYPE_OF = {d: t for t, d in _DIR.items()}

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"
# Valid keys of user / client-id entities and of ip entities, with whether a value must be a
# whole number (Kafka's LONG and INT keys) or may be any positive double.
CLIENT_KEYS = {PRODUCER_BYTE_RATE: True, CONSUMER_BYTE_RATE: True, REQUEST_PERCENTAGE: False,
               CONTROLLER_MUTATION_RATE: False}
IP_KEYS = {CONNECTION_CREATION_RATE: True}

# DescribeClientQuotas match types.
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2

Entity = Mapping[str, str | None]  # entity type -> name (None: the default entity)


# Entities and their paths --------------------------------------------------------------------
def sanitize(name: str) -> str:
    """Kafka's Sanitizer.sanitize: URL-encoding (Java's URLEncoder, '*' and '~' encoded too), so
    that any name is one ZooKeeper path component and a user named "<default>" is not the default."""
    return quote(name, safe="*").replace("*", "%2A").replace("~", "%7E")


def entity_path(entity: Mapping[str, str | None]) -> str:
    """"users/<u>", "clients/<c>", "users/<u>/clients/<c>" or "ips/<ip>" (Kafka's /config layout)."""
    parts = []
    for kind in (USER, CLIENT_ID, IP):
        if kind in entity:
            name = entity[kind]
            parts += [_DIR[kind], DEFAULT if name is None else sanitize(name)]
    return "/".join(parts)


def parse_entity_path(path: str) -> Entity:
    parts = path.split("/")
    return {_TYPE_OF[d]: None if n == DEFAULT else unquote(n) for d, n in zip(parts[::2], parts[1::2], strict=True)}


def check_entity(entity: Entity) -> None:
    """Kafka's checks of an AlterClientQuotas entity (ClientQuotaControlManager.validateEntity)."""
    if not entity:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid empty client quota entity")
    for kind, name in entity.items():
        if kind not in _DIR:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unhandled client quota entity type: {kind}")
        if name is not None and not name:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Empty {kind} not supported")
    if IP in entity and len(entity) > 1:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid quota entity combination, an IP entity should not be "
                                                    "combined with any other entity types.")
    ip = entity.get(IP)
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"{ip} is not a valid IP or resolvable host.") from None


def check_value(entity: Entity, key: str, value: float) -> None:
    """Kafka's checks of one quota key and value for `entity` (validateQuotaKeyValue)."""
    valid = IP_KEYS if IP in entity else CLIENT_KEYS
    if key not in valid:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Invalid configuration key {key}")
    if not value > 0.0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Quota {key} must be greater than 0")
    if valid[key] and value - math.floor(value) > 1e-16:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"{key} cannot be a fractional value.")


def describe(stored: Mapping[str, Mapping[str, float]], components: list[tuple[str, int, str | None]],
             strict: bool) -> list[tuple[Entity, dict[str, float]]]:
    """The stored quotas matching a DescribeClientQuotas filter, with Kafka's checks and error
    codes (KRaft's ClientQuotasImage.describe): every component (entity type, match type, name)
    must match, a "specified" component matching the default entity too; `strict` also
    excludes entities with other types."""
    exact: dict[str, str | None] = {}
    typed: set[str] = set()
    for kind, match_type, match in components:
        if not kind:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid empty entity type.")
        if kind in exact or kind in typed:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"Entity type {kind} cannot appear more than once in the filter.")
        if kind not in _DIR:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"Unsupported entity type {kind}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise KafkaError(ErrorCode.INVALID_REQUEST,
                                 "Request specified MATCH_TYPE_EXACT, but set match string to null.")
            exact[kind] = match
        elif match_type in (MATCH_DEFAULT, MATCH_SPECIFIED):
            if match is not None:
                name = "MATCH_TYPE_DEFAULT" if match_type == MATCH_DEFAULT else "MATCH_TYPE_SPECIFIED"
                raise KafkaError(ErrorCode.INVALID_REQUEST, f"Request specified {name}, but also specified a match "
                                                            f"string.")
            if match_type == MATCH_DEFAULT:
                exact[kind] = None
            else:
                typed.add(kind)
        else:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown match type {match_type}")
    kinds = set(exact) | typed
    if IP in kinds and (USER in kinds or CLIENT_ID in kinds):
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid entity filter component combination, IP filter component "
                                                    "should not be used with user or clientId filter component.")
    out = []
    for path, values in stored.items():
        entity = parse_entity_path(path)
        if strict and set(entity) != kinds:
            continue
        if all(k in entity and entity[k] == name for k, name in exact.items()) and typed <= set(entity):
            out.append((entity, dict(values)))
    return out


# Rates -----------------------------------------------------------------------------------------
class QuotaType(enum.IntEnum):
    """What a quota measures (Kafka's QuotaType), and the key that bounds it."""

    PRODUCE = 0
    FETCH = 1
    REQUEST = 2

    @property
    def key(self) -> str:
        return (PRODUCER_BYTE_RATE, CONSUMER_BYTE_RATE, REQUEST_PERCENTAGE)[self]


class SampledRate:
    """Kafka's Rate over a SampledStat: `samples` windows of `window_ms`, the oldest reused when a
    window is full; the rate is their sum over the time they cover, which is counted as at least
    samples - 1 whole windows so that a first burst is not measured as a huge rate."""

    __slots__ = ("starts", "values", "current")

    def __init__(self, now_ms: int) -> None:
        self.starts = [now_ms]
        self.values = [0.0]
        self.current = 0

    def record(self, value: float, now_ms: int, samples: int, window_ms: int) -> None:
        i = self.current
        if now_ms - self.starts[i] >= window_ms:
            i = (i + 1) % samples
            if i == len(self.starts):
                self.starts.append(now_ms)
                self.values.append(0.0)
            else:
                self.starts[i], self.values[i] = now_ms, 0.0
            self.current = i
        self.values[i] += value

    def _purge(self, now_ms: int, samples: int, window_ms: int) -> int:
        """Forgets the samples older than the whole measured span (Kafka's purgeObsoleteSamples);
        returns the start of the oldest sample left."""
        oldest = min(self.starts)
        if now_ms - oldest < samples * window_ms:
            return oldest  # the common case: nothing has expired
        for i, start in enumerate(self.starts):
            if now_ms - start >= samples * window_ms:
                self.starts[i], self.values[i] = now_ms, 0.0
        return min(self.starts)

    def window_ms(self, now_ms: int, samples: int, window_ms: int) -> int:
        """The span the rate is measured over: since the oldest sample, at least samples - 1 windows."""
        elapsed = now_ms - self._purge(now_ms, samples, window_ms)
        full = elapsed // window_ms
        if full < samples - 1:
            elapsed += (samples - 1 - full) * window_ms
        return max(elapsed, 1)

    def total(self, now_ms: int, samples: int, window_ms: int) -> float:
        """The sum over the samples still in the measured span."""
        self._purge(now_ms, samples, window_ms)
        return sum(self.values)

    def measure(self, now_ms: int, samples: int, window_ms: int) -> float:
        """The rate per second."""
        span = self.window_ms(now_ms, samples, window_ms)  # purges first: the sum is of live samples
        return sum(self.values) * 1000.0 / span


class QuotaSensor:
    """One quota entity's measurements of one QuotaType: its rate and the throttle times it was
    given (Kafka's `byte-rate`/`request-time` and `throttle-time` metrics, tagged user and client-id)."""

    __slots__ = ("rate", "throttle", "throttled", "last_ms")

    def __init__(self, now_ms: int) -> None:
        self.last_ms = now_ms  # when it was last recorded into (idle sensors expire)
        self.rate = SampledRate(now_ms)
        self.throttle = SampledRate(now_ms)  # throttle milliseconds given, summed per window
        self.throttled = SampledRate(now_ms)  # responses throttled, per window (the average's divisor)


@dataclass(frozen=True, slots=True)
class QuotaMetric:
    """One sensor as a scrape reports it (pyk.server.metrics)."""

    quota_type: str  # "Produce", "Fetch" or "Request", Kafka's metric groups
    user: str  # the measured entity's tags ("" where the matched quota spans all of it)
    client_id: str
    rate: float  # bytes per second; percent of one thread for Request
    quota: float
    throttle_time_ms: float  # average throttle time of the throttled responses over the window


_NO_QUOTA = (None, "", "", 0.0)
# Kafka's InactiveSensorExpirationTimeSeconds: a sensor not recorded into for this long goes.
INACTIVE_SENSOR_MS = 3600 * 1000
_CACHE_LIMIT = 100_000  # resolved (principal, client id) pairs kept before the caches start over


class ClientQuotas:
    """A shard's client quotas: the configured ones (replaced by each metadata snapshot through
    `configure`) and the per-entity sensors they are measured with (see module docstring)."""

    def __init__(self) -> None:
        self.active = False  # any quota configured: the dispatcher's one check on every request
        self.samples = 11
        self.window_ms = 1000
        self._stored: dict[str, dict[str, float]] = {}
        # (type, principal, client id) -> (sensor, user tag, client tag, quota); sensor None: no quota
        self._resolved: dict[tuple[QuotaType, str, str], tuple[QuotaSensor | None, str, str, float]] = {}
        self._sensors: dict[tuple[QuotaType, str, str], QuotaSensor] = {}
        self._applies: dict[tuple[str, str], bool] = {}  # (principal, client id) -> any quota applies

    def configure(self, stored: Mapping[str, Mapping[str, float]], samples: int, window_s: int) -> None:
        """New quotas (a metadata snapshot) or window settings; rates measured so far are kept."""
        if (stored, samples, window_s * 1000) == (self._stored, self.samples, self.window_ms):
            return
        if (samples, window_s * 1000) != (self.samples, self.window_ms):
            self._sensors.clear()  # rates over other windows mean nothing any more
        self._stored = {path: dict(values) for path, values in stored.items()}
        self.samples, self.window_ms = samples, window_s * 1000
        self._resolved.clear()
        self._applies.clear()
        self.active = any(k in values for values in self._stored.values() for k in CLIENT_KEYS)

    def _resolve(self, kind: QuotaType, user: str, client_id: str,
                 now_ms: int) -> tuple[QuotaSensor | None, str, str, float]:
        """The quota bounding (user, client id) for `kind` by Kafka's precedence, and the tags of
        the entity it is measured as."""
        both, mine = (user, client_id), (user, "")
        for entity, tags in (
            ({USER: user, CLIENT_ID: client_id}, both), ({USER: user, CLIENT_ID: None}, both), ({USER: user}, mine),
            ({USER: None, CLIENT_ID: client_id}, both), ({USER: None, CLIENT_ID: None}, both), ({USER: None}, mine),
            ({CLIENT_ID: client_id}, ("", client_id)), ({CLIENT_ID: None}, ("", client_id)),
        ):
            quota = self._stored.get(entity_path(entity), {}).get(kind.key)
            if quota is not None:
                sensor_key = (kind, *tags)
                sensor = self._sensors.get(sensor_key)
                if sensor is None:
                    sensor = self._sensors[sensor_key] = QuotaSensor(now_ms)
                return sensor, tags[0], tags[1], quota
        return _NO_QUOTA

    def _lookup(self, kind: QuotaType, principal: str, client_id: str,
                now_ms: int) -> tuple[QuotaSensor | None, str, str, float]:
        lookup = (kind, principal, client_id)
        resolved = self._resolved.get(lookup)
        if resolved is None:
            user = principal.partition(":")[2]
            resolved = self._resolved[lookup] = self._resolve(kind, user, client_id, now_ms)
        return resolved

    def applies(self, principal: str, client_id: str, now_ms: int) -> bool:
        """Whether any quota bounds this client: the others skip all measuring (one lookup)."""
        known = self._applies.get((principal, client_id))
        if known is None:
            if len(self._applies) >= _CACHE_LIMIT:  # many client ids came and went
                self._applies.clear()
                self._resolved.clear()
                self._expire(now_ms)
            known = self._applies[(principal, client_id)] = any(
                self._lookup(kind, principal, client_id, now_ms)[0] is not None for kind in QuotaType)
        return known

    def max_value_in_window(self, kind: QuotaType, principal: str, client_id: str, now_ms: int) -> float | None:
        """The most that can be recorded at once without being throttled for sure (Kafka's
        getMaxValueInQuotaWindow: the quota over samples - 1 windows), None without a quota; a
        Fetch is capped to it so that its answer is not always thrown away."""
        sensor, _, _, quota = self._lookup(kind, principal, client_id, now_ms)
        return None if sensor is None else quota * (self.samples - 1) * self.window_ms / 1000

    def record(self, kind: QuotaType, principal: str, client_id: str, value: float, now_ms: int,
               check: bool = True) -> int:
        """Records `value` (bytes, or percent-seconds of a thread) for the client; the throttle
        time in ms if its rate is now over its quota (and `check`), else 0."""
        sensor, _, _, quota = self._lookup(kind, principal, client_id, now_ms)
        if sensor is None:
            return 0
        samples, window_ms = self.samples, self.window_ms
        sensor.last_ms = now_ms
        sensor.rate.record(value, now_ms, samples, window_ms)
        if not check:
            return 0
        rate = sensor.rate.measure(now_ms, samples, window_ms)
        if rate <= quota:
            return 0
        throttle_ms = (rate - quota) / quota * sensor.rate.window_ms(now_ms, samples, window_ms)
        if kind == QuotaType.REQUEST:
            throttle_ms = min(throttle_ms, window_ms)  # Kafka's ClientRequestQuotaManager.maxThrottleTimeMs
        throttle = round(throttle_ms)
        if throttle > 0:
            sensor.throttle.record(throttle, now_ms, samples, window_ms)
            sensor.throttled.record(1, now_ms, samples, window_ms)
        return throttle

    def unrecord(self, kind: QuotaType, principal: str, client_id: str, value: float, now_ms: int) -> None:
        """Takes back a recorded amount that was not served (a throttled Fetch answered empty)."""
        resolved = self._resolved.get((kind, principal, client_id))
        if resolved is not None and resolved[0] is not None:
            resolved[0].rate.record(-value, now_ms, self.samples, self.window_ms)

    def _expire(self, now_ms: int) -> None:
        """Drops the sensors of clients idle for INACTIVE_SENSOR_MS, and the lookups that lead to them."""
        idle = [key for key, sensor in self._sensors.items() if now_ms - sensor.last_ms >= INACTIVE_SENSOR_MS]
        if idle:
            gone = {id(self._sensors.pop(key)) for key in idle}
            self._resolved = {k: r for k, r in self._resolved.items() if id(r[0]) not in gone}

    def metrics(self, now_ms: int) -> Iterator[QuotaMetric]:
        """Every measured entity's rate, quota and average throttle time (asked on each scrape,
        which also expires idle sensors)."""
        self._expire(now_ms)
        samples, window_ms = self.samples, self.window_ms
        quotas = {(kind, user_tag, client_tag): quota for (kind, _, _), (sensor, user_tag, client_tag, quota)
                  in self._resolved.items() if sensor is not None}
        for (kind, user, client_id), sensor in self._sensors.items():
            quota = quotas.get((kind, user, client_id))
            if quota is None:
                continue  # no longer quota'd
            throttled = sensor.throttled.total(now_ms, samples, window_ms)
            throttle = sensor.throttle.total(now_ms, samples, window_ms) / throttled if throttled else 0.0
            yield QuotaMetric(kind.name.capitalize(), user, client_id, sensor.rate.measure(now_ms, samples, window_ms),
                              quota, throttle)

