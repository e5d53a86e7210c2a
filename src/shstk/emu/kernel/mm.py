"""Guest address spaces: VMAs with Linux semantics, backed by host memory.

Our own VMA list is the truth (as mm_struct's maple tree is in Linux) and it is also the
page table: the CPU runs with a virtual TLB whose misses are answered from this list
(the engines keep a copy, in C for the native one). Each VMA is a slice of a `HostBlock`:
physical memory in the machine's arena (physmem.py) backed by host memory, so mapping
and unmapping cost a table update and a TLB flush, never a Unicorn region.

Shadow-stack VMAs are readable but not writable for the guest's ordinary stores, which
is what a Write=0/Dirty=1 PTE gives (SPEC.md §11.1-§11.2); the CPU's shadow-stack
accesses go to the same host memory through the engines. Heap and stack blocks reserve
room to grow, so brk and stack growth only update the table.

The address space talks to the CPU only through `shstk.emu.cpu.interface.Engine`. The
VMA records are in vma.py, the placement of new mappings in mmap_area.py, the fork copy
in mmfork.py; their names are re-exported here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.cpu.interface import Engine, Region
from shstk.emu.cpu.intervals import Intervals
from shstk.emu.kernel import hostmem, physmem
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mmap_area import UnmappedArea, mmap_base
from shstk.emu.kernel.mmfork import copy_address_space
from shstk.emu.kernel.physmem import PhysMemory
from shstk.emu.kernel.vma import (
    ELF_ET_DYN_BASE,
    HEAP_RESERVE,
    LEGACY_32BIT_BASE,
    LEGACY_32BIT_END,
    MMAP_MIN_ADDR,
    PAGE,
    PAGE_MASK,
    PROT_TO_VM,
    STACK_RESERVE_MAX,
    TASK_SIZE,
    VM_ACCOUNT,
    VM_DONTCOPY,
    VM_DONTDUMP,
    VM_DONTEXPAND,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_NOHUGEPAGE,
    VM_NORESERVE,
    VM_READ,
    VM_SHADOW_STACK,
    VM_SHARED,
    VM_UFFD_ABSENT,
    VM_UFFD_MISSING,
    VM_WIPEONFORK,
    VM_WRITE,
    VMFLAG_MNEMONICS,
    FileMapping,
    FileRef,
    HostBlock,
    Vma,
    accounted,
    copy_private_block,
    new_anon_block,
    new_file_block,
    page_align,
    page_down,
    share_block,
    vm_prot,
)


class AddressSpace(UnmappedArea):
    """One process's memory map (struct mm_struct)."""

    def __init__(self, cpu: Engine, *, stack_rlimit: int = 8 << 20) -> None:
        self.cpu = cpu
        self.pm = PhysMemory(cpu)
        self.vmas: Intervals[Vma] = Intervals()
        self.committed = 0  # bytes of VMAs that count against the memory limit (memlimit)
        self._shadow: dict[int, Vma] = {}  # the shadow-stack VMAs, by start
        self._topdown_hint: dict[tuple[int, int, int], tuple[int, int]] = {}
        self.start_brk = 0
        self.brk = 0
        self.heap: Vma | None = None
        self.stack_top = TASK_SIZE
        self.start_stack = 0
        self.mmap_base = mmap_base(stack_rlimit)
        self.arg_start = self.arg_end = self.env_start = self.env_end = 0
        self.engine_live = True  # False once the machine is being torn down
        cpu.read_code = self.read_code
        exit_phys, exit_host = self.pm.alloc(PAGE)
        physmem.back_anonymous(exit_host, PAGE)
        hostmem.view(exit_host, PAGE)[:] = b"\xf4" * PAGE  # HLT, should it ever run
        cpu.attach_mm(self, exit_phys)

    # --- lookup ------------------------------------------------------------------------
    def find(self, addr: int) -> Vma | None:
        """The VMA containing `addr`, or None."""
        return self.vmas.containing(addr)

    def find_next(self, addr: int) -> Vma | None:
        """find_vma(): the first VMA that ends above `addr`."""
        for v in self.vmas.from_(addr):
            if addr < v.end:
                return v
        return None

    def overlapping(self, start: int, end: int) -> list[Vma]:
        out = []
        for v in self.vmas.from_(start):
            if v.start >= end:
                break
            if v.end > start:
                out.append(v)
        return out

    def is_mapped(self, start: int, end: int) -> bool:
        """Every byte of [start, end) belongs to some VMA."""
        pos = start
        for v in self.overlapping(start, end):
            if v.start > pos:
                return False
            pos = v.end
        return pos >= end

    # --- insertion / removal (keeps the engine in step) -----------------------------------
    @staticmethod
    def _page_table_entries(v: Vma) -> list[tuple[int, int, int, int, int]]:
        """The VMA's entries in the engine's page table. Pages of a file mapping wholly
        past the end of the file get no access at all: touching them is SIGBUS."""
        eof_start = v.eof_start()
        if eof_start is None:
            return [(v.start, v.end, v.phys, v.page_prot(), v.host)]
        entries = []
        if eof_start > v.start:
            entries.append((v.start, eof_start, v.phys, v.page_prot(), v.host))
        # no host address: the decoder must not read past the end of the file (SIGBUS)
        entries.append((eof_start, v.end, v.phys + (eof_start - v.start), 0, 0))
        return entries

    def _insert(self, v: Vma) -> None:
        self.vmas.insert(v)
        if accounted(v):
            self.committed += v.size
        v.block.users += 1
        for entry in self._page_table_entries(v):
            self.cpu.vma_set(*entry)
        if v.shadow_stack:
            self._shadow[v.start] = v
            if self.engine_live and not v.flags & VM_UFFD_ABSENT:
                self.cpu.add_region(Region(v.start, v.end, v.host, bool(v.flags & VM_WRITE)))

    def _remove(self, v: Vma, *, release_pages: bool = True, flush: bool = True) -> None:
        if v.flags & VM_EXEC:
            # before the translation goes: Unicorn finds the code's pages through it
            self._invalidate_code(v, v.start, v.end)
        self.vmas.remove(v)
        if accounted(v):
            self.committed -= v.size
        if self._topdown_hint:
            self._topdown_hint = {key: hint for key, hint in self._topdown_hint.items()
                                  if v.end <= hint[0]}
        for start, *_rest in self._page_table_entries(v):
            self.cpu.vma_del(start)
        if flush:
            self.cpu.flush_tlb()
        if release_pages and not v.block.shared:
            hostmem.discard(v.host, v.size)
        v.block.release()
        if v.shadow_stack:
            del self._shadow[v.start]
            if self.engine_live and not v.flags & VM_UFFD_ABSENT:
                self.cpu.remove_region(v.start)

    def _invalidate_code(self, v: Vma, start: int, end: int) -> None:
        """Forget code decoded in [start, end) of `v`. Only pages with a translation:
        Unicorn looks each page up as an instruction fetch, and a page past the end of
        the file (no access) would leave a fetch fault behind (a MAP_FIXED over a
        library's zero-filled tail then killed the process at that page)."""
        eof_start = v.eof_start()
        if eof_start is not None:
            end = min(end, eof_start)
        if start < end:
            self.cpu.invalidate_code(start, end)

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
                    self._invalidate_code(v, cut_lo, cut_hi)
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
                self._invalidate_code(v, max(v.start, start), min(v.end, end))
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
        missing = []
        for v in self.overlapping(start, end):
            lo, hi = max(v.start, start), min(v.end, end)
            hostmem.discard(v.host + (lo - v.start), hi - lo)
            if v.flags & VM_UFFD_MISSING:  # userfaultfd.py: those pages are missing again
                missing.append((lo, hi))
        for lo, hi in missing:
            self.set_flags(lo, hi, VM_UFFD_ABSENT)

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
        step = 256  # most strings are short: copy that much first, not `limit` bytes
        while True:
            v = self.find(pos)
            if v is None or not v.flags & (VM_READ | VM_EXEC | VM_WRITE):
                raise KernelError(E.EFAULT)
            view = v.view()
            off = pos - v.start
            chunk_end = min(v.size, off + min(step, limit + 1 - len(out)))
            chunk = bytes(view[off:chunk_end])
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                return bytes(out)
            out += chunk
            if len(out) > limit:
                raise KernelError(E.ENAMETOOLONG)
            pos = v.start + chunk_end
            step = limit + 1

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
        """Give `child` a copy of this address space (fork); see mmfork.py."""
        copy_address_space(self, child)


__all__ = [
    "ELF_ET_DYN_BASE", "HEAP_RESERVE", "LEGACY_32BIT_BASE", "LEGACY_32BIT_END",
    "MMAP_MIN_ADDR", "PAGE", "PAGE_MASK", "PROT_TO_VM", "STACK_RESERVE_MAX", "TASK_SIZE",
    "VMFLAG_MNEMONICS", "VM_ACCOUNT", "VM_DONTCOPY", "VM_DONTDUMP", "VM_DONTEXPAND",
    "VM_EXEC", "VM_GROWSDOWN", "VM_MAYEXEC", "VM_MAYREAD", "VM_MAYSHARE", "VM_MAYWRITE",
    "VM_NOHUGEPAGE", "VM_NORESERVE", "VM_READ", "VM_SHADOW_STACK", "VM_SHARED",
    "VM_WIPEONFORK", "VM_WRITE", "AddressSpace", "FileMapping", "FileRef", "HostBlock",
    "Vma", "copy_private_block", "new_anon_block", "new_file_block", "page_align",
    "page_down", "share_block", "vm_prot",
]
