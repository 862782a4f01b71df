"""CRC32C (Castagnoli) over 1 KiB / 64 KiB / 1 MiB: pyk._native (hardware, and its portable table
fallback) vs the pure-Python reference (tests/ref/crc32c.py) vs the `crc32c` PyPI package
(ICRAR/crc32c, hardware, the well-kept library for this job).  The reference only runs on the
small sizes: it costs ~0.1 us per byte."""

from __future__ import annotations

import importlib
import os

import crc32c as crc32c_pkg
import pytest

import pyk._native as native

ref = importlib.import_module("tests.ref.crc32c")  # the module (tests.ref re-exports the function)

SIZES = {"1KiB": 1024, "64KiB": 64 * 1024, "1MiB": 1 << 20}
DATA = {name: os.urandom(n) for name, n in SIZES.items()}


@pytest.mark.parametrize("size", list(SIZES))
def test_native(benchmark, size):
    benchmark.group = f"crc32c {size}"
    assert benchmark(native.crc32c, DATA[size]) == crc32c_pkg.crc32c(DATA[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_native_portable(benchmark, size):
    benchmark.group = f"crc32c {size}"
    assert benchmark(native.crc32c_portable, DATA[size]) == crc32c_pkg.crc32c(DATA[size])


@pytest.mark.parametrize("size", list(SIZES))
def test_crc32c_package(benchmark, size):
    benchmark.group = f"crc32c {size}"
    benchmark(crc32c_pkg.crc32c, DATA[size])


@pytest.mark.parametrize("size", ["1KiB", "64KiB"])
def test_reference(benchmark, size):
    benchmark.group = f"crc32c {size}"
    assert benchmark(ref.crc32c, DATA[size]) == crc32c_pkg.crc32c(DATA[size])
