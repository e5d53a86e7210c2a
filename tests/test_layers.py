"""The layers of DESIGN.md hold: imports only downward, no import circle, short modules.

import-linter checks the layer order (its contract is in pyproject.toml and `make test`
runs `lint-imports`); these tests check what it does not: no circle among run-time
imports, no function-local import used to hide one, and no module so long that it has
stopped being about one thing.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "shstk"
MAX_LINES = 500
# Function-local imports kept on purpose: the CLI loads a command's module (and so
# Unicorn) only when that command runs, so `shstk audit` and `shstk status` start fast.
LAZY_OK = ("cli",)
# The one module that imports shstk modules by name: the system-call table's handlers
# (syscalls/spec.py Handler), whose families load on their first call.
BY_NAME_OK = ("emu/syscalls/spec.py",)


def _imported_by_name() -> dict[str, set[str]]:
    """The edges no static import shows: the table to each family of its rows, the layer
    to the ia32 entry."""
    from shstk.emu.syscalls import layer
    from shstk.emu.syscalls.table import ENTRIES

    pkg = "shstk.emu.syscalls"
    return {
        f"{pkg}.table": {f"{pkg}.{e.handler.family}" for e in ENTRIES if e.handler},
        f"{pkg}.layer": {f"{pkg}.{layer._IA32.family}"},
    }


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _runtime_cycles() -> list[list[str]]:
    graph = grimp.build_graph("shstk", exclude_type_checking_imports=True)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    for module, targets in _imported_by_name().items():
        edges[module] |= targets
    # Tarjan's strongly connected components; every component of two or more is a circle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for m in sorted(edges):
        if m not in index:
            visit(m)
    return cycles


def test_no_import_circle():
    cycles = _runtime_cycles()
    assert not cycles, "modules that import each other at run time:\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def _local_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("shstk"):
                found.append(f"{path.relative_to(SRC.parent)}:{inner.lineno} {inner.module}")
            elif isinstance(inner, ast.ImportFrom) and inner.level:
                found.append(f"{path.relative_to(SRC.parent)}:{inner.lineno} (relative)")
    return found


def test_no_function_local_imports_outside_the_cli():
    found = []
    for path in _modules():
        if path.relative_to(SRC).parts[0] in LAZY_OK:
            continue
        found += _local_imports(path)
    assert not found, "function-local imports of shstk modules:\n" + "\n".join(found)


def test_only_the_table_imports_by_name():
    found = [str(p.relative_to(SRC)) for p in _modules()
             if "import_module(" in p.read_text() and p.relative_to(SRC).parts[0] not in LAZY_OK
             and str(p.relative_to(SRC)) not in BY_NAME_OK]
    assert not found, f"modules importing shstk modules by name: {found}"


def test_the_circle_check_sees_the_table_families():
    edges = _imported_by_name()
    assert "shstk.emu.syscalls.ipc" in edges["shstk.emu.syscalls.table"]
    assert len(edges["shstk.emu.syscalls.table"]) == 30


def test_modules_are_short():
    long = [f"{p.relative_to(SRC.parent)}: {n} lines" for p in _modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


@pytest.mark.parametrize("tool", ["lint-imports"])
def test_layer_contract(tool):
    exe = Path(sys.executable).with_name(tool)
    if not exe.exists():
        pytest.skip(f"{tool} is not installed in this environment (pip install -e '.[dev]')")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, cwd=SRC.parent.parent)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
