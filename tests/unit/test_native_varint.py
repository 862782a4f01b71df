"""Zigzag varint helpers: pyk._native against the reference and kafka-python."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record import util as kafka_util

import pyk._native as native
import tests.ref as ref
from tests.ref.parity import no_deadline, outcome

int64s = st.integers(-(1 << 63), (1 << 63) - 1)



@no_deadline
@given(int64s)
def test_round_trip(value):
    encoded = native.encode_varint(value)
    assert encoded == ref.encode_varint(value)
    assert native.varint_size(value) == ref.varint_size(value) == len(encoded)
    assert native.decode_varint(b"\x00" + encoded, 1) == (value, len(encoded) + 1)


@no_deadline
@given(st.integers(-(1 << 31), (1 << 31) - 1))
def test_matches_kafka_python(value):
    # kafka-python's encoder covers the 32-bit range records use for lengths and deltas.
    out = bytearray()
    kafka_util.encode_varint(value, out.append)
    assert native.encode_varint(value) == bytes(out)


@no_deadline
@given(st.binary(max_size=14), st.integers(-2, 16))
def test_decode_any_bytes(impl, data, offset):
    assert outcome(impl.decode_varint, data, offset) == outcome(ref.decode_varint, data, offset)


@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1, 1.5, "1"])
def test_encode_out_of_range(value):
    assert outcome(native.encode_varint, value) == outcome(ref.encode_varint, value)
    assert outcome(native.varint_size, value) == outcome(ref.varint_size, value)
