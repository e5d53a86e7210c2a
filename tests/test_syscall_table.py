"""The system-call table is the one source of truth: every row binds a handler that takes
exactly the row's arguments, every kind is one dispatch can decode, every number Linux
6.18 has on x86-64 has a row, and no module under emu/syscalls hides a second definition
of a name (in-process, fast)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from shstk.abi.syscalls import NAMES
from shstk.emu.syscalls import kinds
from shstk.emu.syscalls.spec import ERROR
from shstk.emu.syscalls.table import ENTRIES, TABLE

SYSCALLS_DIR = Path(kinds.__file__).resolve().parent

# The highest x86-64 number in Linux 6.18 (file_setattr). shstk.abi.syscalls.NAMES lacks
# 335 uretprobe (6.11) and 336 uprobe (6.16); they are expected once NAMES has them.
LINUX_6_18_LAST = 469
NOT_IN_NAMES_YET: dict[int, str] = {}
# 335..423 are unused on x86-64 (the gap up to the common numbers of 424 onwards).
UNUSED = set(range(337, 424))


def test_one_row_per_number() -> None:
    numbers = [e.nr for e in ENTRIES]
    assert len(numbers) == len(set(numbers))
    assert numbers == sorted(numbers)


def test_names_match_the_abi() -> None:
    for e in ENTRIES:
        assert NAMES.get(e.nr) == e.name, e


def test_every_number_has_a_row() -> None:
    known = set(range(LINUX_6_18_LAST + 1)) - UNUSED - set(NOT_IN_NAMES_YET)
    assert max(NAMES) >= LINUX_6_18_LAST
    missing_from_names = sorted(known - set(NAMES))
    assert not missing_from_names, f"shstk.abi.syscalls.NAMES lacks {missing_from_names}"
    missing_rows = sorted(nr for nr in known | (set(NOT_IN_NAMES_YET) & set(NAMES))
                          if nr not in TABLE)
    assert not missing_rows, f"no table row for {missing_rows}"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: f"{e.nr}-{e.name}")
def test_row_binds_its_handler(entry) -> None:
    for kind in entry.args:
        assert kind.partition(":")[0] in kinds.DECODERS, f"unknown kind {kind!r}"
    assert len(entry.decoders) == len(entry.args)
    if entry.support == ERROR:
        assert entry.handler is None
        return
    handler = entry.handler.resolve()  # imports the family, as the first call does
    assert callable(handler)
    assert handler.__module__ == f"shstk.emu.syscalls.{entry.handler.family}"
    params = list(inspect.signature(handler).parameters.values())
    assert len(params) >= 2, "handlers take (kernel, task, *args)"
    args = params[2:]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty for p in args), \
        f"{handler.__name__}: no defaults, no *args: one signature per row"
    assert len(args) == len(entry.args), \
        f"{handler.__name__} takes {len(args)} arguments, the row lists {entry.args}"


@pytest.mark.parametrize("path", sorted(SYSCALLS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_name_defined_twice(path: Path) -> None:
    seen: dict[str, int] = {}
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        for name in names:
            assert name not in seen, f"{path.name}: {name} defined at {seen[name]} and " \
                f"{node.lineno}"
            seen[name] = node.lineno


@pytest.mark.parametrize("path", sorted(SYSCALLS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 520


def test_kinds_decode_with_linux_widths() -> None:
    d = kinds.DECODERS
    assert d["fd"](0xFFFFFFFF_FFFFFFFF) == -1
    assert d["fd"](0x1_00000003) == 3
    assert d["i32"](0x80000000) == -(1 << 31)
    assert d["uid"](-1 & kinds.MASK64) == kinds.UID_UNCHANGED
    assert d["uid"](0xFFFFFFFF_FFFFFFFE) == 0xFFFFFFFE
    assert d["rlimit"](-1 & kinds.MASK64) == 0xFFFFFFFF
    assert d["loff"](1 << 63) == -(1 << 63)
    assert d["u"](1 << 63) == 1 << 63
    assert d["p"](0xFFFFFFFF_FFFFF000) == 0xFFFFFFFF_FFFFF000


def test_a_family_is_imported_by_its_first_call() -> None:
    """Start-up imports the table, not the 30 family modules behind it (spec.Handler)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import shstk.emu.syscalls.layer\n"
            "from shstk.emu.syscalls.table import TABLE\n"
            "before = {m for m in sys.modules if m.startswith('shstk.emu.syscalls.')}\n"
            "TABLE[29].handler.resolve()\n"  # shmget
            "after = {m for m in sys.modules if m.startswith('shstk.emu.syscalls.')}\n"
            "print(' '.join(sorted(before)), '|', ' '.join(sorted(after - before)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    before, after = (part.split() for part in out.split("|"))
    families = {e.handler.family for e in ENTRIES if e.handler is not None}
    assert len(families) == 30
    assert not {f"shstk.emu.syscalls.{f}" for f in families} & set(before) - {
        "shstk.emu.syscalls.notify"}  # dispatch itself uses notify (inotify events)
    assert "shstk.emu.syscalls.ipc" in after
