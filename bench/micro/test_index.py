"""Offset and time index lookups (binary search over mmap'd 8- and 12-byte entries) in a full
index of 100,000 entries: pyk._native vs the pure-Python reference (tests/ref/index.py).  No
library does this job; Kafka's AbstractIndex does it in Java."""

from __future__ import annotations

import struct

import pytest

import pyk._native as native
from tests import ref

ENTRIES = 100_000
OFFSET_INDEX = b"".join(struct.pack(">ii", i * 40, i * 4096) for i in range(ENTRIES))
TIME_INDEX = b"".join(struct.pack(">qi", 1_700_000_000_000 + i * 10, i * 40) for i in range(ENTRIES))


@pytest.mark.parametrize("impl", [native, ref], ids=["native", "reference"])
def test_index_lookup(benchmark, impl):
    benchmark.group = f"index_lookup {ENTRIES:,} entries"
    assert benchmark(impl.index_lookup, OFFSET_INDEX, ENTRIES, 2_345_678) == 2_345_678 // 40


@pytest.mark.parametrize("impl", [native, ref], ids=["native", "reference"])
def test_timeindex_lookup(benchmark, impl):
    benchmark.group = f"timeindex_lookup {ENTRIES:,} entries"
    benchmark(impl.timeindex_lookup, TIME_INDEX, ENTRIES, 1_700_000_000_000 + 456_789)
