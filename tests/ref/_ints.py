"""Argument coercion that mirrors Cython's C-integer conversions, so the references raise
the same exception types as pyk._native: TypeError for a non-integer, OverflowError for
an integer outside the C type; and byte views of buffer-protocol objects."""

from __future__ import annotations

import operator


def c_int(value: object, bits: int, signed: bool = True, strict: bool = False) -> int:
    # Cython converts fixed-width ints through __index__, else through __int__ (so a float
    # is truncated); Py_ssize_t (strict) only through __index__.  Anything else (str, None,
    # bytes) is a TypeError.
    try:
        value = operator.index(value)
    except TypeError:
        if strict or not hasattr(type(value), "__int__"):
            raise
        value = int(value)  # type: ignore[call-overload]
    if signed:
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        lo, hi = 0, (1 << bits) - 1
    if not lo <= value <= hi:
        raise OverflowError(f"{value} does not fit a {'signed' if signed else 'unsigned'} {bits}-bit int")
    return value


def int64(value: object) -> int:
    return c_int(value, 64)


def int32(value: object) -> int:
    return c_int(value, 32)


def uint32(value: object) -> int:
    return c_int(value, 32, signed=False)


def ssize(value: object) -> int:
    return c_int(value, 64, strict=True)


def byte_view(buf: object, writable: bool = False) -> memoryview:
    """Flat unsigned-byte view of buf; TypeError for a non-buffer, BufferError when a
    writable view of a read-only object is asked (as PyObject_GetBuffer)."""
    view = memoryview(buf)
    if writable and view.readonly:
        raise BufferError("Object is not writable.")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def be_signed(value: int, bits: int) -> int:
    """Reinterpret an unsigned bits-wide value as two's complement."""
    return value - (1 << bits) if value >> (bits - 1) else value


def wrap64(value: int) -> int:
    """value reduced to int64 two's complement, as C arithmetic under -fwrapv."""
    return be_signed(value & 0xFFFFFFFFFFFFFFFF, 64)
