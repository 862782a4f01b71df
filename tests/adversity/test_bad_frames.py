"""Bad frames close that one connection; every other connection and client keeps working.

Each case opens a bystander connection first, sends the bad bytes on a second connection, and
checks: the second connection is closed by the broker (promptly, without waiting for a body that
never comes), the bystander still gets answers, and a new connection works.  A traceback in the
broker log fails the test too (tests/conftest.py): a protocol violation is one log line, not a bug.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid

import pytest
from confluent_kafka import TopicPartition

from pyk import protocol
from pyk.protocol import ApiKey
from tests.adversity.wire import (
    API_API_VERSIONS,
    API_FETCH,
    API_PRODUCE,
    Reader,
    WireClient,
    fetch_body,
    frame,
    record_batch,
    request_header,
    string,
)
from tests.helpers import (
    confluent_consume,
    confluent_consumer,
    confluent_produce,
    make_records,
    wait_for,
)

SOCKET_REQUEST_MAX_BYTES = 104857600  # Kafka's default, the broker fixture does not change it


def _cases() -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes to send, half-close our side afterwards)."""
    api_versions = request_header(API_API_VERSIONS, 0, 7)
    return {
        # 0xdeadbeef as a size prefix is negative.
        "garbage": (b"\xde\xad\xbe\xef" * 64, False),
        # A plausible size with nonsense inside: api key 0x4a4b, version 0x4c4d ...
        "garbage-in-frame": (frame(b"JKLMNOPQRSTUVWXYZ" * 3), False),
        "negative-size": (struct.pack(">i", -5), False),
        "zero-size": (struct.pack(">i", 0), False),
        # The size says 100, 20 bytes come, then the client stops sending (EOF mid-frame).
        "truncated-frame": (struct.pack(">i", 100) + api_versions + b"\x00" * 4, True),
        # A complete frame whose header claims a 200-byte client id but carries 3 bytes.
        "truncated-header": (frame(struct.pack(">hhih", API_API_VERSIONS, 0, 7, 200) + b"abc"), False),
        # A Produce v3 whose body ends inside the topic array.
        "truncated-body": (
            frame(
                request_header(API_PRODUCE, 3, 9)
                + string(None)
                + struct.pack(">hii", 1, 1000, 1)
                + b"\x00\x10ab"
            ),
            False,
        ),
        # Announces more than socket.request.max.bytes; the body is never sent.
        "oversize-length": (struct.pack(">i", SOCKET_REQUEST_MAX_BYTES + 1), False),
        "max-int-length": (struct.pack(">i", 2**31 - 1), False),
        "unknown-api-key": (frame(struct.pack(">hhi", 999, 0, 11) + string("x")), False),
        "negative-api-key": (frame(struct.pack(">hhi", -7, 0, 12) + string("x")), False),
        # A known API at a version nobody speaks (ApiVersions is the exception: see below).
        "unsupported-version": (frame(request_header(3, 999, 13)), False),
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_closes_only_that_connection(broker, case):
    data, half_close = CASES[case]
    with WireClient(broker.bootstrap) as bystander, WireClient(broker.bootstrap) as bad:
        assert bystander.api_versions()
        started = time.monotonic()
        bad.send_raw(data)
        if half_close:
            bad.sock.shutdown(socket.SHUT_WR)
        assert bad.closed_by_peer(timeout=5.0), f"{case}: connection still open after 5s"
        assert time.monotonic() - started < 5.0
        assert bystander.api_versions(), f"{case}: bystander connection stopped working"
    with WireClient(broker.bootstrap) as fresh:
        assert fresh.api_versions()


def test_real_client_unaffected_by_bad_connections(broker, topic):
    """All the bad cases at once on parallel connections, while a real client produces and consumes."""
    bad = []
    for data, half_close in CASES.values():
        c = WireClient(broker.bootstrap)
        c.send_raw(data)
        if half_close:
            c.sock.shutdown(socket.SHUT_WR)
        bad.append(c)
    sent = make_records(20)
    assert confluent_produce(broker.bootstrap, topic, sent) == [(0, i) for i in range(20)]
    assert [r.content() for r in confluent_consume(broker.bootstrap, topic, 0, 0, 20)] == [
        r.content() for r in sent
    ]
    for c in bad:
        assert c.closed_by_peer(timeout=5.0)
        c.close()


def test_api_versions_too_new_gets_v0_answer(broker):
    """KIP-511: ApiVersions at an unknown version is answered in v0 with UNSUPPORTED_VERSION (35) and the
    supported ranges, and the connection stays open for the retry.  ApiVersions is flexible from v3, so a
    client asking for v99 sends request header v2 (with its tagged-field section)."""
    with WireClient(broker.bootstrap) as w:
        cid = w.send_request(API_API_VERSIONS, 99, b"\x00", flexible=True)
        resp = w.recv_frame()
        got_cid, error_code, count = struct.unpack_from(">ihi", resp, 0)
        assert (got_cid, error_code) == (cid, 35)
        keys = {struct.unpack_from(">h", resp, 10 + 6 * i)[0] for i in range(count)}
        assert API_API_VERSIONS in keys and API_PRODUCE in keys
        assert w.api_versions()  # same connection, v0 this time


def test_pipelined_requests_answered_in_order(broker):
    """50 requests in one write: 50 responses, in request order."""
    with WireClient(broker.bootstrap) as w:
        w.send_raw(b"".join(frame(request_header(API_API_VERSIONS, 0, 1000 + i)) for i in range(50)))
        cids = [struct.unpack_from(">i", w.recv_frame(), 0)[0] for _ in range(50)]
        assert cids == list(range(1000, 1050))


def test_frames_queued_behind_a_parked_fetch(broker, topic):
    """One write holds a long-polling Fetch, then 200 KiB of small requests and produce frames
    just below, at and above the size that skips the connection's 64 KiB read buffer: the
    broker stops reading while the fetch is parked, then answers every request, in order."""
    confluent_produce(broker.bootstrap, topic, make_records(1))  # creates the topic
    with WireClient(broker.bootstrap) as w:
        leader = w.leader(topic, 0)
        end = leader.list_offset(topic, 0)[1]
        parts, expected = [], []
        cid = 5000
        parts.append(frame(request_header(API_FETCH, 4, cid) + fetch_body(topic, 0, end, max_wait_ms=300)))
        expected.append(cid)
        for _ in range(4000):  # ~100 KiB of ApiVersions
            cid += 1
            parts.append(frame(request_header(API_API_VERSIONS, 0, cid)))
            expected.append(cid)
        sizes = [16 * 1024 - 200, 16 * 1024 + 200, 64 * 1024 - 100, 64 * 1024 + 100, 300 * 1024]
        produce_cids = []
        for size in sizes:  # value sizes: frames on both sides of 16 KiB and of 64 KiB
            cid += 1
            produce_cids.append(cid)
            batch = record_batch([(b"k", b"v" * size)])
            body = (string(None) + struct.pack(">hi", 1, 10_000) + struct.pack(">i", 1) + string(topic)
                    + struct.pack(">ii", 1, 0) + struct.pack(">i", len(batch)) + batch)
            parts.append(frame(request_header(API_PRODUCE, 3, cid) + body))
            expected.append(cid)
            for _ in range(500):
                cid += 1
                parts.append(frame(request_header(API_API_VERSIONS, 0, cid)))
                expected.append(cid)
        leader.send_raw(b"".join(parts))
        responses = {}
        for _ in expected:
            resp = leader.recv_frame()
            responses[struct.unpack_from(">i", resp, 0)[0]] = resp
        assert list(responses) == expected
        for produced in produce_cids:  # one topic, one partition: error code after its index
            r = Reader(responses[produced], 4)
            assert r.int32() == 1 and r.string() == topic and r.int32() == 1
            assert r.take("ih")[1] == 0
        fetched = leader.fetch(topic, 0, end)
        assert [last - first + 1 for first, last, _ in fetched.batches()] == [1] * len(sizes)


def test_frame_sent_one_byte_at_a_time(broker):
    """Framing must not assume a frame arrives in one read."""
    with WireClient(broker.bootstrap) as w:
        data = frame(request_header(API_API_VERSIONS, 0, 4242))
        for i in range(len(data)):
            w.send_raw(data[i : i + 1])
            time.sleep(0.002)
        resp = w.recv_frame()
        assert struct.unpack_from(">ih", resp, 0) == (4242, 0)


def test_many_connections_reset_abruptly(broker, topic):
    """200 connections that each send half a request and then reset (SO_LINGER 0)."""
    half = frame(request_header(API_API_VERSIONS, 0, 1))[:7]
    host, port = broker.bootstrap.rsplit(":", 1)
    for _ in range(200):
        s = socket.create_connection((host, int(port)))
        s.sendall(half)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    with WireClient(broker.bootstrap) as w:
        assert w.api_versions()
    assert confluent_produce(broker.bootstrap, topic, make_records(1)) == [(0, 0)]


def test_client_disconnects_while_waiting_for_response(broker, topic):
    """A consumer parked in a long-poll fetch goes away; the broker must not trip over the dead socket."""
    confluent_produce(broker.bootstrap, topic, make_records(1))
    for _ in range(3):
        c = confluent_consumer(broker.bootstrap, **{"fetch.wait.max.ms": 5000})
        c.assign([TopicPartition(topic, 0, 1)])
        c.consume(num_messages=1, timeout=1.0)  # now parked at the log end
        c.close()
    confluent_produce(broker.bootstrap, topic, make_records(1, prefix="after"))
    assert [r.value for r in confluent_consume(broker.bootstrap, topic, 0, 0, 2)] == [b"r-0", b"after-0"]


@pytest.mark.parametrize("version", [10, 11])
@pytest.mark.parametrize("topic", [{"name": None}, {"name": "t", "topic_id": uuid.UUID(int=7)}], ids=["null-name", "by-id"])
def test_metadata_topic_by_id_before_v12(broker, version, topic):
    """Found by the live fuzzer (tests/adversity/test_fuzz_live.py): Metadata v10/v11 may carry a
    topic id and a null name, but their answer has no room for a null name, so the encoder
    failed (a traceback, the connection closed).  Kafka refuses the request (InvalidRequestException);
    pyk closes the connection with one log line, and keeps serving."""
    data = protocol.encode_request(ApiKey.METADATA, version, 5, "pyk-adversity",
                                   {"topics": [{"topic_id": uuid.UUID(int=0), **topic}]})
    with WireClient(broker.bootstrap) as bystander, WireClient(broker.bootstrap) as bad:
        bad.send_raw(data)
        assert bad.closed_by_peer(timeout=5.0)
        assert bystander.api_versions()
    assert wait_for(lambda: f"Metadata v{version}: a topic by id or without a name" in broker.log_text())
