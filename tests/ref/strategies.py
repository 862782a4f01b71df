"""Hypothesis strategies shared by the native-vs-reference tests and the micro-benchmarks:
records, whole batches, and corrupted variants of them."""

from __future__ import annotations

import struct

from hypothesis import strategies as st

from tests.ref.builder import Record, build_batch
from tests.ref.crc32c import crc32c

small_bytes = st.binary(max_size=40)

records = st.builds(
    Record,
    value=st.none() | small_bytes,
    key=st.none() | small_bytes,
    # header keys are Strings (UTF-8) in Kafka's record format
    headers=st.lists(st.tuples(st.text(max_size=6).map(str.encode), st.none() | st.binary(max_size=10)),
                     max_size=3),
    timestamp=st.none() | st.integers(1_600_000_000_000, 1_800_000_000_000),
)

int64s = st.integers(-(1 << 63), (1 << 63) - 1)
offsets = st.integers(0, (1 << 62))


@st.composite
def batches(draw, compression: st.SearchStrategy[int] | None = None, min_records: int = 1) -> bytearray:
    """A valid batch (bytearray) with random records and header fields; uncompressed
    unless a codec strategy is given."""
    return build_batch(
        draw(st.lists(records, min_size=min_records, max_size=8)),
        base_offset=draw(offsets),
        partition_leader_epoch=draw(st.integers(-1, 1000)),
        compression=draw(compression) if compression is not None else 0,
        transactional=draw(st.booleans()),
        producer_id=draw(st.integers(-1, 1 << 40)),
        producer_epoch=draw(st.integers(-1, 100)),
        base_sequence=draw(st.integers(-1, 1 << 30)),
        base_timestamp=draw(st.integers(0, 1 << 42)),
    )


@st.composite
def mutated(draw, data: st.SearchStrategy[bytearray]) -> bytearray:
    """data with a few bytes overwritten (the CRC then recomputed or not, to reach the
    checks behind it), then maybe truncated or extended."""
    buf = bytearray(draw(data))
    for _ in range(draw(st.integers(0, 3))):
        if buf:
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
    if len(buf) >= 61 and draw(st.booleans()):
        struct.pack_into(">I", buf, 17, crc32c(buf[21:]))
    cut = draw(st.integers(0, len(buf)))
    if draw(st.booleans()):
        buf = buf[:cut]
    if draw(st.booleans()):
        buf += draw(st.binary(max_size=80))
    return buf
