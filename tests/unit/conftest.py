"""Shared by the native-vs-reference tests: the `impl` fixture runs one test body against
pyk._native and against its pure-Python twin in tests/ref (STYLE practice 6)."""

from __future__ import annotations

import pytest

import pyk._native as native
import tests.ref as ref


@pytest.fixture(scope="module", params=[native, ref], ids=["native", "ref"])
def impl(request):
    return request.param
