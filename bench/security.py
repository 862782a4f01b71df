"""TLS / SASL_SSL vs PLAINTEXT throughput, side by side in one run (docs/security.md).

    python bench/security.py [--mb 64 --message-size 1024 --runs 3 --shards 1]
    python bench/security.py handshakes [--seconds 3]

Starts `pyk serve` with PLAINTEXT, SSL and SASL_SSL (SCRAM-SHA-512) listeners and certificates
made for the run (tests/security/pki.py), then, with confluent-kafka (librdkafka):
  produce: --mb of --message-size messages (acks=1, lz4 off, batches up to 1 MiB) per protocol;
  consume: the same --mb (one topic filled once) read from the start per protocol, with
           fetches of 100 KiB per partition (max.partition.fetch.bytes), as the issue asks.
handshakes: new authenticated connections per second, one client opening them back to back
(tests/security/wire.py: TCP connect, TLS handshake, SaslHandshake + SaslAuthenticate, one
ApiVersions), per listener and mechanism; the client's SCRAM work (PBKDF2, 4096 iterations) is
in the figure, as it is for every real client.
Runs are interleaved (PLAINTEXT, SSL, SASL_SSL, PLAINTEXT, ...) and each figure is the median of
--runs; prints MB/s and the ratio to PLAINTEXT, and the broker's CPU time per MB moved (utime +
stime of its shard processes), which a busy machine disturbs far less than wall-clock MB/s.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import ssl
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyk.server.security.scram import MECHANISMS as SCRAM  # noqa: E402
from tests.helpers import create_topic  # noqa: E402
from tests.security.conftest import secure_broker, stop_and_check  # noqa: E402
from tests.security.pki import Pki  # noqa: E402
from tests.security.wire import Wire  # noqa: E402


def _conf(b: Any, pki: Pki, protocol: str) -> dict[str, Any]:
    if protocol == "PLAINTEXT":
        return {"bootstrap.servers": b.bootstrap}
    conf = {"bootstrap.servers": b.bootstrap_of(protocol), "security.protocol": protocol, "ssl.ca.location": pki.ca}
    if protocol == "SASL_SSL":
        conf.update({"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "bench", "sasl.password": "bench-secret"})
    return conf


def broker_cpu_s(b: Any) -> float:
    """CPU seconds used so far by the broker's processes (utime + stime from /proc)."""
    ticks = 0
    for pid in b.pids():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def produce(conf: dict[str, Any], topic: str, count: int, size: int) -> float:
    from confluent_kafka import Producer

    p = Producer({**conf, "linger.ms": 5, "batch.size": 1 << 20, "acks": 1, "queue.buffering.max.kbytes": 1 << 20})
    value = b"x" * size
    start = time.perf_counter()
    for _ in range(count):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.01)
    assert p.flush(120) == 0
    return count * size / (time.perf_counter() - start) / 1e6


def consume(conf: dict[str, Any], topic: str, count: int) -> float:
    from confluent_kafka import Consumer

    c = Consumer({**conf, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "max.partition.fetch.bytes": 100 * 1024, "fetch.max.bytes": 4 << 20})
    c.subscribe([topic])
    got = size = 0
    start = None
    while got < count:
        for m in c.consume(1000, 1.0):
            if m.error() is None:
                start = start or time.perf_counter()
                got += 1
                size += len(m.value())
    elapsed = time.perf_counter() - (start or time.perf_counter())
    c.close()
    return size / elapsed / 1e6


def _scram_client(wire: Wire, mechanism: str, user: str, password: str) -> dict[str, Any]:
    """The client side of RFC 5802, enough to authenticate once."""
    digest = SCRAM[mechanism][1]
    nonce = secrets.token_urlsafe(18)
    first_bare = f"n={user},r={nonce}"
    server_first = wire.authenticate(mechanism, b"n,," + first_bare.encode())["auth_bytes"].decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.digest(salted, b"Client Key", digest)
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.new(digest, client_key).digest(), auth_message, digest)
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True))).decode()
    return wire.request(36, 2, {"auth_bytes": f"{without_proof},p={proof}".encode()})


@contextlib.contextmanager
def bench_broker(shards: int) -> Iterator[tuple[Any, Pki]]:
    """A broker with every listener (tests/security/conftest.py) and the SCRAM user `bench`."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism
    from confluent_kafka.admin import UserScramCredentialUpsertion as Upsert

    with tempfile.TemporaryDirectory() as tmp:
        pki = Pki.create(Path(tmp) / "pki")
        b = secure_broker(Path(tmp) / "broker", pki, shards=shards)
        b.start()
        try:
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            admin.alter_user_scram_credentials(
                [Upsert("bench", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"bench-secret")]
            )["bench"].result(30)
            yield b, pki
        finally:
            stop_and_check(b)


def handshakes(args: argparse.Namespace) -> None:
    with bench_broker(1) as (b, pki):
        tls = ssl.create_default_context(cafile=pki.ca)
        token, _ = pki.token("bench", lifetime_s=3600)
        cases: list[tuple[str, str, ssl.SSLContext | None, Any]] = [
            ("PLAINTEXT", "-", None, None),
            ("SSL", "-", tls, None),
            ("SASL_PLAINTEXT", "PLAIN", None, lambda w: w.authenticate("PLAIN", b"\0alice\0alice-secret")),
            ("SASL_SSL", "PLAIN", tls, lambda w: w.authenticate("PLAIN", b"\0alice\0alice-secret")),
            ("SASL_SSL", "SCRAM-SHA-512", tls, lambda w: _scram_client(w, "SCRAM-SHA-512", "bench", "bench-secret")),
            ("SASL_SSL", "OAUTHBEARER", tls,
             lambda w: w.authenticate("OAUTHBEARER", f"n,,\x01auth=Bearer {token}\x01\x01".encode())),
        ]
        print("| listener | mechanism | connections/s | broker CPU ms per connection |")
        print("|---|---|---|---|")
        for listener, mechanism, context, authenticate in cases:
            bootstrap = b.bootstrap if listener == "PLAINTEXT" else b.bootstrap_of(listener)
            done, cpu, start = 0, broker_cpu_s(b), time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                with Wire(bootstrap, context) as wire:
                    if authenticate is not None:
                        answer = authenticate(wire)
                        assert answer["error_code"] == 0, answer
                    wire.request(18, 0, {})
                done += 1
            elapsed = time.perf_counter() - start
            print(f"| {listener} | {mechanism} | {done / elapsed:.0f} | "
                  f"{(broker_cpu_s(b) - cpu) * 1000 / done:.2f} |", flush=True)


def throughput(args: argparse.Namespace) -> None:
    count = args.mb * 1_000_000 // args.message_size
    protocols = ["PLAINTEXT", "SSL", "SASL_SSL"]
    with bench_broker(args.shards) as (b, pki):
        source = "consume-source"
        create_topic(b.bootstrap, source, partitions=2)
        produce(_conf(b, pki, "PLAINTEXT"), source, count, args.message_size)
        results: dict[str, dict[str, list[float]]] = {
            p: {"produce": [], "consume": [], "produce_cpu": [], "consume_cpu": []} for p in protocols}
        mb = count * args.message_size / 1e6
        for run in range(args.runs):
            for protocol in protocols:
                topic = f"produce-{protocol.lower()}-{run}"
                create_topic(b.bootstrap, topic, partitions=2)
                row = results[protocol]
                cpu = broker_cpu_s(b)
                row["produce"].append(produce(_conf(b, pki, protocol), topic, count, args.message_size))
                row["produce_cpu"].append((broker_cpu_s(b) - cpu) * 1000 / mb)
                cpu = broker_cpu_s(b)
                row["consume"].append(consume(_conf(b, pki, protocol), source, count))
                row["consume_cpu"].append((broker_cpu_s(b) - cpu) * 1000 / mb)
                print(f"run {run + 1} {protocol}: produce {row['produce'][-1]:.0f} MB/s "
                      f"({row['produce_cpu'][-1]:.1f} broker CPU ms/MB), consume {row['consume'][-1]:.0f} MB/s "
                      f"({row['consume_cpu'][-1]:.1f} ms/MB)", flush=True)
    base = {k: statistics.median(v) for k, v in results["PLAINTEXT"].items()}
    print(f"\n{args.mb} MB of {args.message_size} B messages, {args.shards} shard(s), medians of {args.runs}")
    print("| protocol | produce MB/s | vs PLAINTEXT | broker CPU ms/MB | consume MB/s (100 KiB fetches) "
          "| vs PLAINTEXT | broker CPU ms/MB |")
    print("|---|---|---|---|---|---|---|")
    for protocol in protocols:
        med = {k: statistics.median(v) for k, v in results[protocol].items()}
        print(f"| {protocol} | {med['produce']:.0f} | {med['produce'] / base['produce']:.2f} | "
              f"{med['produce_cpu']:.1f} | {med['consume']:.0f} | {med['consume'] / base['consume']:.2f} | "
              f"{med['consume_cpu']:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--message-size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("mode", nargs="?", choices=("throughput", "handshakes"), default="throughput")
    ap.add_argument("--seconds", type=float, default=3.0, help="handshakes: seconds per listener and mechanism")
    args = ap.parse_args()
    if args.mode == "handshakes":
        handshakes(args)
        return
    throughput(args)


if __name__ == "__main__":
    main()
