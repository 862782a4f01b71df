"""Edge cases of the primitive codecs: varint boundaries, nulls, compact forms, short reads."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyk.errors import ProtocolViolation
from pyk.protocol import primitives as p


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (300, b"\xac\x02"),
        (16383, b"\xff\x7f"),
        (16384, b"\x80\x80\x01"),
        (2**21 - 1, b"\xff\xff\x7f"),
        (2**28, b"\x80\x80\x80\x80\x01"),
        (2**32 - 1, b"\xff\xff\xff\xff\x0f"),
    ],
)
def test_uvarint_vectors(value, encoded):
    assert p.encode_uvarint(value) == encoded
    assert p.uvarint_size(value) == len(encoded)
    assert p.read_uvarint(memoryview(b"\xee" + encoded + b"\xee"), 1) == (value, 1 + len(encoded))


def test_uvarint_rejects_overlong_and_truncated():
    with pytest.raises(ProtocolViolation, match="longer than 5 bytes"):
        p.read_uvarint(b"\x80\x80\x80\x80\x80\x01", 0)
    with pytest.raises(ProtocolViolation, match="exceeds 32 bits"):
        p.read_uvarint(b"\xff\xff\xff\xff\x1f", 0)
    with pytest.raises(ProtocolViolation, match="unsigned varint"):
        p.read_uvarint(b"\x80\x80", 0)
    with pytest.raises(ValueError):
        p.encode_uvarint(-1)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (-64, b"\x7f"), (64, b"\x80\x01"),
     (2**31 - 1, b"\xfe\xff\xff\xff\x0f"), (-(2**31), b"\xff\xff\xff\xff\x0f")],
)
def test_zigzag_varint_vectors(value, encoded):
    assert p.encode_varint(value) == encoded
    assert p.read_varint(encoded, 0) == (value, len(encoded))
    assert p.varint_size(value) == len(encoded)


def test_varlong_extremes():
    for value in (0, -1, 2**63 - 1, -(2**63), 2**40, -(2**40) - 7):
        raw = p.encode_varlong(value)
        assert p.read_varlong(raw, 0) == (value, len(raw))
        assert p.varint_size(value) == len(raw)
    assert len(p.encode_varlong(-(2**63))) == 10
    with pytest.raises(ValueError):
        p.encode_varint(2**31)
    with pytest.raises(ProtocolViolation, match="longer than 10"):
        p.read_varlong(b"\xff" * 11, 0)


@given(st.integers(-(2**63), 2**63 - 1))
def test_varlong_round_trip(value):
    raw = p.encode_varlong(value)
    assert p.read_varlong(memoryview(raw), 0) == (value, len(raw))


@given(st.integers(0, 2**32 - 1))
def test_uvarint_round_trip(value):
    raw = p.encode_uvarint(value)
    assert p.read_uvarint(raw, 0) == (value, len(raw))


def test_fixed_width_round_trip_and_short_read():
    cases = [
        (p.write_int8, p.read_int8, -128, 1), (p.write_int16, p.read_int16, -32768, 2),
        (p.write_int32, p.read_int32, 2**31 - 1, 4), (p.write_int64, p.read_int64, -(2**63), 8),
        (p.write_uint16, p.read_uint16, 65535, 2), (p.write_uint32, p.read_uint32, 2**32 - 1, 4),
        (p.write_float64, p.read_float64, -2.5, 8), (p.write_bool, p.read_bool, True, 1),
    ]
    for write, read, value, size in cases:
        out = bytearray()
        write(out, value)
        assert len(out) == size
        assert read(memoryview(out), 0) == (value, size)
        with pytest.raises(ProtocolViolation, match=rf"expected {size} bytes \(.*\) at offset 1, {size - 1} remain"):
            read(memoryview(b"\x00" + out[:-1]), 1)


def test_uuid():
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    out = bytearray()
    p.write_uuid(out, u)
    assert out == u.bytes
    assert p.read_uuid(out, 0) == (u, 16)
    with pytest.raises(ProtocolViolation):
        p.read_uuid(out[:15], 0)


def test_strings_null_empty_and_unicode():
    out = bytearray()
    p.write_nullable_string(out, None)
    p.write_string(out, "")
    p.write_string(out, "héllo")
    assert bytes(out) == b"\xff\xff\x00\x00\x00\x06h\xc3\xa9llo"
    view = memoryview(out)
    assert p.read_nullable_string(view, 0) == (None, 2)
    assert p.read_string(view, 2) == ("", 4)
    assert p.read_string(view, 4) == ("héllo", 12)
    with pytest.raises(ProtocolViolation, match="non-nullable"):
        p.read_string(view, 0)
    with pytest.raises(ProtocolViolation, match=r"expected 6 bytes \(string data\) at offset 6, 5 remain"):
        p.read_string(view[:11], 4)
    with pytest.raises(ProtocolViolation, match="not UTF-8"):
        p.read_string(b"\x00\x01\xff", 0)
    with pytest.raises(ProtocolViolation, match="length -2"):
        p.read_nullable_string(b"\xff\xfe", 0)


def test_compact_strings_and_bytes():
    out = bytearray()
    p.write_compact_nullable_string(out, None)
    p.write_compact_string(out, "")
    p.write_compact_string(out, "ab")
    p.write_compact_nullable_bytes(out, None)
    p.write_compact_bytes(out, b"\x01\x02\x03")
    assert bytes(out) == b"\x00\x01\x03ab\x00\x04\x01\x02\x03"
    view = memoryview(out)
    assert p.read_compact_nullable_string(view, 0) == (None, 1)
    assert p.read_compact_string(view, 1) == ("", 2)
    assert p.read_compact_string(view, 2) == ("ab", 5)
    assert p.read_compact_nullable_bytes(view, 5) == (None, 6)
    data, end = p.read_compact_bytes(view, 6)
    assert (bytes(data), end) == (b"\x01\x02\x03", 10)
    with pytest.raises(ProtocolViolation):
        p.read_compact_string(view, 0)
    long = "x" * 200
    out = bytearray()
    p.write_compact_string(out, long)
    assert out[:2] == b"\xc9\x01"
    assert p.read_compact_string(out, 0) == (long, 202)


def test_bytes_are_zero_copy_views():
    frame = bytearray(b"\x00\x00\x00\x03abc")
    data, _ = p.read_bytes(memoryview(frame), 0)
    data[0] = ord("z")
    assert frame == b"\x00\x00\x00\x03zbc"
    out = bytearray()
    p.write_nullable_bytes(out, None)
    assert p.read_nullable_bytes(out, 0) == (None, 4)


def test_arrays_classic_and_compact():
    out = bytearray()
    p.write_array(out, [1, 2], p.write_int32)
    p.write_nullable_array(out, None, p.write_int32)
    p.write_compact_array(out, [], p.write_int32)
    p.write_compact_nullable_array(out, None, p.write_int32)
    p.write_compact_array(out, ["a"], p.write_compact_string)
    assert bytes(out) == b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x02\xff\xff\xff\xff\x01\x00\x02\x02a"
    view = memoryview(out)
    assert p.read_array(view, 0, p.read_int32) == ([1, 2], 12)
    assert p.read_nullable_array(view, 12, p.read_int32) == (None, 16)
    assert p.read_compact_array(view, 16, p.read_int32) == ([], 17)
    assert p.read_compact_nullable_array(view, 17, p.read_int32) == (None, 18)
    assert p.read_compact_array(view, 18, p.read_compact_string) == (["a"], 21)
    with pytest.raises(ProtocolViolation, match="non-nullable"):
        p.read_array(view, 12, p.read_int32)
    with pytest.raises(ProtocolViolation, match="2147483647 elements"):
        p.read_array(b"\x7f\xff\xff\xff\x00", 0, p.read_int8)


def test_tagged_fields():
    out = bytearray()
    p.write_tagged_fields(out, {5: b"xy", 0: b""})
    assert bytes(out) == b"\x02\x00\x00\x05\x02xy"
    fields, end = p.read_tagged_fields(memoryview(out), 0)
    assert {k: bytes(v) for k, v in fields.items()} == {0: b"", 5: b"xy"}
    assert end == len(out) == p.skip_tagged_fields(out, 0)
    with pytest.raises(ProtocolViolation, match="not above"):
        p.read_tagged_fields(b"\x02\x05\x00\x01\x00", 0)
    with pytest.raises(ProtocolViolation, match="tagged field 5"):
        p.read_tagged_fields(b"\x01\x05\x03xy", 0)
