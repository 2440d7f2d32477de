"""The shape of the package: rooms by concern, no import cycle, small modules and functions, a clean lint."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "crmnb"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60

ROOMS = {"intake", "analysis", "present", "run", "demo", "params"}
TOP_LEVEL = {"__init__", "cli", "errors", "frames", "handoffs", "handoff_catalogue", "paths", "registry"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PKG.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """Return the crmnb modules ``path`` imports, at its top or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("crmnb"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}: relative import; crmnb imports are absolute")
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("crmnb")}
    return out & known


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected components of more than one module (Tarjan).

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})
    [['a', 'b']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_tree_shows_the_rooms():
    rooms = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert rooms == ROOMS
    loose = {p.stem for p in PKG.glob("*.py")}
    assert loose == TOP_LEVEL, f"modules outside the rooms: {sorted(loose - TOP_LEVEL)}"


def test_no_import_cycle_even_inside_functions():
    mods = _modules()
    known = set(mods)
    # a package's __init__ is not a dependency of its own modules (Python loads it first anyway)
    graph = {
        m: {d for d in imports(p, known) if d != m and not m.startswith(d + ".") and d != "crmnb"}
        for m, p in mods.items()
    }
    assert not cycles(graph), f"import cycles: {cycles(graph)}"


def test_modules_are_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_functions_are_small():
    long = {}
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(ROOT)}:{node.name}"] = n
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def _ruff() -> str:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail(
            "ruff is not installed in this environment: it comes with the test extra (pip install -e '.[test]')"
        )
    return exe


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command):
    res = subprocess.run(
        [_ruff(), *command, "crmnb", "tests", "bench", "notebooks"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, f"ruff {' '.join(command)}:\n{res.stdout[-4000:]}{res.stderr[-2000:]}"
