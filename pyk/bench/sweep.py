"""`pyk bench sweep`: one workload run once per value of one setting.

Owns where a swept key goes and the loop over its values.  A key is routed by an explicit
prefix, else by name:

    producer:KEY / consumer:KEY   a client property (-X / -Y); unprefixed librdkafka producer and
                                  consumer property names are recognised (workload.py's tables)
    topic:KEY                     a topic config given to CreateTopics (each point uses a new topic)
    broker:KEY                    a broker setting: needs --start-broker; the bench restarts its
                                  local `pyk serve --override KEY=VALUE` for every value, on an
                                  empty log directory; unprefixed pyk server keys
                                  (pyk.config.KEYS) and `num.shards` are recognised

Every point gets a fresh topic, so a consume or e2e point never reads another point's data.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from pyk.bench.localbroker import LocalBroker
from pyk.bench.phases import Outcome
from pyk.bench.runner import run
from pyk.bench.workload import CONSUMER_KEYS, PRODUCER_KEYS, SHARED_KEYS, Workload

TARGETS = ("producer", "consumer", "topic", "broker")
def route(spec: str) -> tuple[str, str, list[str]]:
    """`[target:]key=v1,v2,...` -> (target, key, values)."""
    head, sep, values = spec.partition("=")
    if not sep or not values:
        raise ValueError(f"--sweep expects KEY=V1,V2,..., found {spec!r}")
    target, colon, key = head.partition(":")
    if not colon:
        key, target = head, _guess(head)
    elif target not in TARGETS:
        raise ValueError(f"--sweep prefix must be one of {', '.join(TARGETS)}, found {target!r}")
    key = key.strip()
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not vals:
        raise ValueError(f"--sweep {key}: no values")
    return target, key, vals


def _guess(key: str) -> str:
    from pyk.config import KEYS

    if key in SHARED_KEYS or key in PRODUCER_KEYS:
        return "producer"
    if key in CONSUMER_KEYS:
        return "consumer"
    if key in KEYS:
        return "broker"
    raise ValueError(f"--sweep: cannot tell whose setting {key!r} is; prefix it with producer:, consumer:, "
                     "topic: or broker:")


def run_sweep(base: Workload, spec: str, broker: LocalBroker | None, broker_pids: list[int],
              on_point: Callable[[str, Outcome], None] | None = None,
              passes: int = 1) -> tuple[str, list[tuple[str, Outcome]], dict[str, list[Outcome]]]:
    """Runs `base` once per value and pass; returns (key, [(value, median outcome)], every run
    per value).  Passes go over all values in turn (pass 1: v1 v2 v3, pass 2: v1 v2 v3, ...) so
    that a slow spell of a shared machine hits every value, and each value's outcome is its
    median run by msgs/s.  With a LocalBroker, it is (re)started before each point (always for
    broker keys, once for the others)."""
    target, key, values = route(spec)
    if target == "broker" and broker is None:
        raise ValueError(f"sweeping the broker setting {key!r} needs --start-broker (the bench restarts it)")
    runs: dict[str, list[Outcome]] = {v: [] for v in values}
    for _ in range(max(passes, 1)):
        for value in values:
            outcome = _point(base, target, key, value, broker, broker_pids)
            runs[value].append(outcome)
            if on_point is not None:
                on_point(value, outcome)
    points = []
    for value in values:
        ordered = sorted(runs[value], key=lambda o: o.result.msgs_per_s)
        points.append((value, ordered[(len(ordered) - 1) // 2]))
    return key, points, runs


def _point(base: Workload, target: str, key: str, value: str, broker: LocalBroker | None,
           broker_pids: list[int]) -> Outcome:
    w = dataclasses.replace(base, topic=f"{base.topic}-{uuid.uuid4().hex[:6]}",
                            producer_props=dict(base.producer_props), consumer_props=dict(base.consumer_props),
                            topic_configs=dict(base.topic_configs))
    pids = list(broker_pids)
    if broker is not None:
        if target == "broker" or broker.proc is None:
            broker.start({key: value} if target == "broker" else None)
        w.bootstrap = broker.bootstrap
        pids += broker.pids
    if target == "producer":
        w.producer_props[key] = value
        if key in SHARED_KEYS:
            w.consumer_props[key] = value
    elif target == "consumer":
        w.consumer_props[key] = value
    elif target == "topic":
        w.topic_configs[key] = value
    return run(w, pids)
