"""Every implemented api x version x direction round-trips a generated, non-trivial message."""

from __future__ import annotations

import random

import pytest

from pyk import protocol
from pyk.errors import ProtocolViolation
from pyk.protocol.apis import SPECS
from tests.protocol.messages import expected, generate, plain

CASES = [
    (key, version) for key, (low, high) in sorted(protocol.SUPPORTED.items()) for version in range(low, high + 1)
]
SEEDS = range(4)


def _ids(case: tuple[int, int]) -> str:
    return f"{case[0].name}-v{case[1]}"


def _request_frame(key, version, body, correlation_id=7):
    frame = protocol.encode_request(key, version, correlation_id, "pyk-test", body)
    assert int.from_bytes(frame[:4], "big", signed=True) == len(frame) - 4
    return frame


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_request_round_trip(case):
    key, version = case
    request, _ = SPECS[key]
    for seed in SEEDS:
        body = generate(request, version, random.Random(seed))
        frame = _request_frame(key, version, body, correlation_id=seed)
        view = memoryview(bytearray(frame))[4:]
        header, offset = protocol.decode_request_header(view)
        assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (
            key, version, seed, "pyk-test")
        decoded = protocol.decode_request(key, version, view, offset)
        assert plain(decoded) == expected(request, version, body)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_response_round_trip(case):
    key, version = case
    _, response = SPECS[key]
    for seed in SEEDS:
        body = generate(response, version, random.Random(100 + seed))
        parts = protocol.encode_response(key, version, 1000 + seed, body)
        assert all(isinstance(p, bytes) for p in parts)
        frame = b"".join(parts)
        assert int.from_bytes(frame[:4], "big", signed=True) == len(frame) - 4
        correlation_id, decoded = protocol.decode_response(key, version, frame[4:])
        assert correlation_id == 1000 + seed
        assert plain(decoded) == expected(response, version, body)


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_empty_bodies_encode_defaults(case):
    """A handler may omit every field: each then encodes (and decodes back) as its default."""
    key, version = case
    request, response = SPECS[key]
    _, decoded = protocol.decode_response(key, version, b"".join(protocol.encode_response(key, version, 1, {}))[4:])
    assert plain(decoded) == expected(response, version, {})
    view = memoryview(bytearray(protocol.encode_request(key, version, 1, None, {})))[4:]
    header, offset = protocol.decode_request_header(view)
    assert header.client_id is None
    assert plain(protocol.decode_request(key, version, view, offset)) == expected(request, version, {})


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_truncated_frames_raise(case):
    key, version = case
    request, response = SPECS[key]
    body = generate(request, version, random.Random(42))
    view = memoryview(bytearray(_request_frame(key, version, body)))[4:]
    _, offset = protocol.decode_request_header(view)
    cuts = range(offset, len(view)) if len(view) < 400 else random.Random(1).sample(range(offset, len(view)), 300)
    for cut in cuts:
        with pytest.raises(ProtocolViolation):
            protocol.decode_request(key, version, view[:cut], offset)
    frame = b"".join(protocol.encode_response(key, version, 1, generate(response, version, random.Random(43))))
    for cut in range(4, len(frame), max(1, len(frame) // 150)):
        with pytest.raises(ProtocolViolation):
            protocol.decode_response(key, version, frame[4:cut])
