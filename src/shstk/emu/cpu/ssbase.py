"""What both shadow-stack engines share: events, the shadow-stack regions with direct
host access, the per-thread state, and raw Unicorn hooks through ctypes.

The engines themselves: native.py (the C fast path) and pyengine.py (its Python twin);
engine.py picks one.
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Callable
from typing import Any, cast

from shstk.abi.shstk import CET_SHSTK_EN, CET_WRSS_EN
from shstk.emu.cpu.decode import BlockInfo
from shstk.emu.cpu.interface import CetState, Region
from shstk.emu.cpu.intervals import Intervals
from shstk.emu.cpu.ucbind import Uc

EV_NONE = 0
EV_CP = 1
EV_SSFAULT = 2
EV_BUDGET = 3
EV_DECODE = 4

DECODE_OK = 0
DECODE_RESTART = 1
DECODE_STOP = 2

_Q = struct.Struct("<Q")

# The decode callback: (addr, size) -> DECODE_*
DecodeFn = Callable[[int, int], int]
# The page-table miss callback: (addr, access type) -> 1 if a mapping now covers addr
MissFn = Callable[[int, int], int]

# A CET instruction hook as Unicorn calls it: (uc, address, size, user data)
CetHookFn = Callable[[Any, int, int, Any], None]

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MEM_READ, MEM_WRITE, MEM_FETCH = 16, 17, 18


class TlbEntry(ctypes.Structure):
    _fields_ = [("paddr", ctypes.c_uint64), ("perms", ctypes.c_int)]


TLB_CFUNC = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                             ctypes.POINTER(TlbEntry), ctypes.c_void_p)
HOOK_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32,
                              ctypes.c_void_p)


class _Region:
    """One shadow-stack VMA as the Python side reaches it; the view of its host memory
    is made on first use (thread creation maps thousands that Python never touches)."""

    __slots__ = ("_view", "end", "host", "start", "writable")

    def __init__(self, r: Region) -> None:
        self.start, self.end, self.host, self.writable = r.start, r.end, r.host, r.writable
        self._view: memoryview | None = None

    @property
    def view(self) -> memoryview:
        if self._view is None:
            array = (ctypes.c_char * (self.end - self.start)).from_address(self.host)
            self._view = memoryview(array).cast("B")
        return self._view


class _Regions:
    """Shadow-stack VMAs with direct host access, shared by both engines' Python side."""

    def __init__(self) -> None:
        self._regions: Intervals[_Region] = Intervals()
        self._last: _Region | None = None

    def add(self, r: Region) -> None:
        """One more shadow-stack VMA (or a new version of the one at r.start)."""
        old = self._regions.starting_at(r.start)
        if old is not None:
            self._regions.remove(old)
        self._regions.insert(_Region(r))
        self._last = None

    def remove(self, start: int) -> None:
        old = self._regions.starting_at(start)
        if old is not None:
            self._regions.remove(old)
        self._last = None

    def find(self, addr: int) -> _Region | None:
        """The region holding [addr, addr + 8), or None."""
        last = self._last
        if last is not None and last.start <= addr and addr + 8 <= last.end:
            return last
        reg = self._regions.containing(addr)
        if reg is None or addr + 8 > reg.end:
            return None
        self._last = reg
        return reg

    def slot(self, addr: int) -> tuple[memoryview, int] | None:
        """Where a shadow-stack access at `addr` lands, or None if it must fault."""
        reg = self.find(addr)
        if reg is None or not reg.writable:
            return None
        return reg.view, addr - reg.start


class SsEngine:
    """A shadow-stack engine: what the Cpu asks of the native one and its Python twin."""

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
    def set_cet_slow_path(self, hook: CetHookFn) -> None:
        """Where natively hooked CET instructions go when the native code cannot finish."""

    def add_cet_hook(self, uc: object, site: int, mnemonic: str, reg_id: int | None
                     ) -> int | None:
        """Hook the CET instruction at `site` natively; None: use the Python hook."""
        return None

    def del_cet_hook(self, uc: object, handle: int) -> bool:
        """Remove a hook add_cet_hook made; False if it was not one of ours."""
        return False

    def install_switch_hook(self, uc: object, reg_eflags: int) -> None:
        """Run RSTORSSP/SAVEPREVSSP natively at noted sites (before the Python hook)."""

    def note_switch_site(self, site: int, mnemonic: str, size: int,
                         mem: tuple[int, str | None, str | None, int, str | None] | None
                         ) -> None:
        """RSTORSSP/SAVEPREVSSP at `site` ran in Python once: let the native hook take
        its next executions (their success path; faults still go to Python)."""

    # --- thread switch --------------------------------------------------------------
    def save_thread(self) -> CetState:
        return (self.ssp, self.cet, self.pending, self.pending_addr, self.pending_insn,
                self.pending_imm)

    def load_thread(self, state: CetState) -> None:
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
    # the last refused TLB fill, and the page that ends a run (see Cpu.attach_mm)
    mmu_addr: int
    mmu_type: int
    mmu_present: int
    tlb_fills: int
    exit_page: int
    exit_phys: int

    # --- implemented by each engine ----------------------------------------------------
    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        """Register the block hook on `uc`; `decode` describes a block seen first."""
        raise NotImplementedError

    def install_mmu(self, uc: object, miss: MissFn) -> None:
        """Answer `uc`'s TLB misses from the page table (vma_set); `miss` when none."""
        raise NotImplementedError

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        raise NotImplementedError

    def vma_del(self, start: int) -> None:
        raise NotImplementedError

    def insert_block(self, b: BlockInfo) -> None:
        raise NotImplementedError

    def invalidate(self, start: int, end: int) -> None:
        raise NotImplementedError

    def resolve_pending(self, uc: object, target: int) -> bool:
        """Finish the armed CALL/RET now that its target is known; False: it faulted."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError



def hook_add(uc: object, htype: int, callback: int, user_data: int, *, begin: int = 1,
              end: int = 0) -> int:
    """A C function as a hook (its address; see Uc.hook_add_native)."""
    return cast(Uc, uc).hook_add_native(htype, callback, user_data, begin, end)


def hook_del(uc: object, handle: int) -> None:
    cast(Uc, uc).hook_del(handle)

__all__ = ["CET_SHSTK_EN", "CET_WRSS_EN", "Region", "SsEngine"]
