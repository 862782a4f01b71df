"""`pyk bench` as a new user meets it: its libraries come with the package, its help is for users,
and a missing optional extra is named in one line instead of a traceback."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent.parent

# Hides one top-level package, as if it were not installed (a None entry in sys.modules makes
# its import fail and find_spec answer None), then runs pyk's CLI.
_WITHOUT = """
import sys
sys.modules[sys.argv[1]] = None
sys.argv = ["pyk", *sys.argv[2:]]
from pyk.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _pyk(*args: str, without: str = "") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", _WITHOUT, without, *args] if without else [sys.executable, "-m", "pyk", *args]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_bench_libraries_are_dependencies_of_the_package() -> None:
    """A plain `pip install pyk` brings what `pyk bench` imports (hdrh, confluent-kafka)."""
    plain = {Requirement(r).name.lower() for r in importlib.metadata.requires("pyk") or []
             if Requirement(r).marker is None}
    assert {"hdrhistogram", "confluent-kafka"} <= plain


def test_bench_help_is_for_users() -> None:
    out = _pyk("bench", "--help")
    assert out.returncode == 0, out.stderr
    assert "examples:" in out.stdout and "pyk bench produce" in out.stdout
    assert "127.0.0.1:9092" in out.stdout  # the defaults are stated
    assert "pyk/cli.py" not in out.stdout and "add_parser" not in out.stdout


def test_plot_without_matplotlib_names_the_extra(tmp_path: Path) -> None:
    """Checked before any load is sent: exit 2 and one line, no traceback."""
    out = _pyk("bench", "produce", "-b", "127.0.0.1:1", "-d", "1", "--plot", str(tmp_path / "p.png"),
               without="matplotlib")
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "pyk bench: --plot needs matplotlib: pip install 'pyk[plot]'"
