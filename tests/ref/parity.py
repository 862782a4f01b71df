"""Helpers for comparing pyk._native with its reference twins in tests."""

from __future__ import annotations

from hypothesis import settings

# The cores are shared: timings vary, so no per-example deadline.
no_deadline = settings(deadline=None)


def outcome(fn, *args):
    """fn(*args) as ("ok", value) or ("raise", exception type), for native/ref parity."""
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return "raise", type(exc)
