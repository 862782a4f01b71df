"""pyk._native.crc32c against the reference, the `crc32c` PyPI package and known vectors."""

from __future__ import annotations

import array

import crc32c as crc32c_pypi
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref
from tests.ref.parity import no_deadline, outcome

# RFC 3720 (iSCSI) B.4 test vectors and the common "123456789" check value.
VECTORS = [
    (b"", 0),
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
]


@pytest.mark.parametrize("data,expected", VECTORS)
def test_vectors(impl, data, expected):
    assert impl.crc32c(data) == expected
    assert impl.crc32c_portable(data) == expected


@no_deadline
@given(st.binary(max_size=300), st.binary(max_size=300), st.integers(0, 0xFFFFFFFF))
def test_matches_reference_and_pypi(a, b, value):
    expected = crc32c_pypi.crc32c(a, value)
    assert ref.crc32c(a, value) == expected
    assert native.crc32c(a, value) == expected
    assert native.crc32c_portable(a, value) == expected
    # chaining: the value of a prefix continues over the rest
    assert native.crc32c(b, native.crc32c(a)) == native.crc32c(a + b)


# Around the hardware path's three-stream block sizes (3 x 256 and 3 x 8192 bytes) and the
# GIL-release threshold (64 KiB).
SIZES = [0, 1, 7, 8, 9, 767, 768, 769, 1543, 24575, 24576, 24577, 49152 + 768 + 13, 65536, 65537, 200_003]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("offset", [0, 1, 3, 7])
def test_block_boundaries_and_alignment(size, offset):
    data = memoryview(bytes(range(251)) * (size // 251 + 2))[offset:offset + size]
    expected = crc32c_pypi.crc32c(data)
    assert native.crc32c(data) == expected
    assert native.crc32c_portable(data) == expected
    assert native.crc32c(data, 0xDEADBEEF) == crc32c_pypi.crc32c(data, 0xDEADBEEF)


@pytest.mark.parametrize("data", [bytearray(b"abc"), memoryview(b"abc"), array.array("B", b"abc")])
def test_buffer_types(impl, data):
    assert impl.crc32c(data) == crc32c_pypi.crc32c(b"abc")


@pytest.mark.parametrize("args", [("abc",), (None,), (b"x", -1), (b"x", 1 << 32), (b"x", 1.5), (b"x", "1")])
def test_bad_arguments(args):
    assert outcome(native.crc32c, *args) == outcome(ref.crc32c, *args)
