"""capstone's C library for the native block decoder, without importing the capstone
package: its __init__ imports every architecture's module (about a fifth of a static
hello world's start-up), and a run only needs x86-64 blocks decoded in C. The Python
binding is imported later, and only when something needs it (a block with a CET
instruction, a fault's operand, a crash report).

The library is the one the binding ships (same file, so the same handle once both are
loaded); its version and the cs_insn layout are checked by decoding one instruction, and
None is returned when anything differs (the caller then uses the binding).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from shstk.emu.cpu.preload import capstone_library

CS_ARCH_X86 = 3  # capstone 5
CS_MODE_64 = 1 << 3
# struct cs_insn (capstone 5): id, address, size, bytes[24], mnemonic[32], op_str[160], ...
OFF_ADDRESS, OFF_SIZE, OFF_MNEMONIC, OFF_OP_STR = 8, 16, 42, 74


@dataclass
class CsLib:
    """capstone's shared library, an open x86-64 handle and the instruction buffer that
    cs_disasm_iter decodes into."""

    lib: ctypes.CDLL
    handle: int  # csh
    insn: int  # a cs_insn from cs_malloc
    iter_fn: int  # address of cs_disasm_iter

    def close(self) -> None:
        if self.insn:
            self.lib.cs_free(ctypes.c_void_p(self.insn), ctypes.c_size_t(1))
            self.insn = 0
        if self.handle:
            h = ctypes.c_size_t(self.handle)
            self.lib.cs_close(ctypes.byref(h))
            self.handle = 0


def open_x86_64() -> CsLib | None:
    path = capstone_library()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)
        lib.cs_version.restype = ctypes.c_int
        lib.cs_version.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        if lib.cs_version(None, None) >> 8 != 5:
            return None
        lib.cs_open.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
        lib.cs_malloc.restype = ctypes.c_void_p
        lib.cs_malloc.argtypes = [ctypes.c_size_t]
        lib.cs_disasm_iter.restype = ctypes.c_bool
        lib.cs_disasm_iter.argtypes = [ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                                       ctypes.POINTER(ctypes.c_size_t),
                                       ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p]
        handle = ctypes.c_size_t()
        if lib.cs_open(CS_ARCH_X86, CS_MODE_64, ctypes.byref(handle)) != 0:
            return None
        cs = CsLib(lib, handle.value, lib.cs_malloc(handle) or 0,
                   ctypes.cast(lib.cs_disasm_iter, ctypes.c_void_p).value or 0)
        if not cs.insn or not cs.iter_fn or not _layout_ok(cs):
            cs.close()
            return None
        return cs
    except (OSError, AttributeError):
        return None


def _layout_ok(cs: CsLib) -> bool:
    """Decode `ret 8` at 0x1234 and find it where the offsets say."""
    code = ctypes.create_string_buffer(b"\xc2\x08\x00", 3)
    ptr = ctypes.c_void_p(ctypes.addressof(code))
    size = ctypes.c_size_t(3)
    addr = ctypes.c_uint64(0x1234)
    if not cs.lib.cs_disasm_iter(cs.handle, ctypes.byref(ptr), ctypes.byref(size),
                                 ctypes.byref(addr), cs.insn):
        return False
    base = cs.insn
    return (ctypes.c_uint64.from_address(base + OFF_ADDRESS).value == 0x1234
            and ctypes.c_uint16.from_address(base + OFF_SIZE).value == 3
            and ctypes.string_at(base + OFF_MNEMONIC) == b"ret"
            and ctypes.string_at(base + OFF_OP_STR) == b"8")
