"""Source checks run as tests, so CI catches them: ruff over the Python code of the project,
mypy over pyk (strict for the broker's layers, see [tool.mypy]), cython-lint over ext/, and the
import structure of pyk (no import cycles, the broker's layers
never import the tools)."""

from __future__ import annotations

import ast
import graphlib
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def test_ruff_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "pyk", "tests", "bench"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_is_clean() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cython_lint_is_clean() -> None:
    """ext/*.pyx, .pxd, .pxi in the style of [tool.cython-lint] (pyproject.toml)."""
    lint = "import sys; from cython_lint.cython_lint import main; sys.exit(main())"  # no python -m entry
    out = subprocess.run([sys.executable, "-c", lint, "ext"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# Import structure -----------------------------------------------------------------------------------

# The broker (and what it is built from) never depends on the command line, the admin tools or the bench.
BROKER_PACKAGES = ("pyk.server", "pyk.log", "pyk.protocol", "pyk.coordinator", "pyk.cluster")
TOOL_PACKAGES = ("pyk.cli", "pyk.tools", "pyk.bench")


def _modules() -> dict[str, Path | None]:
    """Dotted name -> source file of every pyk module; compiled modules (a .pyi stub) map to None."""
    root = REPO / "pyk"
    mods: dict[str, Path | None] = {}
    for path in sorted(root.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi"):
            continue
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if path.suffix == ".py":
            mods[name] = path
        else:
            mods.setdefault(name, None)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(module: str, is_package: bool, tree: ast.Module) -> list[tuple[str, int]]:
    """(dotted name, line) of every import in the file, at module level or inside functions and
    classes (a lazy import still couples the modules), except under `if TYPE_CHECKING:`."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit_one(stmt)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from a import b`: b is a submodule of a, or a name defined in a
            found.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names)
        else:
            visit(node)

    visit(tree)
    return found


def _import_graph() -> dict[str, dict[str, str]]:
    """module -> {imported pyk module: "file:line" of the first such import}."""
    mods = _modules()
    graph: dict[str, dict[str, str]] = {name: {} for name in mods}
    for name, path in mods.items():
        if path is None:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for target, line in _imported_names(name, path.name == "__init__.py", tree):
            while target and target not in mods:  # longest prefix that is a module
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].setdefault(target, f"{path.relative_to(REPO)}:{line}")
    return graph


def test_no_import_cycles() -> None:
    graph = _import_graph()
    try:
        graphlib.TopologicalSorter({m: set(deps) for m, deps in graph.items()}).prepare()
    except graphlib.CycleError as exc:
        cycle = exc.args[1][::-1]  # graphlib lists it against the import direction
        pytest.fail("import cycle among pyk modules (function-level imports count):\n" + " -> ".join(cycle) + "\n"
                    + "\n".join(f"    {a} imports {b} at {graph[a][b]}" for a, b in itertools.pairwise(cycle)))


def test_broker_layers_do_not_import_the_tools() -> None:
    def within(module: str, packages: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in packages)

    graph = _import_graph()
    bad = [f"{a} imports {b} at {where}" for a, targets in sorted(graph.items()) if within(a, BROKER_PACKAGES)
           for b, where in targets.items() if within(b, TOOL_PACKAGES)]
    assert not bad, "the broker's layers import the command line, tools or bench:\n" + "\n".join(bad)
