"""Memory system calls: brk, mmap, munmap, mprotect, madvise, mremap, msync, mincore.

The order of checks follows mm/mmap.c, mm/mprotect.c, mm/madvise.c and mm/mremap.c.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.kernel import memlimit, shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import (
    HEAP_RESERVE,
    PAGE,
    PAGE_MASK,
    TASK_SIZE,
    VM_DONTCOPY,
    VM_NOHUGEPAGE,
    VM_NORESERVE,
    VM_SHARED,
    VM_WIPEONFORK,
    page_align,
)
from shstk.emu.kernel.vma import accounted
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_brk(k: Kernel, t: Task, addr: int) -> int:
    mm = t.mm
    if addr < mm.start_brk:
        return mm.brk
    new_end, old_end = page_align(addr), page_align(mm.brk)
    if new_end == old_end:
        mm.brk = addr
        return addr
    heap = mm.heap
    if new_end < old_end:
        if heap is not None:
            if new_end <= heap.start:
                mm.unmap(heap.start, heap.end)
            else:
                mm.heap = mm.resize(heap, heap.start, new_end)
        mm.brk = addr
        return addr
    # growing: fail (returning the old break) if it would run into another mapping,
    # keeping one page free above it as Linux does
    if mm.overlapping(old_end, new_end + PAGE):
        return mm.brk
    try:
        memlimit.charge(k, t, new_end - old_end)
        if heap is None:
            mm.heap = mm.map_anonymous(old_end, new_end - old_end, M.PROT_READ | M.PROT_WRITE,
                                       name="[heap]", reserve=HEAP_RESERVE)
        else:
            mm.heap = mm.resize(heap, heap.start, new_end)
    except KernelError:
        return mm.brk
    mm.brk = addr
    return addr


def sys_mmap(k: Kernel, t: Task, addr: int, length: int, prot: int, flags: int, fd: int,
             offset: int) -> int:
    return k.do_mmap(t, addr, length, prot & 0xFFFFFFFF, flags & 0xFFFFFFFF, i32(fd), offset)


def sys_munmap(k: Kernel, t: Task, addr: int, length: int) -> int:
    if addr & ~PAGE_MASK or addr > TASK_SIZE or length > TASK_SIZE - addr:
        raise KernelError(E.EINVAL)
    length = page_align(length)
    if length == 0:
        raise KernelError(E.EINVAL)
    t.mm.unmap(addr, addr + length)
    return 0


_PROT_OK = M.PROT_READ | M.PROT_WRITE | M.PROT_EXEC | M.PROT_SEM


def sys_mprotect(k: Kernel, t: Task, addr: int, length: int, prot: int) -> int:
    prot &= 0xFFFFFFFF
    grows = prot & (M.PROT_GROWSDOWN | M.PROT_GROWSUP)
    prot &= ~grows
    if grows == M.PROT_GROWSDOWN | M.PROT_GROWSUP:
        raise KernelError(E.EINVAL)
    if addr & ~PAGE_MASK:
        raise KernelError(E.EINVAL)
    if not length:
        return 0
    length = page_align(length)
    end = addr + length
    if end <= addr or length == 0:
        raise KernelError(E.ENOMEM)
    if prot & ~_PROT_OK:
        raise KernelError(E.EINVAL)
    mm = t.mm
    if grows & M.PROT_GROWSDOWN:
        v = mm.find(addr)
        if v is None or not v.flags & 0x100:
            raise KernelError(E.EINVAL)
        addr = v.start
    # Linux changes the VMAs one by one from `addr` and stops at the first hole with
    # ENOMEM, keeping the changes it made (nothing at all when `addr` is unmapped).
    covered = _mapped_prefix(mm, addr, end)
    if prot & M.PROT_WRITE:  # private memory made writable is accounted from now on
        memlimit.charge(k, t, sum(
            min(v.end, covered) - max(v.start, addr) for v in mm.overlapping(addr, covered)
            if not accounted(v) and not v.flags & (VM_SHARED | VM_NORESERVE)))
    if covered > addr:
        mm.protect(addr, covered, prot)
    if covered < end:
        raise KernelError(E.ENOMEM)
    return 0


def _mapped_prefix(mm: object, start: int, end: int) -> int:
    """The end of the mapped run that begins exactly at `start`."""
    pos = start
    for v in mm.overlapping(start, end):  # type: ignore[attr-defined]
        if v.start > pos:
            break
        pos = v.end
    return min(pos, end) if pos > start else start


_MADV_KNOWN = {getattr(M, n) for n in dir(M) if n.startswith("MADV_")}


def sys_madvise(k: Kernel, t: Task, addr: int, length: int, advice: int) -> int:
    advice = i32(advice)
    if advice not in _MADV_KNOWN or advice in (M.MADV_HWPOISON, M.MADV_SOFT_OFFLINE):
        raise KernelError(E.EINVAL)
    if addr & ~PAGE_MASK:
        raise KernelError(E.EINVAL)
    aligned = page_align(length)
    if aligned < length:
        raise KernelError(E.EINVAL)
    end = addr + aligned
    if end < addr:
        raise KernelError(E.EINVAL)
    if end == addr:
        return 0
    mm = t.mm
    hole = not mm.is_mapped(addr, end)
    if advice in (M.MADV_DONTNEED, M.MADV_DONTNEED_LOCKED, M.MADV_FREE, M.MADV_REMOVE):
        mm.discard(addr, end)
    elif advice == M.MADV_DONTFORK:
        mm.set_flags(addr, end, VM_DONTCOPY)
    elif advice == M.MADV_DOFORK:
        mm.set_flags(addr, end, 0, VM_DONTCOPY)
    elif advice == M.MADV_WIPEONFORK:
        mm.set_flags(addr, end, VM_WIPEONFORK)
    elif advice == M.MADV_KEEPONFORK:
        mm.set_flags(addr, end, 0, VM_WIPEONFORK)
    elif advice == M.MADV_NOHUGEPAGE:
        mm.set_flags(addr, end, VM_NOHUGEPAGE)
    elif advice == M.MADV_HUGEPAGE:
        mm.set_flags(addr, end, 0, VM_NOHUGEPAGE)
    if hole:
        raise KernelError(E.ENOMEM)
    return 0


def sys_mremap(k: Kernel, t: Task, old: int, old_len: int, new_len: int, flags: int,
               new_addr: int) -> int:
    flags &= 0xFFFFFFFF
    if flags & ~(M.MREMAP_MAYMOVE | M.MREMAP_FIXED | M.MREMAP_DONTUNMAP):
        raise KernelError(E.EINVAL)
    if flags & M.MREMAP_FIXED and not flags & M.MREMAP_MAYMOVE:
        raise KernelError(E.EINVAL)
    if flags & M.MREMAP_DONTUNMAP:
        raise KernelError(E.EINVAL, "MREMAP_DONTUNMAP is not emulated")
    if old & ~PAGE_MASK:
        raise KernelError(E.EINVAL)
    old_len, new_len = page_align(old_len), page_align(new_len)
    if new_len == 0 or old_len == 0:
        raise KernelError(E.EINVAL)
    mm = t.mm
    if flags & M.MREMAP_FIXED:
        if new_addr & ~PAGE_MASK or new_addr > TASK_SIZE - new_len:
            raise KernelError(E.EINVAL)
        if new_addr < old + old_len and old < new_addr + new_len:
            raise KernelError(E.EINVAL)
        v = mm.split_range(old, old + old_len)
        if accounted(v):
            memlimit.charge(k, t, new_len - old_len)
        mm.unmap(new_addr, new_addr + new_len)
        mm.move(v, new_addr, new_len)
        return new_addr
    v = mm.split_range(old, old + old_len)
    if new_len <= old_len:
        if new_len < old_len:
            mm.unmap(old + new_len, old + old_len)
        return old
    if accounted(v):
        memlimit.charge(k, t, new_len - old_len)
    nxt = mm.find_next(old + old_len)
    room = nxt is None or nxt.start - nxt.start_gap() >= old + new_len
    if room and old + new_len <= TASK_SIZE:
        if v is mm.heap or v.offset + new_len <= v.block.size:
            nv = mm.resize(v, v.start, old + new_len)
        else:
            nv = mm.move(v, old, new_len)
        if v is mm.heap:
            mm.heap = nv
        return old
    if not flags & M.MREMAP_MAYMOVE:
        raise KernelError(E.ENOMEM)
    dest = mm.get_unmapped_area(0, new_len, 0)
    mm.move(v, dest, new_len)
    return dest


def sys_msync(k: Kernel, t: Task, addr: int, length: int, flags: int) -> int:
    if addr & ~PAGE_MASK or flags & ~(M.MS_ASYNC | M.MS_INVALIDATE | M.MS_SYNC):
        raise KernelError(E.EINVAL)
    if flags & M.MS_ASYNC and flags & M.MS_SYNC:
        raise KernelError(E.EINVAL)
    end = addr + page_align(length)
    if not t.mm.is_mapped(addr, end):
        raise KernelError(E.ENOMEM)
    return 0


def sys_mincore(k: Kernel, t: Task, addr: int, length: int, vec: int) -> int:
    if addr & ~PAGE_MASK:
        raise KernelError(E.EINVAL)
    end = addr + page_align(length)
    if not t.mm.is_mapped(addr, end):
        raise KernelError(E.ENOMEM)
    t.mm.write(vec, b"\x01" * ((end - addr) // PAGE))
    return 0


def sys_mlock(k: Kernel, t: Task, addr: int, length: int) -> int:
    start = addr & PAGE_MASK
    if not t.mm.is_mapped(start, page_align(addr + length)):
        raise KernelError(E.ENOMEM)
    return 0


MLOCK_ONFAULT = 1
MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT = 1, 2, 4


def sys_mlock2(k: Kernel, t: Task, addr: int, length: int, flags: int) -> int:
    if flags & ~MLOCK_ONFAULT:
        raise KernelError(E.EINVAL)
    return sys_mlock(k, t, addr, length)


def sys_mlockall(k: Kernel, t: Task, flags: int) -> int:
    """Nothing is ever swapped out here: locking only checks its flags."""
    if not flags or flags & ~(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) or \
            flags == MCL_ONFAULT:
        raise KernelError(E.EINVAL)
    return 0


def sys_munlockall(k: Kernel, t: Task) -> int:
    return 0


def sys_map_shadow_stack(k: Kernel, t: Task, addr: int, size: int, flags: int) -> int:
    if not k.profile.kconfig:
        return -E.ENOSYS  # sys_ni_syscall: the kernel was built without the syscall
    return shstk.map_shadow_stack(k, t, addr, size, flags)
