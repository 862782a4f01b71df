"""The log cleaner's offset map and record filter: pyk._native against tests/ref (one body, both
implementations), plus the properties compaction relies on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref
from pyk.log.segment import record_timestamps
from tests.ref.builder import Record, build_batch
from tests.ref.parity import no_deadline, outcome
from tests.ref.strategies import batches, mutated

# Few distinct keys, so batches repeat keys and later records supersede earlier ones.
keys = st.none() | st.sampled_from([b"a", b"b", b"c", b"", b"key-%d" % 7, bytes(range(40))])
values = st.none() | st.binary(max_size=30)
keyed_records = st.builds(Record, value=values, key=keys)


@st.composite
def logs(draw) -> list[bytes]:
    """Consecutive batches (offsets follow on) of keyed records, some compressed."""
    out = []
    offset = draw(st.integers(0, 1 << 40))
    for _ in range(draw(st.integers(1, 6))):
        recs = draw(st.lists(keyed_records, min_size=1, max_size=12))
        out.append(bytes(build_batch(recs, base_offset=offset, compression=draw(st.sampled_from([0, 0, 1, 2, 3, 4])),
                                     producer_id=draw(st.integers(-1, 5)))))
        offset += len(recs)
    return out


def _plain(batch: bytes | None) -> bytes | None:
    # Compare rebuilt batches uncompressed: codec outputs may differ between library builds.
    return None if batch is None else native.recompress_batch(batch, 0)


@no_deadline
@given(logs(), st.integers(2, 12), st.floats(0.5, 1.0), st.integers(0, 40), st.integers(0, 1 << 42),
       st.integers(0, 1 << 42))
def test_build_and_filter_parity(batches_, slots, load_factor, start_delta, now, horizon):
    maps = [native.OffsetMap(16 * slots, load_factor), ref.OffsetMap(16 * slots, load_factor)]
    start = native.batch_info(batches_[0]).base_offset + start_delta
    results = []
    for m in maps:
        seen = []
        for b in batches_:
            put, complete = m.put_batch(b, start)
            seen.append((put, complete, m.size, m.latest_offset))
            if not complete:
                break
        probes = [m.get(k) for k in [b"a", b"b", b"c", b"", b"zz"]]
        filtered = [m.filter_batch(b, now, horizon) for b in batches_]
        # Filtering the filtered output again: batches that now carry a delete horizon.
        again = [m.filter_batch(x, now + horizon, horizon) for _, _, x in filtered if x is not None]
        results.append((m.slots, m.max_entries, seen, probes,
                        [(k, r, _plain(x)) for k, r, x in filtered + again]))
    assert results[0] == results[1]


@no_deadline
@given(mutated(batches(compression=st.sampled_from([0, 1, 2, 3, 4]))), st.integers(0, 1 << 42))
def test_malformed_batches_same_outcome(buf, now):
    m1, m2 = native.OffsetMap(1024), ref.OffsetMap(1024)
    assert outcome(m1.put_batch, bytes(buf), 0)[0] == outcome(m2.put_batch, bytes(buf), 0)[0]
    got = outcome(m1.filter_batch, bytes(buf), now, now + 5), outcome(m2.filter_batch, bytes(buf), now, now + 5)
    assert got[0][0] == got[1][0]
    if got[0][0] == "raise":
        assert got[0][1] is got[1][1]
    assert outcome(native.count_null_keys, bytes(buf)) == outcome(ref.count_null_keys, bytes(buf))


def test_latest_record_per_key_survives(impl):
    recs = [Record(value=b"v%d" % i, key=b"k%d" % (i % 5)) for i in range(50)]
    batch = build_batch(recs, base_offset=1000)
    m = impl.OffsetMap(1 << 12)
    assert m.put_batch(batch, 0) == (50, True)
    assert m.size == 5 and m.latest_offset == 1049
    kept, removed, rebuilt = m.filter_batch(batch, 0, 0)
    assert (kept, removed) == (5, 45)
    info = native.batch_info(rebuilt)
    # Base offset, last offset (producer sequence range) and timestamps stay; only records go.
    assert (info.base_offset, info.last_offset, info.records_count) == (1000, 1049, 5)
    assert native.crc32c(rebuilt[21:]) == info.crc


def test_tombstones_get_a_delete_horizon_then_go(impl):
    ts = 1_700_000_000_000
    batch = build_batch([Record(value=b"x", key=b"k", timestamp=ts), Record(value=None, key=b"k", timestamp=ts + 7),
                         Record(value=b"y", key=b"j", timestamp=ts + 9)], base_timestamp=ts, compression=1)
    m = impl.OffsetMap(1024)
    m.put_batch(batch, 0)
    horizon = ts + 86_400_000
    kept, removed, stamped = m.filter_batch(batch, ts + 10, horizon)
    assert (kept, removed) == (2, 1)
    info = native.batch_info(stamped)
    assert info.attributes & 0x40 and info.first_timestamp == horizon and info.max_timestamp == ts + 9
    # Record timestamps survive the new base (their deltas were re-based).
    assert list(record_timestamps(stamped)) == [(1, ts + 7), (2, ts + 9)]
    assert m.filter_batch(stamped, horizon - 1, horizon + 5)[:3] == (2, 0, None)  # before the horizon: kept
    assert m.filter_batch(stamped, horizon, horizon + 5)[:2] == (1, 1)  # at it: the tombstone goes


def test_map_fills_and_stops(impl):
    m = impl.OffsetMap(16 * 11, 0.5)  # 11 slots, 5 keys
    batch = build_batch([Record(value=b"v", key=b"k%d" % i) for i in range(8)], base_offset=10)
    assert m.put_batch(batch, 0) == (5, False)
    assert m.latest_offset == 14 and m.is_full
    # Records past latest_offset are kept: a later pass dedupes them.
    assert m.filter_batch(batch, 0, 0)[:2] == (8, 0)
    with pytest.raises(ValueError):
        m.put(b"new", 99)
    m.put(b"k0", 99)  # an existing key still updates
    assert m.get(b"k0") == 99


def test_null_keys_counted_in_compressed_batches(impl):
    batch = build_batch([Record(value=b"v", key=None), Record(value=b"v", key=b"k"), Record(value=b"w")],
                        compression=4)
    assert impl.count_null_keys(batch) == 2


def test_bad_arguments(impl):
    with pytest.raises(ValueError):
        impl.OffsetMap(16)
    with pytest.raises(ValueError):
        impl.OffsetMap(1024, 0.0)
