"""Where a new mapping goes: arch_get_unmapped_area_topdown() and vm_unmapped_area()
(mm/mmap.c, arch/x86/kernel/sys_x86_64.c), without randomization."""

from __future__ import annotations

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.cpu.intervals import Intervals
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.vma import (
    LEGACY_32BIT_BASE,
    LEGACY_32BIT_END,
    MMAP_MIN_ADDR,
    PAGE,
    PAGE_MASK,
    TASK_SIZE,
    Vma,
    page_align,
    page_down,
)


def mmap_base(stack_rlimit: int) -> int:
    """arch/x86/mm/mmap.c mmap_base(), without randomization."""
    gap = min(stack_rlimit, TASK_SIZE) + M.STACK_GUARD_GAP
    gap = max(gap, 128 << 20)
    gap = min(gap, TASK_SIZE // 6 * 5)
    return page_down(TASK_SIZE - gap)

class UnmappedArea:
    """The gap search of an address space (a mixin of AddressSpace)."""

    vmas: Intervals[Vma]
    mmap_base: int
    # unmapped_area_topdown: (low, high, start_gap) -> (limit, length): every gap
    # above `limit` is too small for `length` (or more). Mapping only shrinks gaps;
    # an unmap above `limit` forgets the hint (vm_unmapped_area's augmented tree
    # answers this in O(log n) in Linux; without it, thread stacks cost O(n) each).
    _topdown_hint: dict[tuple[int, int, int], tuple[int, int]]

    def find_next(self, addr: int) -> Vma | None:
        raise NotImplementedError

    def _gap_below(self, v: Vma) -> int:
        return v.start - v.start_gap()

    def _hint_fits(self, addr: int, length: int, start_gap: int = 0) -> bool:
        if addr < MMAP_MIN_ADDR or addr > TASK_SIZE - length:
            return False
        nxt = self.find_next(addr)
        if nxt is not None and addr + length > self._gap_below(nxt):
            return False
        prev = self._prev_vma(addr)
        return prev is None or addr - start_gap >= prev.end

    def _prev_vma(self, addr: int) -> Vma | None:
        for v in self.vmas.down_from(addr):
            if v.end <= addr:
                return v
        return None

    def unmapped_area_topdown(self, length: int, low: int, high: int,
                              start_gap: int = 0) -> int | None:
        """Highest `addr` in [low, high) with room for `length` (vm_unmapped_area).

        Gaps are walked from the top; the VMA above a gap keeps its start gap free below
        it (guard gaps), and the new mapping wants `start_gap` free below itself.
        """
        key = (low, high, start_gap)
        hint = self._topdown_hint.get(key)
        if hint is not None and length >= hint[1]:
            limit = hint[0]  # the gaps above were too small: start at this one
            candidates = self.vmas.below(limit)
        else:
            limit = high  # the upper end of the gap being looked at
            candidates = self.vmas.below()
        for below in candidates:
            if below.start >= high:
                limit = min(high, below.start - below.start_gap())
                continue
            gap_lo = max(low, below.end)
            if limit >= length:
                cand = page_down(limit - length)
                if cand - start_gap >= gap_lo:
                    self._topdown_hint[key] = (limit, length)
                    return cand
            limit = min(high, below.start - below.start_gap())
            if limit <= low:
                return None
        if limit >= length:
            cand = page_down(limit - length)
            if cand - start_gap >= low:
                self._topdown_hint[key] = (limit, length)
                return cand
        return None

    def unmapped_area_bottomup(self, length: int, low: int, high: int) -> int | None:
        addr = low
        for v in self.vmas:
            if v.end <= addr:
                continue
            if addr + length <= self._gap_below(v) and addr + length <= high:
                return addr
            addr = max(addr, v.end)
            if addr + length > high:
                return None
        return addr if addr + length <= high else None

    def get_unmapped_area(self, hint: int, length: int, flags: int,
                          start_gap: int = 0) -> int:
        """arch_get_unmapped_area_topdown(): where a new mapping of `length` goes."""
        if length > TASK_SIZE:
            raise KernelError(E.ENOMEM)
        if flags & M.MAP_FIXED:
            if hint & ~PAGE_MASK:
                raise KernelError(E.EINVAL)
            if hint > TASK_SIZE - length:
                raise KernelError(E.ENOMEM)
            return hint
        if flags & M.MAP_32BIT:
            addr = self.unmapped_area_bottomup(length, LEGACY_32BIT_BASE, LEGACY_32BIT_END)
            if addr is None:
                raise KernelError(E.ENOMEM)
            return addr
        if hint:
            hint = page_align(hint)
            if self._hint_fits(hint, length, start_gap) and \
                    not (flags & M.MAP_ABOVE4G and hint < M.FOUR_GIB):
                return hint
        low = max(PAGE, MMAP_MIN_ADDR)
        if flags & M.MAP_ABOVE4G:
            low = M.FOUR_GIB
        addr = self.unmapped_area_topdown(length, low, self.mmap_base, start_gap)
        if addr is None:
            # Linux falls back to a bottom-up search from TASK_UNMAPPED_BASE
            addr = self.unmapped_area_bottomup(length, max(low, page_align(TASK_SIZE // 3)),
                                               TASK_SIZE)
        if addr is None:
            raise KernelError(E.ENOMEM)
        return addr
