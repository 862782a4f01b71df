"""log.format=json: a real two-shard `pyk serve` writes one JSON object per line, from the
orchestrator and from every shard, with the fields a log shipper keys on."""

from __future__ import annotations

import json

from tests.helpers import confluent_produce, create_topic, make_records, wait_for


def _events(broker) -> list[dict]:
    text = broker.log_file.read_text()
    lines = text[text.rindex("===== pyk-tests: start"):].splitlines()[1:]
    return [json.loads(line) for line in lines if not line.startswith("%")]  # "%": librdkafka's own lines


def test_json_log_lines(broker_factory, topic) -> None:
    broker = broker_factory(overrides={"log.format": "json", "num.shards": 2})
    create_topic(broker.bootstrap, topic)
    confluent_produce(broker.bootstrap, topic, make_records(3))
    events = wait_for(lambda: (e := _events(broker)) and any("created topic" in x["message"] for x in e) and e,
                      what="the topic creation logged")
    for event in events:
        assert {"time", "level", "process", "logger", "message"} <= event.keys(), event
        assert event["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    started = [e for e in events if e["message"].startswith("started: 2 shard(s) serving")]
    assert len(started) == 1 and started[0]["logger"] == "pyk.shard"
    shard_pids = {e["process"] for e in events if e["message"].startswith("shard ") and "listening on" in e["message"]}
    assert len(shard_pids) == 2 and started[0]["process"] not in shard_pids
    assert broker.stop() == 0
    assert any(e["message"].startswith("all shards stopped") for e in _events(broker))
