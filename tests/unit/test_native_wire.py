"""ext/wire.pyx: the ProduceRequest and FetchRequest scans, the Produce and Fetch response
writers and the request header scan against their reference twins (tests/ref/wire.py) and the
declarative codec (pyk.protocol), every version."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tests.ref as ref
from pyk import protocol
from pyk.errors import ProtocolViolation
from pyk.log.segment import FileSlice
from pyk.protocol import ApiKey
from pyk.protocol.header import _KINDS
from tests.ref.parity import no_deadline

PRODUCE_VERSIONS = range(0, 10)
int16s = st.integers(-(1 << 15), (1 << 15) - 1)
int32s = st.integers(-(1 << 31), (1 << 31) - 1)
int64s = st.integers(-(1 << 63), (1 << 63) - 1)
names = st.text(max_size=8)


@st.composite
def produce_requests(draw):
    """(version, body) of a valid ProduceRequest."""
    version = draw(st.sampled_from(PRODUCE_VERSIONS))
    topics = draw(st.lists(st.fixed_dictionaries({
        "name": names,
        "partition_data": st.lists(st.fixed_dictionaries({
            "index": int32s, "records": st.none() | st.binary(max_size=40)}), max_size=4),
    }), max_size=4))
    return version, {
        "transactional_id": draw(st.none() | names) if version >= 3 else None,
        "acks": draw(int16s), "timeout_ms": draw(int32s), "topic_data": topics,
    }


def _body(version: int, body: dict) -> bytearray:
    """The request frame without its size prefix and header (correlation id 7, no client id)."""
    frame = protocol.encode_request(ApiKey.PRODUCE, version, 7, None, body)
    _, offset = protocol.decode_request_header(memoryview(frame)[4:])
    return bytearray(frame[4 + offset:])


def _as_dict(scan) -> dict:
    """A scan in the declarative decoder's shape (records as bytes)."""
    it = iter(zip(scan.topics, scan.partitions, scan.records, strict=True))
    topic_data = []
    for name, count in zip(scan.topic_names, scan.topic_counts, strict=True):
        parts = []
        for _ in range(count):
            topic, index, records = next(it)
            assert topic == name
            parts.append({"index": index, "records": None if records is None else bytes(records)})
        topic_data.append({"name": name, "partition_data": parts})
    return {"transactional_id": scan.transactional_id, "acks": scan.acks, "timeout_ms": scan.timeout_ms,
            "topic_data": topic_data}


def _generic(frame: bytearray, version: int) -> dict:
    body = protocol.decode_request(ApiKey.PRODUCE, version, memoryview(frame), 0)
    for topic in body["topic_data"]:
        for part in topic["partition_data"]:
            if part["records"] is not None:
                part["records"] = bytes(part["records"])
    return body


def _outcome(fn, frame: bytearray, version: int):
    try:
        return "ok", fn(frame, version)
    except ProtocolViolation:
        return "raise", ProtocolViolation


def _scan(impl):
    return lambda frame, version: _as_dict(impl.scan_produce_request(memoryview(frame), 0, version))


@no_deadline
@given(produce_requests())
def test_scan_matches_the_generic_decoder(impl, request):
    version, body = request
    frame = _body(version, body)
    assert _scan(impl)(frame, version) == _generic(frame, version)


@no_deadline
@given(produce_requests(), st.data())
def test_scan_of_damaged_frames_matches(impl, request, data):
    """Truncated, overwritten or grown frames: the same body, or ProtocolViolation from both."""
    version, body = request
    frame = _body(version, body)
    cut = data.draw(st.integers(0, len(frame)))
    edits = data.draw(st.lists(st.tuples(st.integers(0, max(len(frame) - 1, 0)), st.integers(0, 255)),
                               max_size=3))
    damaged = bytearray(frame[:cut]) + data.draw(st.binary(max_size=6))
    for pos, value in edits:
        if pos < len(damaged):
            damaged[pos] = value
    assert _outcome(_scan(impl), damaged, version) == _outcome(_generic, damaged, version)


@no_deadline
@given(st.sampled_from(PRODUCE_VERSIONS), st.binary(max_size=64))
def test_scan_of_garbage_matches(impl, version, garbage):
    frame = bytearray(garbage)
    assert _outcome(_scan(impl), frame, version) == _outcome(_generic, frame, version)


def test_v9_tagged_fields_are_skipped(impl):
    # transactional_id null, acks 1, timeout 5, one topic "t" with partition 2 and 3 bytes of
    # records; a tagged field (tag 4, 2 bytes) after the partition, the topic and the body.
    tags = b"\x01\x04\x02xy"
    frame = bytearray(b"\x00" + struct.pack(">hi", 1, 5) + b"\x02\x02t\x02" + struct.pack(">i", 2)
                      + b"\x04abc" + tags + tags + tags)
    assert _scan(impl)(frame, 9) == _generic(frame, 9) == {
        "transactional_id": None, "acks": 1, "timeout_ms": 5,
        "topic_data": [{"name": "t", "partition_data": [{"index": 2, "records": b"abc"}]}]}
    bad = bytearray(frame[:-len(tags)] + b"\x02\x04\x00\x04\x00")  # tags not increasing
    for fn in (_scan(impl), _generic):
        with pytest.raises(ProtocolViolation):
            fn(bad, 9)


def test_records_are_views_of_the_frame(impl):
    frame = _body(3, {"acks": 1, "timeout_ms": 1, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": b"abcd"}]}]})
    scan = impl.scan_produce_request(memoryview(frame), 0, 3)
    frame[-1] = ord("Z")
    assert bytes(scan.records[0]) == b"abcZ"


def test_scan_refuses_bad_arguments(impl):
    with pytest.raises(ValueError):
        impl.scan_produce_request(memoryview(bytearray(8)), 0, 10)
    with pytest.raises(ValueError):
        impl.scan_produce_request(memoryview(bytearray(8)), 9, 3)


# FetchRequest ------------------------------------------------------------------------------

FETCH_VERSIONS = range(4, 13)
int8s = st.integers(-128, 127)


@st.composite
def fetch_requests(draw):
    """(version, body) of a valid FetchRequest: each field the version carries drawn, the rest
    left out (the encoder refuses a non-default value a version cannot carry)."""
    version = draw(st.sampled_from(FETCH_VERSIONS))

    def partition():
        part = {"partition": draw(int32s), "fetch_offset": draw(int64s), "partition_max_bytes": draw(int32s)}
        if version >= 9:
            part["current_leader_epoch"] = draw(int32s)
        if version >= 12:
            part["last_fetched_epoch"] = draw(int32s)
        if version >= 5:
            part["log_start_offset"] = draw(int64s)
        return part

    body = {"replica_id": draw(int32s), "max_wait_ms": draw(int32s), "min_bytes": draw(int32s),
            "max_bytes": draw(int32s), "isolation_level": draw(int8s),
            "topics": [{"topic": draw(names), "partitions": [partition() for _ in range(draw(st.integers(0, 4)))]}
                       for _ in range(draw(st.integers(0, 3)))]}
    if version >= 7:
        body.update(session_id=draw(int32s), session_epoch=draw(int32s), forgotten_topics_data=draw(st.lists(
            st.fixed_dictionaries({"topic": names, "partitions": st.lists(int32s, max_size=3)}), max_size=2)))
    if version >= 11:
        body["rack_id"] = draw(names)
    if version >= 12:
        body["cluster_id"] = draw(st.none() | names)
    return version, body


def _fetch_body(version: int, body: dict) -> bytearray:
    frame = protocol.encode_request(ApiKey.FETCH, version, 7, None, body)
    _, offset = protocol.decode_request_header(memoryview(frame)[4:])
    return bytearray(frame[4 + offset:])


def _fetch_generic(frame: bytearray, version: int) -> dict:
    return protocol.decode_request(ApiKey.FETCH, version, memoryview(frame), 0)


def _fetch_scan(impl):
    return lambda frame, version: impl.scan_fetch_request(memoryview(frame), 0, version)


@no_deadline
@given(fetch_requests())
def test_fetch_scan_matches_the_generic_decoder(impl, request):
    version, body = request
    frame = _fetch_body(version, body)
    assert _fetch_scan(impl)(frame, version) == _fetch_generic(frame, version)


@no_deadline
@given(fetch_requests(), st.data())
def test_fetch_scan_of_damaged_frames_matches(impl, request, data):
    """Truncated, overwritten or grown frames: the same dict, or ProtocolViolation from both."""
    version, body = request
    frame = _fetch_body(version, body)
    cut = data.draw(st.integers(0, len(frame)))
    edits = data.draw(st.lists(st.tuples(st.integers(0, max(len(frame) - 1, 0)), st.integers(0, 255)),
                               max_size=3))
    damaged = bytearray(frame[:cut]) + data.draw(st.binary(max_size=6))
    for pos, value in edits:
        if pos < len(damaged):
            damaged[pos] = value
    assert _outcome(_fetch_scan(impl), damaged, version) == _outcome(_fetch_generic, damaged, version)


@no_deadline
@given(st.sampled_from(FETCH_VERSIONS), st.binary(max_size=64))
def test_fetch_scan_of_garbage_matches(impl, version, garbage):
    frame = bytearray(garbage)
    assert _outcome(_fetch_scan(impl), frame, version) == _outcome(_fetch_generic, frame, version)


@pytest.mark.parametrize("tags", [
    b"\x00",                                # none
    b"\x01\x00\x04\x03abc",                  # cluster_id "abc"
    b"\x01\x00\x01\x00",                     # cluster_id null
    b"\x02\x05\x01z\x00\x03\x02q",            # an unknown tag, then cluster_id "q"
    b"\x02\x00\x03\x02a\x00\x03\x02b",         # cluster_id twice: the last counts
    b"\x01\x00\x00\x03xy",                    # a cluster_id running past its size of 0
    b"\x01\x00\x01\x09",                     # cluster_id longer than the frame
    b"\x01\x00\x05\x02a",                     # a tag size past the frame
    b"\x03\x00\x01\x00",                     # fewer tags than counted
])
def test_fetch_v12_tags_match(impl, tags):
    """The body's tag section (cluster_id is tag 0), built by hand: the generic decoder's
    reading of odd ones (any order, repeats, a value past its size) is the contract."""
    body = _fetch_body(12, {"replica_id": -1, "max_wait_ms": 1, "min_bytes": 1, "topics": []})
    assert body[-1] == 0
    frame = body[:-1] + tags
    assert _outcome(_fetch_scan(impl), frame, 12) == _outcome(_fetch_generic, frame, 12)


def test_fetch_scan_refuses_bad_arguments(impl):
    with pytest.raises(ValueError):
        impl.scan_fetch_request(memoryview(bytearray(40)), 0, 3)
    with pytest.raises(ValueError):
        impl.scan_fetch_request(memoryview(bytearray(40)), 0, 13)
    with pytest.raises(ValueError):
        impl.scan_fetch_request(memoryview(bytearray(8)), 9, 4)


# ProduceResponse ---------------------------------------------------------------------------

@dataclass
class Result:
    error: int
    base_offset: int
    log_append_time: int
    log_start_offset: int
    message: str | None


results = st.builds(Result, int16s, int64s, int64s, int64s, st.none() | st.text(max_size=12))


@no_deadline
@given(st.sampled_from(PRODUCE_VERSIONS), int32s, int32s,
       st.lists(st.tuples(names, st.lists(st.tuples(int32s, results), max_size=4)), max_size=4))
def test_response_matches_the_generic_encoder(impl, version, correlation_id, throttle, topics):
    topic_names = [name for name, _ in topics]
    counts = [len(parts) for _, parts in topics]
    partitions = [index for _, parts in topics for index, _ in parts]
    outcomes = [r for _, parts in topics for _, r in parts]
    body = {"throttle_time_ms": throttle, "responses": [
        {"name": name, "partition_responses": [
            {"index": index, "error_code": r.error, "base_offset": r.base_offset,
             "log_append_time_ms": r.log_append_time, "log_start_offset": r.log_start_offset,
             "error_message": r.message} for index, r in parts]} for name, parts in topics]}
    expected = b"".join(protocol.encode_response(ApiKey.PRODUCE, version, correlation_id, body))
    assert impl.encode_produce_response(version, correlation_id, topic_names, counts, partitions, outcomes,
                                        throttle) == expected


def test_response_refuses_mismatched_lists(impl):
    with pytest.raises(ValueError):
        impl.encode_produce_response(3, 1, ["t"], [2], [0], [Result(0, 0, -1, 0, None)])


# FetchResponse ---------------------------------------------------------------------------


@dataclass
class Read:
    error: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    records: object
    aborted_transactions: list[tuple[int, int]] | None
    preferred_read_replica: int = -1


file_slices = st.builds(FileSlice, st.just(7), st.integers(0, 1 << 40), st.integers(0, 1 << 20))
reads = st.builds(Read, int16s, int64s, int64s, int64s, st.none() | st.binary(max_size=20) | file_slices,
                  st.none() | st.lists(st.tuples(int64s, int64s), max_size=3), int32s)


@no_deadline
@given(st.sampled_from(FETCH_VERSIONS), int32s, int32s, int16s, int32s,
       st.lists(st.tuples(names, st.lists(st.tuples(int32s, reads), max_size=4)), max_size=4))
def test_fetch_response_matches_the_generic_encoder(impl, version, correlation_id, throttle, error, session,
                                                    topics):
    topic_names = [name for name, _ in topics]
    counts = [len(parts) for _, parts in topics]
    partitions = [index for _, parts in topics for index, _ in parts]
    outcomes = [r for _, parts in topics for _, r in parts]
    # The body the Fetch handler built for the declarative codec (pyk/server/handlers/fetch.py).
    body = {"throttle_time_ms": throttle, "error_code": error, "session_id": session, "responses": [
        {"topic": name, "partitions": [{
            "partition_index": index, "error_code": r.error, "high_watermark": r.high_watermark,
            "last_stable_offset": r.last_stable_offset, "log_start_offset": r.log_start_offset,
            "aborted_transactions": None if r.aborted_transactions is None else
            [{"producer_id": pid, "first_offset": first} for pid, first in r.aborted_transactions],
            "preferred_read_replica": r.preferred_read_replica, "records": b"" if r.records is None else r.records,
        } for index, r in parts]} for name, parts in topics]}
    expected = protocol.encode_response(ApiKey.FETCH, version, correlation_id, body)
    got = impl.encode_fetch_response(version, correlation_id, throttle, error, session, topic_names, counts,
                                     partitions, outcomes)
    assert got == expected
    assert all(isinstance(p, bytes) and p or isinstance(p, FileSlice) for p in got)


def test_fetch_response_refuses_mismatched_lists(impl):
    read = Read(0, 0, 0, 0, None, None)
    with pytest.raises(ValueError):
        impl.encode_fetch_response(12, 1, 0, 0, 0, ["t"], [2], [0], [read])
    with pytest.raises(ValueError):
        impl.encode_fetch_response(3, 1, 0, 0, 0, [], [], [], [])


# Request header ------------------------------------------------------------------------------

@st.composite
def request_frames(draw):
    """A header of any known api key and version (client id, tags) with a body, maybe damaged."""
    key = draw(st.sampled_from(sorted(_KINDS)))
    version = draw(st.integers(-2, 20))
    frame = bytearray(struct.pack(">hhi", key, version, draw(int32s)))
    if version >= _KINDS[key][1]:
        client_id = draw(st.none() | names)
        frame += b"\xff\xff" if client_id is None else struct.pack(">h", len(client_id.encode())) + client_id.encode()
        if version >= _KINDS[key][2]:
            frame += draw(st.sampled_from([b"\x00", b"\x01\x03\x01z", b"\x02\x01\x00\x00\x00", b""]))
    frame += draw(st.binary(max_size=4))
    if draw(st.booleans()):
        frame = frame[:draw(st.integers(0, len(frame)))]
    if draw(st.booleans()) and frame:
        frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    return frame


def _header_outcome(fn, frame):
    try:
        return "ok", fn(frame)
    except ProtocolViolation:
        return "raise", ProtocolViolation


@no_deadline
@given(request_frames())
def test_request_header_matches_the_reference(impl, frame):
    assert (_header_outcome(lambda f: impl.scan_request_header(memoryview(f), _KINDS), frame)
            == _header_outcome(lambda f: ref.scan_request_header(memoryview(f), _KINDS), frame))


@given(st.integers(-3, 1 << 20))
def test_frame_buffer(impl, size):
    """A writable bytearray of the size asked (its bytes are the receiver's to fill), or
    ValueError for a negative size."""
    if size < 0:
        with pytest.raises(ValueError):
            impl.frame_buffer(size)
        return
    buf = impl.frame_buffer(size)
    assert type(buf) is bytearray and len(buf) == size
    if size:
        buf[0], buf[-1] = 1, 2
        assert (buf[0], buf[-1]) == ((1, 2) if size > 1 else (2, 2))
