"""Register access without the Unicorn binding's per-call overhead.

`Uc.reg_read` picks a ctypes class for every call (about 4 µs here, most of the Python
time of a system call); the 64-bit registers the kernel reads on every system call need
none of that: one preallocated uint64 and a direct call of `uc_reg_read`, or one
`uc_reg_read_batch` for the syscall arguments. The 16-byte registers (XMM as two
quadwords, x87 data registers as mantissa and exponent) go through one preallocated
pair: a new thread, a fork and every signal frame move all 24 of them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from shstk.emu.cpu.interface import RegDump
from shstk.emu.cpu.regs import FP, XMM
from shstk.emu.cpu.ucbind import UcError
from shstk.emu.cpu.ucbind import lib as uclib
from shstk.emu.cpu.ucconst import UC_ERR_OK

MASK64 = (1 << 64) - 1
_TWO = ctypes.c_int(2)

_u64 = ctypes.c_uint64


def _unchecked(fn: Any) -> Callable[..., int]:
    """`fn` called without argument types: every argument below is already a ctypes
    object (or a register id, a C int), and checking and converting them through
    argtypes was a third of each call (a system call makes three)."""
    return ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.cast(fn, ctypes.c_void_p).value or 0)


_read = _unchecked(uclib.uc_reg_read)
_write = _unchecked(uclib.uc_reg_write)
_read_batch = _unchecked(uclib.uc_reg_read_batch)
_write_batch = _unchecked(uclib.uc_reg_write_batch)


class FastRegs:
    """Direct register reads and writes of one Unicorn instance (`uch` is its handle)."""

    def __init__(self, uch: object, batch: Sequence[int]) -> None:
        self._uch = uch
        self._val = _u64()
        self._ref = ctypes.byref(self._val)
        self._wval = _u64()
        self._wref = ctypes.byref(self._wval)
        self._pair = (_u64 * 2)()
        self._pair_ref = ctypes.byref(self._pair)
        n = len(batch)
        self._cn = ctypes.c_int(n)
        self._ids = (ctypes.c_int * n)(*batch)
        self._vals = (_u64 * n)()
        # the same memory as bytes (zeroed by a copy, not a ctypes call) and as integers
        self._bytes = memoryview(self._vals).cast("B")
        self._quads = self._bytes.cast("Q")
        self._zeros = bytes(8 * n)
        self._ptrs = (ctypes.c_void_p * n)(
            *(ctypes.addressof(self._vals) + 8 * i for i in range(n)))
        self._two_ids = (ctypes.c_int * 2)()
        self._two_vals = (_u64 * 2)()
        self._two_ptrs = (ctypes.c_void_p * 2)(
            ctypes.addressof(self._two_vals), ctypes.addressof(self._two_vals) + 8)

    def read(self, reg_id: int) -> int:
        val = self._val
        val.value = 0  # narrower registers write only their low bytes
        status = _read(self._uch, reg_id, self._ref)
        if status != UC_ERR_OK:
            raise UcError(status)
        return val.value

    def write(self, reg_id: int, value: int) -> None:
        self._wval.value = value
        status = _write(self._uch, reg_id, self._wref)
        if status != UC_ERR_OK:
            raise UcError(status)

    def write_two(self, first: int, first_value: int, second: int, second_value: int) -> None:
        """Two 64-bit registers in one call."""
        ids, vals = self._two_ids, self._two_vals
        ids[0], ids[1] = first, second
        vals[0], vals[1] = first_value, second_value
        status = _write_batch(self._uch, ids, self._two_ptrs, _TWO)
        if status != UC_ERR_OK:
            raise UcError(status)

    def read_wide(self, reg_id: int) -> tuple[int, int]:
        """A 16-byte register as (low quadword, high quadword)."""
        pair = self._pair
        pair[0] = pair[1] = 0
        status = _read(self._uch, reg_id, self._pair_ref)
        if status != UC_ERR_OK:
            raise UcError(status)
        return pair[0], pair[1]

    def write_wide(self, reg_id: int, low: int, high: int) -> None:
        pair = self._pair
        pair[0], pair[1] = low, high
        status = _write(self._uch, reg_id, self._pair_ref)
        if status != UC_ERR_OK:
            raise UcError(status)

    def read_batch(self) -> list[int]:
        """The registers named at construction (the syscall number and arguments, ...)."""
        self._bytes[:] = self._zeros  # narrower registers write only their low bytes
        status = _read_batch(self._uch, self._ids, self._ptrs, self._cn)
        if status != UC_ERR_OK:
            raise UcError(status)
        return self._quads.tolist()


def dump_registers(fast: FastRegs, named: Mapping[str, int]) -> RegDump:
    """Every register of `named` (name -> id), then XMM0-15 and the x87 data registers."""
    read, wide = fast.read, fast.read_wide
    regs: RegDump = {name: read(reg_id) for name, reg_id in named.items()}
    regs["xmm"] = [lo | hi << 64 for lo, hi in map(wide, XMM)]
    regs["fp"] = [(mantissa, exponent & 0xFFFF) for mantissa, exponent in map(wide, FP)]
    return regs


def load_registers(fast: FastRegs, named: Mapping[str, int], regs: RegDump) -> None:
    for name, value in regs.items():
        if name == "xmm":
            for r, v in zip(XMM, cast(list[int], value), strict=True):
                fast.write_wide(r, v & MASK64, v >> 64 & MASK64)
        elif name == "fp":
            for r, (mantissa, exponent) in zip(FP, cast(list[tuple[int, int]], value),
                                               strict=True):
                fast.write_wide(r, mantissa & MASK64, exponent & 0xFFFF)
        elif name in named:
            fast.write(named[name], cast(int, value))
