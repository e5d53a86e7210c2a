"""The pure-Python shadow-stack engine: fastpath.c's logic in Python, registered with
Unicorn through ctypes as well (half the cost of the binding's own hook wrapper).
Selected with `SHSTK_ENGINE=python`, or when the native object is missing.
"""

from __future__ import annotations

import bisect
import ctypes
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.emu.cpu.decode import K_CALL, K_NONE, K_RET, BlockInfo
from shstk.emu.cpu.ssbase import (
    CET_SHSTK_EN,
    DECODE_OK,
    DECODE_RESTART,
    EV_BUDGET,
    EV_CP,
    EV_DECODE,
    EV_SSFAULT,
    HOOK_CFUNC,
    MEM_FETCH,
    MEM_WRITE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TLB_CFUNC,
    DecodeFn,
    MissFn,
    SsEngine,
    hook_add,
)
from shstk.emu.cpu.ucconst import UC_HOOK_BLOCK, UC_HOOK_TLB_FILL

if TYPE_CHECKING:
    from _ctypes import CFuncPtr  # the type of a CFUNCTYPE callback


class PyEngine(SsEngine):
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
        self._hook_cb: CFuncPtr | None = None
        self._uc: object = None
        self.mmu_addr = self.mmu_type = self.mmu_present = self.tlb_fills = 0
        self.exit_page = self.exit_phys = 0
        self._vma_starts: list[int] = []
        self._vmas: list[tuple[int, int, int, int]] = []  # (start, end, phys, perms)
        self._tlb_cb: CFuncPtr | None = None

    def install(self, uc: object, decode: DecodeFn, reg_rip: int, reg_rsp: int) -> None:
        self._uc = uc
        self._decode = decode
        self._reg_rip = reg_rip
        self._reg_rsp = reg_rsp
        self._hook_cb = HOOK_CFUNC(self._make_hook())
        hook_add(uc, UC_HOOK_BLOCK, ctypes.cast(self._hook_cb, ctypes.c_void_p).value or 0, 0)

    # --- the page table (mirrors ss_tlb_fill in fastpath.c) ---------------------------
    def install_mmu(self, uc: object, miss: MissFn) -> None:
        self._miss = miss
        self._tlb_cb = TLB_CFUNC(self._tlb_fill)
        hook_add(uc, UC_HOOK_TLB_FILL, ctypes.cast(self._tlb_cb, ctypes.c_void_p).value or 0, 0)

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
            if vaddr == self.exit_page and access == MEM_FETCH and self.exit_phys:
                e = entry.contents  # type: ignore[attr-defined]
                e.paddr = self.exit_phys
                e.perms = PROT_EXEC
                return True
            v = self._vma_find(vaddr)
            if v is None and self._miss(vaddr, access):
                v = self._vma_find(vaddr)
            need = PROT_WRITE if access == MEM_WRITE else \
                PROT_EXEC if access == MEM_FETCH else PROT_READ
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

