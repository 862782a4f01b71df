"""Shared pytest configuration for pyk's tests."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# Native extension guard (owner: ext/ / pyk._native)
#
# An unbuilt or stale pyk._native is a start-up error, never a silent fallback (STYLE
# practice 6): the whole run stops before collecting anything when the compiled module is
# missing, is not an extension module, or is older than one of its ext/ sources.
# ---------------------------------------------------------------------------------------
import importlib.machinery
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parent.parent
_NATIVE_SOURCES = ("*.pyx", "*.pxd", "*.pxi", "include/*.h", "c/*.c", "c/*.h", "pyk/*.pxd")
_REBUILD = "rebuild with `pip install -e .` (or `python setup.py build_ext --inplace`)"


def _native_problem() -> str | None:
    try:
        import pyk._native as native
    except ImportError as exc:
        return f"pyk._native is not built ({exc}); {_REBUILD}"
    path = Path(native.__file__ or "")
    if not path.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
        return f"pyk._native resolves to {path}, not a compiled extension; {_REBUILD}"
    sources = [p for pattern in _NATIVE_SOURCES for p in (_ROOT / "ext").glob(pattern)]
    built = path.stat().st_mtime
    stale = sorted(str(p.relative_to(_ROOT)) for p in sources if p.stat().st_mtime > built)
    if stale:
        return f"pyk._native ({path.name}) is older than {', '.join(stale)}; {_REBUILD}"
    return None


def pytest_configure(config: pytest.Config) -> None:
    problem = _native_problem()
    if problem:
        raise pytest.UsageError(problem)


# ---------------------------------------------------------------------------------------
# End of the native extension guard.
# ---------------------------------------------------------------------------------------
