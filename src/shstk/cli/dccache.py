"""Start-up: the compiled code of the methods @dataclass writes, kept between runs.

@dataclass writes the source of `__init__`, `__repr__`, `__eq__` (and `__setattr__` for
frozen classes) and compiles it every time a class is created: a .pyc keeps a module's
own code, not these. `shstk run` creates about 85 dataclasses on its way to the first
guest instruction, and compiling their methods was about a fifth of a static hello
world's start-up (issue 18). This keeps the compiled code in one marshal file per
Python version in the package's __pycache__, keyed by the source text (the same text
always compiles to the same code), and writes it back (atomically) when a run had to
compile text the file did not hold. Anything unexpected (another version's dataclasses
that does not call `exec`, an unreadable or unwritable file) only means compiling as
before: the classes are the same either way.
"""

from __future__ import annotations

import atexit
import importlib
import marshal
import os
import sys
from types import CodeType, ModuleType
from typing import Any


class _InspectOnFirstUse(ModuleType):
    """What dataclasses sees as `inspect`: the real module is imported at the first
    attribute asked for. dataclasses uses inspect only to write a docstring for a class
    that has none (every shstk dataclass has one: tests/test_dccache.py), and importing
    inspect (with ast, dis, tokenize, linecache) was about 6 ms of each start-up."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("inspect"), name)


def _import_dataclasses() -> ModuleType:
    if "dataclasses" in sys.modules or "inspect" in sys.modules:
        return importlib.import_module("dataclasses")
    sys.modules["inspect"] = _InspectOnFirstUse("inspect")
    try:
        return importlib.import_module("dataclasses")
    finally:
        del sys.modules["inspect"]  # later importers get the real module


dataclasses = _import_dataclasses()

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "__pycache__", f"dataclass-code.{sys.implementation.cache_tag}.marshal")
_MAX_ENTRIES = 5000  # beyond this, only what this run used is written back

# source text -> its code, marshalled: a run unmarshals only the code it uses (about a
# quarter of what the file holds; unmarshalling all of it was 2 ms of every start-up)
_cache: dict[str, bytes] = {}
_used: dict[str, bytes] = {}
_state = {"new": False}


def _load() -> None:
    try:
        with open(_PATH, "rb") as f:
            data = marshal.loads(f.read())  # load(f) reads in small pieces: 7x slower
    except (OSError, EOFError, ValueError, TypeError):
        return
    if isinstance(data, dict):
        _cache.update((k, v) for k, v in data.items()
                      if isinstance(k, str) and isinstance(v, bytes))


def _code(source: str) -> CodeType:
    """The compiled code of `source`: from the cache, or compiled (and kept)."""
    data = _cache.get(source)
    if data is not None:
        try:
            code = marshal.loads(data)
            if isinstance(code, CodeType):
                _used[source] = data
                return code
        except (EOFError, ValueError, TypeError):
            pass
    code = compile(source, "<string>", "exec")  # the name exec itself would give
    _cache[source] = _used[source] = marshal.dumps(code)
    _state["new"] = True
    return code


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """`exec` as dataclasses calls it, with the compiled code of known text reused."""
    exec(_code(source) if isinstance(source, str) else source, globals, locals)


def _save() -> None:
    if not _state["new"]:
        return
    keep = _cache if len(_cache) <= _MAX_ENTRIES else _used
    tmp = f"{_PATH}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(_PATH), exist_ok=True)
        with open(tmp, "wb") as f:
            marshal.dump(keep, f)
        os.replace(tmp, _PATH)  # concurrent runs: one whole file wins
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def install() -> None:
    """Route dataclasses' compiling through the cache (once, before any shstk dataclass
    is defined)."""
    if getattr(dataclasses, "exec", None) is _exec:
        return
    _load()
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # shadows the builtin there only
    atexit.register(_save)
