"""pyk._native.crc32c against the reference, the `crc32c` PyPI package and known vectors."""

from __future__ import annotations

import array

import crc32c as crc32c_pypi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyk._native as native
import tests.ref as ref

# The cores are shared: timings vary, so no per-example deadline.
no_deadline = settings(deadline=None)


@pytest.fixture(scope="module", params=[native, ref], ids=["native", "ref"])
def impl(request):
    return request.param


def outcome(fn, *args):
    """fn(*args) as ("ok", value) or ("raise", exception type), for native/ref parity."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return "raise", type(exc)


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


@pytest.mark.parametrize("offset", range(9))
def test_unaligned_and_large(offset):
    # Past the GIL-release threshold, at every start alignment of the 8-byte loops.
    data = bytes(range(256)) * 600
    view = memoryview(data)[offset:]
    expected = crc32c_pypi.crc32c(view)
    assert native.crc32c(view) == expected
    assert native.crc32c_portable(view) == expected


@pytest.mark.parametrize("data", [bytearray(b"abc"), memoryview(b"abc"), array.array("B", b"abc")])
def test_buffer_types(impl, data):
    assert impl.crc32c(data) == crc32c_pypi.crc32c(b"abc")


@pytest.mark.parametrize("args", [("abc",), (None,), (b"x", -1), (b"x", 1 << 32), (b"x", 1.5), (b"x", "1")])
def test_bad_arguments(args):
    assert outcome(native.crc32c, *args) == outcome(ref.crc32c, *args)
