"""Inputs shared by the micro-benchmarks: producer-shaped batches built with the tests' own
builder (tests/ref/builder.py), JSON-like payloads (pyk.bench.batches.payloads)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pyk.bench.batches import payloads  # noqa: E402
from tests.ref.builder import Record, build_batch  # noqa: E402

CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def make_batch(n_records: int, size: int = 100, compression: int = 0) -> bytearray:
    """A producer-shaped v2 batch: n_records values of `size` bytes, no keys, no headers."""
    values = payloads(size, min(n_records, 1024))
    records = [Record(values[i % len(values)]) for i in range(n_records)]
    return build_batch(records, compression=compression)
