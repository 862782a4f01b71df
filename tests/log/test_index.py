"""OffsetIndex / TimeIndex: append, lookup, truncate, trim on close, sanity checks."""

from __future__ import annotations

import os
import struct

import pytest

from pyk.log.index import CorruptIndexError, OffsetIndex, TimeIndex


def test_offset_index_lookup_truncate_trim(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "00000000000000000100.index")
    index = OffsetIndex(path, 100, 800, active=True)
    assert os.path.getsize(path) == 800 and index.max_entries == 100
    assert index.lookup(150) == (100, 0)  # empty: start of the segment
    for i in range(1, 11):
        index.append(100 + 10 * i, 1000 * i)
    assert index.lookup(99) == (100, 0)
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 1000)
    assert index.lookup(155) == (150, 5000)
    assert index.lookup(10**9) == (200, 10000)
    assert index.last_offset == 200
    index.truncate_to(150)  # drops entries for offsets >= 150
    assert index.entries == 4 and index.last_offset == 140
    index.sanity_check(log_size=10**6)
    index.close()
    assert os.path.getsize(path) == 4 * 8  # trimmed to the entries written
    reopened = OffsetIndex(path, 100, 800, active=False)
    assert reopened.entries == 4 and reopened.lookup(145) == (140, 4000)
    reopened.sanity_check(log_size=10**6)
    with pytest.raises(CorruptIndexError):
        reopened.sanity_check(log_size=4000)  # last position past the end of the log
    reopened.close()


def test_offset_index_sanity_catches_disorder_and_size(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "00000000000000000000.index")
    with open(path, "wb") as fh:
        fh.write(struct.pack(">iiii", 5, 100, 3, 200))
    index = OffsetIndex(path, 0, 800, active=False)
    with pytest.raises(CorruptIndexError, match="relative offsets"):
        index.sanity_check(10**6)
    index.close()
    with open(path, "ab") as fh:
        fh.write(b"\x00\x00\x00")
    index = OffsetIndex(path, 0, 800, active=False)
    with pytest.raises(CorruptIndexError, match="multiple"):
        index.sanity_check(10**6)
    index.close()


def test_time_index_reserve_slot_and_lookup(tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "00000000000000000000.timeindex")
    index = TimeIndex(path, 0, 36, active=True)  # 3 slots, one kept for the roll entry
    assert index.lookup(5) == (-1, 0)
    index.maybe_append(1000, 5)
    index.maybe_append(1000, 7)  # not larger: ignored
    index.maybe_append(900, 8)  # smaller: ignored
    index.maybe_append(2000, 9)
    assert index.is_full and index.entries == 2
    index.maybe_append(3000, 12)  # the reserved slot (roll entry)
    assert index.entries == 3
    index.maybe_append(4000, 13)  # nothing more fits
    assert index.entries == 3
    assert index.lookup(999) == (-1, 0)
    assert index.lookup(1500) == (1000, 5)
    assert index.lookup(2000) == (2000, 9)
    assert index.last_entry() == (3000, 12)
    index.truncate_to(9)
    assert index.last_entry() == (1000, 5)
    index.sanity_check(0)
    index.close()
    assert os.path.getsize(path) == 12
