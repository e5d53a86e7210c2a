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
"""

from __future__ import annotations

import bisect
import ctypes
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shstk.emu.cpu.decode import K_CALL, K_NONE, K_RET, BlockInfo

EV_NONE = 0
EV_CP = 1
EV_SSFAULT = 2
EV_BUDGET = 3
EV_DECODE = 4

DECODE_OK = 0
DECODE_RESTART = 1
DECODE_STOP = 2

CET_SHSTK_EN = 1
CET_WRSS_EN = 2

_Q = struct.Struct("<Q")

# The decode callback: (addr, size) -> DECODE_*
DecodeFn = Callable[[int, int], int]
# The page-table miss callback: (addr, access type) -> 1 if a mapping now covers addr
MissFn = Callable[[int, int], int]

_PROT_READ, _PROT_WRITE, _PROT_EXEC = 1, 2, 4
_MEM_READ, _MEM_WRITE, _MEM_FETCH = 16, 17, 18


@dataclass(frozen=True, slots=True)
class Region:
    """One shadow-stack VMA as the engines see it."""

    start: int
    end: int
    host: int  # host address of `start`
    writable: bool  # VM_WRITE: shadow-stack accesses allowed


class _Regions:
    """Shadow-stack VMAs with direct host access, shared by both engines' Python side."""

    def __init__(self) -> None:
        self._regions: list[tuple[int, int, memoryview, bool]] = []
        self._starts: list[int] = []
        self._last: tuple[int, int, memoryview, bool] | None = None

    @staticmethod
    def _entry(r: Region) -> tuple[int, int, memoryview, bool]:
        view = memoryview((ctypes.c_char * (r.end - r.start)).from_address(r.host)).cast("B")
        return (r.start, r.end, view, r.writable)

    def add(self, r: Region) -> None:
        """One more shadow-stack VMA (or a new version of the one at r.start)."""
        i = bisect.bisect_left(self._starts, r.start)
        if i < len(self._starts) and self._starts[i] == r.start:
            self._regions[i] = self._entry(r)
        else:
            self._starts.insert(i, r.start)
            self._regions.insert(i, self._entry(r))
        self._last = None

    def remove(self, start: int) -> None:
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start:
            del self._starts[i]
            del self._regions[i]
        self._last = None

    def find(self, addr: int) -> tuple[int, int, memoryview, bool] | None:
        last = self._last
        if last is not None and last[0] <= addr and addr + 8 <= last[1]:
            return last
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        reg = self._regions[i]
        if addr >= reg[1] or addr + 8 > reg[1]:
            return None
        self._last = reg
        return reg

    def slot(self, addr: int) -> tuple[memoryview, int] | None:
        """Where a shadow-stack access at `addr` lands, or None if it must fault."""
        reg = self.find(addr)
        if reg is None or not reg[3]:
            return None
        return reg[2], addr - reg[0]


class _EngineBase:
    name = "?"

    def __init__(self) -> None:
        self.regions = _Regions()

    # --- shadow-stack memory, for CET instructions and the Python hook -------------
    def ss_read(self, addr: int) -> int | None:
        """Shadow-stack read of 8 bytes; None means #PF (SS access to a non-SS page)."""
        slot = self.regions.slot(addr)
        if slot is None:
            return None
        return _Q.unpack_from(slot[0], slot[1])[0]

    def ss_write(self, addr: int, value: int) -> bool:
        slot = self.regions.slot(addr)
        if slot is None:
            return False
        _Q.pack_into(slot[0], slot[1], value & 0xFFFFFFFFFFFFFFFF)
        return True

    def ss_write32(self, addr: int, value: int) -> bool:
        slot = self.regions.slot(addr & ~7)
        if slot is None:
            return False
        struct.pack_into("<I", slot[0], slot[1] + (addr & 7), value & 0xFFFFFFFF)
        return True

    def ss_read32(self, addr: int) -> int | None:
        slot = self.regions.slot(addr & ~7)
        if slot is None:
            return None
        return struct.unpack_from("<I", slot[0], slot[1] + (addr & 7))[0]

    # --- shadow-stack regions (one per shadow-stack VMA) ----------------------------
    def add_region(self, r: Region) -> None:
        self.regions.add(r)

    def remove_region(self, start: int) -> None:
        self.regions.remove(start)

    # --- CET instruction sites -----------------------------------------------------
    def set_cet_slow_path(self, hook: Callable[[object, int, int, object], None]) -> None:
        """Where natively hooked CET instructions go when the native code cannot finish."""

    def add_cet_hook(self, uc: object, site: int, mnemonic: str, reg_id: int | None
                     ) -> int | None:
        """Hook the CET instruction at `site` natively; None: use the Python hook."""
        return None

    def del_cet_hook(self, uc: object, handle: int) -> bool:
        """Remove a hook add_cet_hook made; False if it was not one of ours."""
        return False

    # --- thread switch --------------------------------------------------------------
    def save_thread(self) -> tuple[int, int, int, int, int, int]:
        return (self.ssp, self.cet, self.pending, self.pending_addr, self.pending_insn,
                self.pending_imm)

    def load_thread(self, state: tuple[int, int, int, int, int, int]) -> None:
        (self.ssp, self.cet, self.pending, self.pending_addr, self.pending_insn,
         self.pending_imm) = state

    def clear_event(self) -> None:
        self.event = EV_NONE
        self.event_code = 0
        self.event_addr = 0
        self.event_rip = 0
        self.event_expected = 0
        self.event_actual = 0
        self.event_write = 0

    # attributes every engine provides (plain or ctypes-backed)
    ssp: int
    cet: int
    pending: int
    pending_addr: int
    pending_insn: int
    pending_imm: int
    event: int
    event_code: int
    event_addr: int
    event_rip: int
    event_expected: int
    event_actual: int
    event_write: int
    blocks: int
    insns: int
    budget: int


# ---------------------------------------------------------------------------------------
# Native engine
# ---------------------------------------------------------------------------------------

class _SsBlock(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("last", ctypes.c_uint64), ("size", ctypes.c_uint32),
                ("ninsns", ctypes.c_uint32), ("kind", ctypes.c_uint16),
                ("ret_imm", ctypes.c_uint16), ("pad", ctypes.c_uint32)]


class _SsRegion(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("end", ctypes.c_uint64), ("host", ctypes.c_uint64),
                ("flags", ctypes.c_uint64)]


_DECODE_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32)
_MISS_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int)


class _TlbEntry(ctypes.Structure):
    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_int)]


_TLB_CFUNC = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                              ctypes.POINTER(_TlbEntry), ctypes.c_void_p)
_HOOK_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                               ctypes.c_void_p)


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
        ("cache_mask", ctypes.c_uint64), ("cache_used", ctypes.c_uint64),
        ("cache", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p), ("reg_write", ctypes.c_void_p),
        ("emu_stop", ctypes.c_void_p), ("decode", _DECODE_CFUNC),
        ("reg_rip", ctypes.c_int64), ("reg_rsp", ctypes.c_int64),
        ("nvmas", ctypes.c_uint64), ("cap_vmas", ctypes.c_uint64), ("vmas", ctypes.c_void_p),
        ("miss", _MISS_CFUNC),
        ("mmu_addr", ctypes.c_uint64), ("mmu_type", ctypes.c_uint64),
        ("mmu_present", ctypes.c_uint64), ("tlb_fills", ctypes.c_uint64),
        ("exit_page", ctypes.c_uint64), ("exit_phys", ctypes.c_uint64),
        ("cet_slow", _HOOK_CFUNC),
        ("cs_iter", ctypes.c_void_p), ("cs_handle", ctypes.c_uint64), ("cs_insn", ctypes.c_void_p),
        ("cs_off_address", ctypes.c_uint64), ("cs_off_size", ctypes.c_uint64),
        ("cs_off_mnemonic", ctypes.c_uint64), ("cs_off_op_str", ctypes.c_uint64),
        ("native_decodes", ctypes.c_uint64),
        ("l0", _SsBlock * 1024),  # L0_SIZE
    ]


class _SsCetSite(ctypes.Structure):
    _fields_ = [("cpu", ctypes.c_void_p), ("op", ctypes.c_uint64), ("reg", ctypes.c_int64)]


# the CET instructions ss_cet_hook runs natively (CET_* in fastpath.c)
_NATIVE_CET_OPS = {"rdsspq": 1, "rdsspd": 2, "incsspq": 3}


def _find_native() -> Path | None:
    here = Path(__file__).resolve().parent
    for candidate in sorted(here.glob("_fastpath*.so")):
        return candidate
    return None


_native_lib: ctypes.CDLL | None = None


def native_library() -> ctypes.CDLL | None:
    """The compiled fast path, or None when it was not built."""
    global _native_lib
    if _native_lib is None:
        path = _find_native()
        if path is None:
            return None
        lib = ctypes.CDLL(str(path))
        if lib.ss_sizeof_cpu() != ctypes.sizeof(_SsCpu) or \
                lib.ss_sizeof_block() != ctypes.sizeof(_SsBlock) or \
                lib.ss_sizeof_region() != ctypes.sizeof(_SsRegion) or \
                lib.ss_sizeof_cet_site() != ctypes.sizeof(_SsCetSite):
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
        lib.ss_cet_hook_ptr.restype = ctypes.c_void_p
        _native_lib = lib
    return _native_lib


def _ctypes_field(name: str) -> property:
    def get(self: NativeEngine) -> int:
        return getattr(self._c, name)

    def set_(self: NativeEngine, value: int) -> None:
        setattr(self._c, name, value & 0xFFFFFFFFFFFFFFFF)

    return property(get, set_)


class NativeEngine(_EngineBase):
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
        self._decode_cb: _DECODE_CFUNC | None = None
        self._cet_slow_cb: _HOOK_CFUNC | None = None
        self._cs: object = None
        self._cs_insn: int | None = None
        self._setup_decoder()
        self._cet_sites: dict[int, _SsCetSite] = {}  # hook handle -> its site record

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        from unicorn import UC_HOOK_BLOCK
        from unicorn.unicorn_py3.unicorn import uclib

        c = self._c
        c.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        c.reg_write = ctypes.cast(uclib.uc_reg_write, ctypes.c_void_p).value
        c.emu_stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        c.reg_rip = reg_rip
        c.reg_rsp = reg_rsp
        self._decode_cb = _DECODE_CFUNC(lambda _cpu, addr, size: decode(addr, size))
        c.decode = self._decode_cb
        _hook_add(uc, UC_HOOK_BLOCK, self._lib.ss_block_hook_ptr(), self._ptr)

    def set_cet_slow_path(self, hook: Callable[[object, int, int, object], None]) -> None:
        """Where ss_cet_hook sends what it does not handle (the Python CET hook)."""
        self._cet_slow_cb = _HOOK_CFUNC(hook)
        self._c.cet_slow = self._cet_slow_cb

    def add_cet_hook(self, uc: object, site: int, mnemonic: str, reg_id: int | None
                     ) -> int | None:
        from unicorn import UC_HOOK_CODE

        op = _NATIVE_CET_OPS.get(mnemonic)
        if op is None or reg_id is None or self._cet_slow_cb is None:
            return None
        rec = _SsCetSite(self._ptr, op, reg_id)
        handle = _hook_add(uc, UC_HOOK_CODE, self._lib.ss_cet_hook_ptr(), ctypes.addressof(rec),
                           begin=site, end=site)
        self._cet_sites[handle] = rec
        return handle

    def del_cet_hook(self, uc: object, handle: int) -> bool:
        if self._cet_sites.pop(handle, None) is None:
            return False
        _hook_del(uc, handle)
        return True

    def install_mmu(self, uc: object, miss: MissFn) -> None:
        from unicorn import UC_HOOK_TLB_FILL

        self._miss_cb = _MISS_CFUNC(lambda _cpu, addr, access: miss(addr, access))
        self._c.miss = self._miss_cb
        _hook_add(uc, UC_HOOK_TLB_FILL, self._lib.ss_tlb_fill_ptr(), self._ptr)

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

    def resolve_pending(self, uc: object, target: int) -> bool:
        return bool(self._lib.ss_resolve_pending(self._ptr, uc._uch, target))  # type: ignore[attr-defined]

    def close(self) -> None:
        self._lib.ss_free(self._ptr)
        if self._cs_insn:
            import capstone

            capstone._cs.cs_free(self._cs_insn, 1)
            self._cs_insn = None

    def _setup_decoder(self) -> None:
        """Let the hook decode blocks itself with capstone's C library (the one the
        Python binding loaded), so that Python sees only blocks with CET instructions."""
        import capstone

        lib = capstone._cs
        try:
            iter_fn = ctypes.cast(lib.cs_disasm_iter, ctypes.c_void_p).value
            lib.cs_malloc.restype = ctypes.c_void_p
            lib.cs_malloc.argtypes = [ctypes.c_size_t]
        except AttributeError:
            return  # an old capstone: Python decodes every block
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        self._cs_insn = lib.cs_malloc(self._cs.csh)
        if not self._cs_insn:
            return
        layout = capstone._cs_insn
        c = self._c
        c.cs_handle = self._cs.csh.value
        c.cs_insn = self._cs_insn
        c.cs_off_address = layout.address.offset
        c.cs_off_size = layout.size.offset
        c.cs_off_mnemonic = layout.mnemonic.offset
        c.cs_off_op_str = layout.op_str.offset
        c.cs_iter = iter_fn

    @property
    def native_decodes(self) -> int:
        return self._c.native_decodes


def _hook_add(uc: object, htype: int, callback: int, user_data: int, *, begin: int = 1,
              end: int = 0) -> int:
    """uc_hook_add with a raw C function pointer (bypasses the binding's wrapper)."""
    from unicorn.unicorn_py3.unicorn import uclib

    handle = ctypes.c_size_t()
    fn = uclib.uc_hook_add
    err = fn(uc._uch, ctypes.byref(handle), ctypes.c_int(htype),  # type: ignore[attr-defined]
             ctypes.c_void_p(callback), ctypes.c_void_p(user_data),
             ctypes.c_uint64(begin), ctypes.c_uint64(end))
    if err:
        raise RuntimeError(f"uc_hook_add failed: {err}")
    return handle.value


def _hook_del(uc: object, handle: int) -> None:
    from unicorn.unicorn_py3.unicorn import uclib

    uclib.uc_hook_del(uc._uch, ctypes.c_size_t(handle))  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------
# Pure-Python engine
# ---------------------------------------------------------------------------------------

class PyEngine(_EngineBase):
    """The fast path's logic in Python: same decisions, same events, same counters."""

    name = "python"

    def __init__(self) -> None:
        super().__init__()
        self.ssp = 0
        self.cet = 0
        self.pending = K_NONE
        self.pending_addr = 0
        self.pending_insn = 0
        self.pending_imm = 0
        self.clear_event()
        self.blocks = 0
        self.insns = 0
        self.budget = 0
        self._cache: dict[int, BlockInfo] = {}
        self._hook_cb: _HOOK_CFUNC | None = None
        self._uc: object = None
        self.mmu_addr = self.mmu_type = self.mmu_present = self.tlb_fills = 0
        self.exit_page = self.exit_phys = 0
        self._vma_starts: list[int] = []
        self._vmas: list[tuple[int, int, int, int]] = []  # (start, end, phys, perms)
        self._tlb_cb: _TLB_CFUNC | None = None

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        from unicorn import UC_HOOK_BLOCK

        self._uc = uc
        self._decode = decode
        self._reg_rip = reg_rip
        self._reg_rsp = reg_rsp
        self._hook_cb = _HOOK_CFUNC(self._make_hook())
        _hook_add(uc, UC_HOOK_BLOCK, ctypes.cast(self._hook_cb, ctypes.c_void_p).value or 0, 0)

    # --- the page table (mirrors ss_tlb_fill in fastpath.c) ---------------------------
    def install_mmu(self, uc: object, miss: MissFn) -> None:
        from unicorn import UC_HOOK_TLB_FILL

        self._miss = miss
        self._tlb_cb = _TLB_CFUNC(self._tlb_fill)
        _hook_add(uc, UC_HOOK_TLB_FILL, ctypes.cast(self._tlb_cb, ctypes.c_void_p).value or 0, 0)

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        i = bisect.bisect_left(self._vma_starts, start)
        if i < len(self._vmas) and self._vma_starts[i] == start:
            self._vmas[i] = (start, end, phys, perms)
            return
        self._vma_starts.insert(i, start)
        self._vmas.insert(i, (start, end, phys, perms))

    def vma_del(self, start: int) -> None:
        i = bisect.bisect_left(self._vma_starts, start)
        if i < len(self._vmas) and self._vma_starts[i] == start:
            del self._vma_starts[i]
            del self._vmas[i]

    def _vma_find(self, addr: int) -> tuple[int, int, int, int] | None:
        i = bisect.bisect_right(self._vma_starts, addr) - 1
        if i >= 0 and addr < self._vmas[i][1]:
            return self._vmas[i]
        return None

    def _tlb_fill(self, _uc: int, vaddr: int, access: int, entry: object, _ud: int) -> bool:
        try:
            self.tlb_fills += 1
            if vaddr == self.exit_page and access == _MEM_FETCH and self.exit_phys:
                e = entry.contents  # type: ignore[attr-defined]
                e.paddr = self.exit_phys
                e.perms = _PROT_EXEC
                return True
            v = self._vma_find(vaddr)
            if v is None and self._miss(vaddr, access):
                v = self._vma_find(vaddr)
            need = _PROT_WRITE if access == _MEM_WRITE else \
                _PROT_EXEC if access == _MEM_FETCH else _PROT_READ
            if v is None or not v[3] & need:
                self.mmu_addr = vaddr
                self.mmu_type = access
                self.mmu_present = int(v is not None)
                return False
            e = entry.contents  # type: ignore[attr-defined]
            e.paddr = v[2] + (vaddr - v[0])
            e.perms = v[3]
            return True
        except BaseException:  # never unwind through C
            self.mmu_addr, self.mmu_type, self.mmu_present = vaddr, access, 0
            return False

    def insert_block(self, b: BlockInfo) -> None:
        self._cache[b.addr] = b

    def invalidate(self, start: int, end: int) -> None:
        # in place: the hook holds a reference to this dict
        for a in [a for a, b in self._cache.items() if a < end and a + b.size > start]:
            del self._cache[a]

    def close(self) -> None:
        self._cache.clear()

    # --- the hook (mirrors ss_block_hook in fastpath.c) -----------------------------
    def _stop_with(self, event: int) -> None:
        self.event = event
        self._uc.emu_stop()  # type: ignore[attr-defined]

    def resolve_pending(self, uc: object, target: int) -> bool:
        kind = self.pending
        self.pending = K_NONE
        if kind == K_CALL:
            if not self.ss_write(self.ssp - 8, self.pending_addr):
                self.event_code = 0
                self.event_addr = (self.ssp - 8) & 0xFFFFFFFFFFFFFFFF
                self.event_rip = self.pending_insn
                self.event_write = 1
                rsp = uc.reg_read(self._reg_rsp)  # type: ignore[attr-defined]
                uc.reg_write(self._reg_rsp, rsp + 8)  # type: ignore[attr-defined]
                uc.reg_write(self._reg_rip, self.pending_insn)  # type: ignore[attr-defined]
                self._stop_with(EV_SSFAULT)
                return False
            self.ssp -= 8
        elif kind == K_RET:
            value = self.ss_read(self.ssp)
            if value is None or value != target:
                if value is None:
                    self.event_code = 0
                    self.event_addr = self.ssp
                    self.event_write = 0
                else:
                    self.event_code = 1
                    self.event_addr = 0
                    self.event_expected = value
                    self.event_actual = target
                self.event_rip = self.pending_addr
                rsp = uc.reg_read(self._reg_rsp)  # type: ignore[attr-defined]
                uc.reg_write(self._reg_rsp, rsp - 8 - self.pending_imm)  # type: ignore[attr-defined]
                uc.reg_write(self._reg_rip, self.pending_addr)  # type: ignore[attr-defined]
                self._stop_with(EV_SSFAULT if value is None else EV_CP)
                return False
            self.ssp += 8
        return True

    def _make_hook(self) -> Callable[[int, int, int, int], None]:
        """The block hook, with everything it touches on every block bound locally
        (it runs once per translation block; attribute lookups are most of its cost)."""
        cache_get = self._cache.get
        decode = self._decode
        uc = self._uc
        reg_rip = self._reg_rip
        resolve = self.resolve_pending
        stop = self._stop_with

        def hook(_uc: int, addr: int, size: int, _ud: int) -> None:
            try:
                if self.pending and not resolve(uc, addr):
                    return
                blocks = self.blocks + 1
                budget = self.budget
                if budget and blocks >= budget:
                    stop(EV_BUDGET)
                    return
                b = cache_get(addr)
                if b is None or b.size != size:
                    r = decode(addr, size)
                    if r == DECODE_RESTART:
                        uc.reg_write(reg_rip, addr)  # type: ignore[attr-defined]
                        return
                    if r != DECODE_OK:
                        stop(EV_DECODE)
                        return
                    b = cache_get(addr)
                    if b is None:
                        self.blocks = blocks
                        return
                self.blocks = blocks
                self.insns += b.ninsns
                kind = b.kind
                if kind == K_NONE or not (self.cet & CET_SHSTK_EN):
                    return
                self.pending = kind
                if kind == K_CALL:
                    self.pending_addr = addr + size
                    self.pending_insn = b.last
                else:
                    self.pending_addr = b.last
                    self.pending_imm = b.ret_imm
            except BaseException:  # never let an exception unwind through C
                self.event = EV_DECODE
                uc.emu_stop()  # type: ignore[attr-defined]

        return hook


class BareEngine(NativeEngine):
    """The native MMU without any block hook: nothing is enforced, blocks are not even
    seen. Only for measuring the floor of this design (`bench/`)."""

    name = "bare"

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        self._decode_cb = None


_warned: list[bool] = []


def _warn_fallback() -> None:
    if not _warned:
        _warned.append(True)
        print("shstk: the native fast path is not built; using the pure-Python engine "
              "(slower, same results)", file=sys.stderr)


def make_engine(kind: str | None = None) -> _EngineBase:
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


Engine = _EngineBase
