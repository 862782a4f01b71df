"""Offset/time index search: pyk._native against the linear reference."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref
from tests.ref.parity import no_deadline, outcome


@st.composite
def offset_index(draw, max_entries=40):
    keys = sorted(draw(st.sets(st.integers(0, (1 << 31) - 1), max_size=max_entries)))
    data = b"".join(struct.pack(">ii", k, draw(st.integers(0, (1 << 31) - 1))) for k in keys)
    # Preallocated tail: index files are sized up front and zero-filled.
    return bytearray(data + bytes(8 * draw(st.integers(0, 3)))), len(keys), keys


@st.composite
def time_index(draw, max_entries=40):
    keys = sorted(draw(st.lists(st.integers(-(1 << 40), 1 << 45), max_size=max_entries)))
    data = b"".join(struct.pack(">qi", k, i) for i, k in enumerate(keys))
    return bytearray(data + bytes(12 * draw(st.integers(0, 3)))), len(keys), keys


targets = st.integers(-(1 << 46), 1 << 46)


@no_deadline
@given(offset_index(), targets)
def test_index_lookup(impl, index, target):
    buf, n, keys = index
    if keys and draw_near(target):
        target = keys[target % len(keys)]
    assert impl.index_lookup(buf, n, target) == ref.index_lookup(buf, n, target)


@no_deadline
@given(time_index(), targets)
def test_timeindex_lookup(impl, index, target):
    buf, n, keys = index
    if keys and draw_near(target):
        target = keys[target % len(keys)]
    assert impl.timeindex_lookup(buf, n, target) == ref.timeindex_lookup(buf, n, target)


def draw_near(target: int) -> bool:
    """Half the time aim at an existing key (the exact-hit case)."""
    return target % 2 == 0


@pytest.mark.parametrize("n", [0, 1, 2, 1023, 1024, 1025, 3000])
def test_warm_section_boundaries(n):
    # Entries = multiples of 10, so every target between and on them is checked; 1024
    # offset entries fill exactly the 8 KiB warm section.
    buf = b"".join(struct.pack(">ii", 10 * i, i) for i in range(n))
    for target in [-1, 0, 5, 10 * (n - 1024), 10 * (n - 1024) - 1, 10 * n - 10, 10 * n - 9, 10 * n]:
        expected = -1 if target < 0 or n == 0 else min(target // 10, n - 1)
        assert native.index_lookup(buf, n, target) == expected
    tbuf = b"".join(struct.pack(">qi", 10 * i, i) for i in range(n))
    for target in [-1, 0, 5, 10 * (n - 682), 10 * n - 10, 10 * n]:
        expected = -1 if target < 0 or n == 0 else min(target // 10, n - 1)
        assert native.timeindex_lookup(tbuf, n, target) == expected


@pytest.mark.parametrize("args", [
    (bytes(16), 3, 0), (bytes(16), -1, 0), (bytes(16), 2, 1 << 63), ("x", 0, 0), (bytes(8), None, 0), (bytes(8), 1.5, 0),
])
def test_bad_arguments(args):
    assert outcome(native.index_lookup, *args) == outcome(ref.index_lookup, *args)
    assert outcome(native.index_lookup, *args)[0] == "raise"
    assert outcome(native.timeindex_lookup, *args) == outcome(ref.timeindex_lookup, *args)
