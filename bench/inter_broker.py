"""What securing the inter-broker listener costs replication (docs/cluster.md): three single-shard
hosts whose clients use a PLAINTEXT listener, replicating over PLAINTEXT or over SASL_SSL (TLS +
SCRAM-SHA-512, `inter.broker.listener.name=INTERNAL`), the two modes alternating, `--passes` of
each.  Per pass: one RF=3 topic, `--mb` MB of 1 KiB records produced with acks=all by one
confluent-kafka producer; reported: MB/s acknowledged, and the CPU seconds (utime+stime of every
process) of the leader's host and of the followers' hosts per MB.

    python3 bench/inter_broker.py --passes 3 --mb 64

Certificates from tests/security/pki.py; ZooKeeper from pyk.tools.cluster (tick 500 ms)."""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cluster import Host, cpu_seconds, leader  # noqa: E402
from pyk.tools.cluster import free_port, start_zookeeper  # noqa: E402
from tests.security.pki import KEY_PASSWORD, Pki  # noqa: E402

SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" '
              'password="broker-secret";')
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret";')


def secured(pki: Pki, port: int) -> dict[str, str]:
    return {"listeners": f"PLAINTEXT://127.0.0.1:{port},INTERNAL://127.0.0.1:{free_port()}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
            "inter.broker.listener.name": "INTERNAL", "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
            "listener.name.internal.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
            "listener.name.internal.plain.sasl.jaas.config": PLAIN_JAAS,
            "ssl.keystore.location": pki.keystore, "ssl.key.password": KEY_PASSWORD,
            "ssl.truststore.location": pki.ca}


def start(hosts: list[Host], root: Path, zookeeper: str, pki: Pki | None) -> None:
    """Starts three hosts into `hosts` (those started are there for the caller to stop, even if
    one fails)."""
    for i in range(3):
        host = Host(i, zookeeper, root)
        if pki is not None:
            extra = secured(pki, host.port)
            cut = host.cmd.index(f"listeners=PLAINTEXT://127.0.0.1:{host.port}")
            host.cmd[cut] = f"listeners={extra.pop('listeners')}"
            for key, value in extra.items():
                host.cmd += ["--override", f"{key}={value}"]
        hosts.append(host)
        host.start()


def set_broker_credential(bootstrap: str) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion("broker", info, b"broker-secret")])["broker"].result(30)


def one_pass(hosts: list[Host], topic: str, mb: int) -> tuple[float, float, float]:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = ",".join(f"127.0.0.1:{h.port}" for h in hosts)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the answer
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "3"})])[topic].result(30)
    while leader(bootstrap, topic)[1] != 3:
        time.sleep(0.2)
    lead = leader(bootstrap, topic)[0] // 100
    before = [cpu_seconds(h.pids()) for h in hosts]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "batch.size": 1 << 20,
                         "queue.buffering.max.kbytes": 1 << 20})
    value, count = b"x" * 1024, mb * 1024
    started = time.monotonic()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    assert producer.flush(300) == 0
    elapsed = time.monotonic() - started
    used = [cpu_seconds(h.pids()) - b for h, b in zip(hosts, before, strict=True)]
    followers = sum(u for i, u in enumerate(used) if i != lead)
    return mb / elapsed, used[lead] * 1000 / mb, followers * 1000 / mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pyk-inter-broker-"))
    pki = Pki.create(root / "pki")
    results: dict[str, list[tuple[float, float, float]]] = {"PLAINTEXT": [], "SASL_SSL": []}
    for n in range(args.passes):
        for mode in results:
            zk_port = free_port()
            zk = start_zookeeper(root / f"zk-{mode}-{n}", zk_port, tick_ms=500)
            hosts: list[Host] = []
            try:
                start(hosts, root / f"{mode}-{n}", f"127.0.0.1:{zk_port}", pki if mode == "SASL_SSL" else None)
                if mode == "SASL_SSL":
                    set_broker_credential(f"127.0.0.1:{hosts[0].port}")
                results[mode].append(one_pass(hosts, f"bench-{n}", args.mb))
                print(mode, n, "MB/s %.1f leader ms/MB %.1f followers ms/MB %.1f" % results[mode][-1], flush=True)
            finally:
                for h in hosts:
                    h.stop()
                os.killpg(zk.pid, signal.SIGTERM)
                zk.wait(30)
    for mode, rows in results.items():
        cols = list(zip(*rows, strict=True))
        print(f"{mode}: MB/s {statistics.median(cols[0]):.1f} ({min(cols[0]):.1f}-{max(cols[0]):.1f}), leader "
              f"{statistics.median(cols[1]):.1f} ms/MB, followers {statistics.median(cols[2]):.1f} ms/MB "
              f"(medians of {len(rows)})")


if __name__ == "__main__":
    main()
