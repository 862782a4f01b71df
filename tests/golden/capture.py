"""Record the request frames real Kafka clients send, as golden files for the protocol tests.

Run by hand (not collected by pytest):  python -m tests.golden.capture

A stand-in broker on 127.0.0.1 answers just enough (ApiVersions, Metadata, FindCoordinator,
InitProducerId, Produce, ListOffsets, OffsetForLeaderEpoch, Fetch; responses built with pyk.protocol) for
each client to produce one message to topic "golden" and fetch from partition 0 without a
consumer group.  Every request frame is written to `<api>_request_v<N>_<seq>.bin` (the frame
without its size prefix, the first few of each kind per client) and listed in
manifest.json with the client that sent it.  Responses are not captured: there is no real
broker here to take them from.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from pyk import protocol
from pyk.errors import ErrorCode
from pyk.protocol import ApiKey

HERE = Path(__file__).parent
TOPIC = "golden"
PER_KIND = 2  # frames kept per (client, api, version)


class Recorder:
    def __init__(self) -> None:
        self.port = 0
        self.client = ""
        self.client_version = ""
        self.counts: dict[tuple[str, int, int], int] = {}
        self.seq: dict[tuple[int, int], int] = {}
        self.manifest: list[dict[str, Any]] = []

    def record(self, frame: bytes, key: ApiKey, version: int) -> None:
        kind = (self.client, key, version)
        if self.counts.get(kind, 0) >= PER_KIND:
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        seq = self.seq.get((key, version), 0)
        self.seq[(key, version)] = seq + 1
        name = f"{key.name.lower()}_request_v{version}_{seq:03d}.bin"
        (HERE / name).write_bytes(frame)
        self.manifest.append({"file": name, "api_key": int(key), "version": version,
                              "client": self.client, "client_version": self.client_version})

    def answer(self, key: ApiKey, version: int, body: dict[str, Any]) -> dict[str, Any] | None:
        if key == ApiKey.API_VERSIONS:
            return {"api_keys": [{"api_key": k, "min_version": lo, "max_version": hi}
                                 for k, (lo, hi) in sorted(protocol.SUPPORTED.items())]}
        if key == ApiKey.METADATA:
            names = [t["name"] for t in body["topics"] or []] or [TOPIC]
            return {
                "brokers": [{"node_id": 1, "host": "127.0.0.1", "port": self.port}],
                "cluster_id": "golden-cluster", "controller_id": 1,
                "topics": [{"name": n, "partitions": [{"partition_index": 0, "leader_id": 1, "leader_epoch": 0,
                                                        "replica_nodes": [1], "isr_nodes": [1]}]} for n in names],
            }
        if key == ApiKey.FIND_COORDINATOR:
            me = {"node_id": 1, "host": "127.0.0.1", "port": self.port}
            return {**me, "coordinators": [{"key": k, **me} for k in body["coordinator_keys"]]}
        if key == ApiKey.INIT_PRODUCER_ID:
            return {"producer_id": 1000, "producer_epoch": 0}
        if key == ApiKey.PRODUCE:
            return {"responses": [{"name": t["name"], "partition_responses": [
                {"index": p["index"], "base_offset": 0, "log_start_offset": 0} for p in t["partition_data"]]}
                for t in body["topic_data"]]}
        if key == ApiKey.LIST_OFFSETS:
            return {"topics": [{"name": t["name"], "partitions": [
                {"partition_index": p["partition_index"], "timestamp": -1, "offset": 1, "leader_epoch": 0}
                for p in t["partitions"]]} for t in body["topics"]]}
        if key == ApiKey.OFFSET_FOR_LEADER_EPOCH:
            return {"topics": [{"topic": t["topic"], "partitions": [
                {"partition": p["partition"], "leader_epoch": 0, "end_offset": 1}
                for p in t["partitions"]]} for t in body["topics"]]}
        if key == ApiKey.FETCH:
            return {"responses": [{"topic": t["topic"], "partitions": [
                {"partition_index": p["partition"], "high_watermark": 1, "last_stable_offset": 1,
                 "log_start_offset": 0, "records": b""} for p in t["partitions"]]} for t in body["topics"]]}
        return None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(4), "big")
                frame = await reader.readexactly(size)
                view = memoryview(bytearray(frame))
                header, offset = protocol.decode_request_header(view)
                key, version = header.api_key, header.api_version
                low, high = protocol.SUPPORTED.get(key, (0, -1))
                if key == ApiKey.API_VERSIONS and version > high:
                    reply = protocol.encode_response(key, 0, header.correlation_id, {
                        "error_code": ErrorCode.UNSUPPORTED_VERSION, **(self.answer(key, 0, {}) or {})})
                    writer.write(b"".join(reply))
                    continue
                if not low <= version <= high:
                    print(f"  {self.client}: {key.name} v{version} not supported, closing", file=sys.stderr)
                    break
                self.record(frame, key, version)
                body = protocol.decode_request(key, version, view, offset)
                answer = self.answer(key, version, body)
                if answer is None:
                    print(f"  {self.client}: no stand-in answer for {key.name}, closing", file=sys.stderr)
                    break
                if key == ApiKey.PRODUCE and body["acks"] == 0:
                    continue
                if key == ApiKey.FETCH:
                    await asyncio.sleep(0.05)
                writer.write(b"".join(protocol.encode_response(key, version, header.correlation_id, answer)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def _run_confluent(bootstrap: str) -> None:
    import confluent_kafka

    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "client.id": "golden-confluent",
                                         "enable.idempotence": True, "linger.ms": 5})
    producer.produce(TOPIC, key=b"k", value=b"confluent-kafka golden value", headers=[("h", b"v")])
    producer.flush(10)
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "golden",
                                         "enable.auto.commit": False, "client.id": "golden-confluent"})
    consumer.assign([confluent_kafka.TopicPartition(TOPIC, 0, 0)])
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        consumer.poll(0.2)
    consumer.close()


def _run_kafka_python(bootstrap: str) -> None:
    import kafka

    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kafka-python")
    producer.send(TOPIC, key=b"k", value=b"kafka-python golden value").get(timeout=10)
    producer.close(5)
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, client_id="golden-kafka-python",
                                   enable_auto_commit=False)
    consumer.assign([kafka.TopicPartition(TOPIC, 0)])
    consumer.seek(kafka.TopicPartition(TOPIC, 0), 0)
    consumer.poll(timeout_ms=2000)
    consumer.close()


def _run_aiokafka(bootstrap: str) -> None:
    import aiokafka

    async def main() -> None:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="golden-aiokafka")
        await producer.start()
        await producer.send_and_wait(TOPIC, b"aiokafka golden value", key=b"k")
        await producer.stop()
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, client_id="golden-aiokafka",
                                             enable_auto_commit=False)
        await consumer.start()
        tp = aiokafka.TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        await consumer.getmany(timeout_ms=2000)
        await consumer.stop()

    asyncio.run(main())


def _run_kcat(bootstrap: str) -> None:
    subprocess.run(["kcat", "-b", bootstrap, "-P", "-t", TOPIC, "-p", "0", "-X", "client.id=golden-kcat"],
                   input=b"kcat golden value\n", timeout=20, check=False)
    subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", TOPIC, "-p", "0", "-o", "beginning", "-e", "-q",
                    "-X", "client.id=golden-kcat"], timeout=20, check=False)


def _versions() -> dict[str, str]:
    import aiokafka
    import confluent_kafka
    import kafka

    kcat = subprocess.run(["kcat", "-V"], capture_output=True, text=True, check=False).stdout
    librdkafka = re.search(r"librdkafka ([\d.]+)", kcat)
    return {
        "confluent-kafka": f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})",
        "kafka-python": kafka.__version__,
        "aiokafka": aiokafka.__version__,
        "kcat": f"librdkafka {librdkafka.group(1) if librdkafka else 'unknown'}",
    }


def main() -> None:
    recorder = Recorder()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(recorder.serve, "127.0.0.1", 0))
    recorder.port = server.sockets[0].getsockname()[1]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    bootstrap = f"127.0.0.1:{recorder.port}"
    for old in HERE.glob("*.bin"):
        old.unlink()
    versions = _versions()
    for client, run in [("kcat", _run_kcat), ("confluent-kafka", _run_confluent),
                        ("kafka-python", _run_kafka_python), ("aiokafka", _run_aiokafka)]:
        recorder.client, recorder.client_version = client, versions[client]
        print(f"capturing {client} {versions[client]}", file=sys.stderr)
        run(bootstrap)
        time.sleep(0.5)
    loop.call_soon_threadsafe(loop.stop)
    recorder.manifest.sort(key=lambda e: e["file"])
    (HERE / "manifest.json").write_text(json.dumps(recorder.manifest, indent=1) + "\n")
    print(f"{len(recorder.manifest)} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
