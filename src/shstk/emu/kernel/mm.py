"""Guest address spaces: VMAs with Linux semantics, backed by host memory.

Our own VMA list is the truth (as mm_struct's maple tree is in Linux) and it is also the
page table: Unicorn runs with a virtual TLB whose misses are answered from this list
(the engines keep a copy, in C for the native one). Each VMA is a slice of a `HostBlock`:
physical memory in the machine's arena (physmem.py) backed by host memory, so mapping
and unmapping cost a table update and a TLB flush, never a Unicorn region.

Shadow-stack VMAs are readable but not writable for the guest's ordinary stores, which
is what a Write=0/Dirty=1 PTE gives (SPEC.md §11.1-§11.2); the CPU's shadow-stack
accesses go to the same host memory through the engines. Heap and stack blocks reserve
room to grow, so brk and stack growth only update the table.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import unicorn as UC

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.kernel import hostmem, physmem
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.physmem import PhysMemory

if TYPE_CHECKING:
    from shstk.emu.cpu.cpu import Cpu

PAGE = M.PAGE_SIZE
PAGE_MASK = ~(PAGE - 1)
TASK_SIZE = M.TASK_SIZE_MAX
MMAP_MIN_ADDR = 0x10000
ELF_ET_DYN_BASE = ((1 << 47) // 3 * 2) & PAGE_MASK  # 0x555555554000
LEGACY_32BIT_BASE = 0x40000000
LEGACY_32BIT_END = 0x80000000
HEAP_RESERVE = 1 << 32  # host room for brk to grow into (reserved, not committed)
STACK_RESERVE_MAX = 1 << 30


def page_align(x: int) -> int:
    return (x + PAGE - 1) & PAGE_MASK


def page_down(x: int) -> int:
    return x & PAGE_MASK


# VMA flags (ours; the smaps VmFlags mnemonics follow fs/proc/task_mmu.c)
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_DONTCOPY = 0x20000
VM_DONTEXPAND = 0x40000
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000
VM_DONTDUMP = 0x4000000
VM_WIPEONFORK = 0x2000000
VM_NOHUGEPAGE = 0x40000000
VM_SHADOW_STACK = 0x1_0000_0000  # VM_HIGH_ARCH_5 on x86

VMFLAG_MNEMONICS = (
    (VM_READ, "rd"), (VM_WRITE, "wr"), (VM_EXEC, "ex"), (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"), (VM_MAYWRITE, "mw"), (VM_MAYEXEC, "me"), (VM_MAYSHARE, "ms"),
    (VM_GROWSDOWN, "gd"), (VM_DONTCOPY, "dc"), (VM_DONTEXPAND, "de"), (VM_ACCOUNT, "ac"),
    (VM_NORESERVE, "nr"), (VM_WIPEONFORK, "wf"), (VM_DONTDUMP, "dd"), (VM_NOHUGEPAGE, "nh"),
    (VM_SHADOW_STACK, "ss"),
)

PROT_TO_VM = {M.PROT_READ: VM_READ, M.PROT_WRITE: VM_WRITE, M.PROT_EXEC: VM_EXEC}


def vm_prot(prot: int) -> int:
    flags = 0
    for p, f in PROT_TO_VM.items():
        if prot & p:
            flags |= f
    return flags


@dataclass(eq=False)
class HostBlock:
    """A piece of the machine's physical memory and the host memory behind it.

    VMAs (of one process, or of several for shared memory mapped into each machine)
    use slices of it. `fd` is what backs it besides zero-fill: a memfd for shared
    anonymous memory, or the file of a file mapping.
    """

    pm: PhysMemory
    phys: int
    host: int
    size: int
    shared: bool
    fd: int = -1
    fd_offset: int = 0
    file_len: int = 0  # bytes at the start that map `fd` (the rest is zero-fill)
    users: int = 0
    fd_writable: bool = True  # a shared mapping of `fd` may be writable

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.pm.free(self.phys, self.size)
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


def new_anon_block(pm: PhysMemory, size: int, *, shared: bool = False) -> HostBlock:
    phys, host = pm.alloc(size)
    if shared:
        fd = physmem.new_memfd(size)
        physmem.back_fd(host, size, fd, 0, shared=True, writable=True)
        return HostBlock(pm, phys, host, size, True, fd, 0, size)  # fd_writable
    physmem.back_anonymous(host, size)
    return HostBlock(pm, phys, host, size, False)


def new_file_block(pm: PhysMemory, fd: int, size: int, offset: int, *, shared: bool,
                   writable: bool, file_size: int) -> HostBlock:
    """A file mapping. Pages wholly past the end of the file are zero-filled memory:
    touching host file pages there would be a SIGBUS for the emulator itself."""
    phys, host = pm.alloc(size)
    physmem.back_anonymous(host, size)
    file_part = min(size, max(0, page_align(file_size) - offset))
    own = os.dup(fd)
    if file_part:
        physmem.back_fd(host, file_part, own, offset, shared=shared,
                        writable=writable or not shared)
    return HostBlock(pm, phys, host, size, shared, own, offset, file_part,
                     fd_writable=writable)


def share_block(block: HostBlock, pm: PhysMemory) -> HostBlock:
    """The same shared memory (memfd or file) mapped into another machine."""
    phys, host = pm.alloc(block.size)
    physmem.back_anonymous(host, block.size)
    own = os.dup(block.fd)
    if block.file_len:
        physmem.back_fd(host, block.file_len, own, block.fd_offset, shared=True,
                        writable=block.fd_writable)
    return HostBlock(pm, phys, host, block.size, True, own, block.fd_offset, block.file_len,
                     fd_writable=block.fd_writable)


def copy_private_block(block: HostBlock, pm: PhysMemory, ranges: list[tuple[int, int]]
                       ) -> HostBlock:
    """fork(): a private copy; `ranges` (offset, length) say what holds data."""
    phys, host = pm.alloc(block.size)
    physmem.back_anonymous(host, block.size)
    own = -1
    if block.fd >= 0:
        own = os.dup(block.fd)
        if block.file_len:
            physmem.back_fd(host, block.file_len, own, block.fd_offset, shared=False,
                            writable=True)
    for off, n in ranges:
        hostmem.copy_fresh(host + off, block.host + off, n)
    return HostBlock(pm, phys, host, block.size, False, own, block.fd_offset, block.file_len)


@dataclass(frozen=True)
class FileMapping:
    """A file mapping as the symbolizer needs it."""

    start: int
    end: int
    path: str  # guest path
    host: str  # host path, for reading symbols
    offset: int  # file offset of `start`
    perms: str


@dataclass(frozen=True)
class FileRef:
    """The file behind a file mapping, for /proc/PID/maps."""

    path: str  # guest path
    dev: int
    ino: int
    host: str = ""  # host path (for symbols)


@dataclass(eq=False)
class Vma:
    start: int
    end: int
    flags: int  # VM_*
    block: HostBlock
    offset: int  # byte offset of `start` within `block`
    file: FileRef | None = None
    pgoff: int = 0  # file offset of `start`, in pages
    name: str | None = None  # "[heap]", "[stack]", ...
    anon_name: str | None = None
    _view: memoryview | None = field(default=None, repr=False)

    @property
    def size(self) -> int:
        return self.end - self.start

    @property
    def host(self) -> int:
        return self.block.host + self.offset

    @property
    def phys(self) -> int:
        return self.block.phys + self.offset

    @property
    def shadow_stack(self) -> bool:
        return bool(self.flags & VM_SHADOW_STACK)

    def view(self) -> memoryview:
        if self._view is None:
            self._view = hostmem.view(self.host, self.size)
        return self._view

    def uc_prot(self) -> int:
        prot = UC.UC_PROT_NONE
        f = self.flags
        if f & (VM_READ | VM_EXEC | VM_WRITE):
            prot |= UC.UC_PROT_READ  # x86 cannot map write-only or exec-only pages
        if f & VM_WRITE and not f & VM_SHADOW_STACK:
            prot |= UC.UC_PROT_WRITE
        if f & VM_EXEC:
            prot |= UC.UC_PROT_EXEC
        return prot

    def eof_start(self) -> int | None:
        """Where the pages past the end of the mapped file begin, if this VMA has any."""
        block = self.block
        if block.fd < 0 or block.file_len >= self.offset + self.size:
            return None
        return self.start + max(0, block.file_len - self.offset)

    def start_gap(self) -> int:
        """How far below this VMA other mappings must stay (vm_start_gap)."""
        if self.flags & VM_GROWSDOWN:
            return M.STACK_GUARD_GAP
        if self.flags & VM_SHADOW_STACK:
            return PAGE
        return 0

    def same_kind(self, other: Vma) -> bool:
        """Would Linux have merged these two adjacent VMAs (for /proc display)?"""
        if self.flags != other.flags or self.name != other.name or self.end != other.start:
            return False
        # File mappings stay apart: Linux merges them only when their anon_vmas agree,
        # which a segment that was written and one that was not never do.
        return self.file is None and other.file is None and self.anon_name == other.anon_name


class AddressSpace:
    """One process's memory map (struct mm_struct)."""

    def __init__(self, cpu: Cpu, *, stack_rlimit: int = 8 << 20) -> None:
        self.cpu = cpu
        self.uc = cpu.uc
        self.pm = PhysMemory(cpu.uc)
        self.vmas: list[Vma] = []
        self._starts: list[int] = []
        self._shadow: dict[int, Vma] = {}  # the shadow-stack VMAs, by start
        # unmapped_area_topdown: (low, high, start_gap) -> (limit, length): every gap
        # above `limit` is too small for `length` (or more). Mapping only shrinks gaps;
        # an unmap above `limit` forgets the hint (vm_unmapped_area's augmented tree
        # answers this in O(log n) in Linux; without it, thread stacks cost O(n) each).
        self._topdown_hint: dict[tuple[int, int, int], tuple[int, int]] = {}
        self.start_brk = 0
        self.brk = 0
        self.heap: Vma | None = None
        self.stack_top = TASK_SIZE
        self.start_stack = 0
        self.mmap_base = self._mmap_base(stack_rlimit)
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        self.engine_live = True  # False once the machine is being torn down
        cpu.read_code = self.read_code
        exit_phys, exit_host = self.pm.alloc(PAGE)
        physmem.back_anonymous(exit_host, PAGE)
        hostmem.view(exit_host, PAGE)[:] = b"\xf4" * PAGE  # HLT, should it ever run
        cpu.attach_mm(self, exit_phys)

    @staticmethod
    def _mmap_base(stack_rlimit: int) -> int:
        # arch/x86/mm/mmap.c mmap_base(), without randomization
        gap = min(stack_rlimit, TASK_SIZE) + M.STACK_GUARD_GAP
        gap = max(gap, 128 << 20)
        gap = min(gap, TASK_SIZE // 6 * 5)
        return page_down(TASK_SIZE - gap)

    # --- lookup ------------------------------------------------------------------------
    def find(self, addr: int) -> Vma | None:
        """The VMA containing `addr`, or None."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            v = self.vmas[i]
            if addr < v.end:
                return v
        return None

    def find_next(self, addr: int) -> Vma | None:
        """find_vma(): the first VMA that ends above `addr`."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and addr < self.vmas[i].end:
            return self.vmas[i]
        i += 1
        return self.vmas[i] if i < len(self.vmas) else None

    def overlapping(self, start: int, end: int) -> list[Vma]:
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        out = []
        while i < len(self.vmas) and self.vmas[i].start < end:
            v = self.vmas[i]
            if v.end > start:
                out.append(v)
            i += 1
        return out

    def is_mapped(self, start: int, end: int) -> bool:
        """Every byte of [start, end) belongs to some VMA."""
        pos = start
        for v in self.overlapping(start, end):
            if v.start > pos:
                return False
            pos = v.end
        return pos >= end

    # --- insertion / removal (keeps Unicorn in step) ------------------------------------
    @staticmethod
    def _page_table_entries(v: Vma) -> list[tuple[int, int, int, int, int]]:
        """The VMA's entries in the engine's page table. Pages of a file mapping wholly
        past the end of the file get no access at all: touching them is SIGBUS."""
        eof_start = v.eof_start()
        if eof_start is None:
            return [(v.start, v.end, v.phys, v.uc_prot(), v.host)]
        entries = []
        if eof_start > v.start:
            entries.append((v.start, eof_start, v.phys, v.uc_prot(), v.host))
        # no host address: the decoder must not read past the end of the file (SIGBUS)
        entries.append((eof_start, v.end, v.phys + (eof_start - v.start), 0, 0))
        return entries

    def _insert(self, v: Vma) -> None:
        i = bisect.bisect_left(self._starts, v.start)
        self.vmas.insert(i, v)
        self._starts.insert(i, v.start)
        v.block.users += 1
        for entry in self._page_table_entries(v):
            self.cpu.engine.vma_set(*entry)
        if v.shadow_stack:
            self._shadow[v.start] = v
            if self.engine_live:
                from shstk.emu.cpu.engine import Region

                self.cpu.engine.add_region(Region(v.start, v.end, v.host,
                                                  bool(v.flags & VM_WRITE)))

    def _remove(self, v: Vma, *, release_pages: bool = True, flush: bool = True) -> None:
        if v.flags & VM_EXEC:
            # before the translation goes: Unicorn finds the code's pages through it
            self.cpu.invalidate_code(v.start, v.end)
        i = bisect.bisect_left(self._starts, v.start)
        assert self.vmas[i] is v
        del self.vmas[i]
        del self._starts[i]
        if self._topdown_hint:
            self._topdown_hint = {key: hint for key, hint in self._topdown_hint.items()
                                  if v.end <= hint[0]}
        for start, *_rest in self._page_table_entries(v):
            self.cpu.engine.vma_del(start)
        if flush:
            self.cpu.flush_tlb()
        if release_pages and not v.block.shared:
            hostmem.discard(v.host, v.size)
        v.block.release()
        if v.shadow_stack:
            del self._shadow[v.start]
            if self.engine_live:
                self.cpu.engine.remove_region(v.start)

    def _replace(self, old: Vma, pieces: list[Vma], *, flush: bool = True) -> None:
        """Swap one VMA for pieces covering (part of) it, sharing its host block.

        `flush=False` when every page keeps its translation (a VMA that only grew):
        stack growth runs inside the TLB-fill hook, where a flush must not happen.
        """
        old.block.users += 1  # keep the block alive across the swap
        self._remove(old, release_pages=False, flush=flush)
        for p in pieces:
            self._insert(p)
        old.block.release()

    def _piece(self, v: Vma, start: int, end: int, flags: int | None = None) -> Vma:
        delta = start - v.start
        return Vma(start, end, v.flags if flags is None else flags, v.block, v.offset + delta,
                   v.file, v.pgoff + delta // PAGE if v.file else 0, v.name, v.anon_name)

    def shadow_stacks(self) -> list[Vma]:
        return sorted(self._shadow.values(), key=lambda v: v.start)

    def file_mappings(self) -> list[FileMapping]:
        out = []
        for v in self.vmas:
            if v.file is None:
                continue
            perms = ("r" if v.flags & VM_READ else "-") + ("w" if v.flags & VM_WRITE else "-") + \
                ("x" if v.flags & VM_EXEC else "-")
            out.append(FileMapping(v.start, v.end, v.file.path, v.file.host, v.pgoff * PAGE,
                                   perms))
        return out

    # --- unmapped-area search -----------------------------------------------------------
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
        i = bisect.bisect_right(self._starts, addr) - 1
        while i >= 0:
            v = self.vmas[i]
            if v.end <= addr:
                return v
            i -= 1
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
            top = bisect.bisect_left(self._starts, limit)
        else:
            limit = high  # the upper end of the gap being looked at
            top = len(self.vmas)
        for i in range(top - 1, -1, -1):
            below = self.vmas[i]
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

    # --- mapping -----------------------------------------------------------------------
    def map_anonymous(self, addr: int, length: int, prot: int, *, shared: bool = False,
                      extra_flags: int = 0, name: str | None = None,
                      reserve: int = 0) -> Vma:
        """Map zeroed memory at exactly [addr, addr+length) (callers chose `addr`).

        `reserve` asks for room to grow (heap, stack): a VM_GROWSDOWN VMA sits at the
        top of its block, anything else at the bottom.
        """
        block = new_anon_block(self.pm, max(length, reserve), shared=shared)
        offset = block.size - length if extra_flags & VM_GROWSDOWN else 0
        flags = vm_prot(prot) | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | extra_flags
        if shared:
            flags |= VM_SHARED | VM_MAYSHARE
        v = Vma(addr, addr + length, flags, block, offset, name=name)
        self._insert(v)
        return v

    def map_file(self, addr: int, length: int, prot: int, fd: int, offset: int, *,
                 shared: bool, fd_writable: bool, file: FileRef, file_size: int,
                 extra_flags: int = 0) -> Vma:
        """Map a host file at [addr, addr+length), private (copy-on-write) or shared."""
        block = new_file_block(self.pm, fd, length, offset, shared=shared,
                               writable=fd_writable, file_size=file_size)
        flags = vm_prot(prot) | VM_MAYREAD | VM_MAYEXEC | extra_flags
        if shared:
            flags |= VM_SHARED | VM_MAYSHARE
            if fd_writable:
                flags |= VM_MAYWRITE
        else:
            flags |= VM_MAYWRITE
        v = Vma(addr, addr + length, flags, block, 0, file, offset // PAGE)
        self._insert(v)
        return v

    def unmap(self, start: int, end: int) -> None:
        """Remove every mapping in [start, end), splitting VMAs at the edges."""
        for v in self.overlapping(start, end):
            keep = []
            if v.start < start:
                keep.append(self._piece(v, v.start, start))
            if v.end > end:
                keep.append(self._piece(v, end, v.end))
            cut_lo, cut_hi = max(v.start, start), min(v.end, end)
            if keep:
                if v.flags & VM_EXEC:
                    self.cpu.invalidate_code(cut_lo, cut_hi)
                self._replace(v, keep)
                if not v.block.shared:
                    hostmem.discard(v.host + (cut_lo - v.start), cut_hi - cut_lo)
            else:
                self._remove(v)
            if v is self.heap:
                self.heap = None

    def _split_with(self, v: Vma, start: int, end: int, flags: int) -> Vma:
        """Split `v` at start/end (inside it) and give the middle piece `flags`."""
        mid = self._piece(v, max(v.start, start), min(v.end, end), flags)
        pieces = [mid]
        if v.start < start:
            pieces.insert(0, self._piece(v, v.start, start))
        if v.end > end:
            pieces.append(self._piece(v, end, v.end))
        self._replace(v, pieces)
        if v is self.heap:
            self.heap = pieces[0]
        return mid

    def protect(self, start: int, end: int, prot: int) -> None:
        """mprotect() on a range known to be fully mapped."""
        newbits = vm_prot(prot)
        for v in self.overlapping(start, end):
            flags = (v.flags & ~(VM_READ | VM_WRITE | VM_EXEC)) | newbits
            if flags == v.flags:
                continue
            if newbits & VM_WRITE and not v.flags & VM_MAYWRITE:
                raise KernelError(E.EACCES)
            if v.flags & VM_EXEC and not flags & VM_EXEC:
                self.cpu.invalidate_code(max(v.start, start), min(v.end, end))
            self._split_with(v, start, end, flags)

    def set_flags(self, start: int, end: int, set_bits: int, clear_bits: int = 0) -> None:
        """madvise-style flag changes (no protection change): split as needed."""
        for v in self.overlapping(start, end):
            flags = (v.flags | set_bits) & ~clear_bits
            if flags != v.flags:
                self._split_with(v, start, end, flags)

    def split_range(self, start: int, end: int) -> Vma:
        """The VMA covering exactly [start, end), split off the one that contains it."""
        v = self.find(start)
        if v is None or end > v.end:
            raise KernelError(E.EFAULT)
        if v.start == start and v.end == end:
            return v
        return self._split_with(v, start, end, v.flags)

    def discard(self, start: int, end: int) -> None:
        """MADV_DONTNEED on a mapped range: anonymous memory reads back as zero."""
        for v in self.overlapping(start, end):
            lo, hi = max(v.start, start), min(v.end, end)
            hostmem.discard(v.host + (lo - v.start), hi - lo)

    def resize(self, v: Vma, new_start: int, new_end: int) -> Vma:
        """Grow a heap or stack VMA inside its host reservation (brk, stack growth)."""
        offset = v.offset + (new_start - v.start)
        if offset < 0 or offset + (new_end - new_start) > v.block.size:
            raise KernelError(E.ENOMEM)
        nv = Vma(new_start, new_end, v.flags, v.block, offset, v.file, v.pgoff, v.name,
                 v.anon_name)
        grew_only = new_start <= v.start and new_end >= v.end
        self._replace(v, [nv], flush=not grew_only)
        if new_end < v.end and not v.block.shared:
            hostmem.discard(v.host + (new_end - v.start), v.end - new_end)
        return nv

    def move(self, v: Vma, new_start: int, new_size: int) -> Vma:
        """mremap a whole VMA to a new place and size (contents copied)."""
        old_size = v.size
        block = new_anon_block(self.pm, new_size, shared=v.block.shared)
        hostmem.copy(block.host, v.host, min(old_size, new_size))
        nv = Vma(new_start, new_start + new_size, v.flags, block, 0, v.file, v.pgoff, v.name,
                 v.anon_name)
        self._remove(v)
        self._insert(nv)
        return nv

    # --- stack growth -------------------------------------------------------------------
    def grow_stack(self, addr: int) -> bool:
        """A fault just below a VM_GROWSDOWN VMA extends it, as Linux's expand_stack()."""
        v = self.find_next(addr)
        if v is None or not v.flags & VM_GROWSDOWN or addr >= v.start:
            return False
        new_start = page_down(addr)
        prev = self._prev_vma(new_start)
        if prev is not None and prev.end > new_start - M.STACK_GUARD_GAP:
            return False
        if v.offset - (v.start - new_start) < 0:
            return False
        # Grow in 64 KiB steps: fewer remaps for a deep recursion.
        step_start = max(page_down(new_start - 0xF000), v.start - v.offset)
        if prev is not None:
            step_start = max(step_start, prev.end + M.STACK_GUARD_GAP)
        step_start = min(step_start, new_start)
        self.resize(v, step_start, v.end)
        return True

    # --- access for the kernel (copy_from_user / copy_to_user) ---------------------------
    def _chunks(self, addr: int, size: int, write: bool,
                force: bool = False) -> Iterator[tuple[memoryview, int, int]]:
        pos, end = addr, addr + size
        if addr < 0 or end > TASK_SIZE + PAGE or end < addr:
            raise KernelError(E.EFAULT)
        while pos < end:
            v = self.find(pos)
            if v is None:
                raise KernelError(E.EFAULT)
            if not force:
                if write and (not v.flags & VM_WRITE or v.flags & VM_SHADOW_STACK):
                    raise KernelError(E.EFAULT)
                if not write and not v.flags & (VM_READ | VM_EXEC | VM_WRITE):
                    raise KernelError(E.EFAULT)
            n = min(end, v.end) - pos
            yield v.view(), pos - v.start, n
            pos += n

    def writable_prefix(self, addr: int, size: int) -> int:
        """How many bytes from `addr` copy_to_user could write before faulting."""
        pos, end = addr, addr + size
        while pos < end:
            v = self.find(pos)
            if v is None or not v.flags & VM_WRITE or v.flags & VM_SHADOW_STACK:
                break
            pos = v.end
        return max(0, min(pos, end) - addr)

    def read(self, addr: int, size: int, *, force: bool = False) -> bytes:
        if size <= 0:
            return b""
        out = bytearray()
        for view, off, n in self._chunks(addr, size, False, force):
            out += view[off:off + n]
        return bytes(out)

    def write(self, addr: int, data: bytes, *, force: bool = False) -> None:
        if not data:
            return
        pos = 0
        for view, off, n in self._chunks(addr, len(data), True, force):
            view[off:off + n] = data[pos:pos + n]
            pos += n

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def write_u32(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read_struct(self, fmt: struct.Struct | str, addr: int) -> tuple[int, ...]:
        s = fmt if isinstance(fmt, struct.Struct) else struct.Struct(fmt)
        return s.unpack(self.read(addr, s.size))

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string (ENAMETOOLONG past `limit`, EFAULT on a bad pointer)."""
        out = bytearray()
        pos = addr
        while True:
            v = self.find(pos)
            if v is None or not v.flags & (VM_READ | VM_EXEC | VM_WRITE):
                raise KernelError(E.EFAULT)
            view = v.view()
            off = pos - v.start
            chunk_end = min(v.size, off + (limit + 1 - len(out)))
            chunk = bytes(view[off:chunk_end])
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            if len(out) > limit:
                raise KernelError(E.ENAMETOOLONG)
            pos = v.end

    def read_code(self, addr: int, size: int) -> bytes:
        """Instruction bytes for the decoder (what is mapped, never faulting)."""
        out = bytearray()
        pos, end = addr, addr + size
        while pos < end:
            v = self.find(pos)
            if v is None:
                break
            n = min(end, v.end) - pos
            out += v.view()[pos - v.start:pos - v.start + n]
            pos += n
        return bytes(out)

    # --- fork -------------------------------------------------------------------------
    def copy_into(self, child: AddressSpace) -> None:
        """Give `child` a copy of this address space (fork).

        Private memory is copied in proportion to the pages that hold data, so a 4 GiB
        shadow-stack reservation with a few pages touched costs a few pages. Shared
        mappings are shared. MADV_DONTFORK ranges are left out, MADV_WIPEONFORK ones
        start zeroed.
        """
        child.start_brk, child.brk = self.start_brk, self.brk
        child.stack_top, child.start_stack = self.stack_top, self.start_stack
        child.mmap_base = self.mmap_base
        child.arg_start, child.arg_end = self.arg_start, self.arg_end
        child.env_start, child.env_end = self.env_start, self.env_end
        copies: dict[int, HostBlock] = {}
        for v in self.vmas:
            if v.flags & VM_DONTCOPY:
                continue
            nb = copies.get(id(v.block))
            if nb is None:
                if v.block.shared:
                    nb = share_block(v.block, child.pm)
                else:
                    nb = copy_private_block(v.block, child.pm, self._data_ranges(v.block))
                copies[id(v.block)] = nb
            nv = Vma(v.start, v.end, v.flags, nb, v.offset, v.file, v.pgoff, v.name, v.anon_name)
            if v.flags & VM_WIPEONFORK and not v.block.shared:
                hostmem.discard(nv.host, nv.size)
            child._insert(nv)
            if v is self.heap:
                child.heap = nv

    def _data_ranges(self, block: HostBlock) -> list[tuple[int, int]]:
        """The parts of a private block that hold data and that a VMA still uses."""
        out: list[tuple[int, int]] = []
        for v in self.vmas:
            if v.block is block:
                for off, n in hostmem.resident_pages(v.host, v.size):
                    out.append((v.offset + off, n))
        return out
