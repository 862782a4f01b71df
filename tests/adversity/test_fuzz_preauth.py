"""Fuzzing before authentication: what a stranger can send to a broker's secured listeners.

test_fuzz_live.py fuzzes a PLAINTEXT listener, where every request reaches its handler.  On a
SASL or TLS listener the first bytes meet other code: the TLS handshake (Python's ssl over the
engine), the SASL gate (only ApiVersions, SaslHandshake and SaslAuthenticate pass, in frames of
at most sasl.server.max.receive.size) and the mechanisms' parsers (PLAIN, SCRAM, OAUTHBEARER).
Fuzzing threads open connection after connection of four kinds:

* frames: mutated requests of every API on the SASL_PLAINTEXT listener (the gate);
* sasl: a SaslHandshake naming a mechanism, then SaslAuthenticate frames whose tokens (valid
  first messages of PLAIN, SCRAM-SHA-256/512 and OAUTHBEARER) and framing are mutated;
* hello: a real TLS ClientHello, mutated, sent raw to the SSL and SASL_SSL listeners;
* in-tls: a completed TLS handshake on SASL_SSL, then mutated requests inside the session.

Meanwhile an idempotent confluent-kafka producer and a consumer work over SASL_SSL (PLAIN).
Afterwards: every acknowledged record was consumed, the broker's RSS stayed under a bound, it
still answers, and its log has no traceback.  Budget: PYK_FUZZ_SECONDS (default 20).
"""

from __future__ import annotations

import os
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from pyk import protocol
from tests.adversity.fuzz import apply, random_mutations
from tests.adversity.test_fuzz_live import (
    SECONDS,
    Counts,
    Seeds,
    Traffic,
    _fuzz_connection,
    check_served,
    in_threads,
)
from tests.adversity.test_limits import MIB, rss
from tests.helpers import create_topic, unique_topic, wait_for
from tests.security.conftest import SecureBroker, secure_broker, stop_and_check
from tests.security.pki import Pki

RSS_BOUND = 400 * MIB
KINDS = ("frames", "sasl", "hello", "in-tls")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def _client_hello() -> bytes:
    """The first flight of a real TLS client (Python's ssl, TLS 1.2-1.3), as bytes on the wire."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    session = context.wrap_bio(incoming, outgoing, server_hostname="pyk")
    try:
        session.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def _first_tokens(pki: Pki) -> dict[str, bytes]:
    """A valid first client message of each mechanism, the seeds of the mutated tokens."""
    bearer = pki.token("alice")[0]
    return {"PLAIN": b"\0alice\0alice-secret",
            "SCRAM-SHA-256": b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL",
            "SCRAM-SHA-512": b"n,,n=alice,r=rOprNGfwEbeRWgbNEkqO",
            "OAUTHBEARER": b"n,,\x01auth=Bearer " + bearer.encode() + b"\x01\x01"}


def _frame(api_key: int, version: int, correlation: int, body: dict[str, object]) -> bytes:
    return protocol.encode_request(api_key, version, correlation, "pyk-fuzz", body)[4:]


def _send(s: socket.socket | ssl.SSLSocket, payload: bytes) -> bool:
    """Sends one size-prefixed frame and reads what comes back; False once the broker closed."""
    try:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        return bool(s.recv(65536))
    except (TimeoutError, ssl.SSLWantReadError):
        return True
    except (OSError, ssl.SSLError):
        return False


def _sasl_connection(port: int, rng: random.Random, tokens: dict[str, bytes]) -> int:
    mechanism = rng.choice(list(tokens))
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        s.settimeout(0.2)
        handshake = _frame(17, 1, 1, {"mechanism": mechanism})
        if rng.random() < 0.2:
            handshake = bytes(apply(handshake, random_mutations(rng, 1)))
        if not _send(s, handshake):
            return 1
        sent = 1
        for i in range(rng.randint(1, 3)):
            frame = _frame(36, rng.randint(0, 2), 2 + i, {"auth_bytes": tokens[mechanism]})
            sent += 1
            if not _send(s, bytes(apply(frame, random_mutations(rng, rng.randint(0, 4))))):
                break
    return sent


def _hello_connection(port: int, rng: random.Random, hello: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as s:
        s.settimeout(0.2)
        data = bytes(apply(hello, random_mutations(rng, rng.randint(1, 6))))
        if rng.random() < 0.2:
            data += rng.randbytes(rng.randint(1, 2048))
        try:
            s.sendall(data)
            s.recv(65536)
        except (TimeoutError, OSError):
            pass
    return 1


def _in_tls_connection(port: int, rng: random.Random, context: ssl.SSLContext, seeds: Seeds) -> int:
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as s:
        s.settimeout(0.2)
        for _ in range(rng.randint(1, 6)):
            sent += 1
            if not _send(s, bytes(apply(seeds.pick(rng), random_mutations(rng, rng.randint(0, 4))))):
                break
    return sent


def _fuzz(b: SecureBroker, pki: Pki, seconds: float, sink: str, seed: int) -> Counter[str]:
    tokens, hello, seeds = _first_tokens(pki), _client_hello(), Seeds()
    tls = ssl.create_default_context(cafile=pki.ca)
    done: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def run(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        frames = Counts()
        while time.monotonic() < deadline:
            kind = rng.choice(KINDS)
            if kind == "frames":
                already = frames.frames + frames.batches
                _fuzz_connection("127.0.0.1", b.ports["SASL_PLAINTEXT"], rng, sink, seeds, frames)
                sent = frames.frames + frames.batches - already
            elif kind == "sasl":
                sent = _sasl_connection(b.ports["SASL_PLAINTEXT"], rng, tokens)
            elif kind == "hello":
                sent = _hello_connection(b.ports[rng.choice(("SSL", "SASL_SSL"))], rng, hello)
            else:
                sent = _in_tls_connection(b.ports["SASL_SSL"], rng, tls, seeds)
            with lock:
                done[kind] += 1
                done[f"{kind} frames"] += sent

    in_threads(run)
    return done


@pytest.mark.timeout(SECONDS + 300)
def test_fuzz_before_authentication(tmp_path: Path, pki: Pki) -> None:
    seed = int(os.environ.get("PYK_FUZZ_SEED", "0")) or random.getrandbits(16)
    b = secure_broker(tmp_path / "broker", pki, shards=1, **{"connections.max.idle.ms": 5000})
    b.start()
    try:
        topic, sink = unique_topic("traffic"), unique_topic("sink")
        create_topic(b.bootstrap, topic, partitions=2)
        create_topic(b.bootstrap, sink)
        client = {"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "sasl.username": "alice",
                  "sasl.password": "alice-secret", "ssl.ca.location": pki.ca}
        before = peak = rss(b)
        with Traffic(b.bootstrap_of("SASL_SSL"), topic, client) as traffic:
            wait_for(lambda: traffic.acked, timeout=30, what="the first acknowledged record over SASL_SSL")
            done = _fuzz(b, pki, SECONDS, sink, seed)
            peak = max(peak, rss(b))
        check_served(b, traffic, peak - before, RSS_BOUND)
        assert all(done[kind] for kind in KINDS), done
        print(f"pre-authentication fuzz (seed {seed}, {SECONDS:.0f} s): "
              + ", ".join(f"{done[k]} {k} connections ({done[k + ' frames']} sends)" for k in KINDS)
              + f"; {len(traffic.acked)} records acknowledged over SASL_SSL and read back; "
              f"RSS +{(peak - before) / MIB:.0f} MiB")
    finally:
        stop_and_check(b)
