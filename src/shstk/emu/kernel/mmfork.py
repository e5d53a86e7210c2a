"""fork(): copying an address space (dup_mmap in kernel/fork.c)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.emu.kernel import hostmem
from shstk.emu.kernel.vma import (
    VM_DONTCOPY,
    VM_UFFD_ABSENT,
    VM_UFFD_MISSING,
    VM_WIPEONFORK,
    HostBlock,
    Vma,
    copy_private_block,
    share_block,
)

if TYPE_CHECKING:
    from shstk.emu.kernel.mm import AddressSpace


def copy_address_space(parent: AddressSpace, child: AddressSpace) -> None:
    """Give `child` a copy of `parent` (fork).

    Private memory is copied in proportion to the pages that hold data, so a 4 GiB
    shadow-stack reservation with a few pages touched costs a few pages. Shared
    mappings are shared. MADV_DONTFORK ranges are left out, MADV_WIPEONFORK ones
    start zeroed.
    """
    child.start_brk, child.brk = parent.start_brk, parent.brk
    child.stack_top, child.start_stack = parent.stack_top, parent.start_stack
    child.mmap_base = parent.mmap_base
    child.arg_start, child.arg_end = parent.arg_start, parent.arg_end
    child.env_start, child.env_end = parent.env_start, parent.env_end
    copies: dict[int, HostBlock] = {}
    for v in parent.vmas:
        if v.flags & VM_DONTCOPY:
            continue
        nb = copies.get(id(v.block))
        if nb is None:
            if v.block.shared:
                nb = share_block(v.block, child.pm)
            else:
                nb = copy_private_block(v.block, child.pm, _data_ranges(parent, v.block))
            copies[id(v.block)] = nb
        # no UFFD_FEATURE_EVENT_FORK: the child's memory is not registered (dup_userfaultfd)
        nv = Vma(v.start, v.end, v.flags & ~(VM_UFFD_MISSING | VM_UFFD_ABSENT), nb, v.offset,
                 v.file, v.pgoff, v.name, v.anon_name)
        if v.flags & VM_WIPEONFORK and not v.block.shared:
            hostmem.discard(nv.host, nv.size)
        child._insert(nv)
        if v is parent.heap:
            child.heap = nv


def _data_ranges(mm: AddressSpace, block: HostBlock) -> list[tuple[int, int]]:
    """The parts of a private block that hold data and that a VMA still uses."""
    out: list[tuple[int, int]] = []
    for v in mm.vmas:
        if v.block is block:
            for off, n in hostmem.resident_pages(v.host, v.size):
                out.append((v.offset + off, n))
    return out
