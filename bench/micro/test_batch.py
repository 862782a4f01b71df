"""Record batch work on the produce path: validate_batch (uncompressed: header + CRC; compressed
with deep=True: decompress and walk every record), assign_offsets (the in-place offset rewrite),
and scan_batches (recovery's walk over a segment).  pyk._native vs the pure-Python reference
(tests/ref/batch.py) vs kafka-python's DefaultRecordBatch where it does a comparable job:
validate_crc() for the CRC check, iterating the records for the deep validation."""

from __future__ import annotations

import pytest
from bench_inputs import CODECS, make_batch
from kafka.record.default_records import DefaultRecordBatch

import pyk._native as native
from tests import ref

MAX_BYTES = 1 << 30


@pytest.fixture(scope="module", params=["batch_100", "batch_1000"])
def batch(request):
    return request.param, request.getfixturevalue(request.param)


def test_validate_native(benchmark, batch):
    name, data = batch
    benchmark.group = f"validate_batch uncompressed {name}"
    assert benchmark(native.validate_batch, data, MAX_BYTES) == 0


def test_validate_reference(benchmark, batch):
    name, data = batch
    benchmark.group = f"validate_batch uncompressed {name}"
    assert benchmark(ref.validate_batch, data, MAX_BYTES) == 0


def test_validate_kafka_python_crc(benchmark, batch):
    name, data = batch
    benchmark.group = f"validate_batch uncompressed {name}"
    assert benchmark(lambda: DefaultRecordBatch(bytes(data)).validate_crc())


COMPRESSED = {codec: make_batch(1000, compression=c) for codec, c in CODECS.items()}


@pytest.mark.parametrize("codec", list(CODECS))
def test_validate_deep_native(benchmark, codec):
    benchmark.group = f"validate_batch deep {codec} 1000x100B"
    assert benchmark(native.validate_batch, COMPRESSED[codec], MAX_BYTES, True) == 0


@pytest.mark.parametrize("codec", list(CODECS))
def test_validate_deep_reference(benchmark, codec):
    benchmark.group = f"validate_batch deep {codec} 1000x100B"
    assert benchmark(ref.validate_batch, COMPRESSED[codec], MAX_BYTES, True) == 0


@pytest.mark.parametrize("codec", list(CODECS))
def test_validate_deep_kafka_python(benchmark, codec):
    benchmark.group = f"validate_batch deep {codec} 1000x100B"

    def walk() -> int:
        batch = DefaultRecordBatch(bytes(COMPRESSED[codec]))
        assert batch.validate_crc()
        return sum(1 for _ in batch)

    assert benchmark(walk) == 1000


def test_assign_offsets_native(benchmark, batch_1000):
    benchmark.group = "assign_offsets 1000x100B"
    data = bytearray(batch_1000)
    benchmark(native.assign_offsets, data, 123_456_789, 7)


def test_assign_offsets_reference(benchmark, batch_1000):
    benchmark.group = "assign_offsets 1000x100B"
    data = bytearray(batch_1000)
    benchmark(ref.assign_offsets, data, 123_456_789, 7)


def test_assign_offsets_log_append_time_native(benchmark, batch_1000):
    benchmark.group = "assign_offsets LogAppendTime (re-CRC) 1000x100B"
    data = bytearray(batch_1000)
    benchmark(native.assign_offsets, data, 123_456_789, 7, 1_700_000_000_000)


def test_assign_offsets_log_append_time_reference(benchmark, batch_1000):
    benchmark.group = "assign_offsets LogAppendTime (re-CRC) 1000x100B"
    data = bytearray(batch_1000)
    benchmark(ref.assign_offsets, data, 123_456_789, 7, 1_700_000_000_000)


@pytest.fixture(scope="module")
def segment():
    """1000 batches of 100 records back to back (~1 MB of segment)."""
    one = make_batch(100)
    return bytes(one) * 1000


def test_scan_batches_native(benchmark, segment):
    benchmark.group = "scan_batches 1000 batches (~1 MB)"
    assert len(benchmark(native.scan_batches, segment).positions) == 1000


def test_scan_batches_reference(benchmark, segment):
    benchmark.group = "scan_batches 1000 batches (~1 MB)"
    assert len(benchmark(ref.scan_batches, segment).positions) == 1000
