"""VMA records and the host memory behind them (struct vm_area_struct, and the pages).

A `Vma` is a slice of a `HostBlock`: physical memory of the machine's arena (physmem.py)
backed by host memory (anonymous, a memfd for shared memory, or a file). The address
space (mm.py) keeps the list; this module knows one VMA and one block at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shstk.abi import mman as M
from shstk.emu.cpu.interface import PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE
from shstk.emu.kernel import hostmem, physmem
from shstk.emu.kernel.physmem import PhysMemory

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
VM_UFFD_MISSING = 0x200  # registered with a userfaultfd in MISSING mode
# emulator-internal: a page of a VM_UFFD_MISSING range with no page yet (pte_none):
# no page-table entry, so any access faults into userfaultfd.py
VM_UFFD_ABSENT = 1 << 60

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
    """One virtual memory area of a process: range, VM_* flags, and what backs it."""

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

    def page_prot(self) -> int:
        """The page-table permissions (interface.PROT_*) of this VMA's pages."""
        prot = PROT_NONE
        f = self.flags
        if f & VM_UFFD_ABSENT:
            return PROT_NONE
        if f & (VM_READ | VM_EXEC | VM_WRITE):
            prot |= PROT_READ  # x86 cannot map write-only or exec-only pages
        if f & VM_WRITE and not f & VM_SHADOW_STACK:
            prot |= PROT_WRITE
        if f & VM_EXEC:
            prot |= PROT_EXEC
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


def accounted(v: Vma) -> bool:
    """Does the VMA count as committed memory (mm/util.c __vm_enough_memory's heuristic:
    private writable mappings and shared anonymous memory, never MAP_NORESERVE)?"""
    if v.flags & VM_NORESERVE:
        return False
    if v.flags & VM_SHARED:
        return v.file is None  # shared anonymous memory (a memfd behind it)
    return bool(v.flags & VM_WRITE)
