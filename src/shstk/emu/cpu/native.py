"""The native shadow-stack engine: the C block hook in fastpath.c (built by `pip install`),
registered with Unicorn through ctypes. Python is only called to decode a block seen for
the first time (and not even then when capstone's C library can be used directly).
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

from shstk.emu.cpu.cslib import OFF_ADDRESS, OFF_MNEMONIC, OFF_OP_STR, OFF_SIZE, CsLib, open_x86_64
from shstk.emu.cpu.decode import BlockInfo
from shstk.emu.cpu.interface import Region
from shstk.emu.cpu.preload import fastpath_library
from shstk.emu.cpu.regs import REG
from shstk.emu.cpu.ssbase import (
    HOOK_CFUNC,
    CetHookFn,
    DecodeFn,
    MissFn,
    SsEngine,
    hook_add,
    hook_del,
)
from shstk.emu.cpu.ucbind import lib as uclib
from shstk.emu.cpu.ucconst import (
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_INSN_INVALID,
    UC_HOOK_TLB_FILL,
)

if TYPE_CHECKING:
    from _ctypes import CFuncPtr  # the type of a CFUNCTYPE callback


class _SsBlock(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("last", ctypes.c_uint64), ("size", ctypes.c_uint32),
                ("ninsns", ctypes.c_uint32), ("kind", ctypes.c_uint16),
                ("ret_imm", ctypes.c_uint16), ("pad", ctypes.c_uint32)]


class _SsRegion(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64), ("host", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


_DECODE_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32)
_MISS_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int)

class _SsCpu(ctypes.Structure):
    _fields_ = [
        ("ssp", ctypes.c_uint64), ("cet", ctypes.c_uint64), ("pending", ctypes.c_uint64),
        ("pending_addr", ctypes.c_uint64), ("pending_insn", ctypes.c_uint64),
        ("pending_imm", ctypes.c_uint64),
        ("event", ctypes.c_uint64), ("event_code", ctypes.c_uint64),
        ("event_addr", ctypes.c_uint64), ("event_rip", ctypes.c_uint64),
        ("event_expected", ctypes.c_uint64), ("event_actual", ctypes.c_uint64),
        ("event_write", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64), ("insns", ctypes.c_uint64), ("budget", ctypes.c_uint64),
        ("nregions", ctypes.c_uint64), ("cap_regions", ctypes.c_uint64),
        ("regions", ctypes.c_void_p), ("last_region", ctypes.c_uint64),
        ("regions_off", ctypes.c_uint64), ("dead_regions", ctypes.c_uint64),
        ("cache_mask", ctypes.c_uint64), ("cache_used", ctypes.c_uint64),
        ("cache", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p), ("reg_write", ctypes.c_void_p),
        ("emu_stop", ctypes.c_void_p), ("decode", _DECODE_CFUNC),
        ("reg_rip", ctypes.c_int64), ("reg_rsp", ctypes.c_int64),
        ("nvmas", ctypes.c_uint64), ("cap_vmas", ctypes.c_uint64), ("vmas", ctypes.c_void_p),
        ("vmas_off", ctypes.c_uint64), ("dead_vmas", ctypes.c_uint64),
        ("miss", _MISS_CFUNC),
        ("mmu_addr", ctypes.c_uint64), ("mmu_type", ctypes.c_uint64),
        ("mmu_present", ctypes.c_uint64), ("tlb_fills", ctypes.c_uint64),
        ("exit_page", ctypes.c_uint64), ("exit_phys", ctypes.c_uint64),
        ("cet_slow", HOOK_CFUNC),
        ("cs_iter", ctypes.c_void_p), ("cs_handle", ctypes.c_uint64), ("cs_insn", ctypes.c_void_p),
        ("cs_off_address", ctypes.c_uint64), ("cs_off_size", ctypes.c_uint64),
        ("cs_off_mnemonic", ctypes.c_uint64), ("cs_off_op_str", ctypes.c_uint64),
        ("native_decodes", ctypes.c_uint64),
        ("l0", _SsBlock * 1024),  # L0_SIZE
    ]


class _SsCetSite(ctypes.Structure):
    _fields_ = [("cpu", ctypes.c_void_p), ("op", ctypes.c_uint64), ("reg", ctypes.c_int64)]


class _SsXSite(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("op", ctypes.c_uint32), ("size", ctypes.c_uint32),
                ("base", ctypes.c_int32), ("index", ctypes.c_int32), ("seg", ctypes.c_int32),
                ("flags", ctypes.c_uint32), ("scale", ctypes.c_uint64), ("disp", ctypes.c_uint64)]


class _SsXTable(ctypes.Structure):
    _fields_ = [("cpu", ctypes.c_void_p), ("reg_eflags", ctypes.c_int64),
                ("sites", _SsXSite * 256)]  # XSITES


# RSTORSSP / SAVEPREVSSP in ss_invalid_hook (X_* and XF_* in fastpath.c)
_SWITCH_OPS = {"rstorssp": 1, "saveprevssp": 2}
_XF_RIPREL, _XF_BASE, _XF_INDEX, _XF_SEG = 1, 2, 4, 8
_SEG_BASES = {"fs": REG["fs_base"], "gs": REG["gs_base"]}

# the CET instructions ss_cet_hook runs natively (CET_* in fastpath.c)
_NATIVE_CET_OPS = {"rdsspq": 1, "rdsspd": 2, "incsspq": 3}


_native_lib: ctypes.CDLL | None = None


def native_library() -> ctypes.CDLL | None:
    """The compiled fast path, or None when it was not built."""
    global _native_lib
    if _native_lib is None:
        path = fastpath_library()
        if path is None:
            return None
        lib = ctypes.CDLL(path)
        if lib.ss_sizeof_cpu() != ctypes.sizeof(_SsCpu) or \
                lib.ss_sizeof_block() != ctypes.sizeof(_SsBlock) or \
                lib.ss_sizeof_region() != ctypes.sizeof(_SsRegion) or \
                lib.ss_sizeof_cet_site() != ctypes.sizeof(_SsCetSite) or \
                lib.ss_sizeof_xtable() != ctypes.sizeof(_SsXTable):
            return None
        lib.ss_vma_set.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                   ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint64]
        lib.ss_vma_del.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.ss_tlb_fill_ptr.restype = ctypes.c_void_p
        lib.ss_cache_init.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.ss_cache_insert.argtypes = [ctypes.c_void_p, ctypes.POINTER(_SsBlock)]
        lib.ss_cache_invalidate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        lib.ss_cache_lookup.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.POINTER(_SsBlock)]
        lib.ss_free.argtypes = [ctypes.c_void_p]
        lib.ss_region_add.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64,
                                      ctypes.c_uint64, ctypes.c_uint64]
        lib.ss_region_del.argtypes = [ctypes.c_void_p, ctypes.c_uint64]
        lib.ss_resolve_pending.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]
        lib.ss_block_hook_ptr.restype = ctypes.c_void_p
        lib.ss_invalid_hook_ptr.restype = ctypes.c_void_p
        lib.ss_xsite_set.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                                     ctypes.c_uint32, ctypes.c_int32, ctypes.c_int32,
                                     ctypes.c_uint64, ctypes.c_int32, ctypes.c_uint32,
                                     ctypes.c_uint64]
        lib.ss_xsite_invalidate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        lib.ss_cet_hook_ptr.restype = ctypes.c_void_p
        _native_lib = lib
    return _native_lib


def _ctypes_field(name: str) -> property:
    def get(self: NativeEngine) -> int:
        return getattr(self._c, name)

    def set_(self: NativeEngine, value: int) -> None:
        setattr(self._c, name, value & 0xFFFFFFFFFFFFFFFF)

    return property(get, set_)


class NativeEngine(SsEngine):
    name = "native"

    for _f in ("ssp", "cet", "pending", "pending_addr", "pending_insn", "pending_imm", "event",
               "event_code", "event_addr", "event_rip", "event_expected", "event_actual",
               "event_write", "blocks", "insns", "budget", "mmu_addr", "mmu_type",
               "mmu_present", "tlb_fills", "exit_page", "exit_phys"):
        locals()[_f] = _ctypes_field(_f)
    del _f

    def __init__(self, lib: ctypes.CDLL) -> None:
        super().__init__()
        self._lib = lib
        self._c = _SsCpu()
        self._ptr = ctypes.addressof(self._c)
        if lib.ss_cache_init(self._ptr, 14) != 0:
            raise MemoryError("shadow-stack block cache")
        self._decode_cb: CFuncPtr | None = None
        self._cet_slow_cb: CFuncPtr | None = None
        self._cs: CsLib | None = None  # capstone's C library, for the native decoder
        self._setup_decoder()
        self._cet_sites: dict[int, _SsCetSite] = {}  # hook handle -> its site record
        self._xtable = _SsXTable(self._ptr, 0)
        self._xptr = ctypes.addressof(self._xtable)

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        c = self._c
        c.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        c.reg_write = ctypes.cast(uclib.uc_reg_write, ctypes.c_void_p).value
        c.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        c.reg_rip = reg_rip
        c.reg_rsp = reg_rsp
        self._decode_cb = _DECODE_CFUNC(lambda _cpu, addr, size: decode(addr, size))
        c.decode = self._decode_cb
        hook_add(uc, UC_HOOK_BLOCK, self._lib.ss_block_hook_ptr(), self._ptr)

    def set_cet_slow_path(self, hook: CetHookFn) -> None:
        """Where ss_cet_hook sends what it does not handle (the Python CET hook)."""
        self._cet_slow_cb = HOOK_CFUNC(hook)
        self._c.cet_slow = self._cet_slow_cb

    def add_cet_hook(self, uc: object, site: int, mnemonic: str, reg_id: int | None
                     ) -> int | None:
        op = _NATIVE_CET_OPS.get(mnemonic)
        if op is None or reg_id is None or self._cet_slow_cb is None:
            return None
        rec = _SsCetSite(self._ptr, op, reg_id)
        handle = hook_add(uc, UC_HOOK_CODE, self._lib.ss_cet_hook_ptr(), ctypes.addressof(rec),
                           begin=site, end=site)
        self._cet_sites[handle] = rec
        return handle

    def install_switch_hook(self, uc: object, reg_eflags: int) -> None:
        self._xtable.reg_eflags = reg_eflags
        hook_add(uc, UC_HOOK_INSN_INVALID, self._lib.ss_invalid_hook_ptr(), self._xptr)

    def note_switch_site(self, site: int, mnemonic: str, size: int,
                         mem: tuple[int, str | None, str | None, int, str | None] | None
                         ) -> None:
        op = _SWITCH_OPS.get(mnemonic)
        if op is None:
            return
        flags, base_id, index_id, seg_id, disp, scale = 0, -1, -1, -1, 0, 1
        if mem is not None:
            disp, base, index, scale, seg = mem
            if base == "rip":
                flags |= _XF_RIPREL
            elif base is not None:
                if base not in REG:  # a 32-bit address: Python keeps it
                    return
                flags |= _XF_BASE
                base_id = REG[base]
            if index is not None:
                if index not in REG:
                    return
                flags |= _XF_INDEX
                index_id = REG[index]
            if seg is not None:
                if seg not in _SEG_BASES:
                    return
                flags |= _XF_SEG
                seg_id = _SEG_BASES[seg]
        elif op == _SWITCH_OPS["rstorssp"]:
            return
        self._lib.ss_xsite_set(self._xptr, site, op, size, base_id, index_id, scale, seg_id,
                               flags, disp & 0xFFFFFFFFFFFFFFFF)

    def del_cet_hook(self, uc: object, handle: int) -> bool:
        if self._cet_sites.pop(handle, None) is None:
            return False
        hook_del(uc, handle)
        return True

    def install_mmu(self, uc: object, miss: MissFn) -> None:
        self._miss_cb = _MISS_CFUNC(lambda _cpu, addr, access: miss(addr, access))
        self._c.miss = self._miss_cb
        hook_add(uc, UC_HOOK_TLB_FILL, self._lib.ss_tlb_fill_ptr(), self._ptr)

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        if self._lib.ss_vma_set(self._ptr, start, end, phys, perms, host) != 0:
            raise MemoryError("page table")

    def vma_del(self, start: int) -> None:
        self._lib.ss_vma_del(self._ptr, start)

    def add_region(self, r: Region) -> None:
        self.regions.add(r)
        if self._lib.ss_region_add(self._ptr, r.start, r.end, r.host,
                                   1 if r.writable else 0) != 0:
            raise MemoryError("shadow-stack region table")

    def remove_region(self, start: int) -> None:
        self.regions.remove(start)
        self._lib.ss_region_del(self._ptr, start)

    def insert_block(self, b: BlockInfo) -> None:
        blk = _SsBlock(b.addr, b.last, b.size, b.ninsns, b.kind, b.ret_imm, 0)
        if self._lib.ss_cache_insert(self._ptr, ctypes.byref(blk)) != 0:
            raise MemoryError("shadow-stack block cache")

    def invalidate(self, start: int, end: int) -> None:
        self._lib.ss_cache_invalidate(self._ptr, start, end)
        self._lib.ss_xsite_invalidate(self._xptr, start, end)

    def resolve_pending(self, uc: object, target: int) -> bool:
        return bool(self._lib.ss_resolve_pending(self._ptr, uc._uch, target))  # type: ignore[attr-defined]

    def close(self) -> None:
        self._lib.ss_free(self._ptr)
        if self._cs is not None:
            self._cs.close()
            self._cs = None

    def _setup_decoder(self) -> None:
        """Let the hook decode blocks itself with capstone's C library (cslib: without
        importing the capstone package), so that Python sees only blocks with CET
        instructions."""
        cs = open_x86_64()
        if cs is None:
            return  # no usable library: Python decodes every block
        self._cs = cs
        c = self._c
        c.cs_handle = cs.handle
        c.cs_insn = cs.insn
        c.cs_off_address = OFF_ADDRESS
        c.cs_off_size = OFF_SIZE
        c.cs_off_mnemonic = OFF_MNEMONIC
        c.cs_off_op_str = OFF_OP_STR
        c.cs_iter = cs.iter_fn

    @property
    def native_decodes(self) -> int:
        return self._c.native_decodes


class BareEngine(NativeEngine):
    """The native MMU without any block hook: nothing is enforced, blocks are not even
    seen. Only for measuring the floor of this design (`bench/`)."""

    name = "bare"

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        self._decode_cb = None

