"""The shadow-stack engines: the per-block CALL push / RET check.

Two implementations with one behaviour:
- `NativeEngine`: the C block hook in fastpath.c (built by `pip install`), registered
  with Unicorn through ctypes; Python is only called to decode a block seen for the
  first time.
- `PyEngine`: the same logic in Python, registered through ctypes as well (half the
  cost of the binding's own hook wrapper). Selected with `SHSTK_ENGINE=python`, or when
  the native object is missing.

Both keep the running thread's SSP and U_CET bits, the CALL/RET "armed" by the block
being executed (see fastpath.c for the deferred scheme), the last event, and the
instruction accounting. Shadow-stack memory is the host memory behind the shadow-stack
VMAs, accessed directly (never through uc.mem_write, ~3 us a call).

The shared part is ssbase.py, the engines native.py and pyengine.py; this module picks
one.
"""

from __future__ import annotations

import os
import sys

from shstk.abi.shstk import CET_SHSTK_EN, CET_WRSS_EN
from shstk.emu.cpu.interface import Region
from shstk.emu.cpu.native import BareEngine, NativeEngine, _SsBlock, native_library
from shstk.emu.cpu.pyengine import PyEngine
from shstk.emu.cpu.ssbase import (
    DECODE_OK,
    DECODE_RESTART,
    DECODE_STOP,
    EV_BUDGET,
    EV_CP,
    EV_DECODE,
    EV_NONE,
    EV_SSFAULT,
    SsEngine,
)

_warned: list[bool] = []


def _warn_fallback() -> None:
    if not _warned:
        _warned.append(True)
        print("shstk: the native fast path is not built; using the pure-Python engine "
              "(slower, same results)", file=sys.stderr)


def make_engine(kind: str | None = None) -> SsEngine:
    """`native` (default when built), `python`, or from $SHSTK_ENGINE (`bare`: bench only)."""
    explicit = bool(kind or os.environ.get("SHSTK_ENGINE"))
    kind = kind or os.environ.get("SHSTK_ENGINE") or "native"
    if kind == "bare":
        lib = native_library()
        if lib is None:
            raise ValueError("the bare engine needs the native fast path")
        return BareEngine(lib)
    if kind == "native":
        lib = native_library()
        if lib is not None:
            return NativeEngine(lib)
        if explicit:
            raise ValueError("the native fast path is not built (run `pip install -e .` "
                             "or `make`), or does not match this version of shstk")
        _warn_fallback()
        return PyEngine()
    if kind == "python":
        return PyEngine()
    raise ValueError(f"unknown engine {kind!r} (native or python)")


__all__ = ["CET_SHSTK_EN", "CET_WRSS_EN", "DECODE_OK", "DECODE_RESTART", "DECODE_STOP",
           "EV_BUDGET", "EV_CP", "EV_DECODE", "EV_NONE", "EV_SSFAULT", "BareEngine",
           "NativeEngine", "PyEngine", "Region", "SsEngine", "_SsBlock", "make_engine",
           "native_library"]
