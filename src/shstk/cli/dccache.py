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
import dataclasses
import marshal
import os
import sys
from types import CodeType
from typing import Any

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "__pycache__", f"dataclass-code.{sys.implementation.cache_tag}.marshal")
_MAX_ENTRIES = 5000  # beyond this, only what this run used is written back

_cache: dict[str, CodeType] = {}
_used: dict[str, CodeType] = {}
_state = {"new": False}


def _load() -> None:
    try:
        with open(_PATH, "rb") as f:
            data = marshal.loads(f.read())  # load(f) reads in small pieces: 7x slower
    except (OSError, EOFError, ValueError, TypeError):
        return
    if isinstance(data, dict):
        _cache.update((k, v) for k, v in data.items()
                      if isinstance(k, str) and isinstance(v, CodeType))


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    """`exec` as dataclasses calls it, with the compiled code of known text reused."""
    if not isinstance(source, str):
        exec(source, globals, locals)
        return
    code = _cache.get(source)
    if code is None:
        code = compile(source, "<string>", "exec")  # the name exec itself would give
        _cache[source] = code
        _state["new"] = True
    _used[source] = code
    exec(code, globals, locals)


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
