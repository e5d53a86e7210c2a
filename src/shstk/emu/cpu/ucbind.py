"""The part of Unicorn's C API that shstk uses, called through ctypes.

Unicorn's Python package costs about a sixth of a static hello world's start-up before
the first instruction runs (issue 18): it imports every architecture, and to find its
library importlib.resources, pathlib, tempfile and zipfile. shstk needs one
architecture and a dozen functions, so it loads the same library (the one the package
installed) and calls it directly. The behaviour that matters is the package's:
  - an exception raised by a Python hook stops the emulation and is raised again by
    `emu_start` (the first one, if several hooks raise);
  - a failed call raises `UcError` with Unicorn's errno and message;
  - an engine is closed when its `Uc` is garbage.
tests/test_ucbind.py holds the constants and these behaviours to the package.
"""

from __future__ import annotations

import ctypes
import weakref
from collections.abc import Callable
from typing import Any

from shstk.emu.cpu.preload import unicorn_library
from shstk.emu.cpu.ucconst import (
    UC_CTL_CPU_MODEL,
    UC_CTL_IO_WRITE,
    UC_CTL_TB_REMOVE_CACHE,
    UC_CTL_TLB_TYPE,
    UC_ERR_ARG,
    UC_ERR_EXCEPTION,
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_PROT_ALL,
    UC_X86_INS_CPUID,
    UC_X86_INS_SYSCALL,
)


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(unicorn_library())
    i32, u32, u64, size_t, ptr = (ctypes.c_int32, ctypes.c_uint32, ctypes.c_uint64,
                                  ctypes.c_size_t, ctypes.c_void_p)
    protos: dict[str, tuple[Any, ...]] = {
        # name: (restype, argtypes...); uc_ctl and uc_hook_add are variadic: their
        # extra arguments are passed as ctypes values
        "uc_open": (i32, u32, u32, ctypes.POINTER(ptr)),
        "uc_close": (i32, ptr),
        "uc_strerror": (ctypes.c_char_p, i32),
        "uc_emu_start": (i32, ptr, u64, u64, u64, size_t),
        "uc_emu_stop": (i32, ptr),
        "uc_reg_read": (i32, ptr, i32, ptr),
        "uc_reg_write": (i32, ptr, i32, ptr),
        "uc_reg_read_batch": (i32, ptr, ctypes.POINTER(i32), ctypes.POINTER(ptr), i32),
        "uc_reg_write_batch": (i32, ptr, ctypes.POINTER(i32), ctypes.POINTER(ptr), i32),
        "uc_mem_map": (i32, ptr, u64, u64, u32),
        "uc_mem_map_ptr": (i32, ptr, u64, u64, u32, ptr),
        "uc_mem_write": (i32, ptr, u64, ctypes.c_char_p, u64),
        "uc_hook_add": (i32, ptr, ctypes.POINTER(size_t), i32, ptr, ptr, u64, u64),
        "uc_hook_del": (i32, ptr, size_t),
        "uc_context_alloc": (i32, ptr, ctypes.POINTER(ptr)),
        "uc_context_save": (i32, ptr, ptr),
        "uc_context_restore": (i32, ptr, ptr),
        "uc_context_free": (i32, ptr),
        "uc_ctl": (i32, ptr, i32),
    }
    for name, (restype, *argtypes) in protos.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()


class UcError(Exception):
    """A Unicorn call failed; `errno` is its uc_err."""

    def __init__(self, errno: int) -> None:
        super().__init__(errno)
        self.errno = errno

    def __str__(self) -> str:
        return describe(self.errno)


def describe(errno: int) -> str:
    """uc_strerror()."""
    text = lib.uc_strerror(errno)
    return text.decode("ascii", "replace") if text else f"unicorn error {errno}"


def mmu_errors() -> frozenset[int]:
    """The errors of a run stopped by a refused TLB fill: UC_ERR_EXCEPTION here; later
    2.1 releases have UC_ERR_MMU_READ/WRITE/FETCH, told apart by their message."""
    found = {UC_ERR_EXCEPTION}
    for errno in range(UC_ERR_EXCEPTION + 1, UC_ERR_EXCEPTION + 16):
        if "tlb_fill hook returned false" in describe(errno):
            found.add(errno)
    return frozenset(found)


def _check(status: int) -> None:
    if status:
        raise UcError(status)


# The C types of the hooks shstk gives Python callbacks for (unicorn.h's uc_cb_*).
_CB_SYSCALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_CB_CPUID = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
_CB_INVALID = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_void_p)
_CB_INTR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)
_CB_CODE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                            ctypes.c_void_p)


def _close(handle: int) -> None:
    # a finalizer: it must hold no reference to the Uc it closes
    lib.uc_close(handle)


class Context:
    """A saved CPU context (uc_context), freed when garbage."""

    def __init__(self, uch: ctypes.c_void_p) -> None:
        ctx = ctypes.c_void_p()
        _check(lib.uc_context_alloc(uch, ctypes.byref(ctx)))
        self.handle = ctx
        # not at exit: the process's memory goes with it (as the engine's, below)
        weakref.finalize(self, lib.uc_context_free, ctx.value or 0).atexit = False


class Uc:
    """One Unicorn engine."""

    def __init__(self, arch: int, mode: int) -> None:
        uch = ctypes.c_void_p()
        _check(lib.uc_open(arch, mode, ctypes.byref(uch)))
        self._uch = uch
        self._callbacks: dict[int, Any] = {}  # hook handle -> its C callback, kept alive
        self._hook_exception: BaseException | None = None
        # not at exit: closing every engine of a run (its translation buffers, its
        # memory map) only gives back memory that the process's exit gives back anyway
        weakref.finalize(self, _close, uch.value or 0).atexit = False

    # --- running --------------------------------------------------------------------
    def emu_start(self, begin: int, until: int, timeout: int = 0, count: int = 0) -> None:
        self._hook_exception = None
        _check(lib.uc_emu_start(self._uch, begin, until, timeout, count))
        if self._hook_exception is not None:
            exc, self._hook_exception = self._hook_exception, None
            raise exc

    def emu_stop(self) -> None:
        _check(lib.uc_emu_stop(self._uch))

    # --- registers, memory, contexts ----------------------------------------------------
    def reg_read(self, reg_id: int) -> int:
        """A register of at most 64 bits (narrower ones zero-extended)."""
        val = ctypes.c_uint64(0)
        _check(lib.uc_reg_read(self._uch, reg_id, ctypes.byref(val)))
        return val.value

    def reg_write(self, reg_id: int, value: int) -> None:
        val = ctypes.c_uint64(value & 0xFFFFFFFFFFFFFFFF)
        _check(lib.uc_reg_write(self._uch, reg_id, ctypes.byref(val)))

    def mem_map(self, address: int, size: int, perms: int = UC_PROT_ALL) -> None:
        _check(lib.uc_mem_map(self._uch, address, size, perms))

    def mem_map_ptr(self, address: int, size: int, perms: int, ptr: int) -> None:
        _check(lib.uc_mem_map_ptr(self._uch, address, size, perms, ptr))

    def mem_write(self, address: int, data: bytes) -> None:
        _check(lib.uc_mem_write(self._uch, address, data, len(data)))

    def context_save(self) -> Context:
        ctx = Context(self._uch)
        _check(lib.uc_context_save(self._uch, ctx.handle))
        return ctx

    def context_restore(self, ctx: Context) -> None:
        _check(lib.uc_context_restore(self._uch, ctx.handle))

    # --- uc_ctl ---------------------------------------------------------------------------
    def ctl(self, control: int, op: int, *args: Any) -> None:
        """uc_ctl with UC_CTL_READ/WRITE's encoding: op << 30 | nargs << 26 | control."""
        code = (op << 30) | (len(args) << 26) | control
        _check(lib.uc_ctl(self._uch, code, *args))

    def ctl_set_cpu_model(self, model: int) -> None:
        self.ctl(UC_CTL_CPU_MODEL, UC_CTL_IO_WRITE, ctypes.c_int(model))

    def ctl_set_tlb_mode(self, mode: int) -> None:
        self.ctl(UC_CTL_TLB_TYPE, UC_CTL_IO_WRITE, ctypes.c_uint(mode))

    def ctl_remove_cache(self, lbound: int, ubound: int) -> None:
        self.ctl(UC_CTL_TB_REMOVE_CACHE, UC_CTL_IO_WRITE, ctypes.c_uint64(lbound),
                 ctypes.c_uint64(ubound))

    # --- hooks ------------------------------------------------------------------------------
    def hook_add(self, htype: int, callback: Callable[..., Any], user_data: Any = None,
                 begin: int = 1, end: int = 0, arg1: int = 0) -> int:
        """A Python hook, called as `callback(uc, *hook arguments, user_data)`."""
        extra: tuple[Any, ...] = ()
        if htype == UC_HOOK_INSN and arg1 == UC_X86_INS_SYSCALL:
            fn = _CB_SYSCALL(self._guard(lambda: callback(self, user_data), None))
            extra = (ctypes.c_int(arg1),)
        elif htype == UC_HOOK_INSN and arg1 == UC_X86_INS_CPUID:
            fn = _CB_CPUID(self._guard(lambda: int(callback(self, user_data)), 0))
            extra = (ctypes.c_int(arg1),)
        elif htype == UC_HOOK_INSN_INVALID:
            fn = _CB_INVALID(self._guard(lambda: bool(callback(self, user_data)), False))
        elif htype == UC_HOOK_INTR:
            fn = _CB_INTR(self._guard(lambda intno: callback(self, intno, user_data), None))
        elif htype in (UC_HOOK_CODE, UC_HOOK_BLOCK):
            fn = _CB_CODE(self._guard(lambda addr, size: callback(self, addr, size, user_data),
                                      None))
        else:
            raise UcError(UC_ERR_ARG)
        handle = self._add(htype, ctypes.cast(fn, ctypes.c_void_p), None, begin, end, *extra)
        self._callbacks[handle] = fn
        return handle

    def hook_add_native(self, htype: int, callback: int, user_data: int, begin: int = 1,
                        end: int = 0) -> int:
        """A hook that is a C function (its address), called with `user_data` as is: the
        shadow-stack engines' block, TLB-fill and CET hooks, kept alive by their owner."""
        return self._add(htype, ctypes.c_void_p(callback), ctypes.c_void_p(user_data),
                         begin, end)

    def _add(self, htype: int, fn: ctypes.c_void_p, user_data: ctypes.c_void_p | None,
             begin: int, end: int, *extra: Any) -> int:
        handle = ctypes.c_size_t()
        _check(lib.uc_hook_add(self._uch, ctypes.byref(handle), htype, fn, user_data, begin,
                               end, *extra))
        return handle.value

    def _guard(self, call: Callable[..., Any], failed: Any) -> Callable[..., Any]:
        """The C-side callback: Unicorn's handle and user data stripped, an exception
        recorded for emu_start and the emulation stopped."""
        def hook(_uch: int, *args: Any) -> Any:
            try:
                return call(*args[:-1])  # the last C argument is the user data
            except BaseException as exc:
                if self._hook_exception is None:
                    self._hook_exception = exc
                lib.uc_emu_stop(self._uch)
                return failed
        return hook

    def hook_del(self, handle: int) -> None:
        _check(lib.uc_hook_del(self._uch, handle))
        self._callbacks.pop(handle, None)
