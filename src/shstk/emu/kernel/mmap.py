"""do_mmap(): the generic checks, placement and mapping shared by mmap(2), the loader and
map_shadow_stack (mm/mmap.c)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.kernel import memlimit, policy, seals
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import VM_GROWSDOWN, VM_NORESERVE, FileRef, page_align

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def do_mmap(k: Kernel, t: Task, addr: int, length: int, prot: int, flags: int, fd: int = -1,
            offset: int = 0, *, extra_vm: int = 0, start_gap: int = 0) -> int:
    """do_mmap(): the generic checks, placement and mapping shared by every caller."""
    mm = t.mm
    if length == 0:
        raise KernelError(E.EINVAL)
    length = page_align(length)
    if length == 0 or length > M.TASK_SIZE:
        raise KernelError(E.ENOMEM)
    if offset & (M.PAGE_SIZE - 1):
        raise KernelError(E.EINVAL)
    if (offset >> 12) + (length >> 12) >= 1 << 52:
        raise KernelError(E.EOVERFLOW)
    maptype = flags & M.MAP_TYPE
    if maptype not in (M.MAP_SHARED, M.MAP_PRIVATE, M.MAP_SHARED_VALIDATE):
        raise KernelError(E.EINVAL)
    if maptype == M.MAP_SHARED_VALIDATE and flags & ~(M.LEGACY_MAP_MASK | M.MAP_SYNC |
                                                     M.MAP_FIXED_NOREPLACE):
        raise KernelError(E.EOPNOTSUPP)
    shared = maptype != M.MAP_PRIVATE
    anonymous = bool(flags & M.MAP_ANONYMOUS)
    sealed = False  # a write-sealed memfd: no VM_MAYWRITE
    file = None
    if not anonymous:
        file = t.proc.files.get(fd)
        host_fd = file.host_fd()
        if getattr(file, "path", "") == "/dev/zero":
            anonymous = True
        elif host_fd < 0 or file.getdents() is not None:
            raise KernelError(E.ENODEV)
        if not anonymous and not file.readable:
            raise KernelError(E.EACCES)
        if not anonymous and shared and prot & M.PROT_WRITE and not file.writable:
            raise KernelError(E.EACCES)
        if not anonymous and shared and seals.write_sealed(host_fd):
            if prot & M.PROT_WRITE:
                raise KernelError(E.EPERM)
            sealed = True
    fixed = bool(flags & (M.MAP_FIXED | M.MAP_FIXED_NOREPLACE))
    where = mm.get_unmapped_area(addr, length, (flags | M.MAP_FIXED) if fixed else flags,
                                 start_gap)
    if flags & M.MAP_FIXED_NOREPLACE and mm.overlapping(where, where + length):
        raise KernelError(E.EEXIST)
    if not flags & M.MAP_NORESERVE and (
            (shared and anonymous) or (not shared and prot & M.PROT_WRITE)):
        memlimit.charge(k, t, length)
    if fixed:
        mm.unmap(where, where + length)
    vm = extra_vm
    if flags & M.MAP_GROWSDOWN:
        vm |= VM_GROWSDOWN
    if flags & M.MAP_NORESERVE:
        vm |= VM_NORESERVE
    if anonymous:
        mm.map_anonymous(where, length, prot, shared=shared, extra_flags=vm)
    else:
        assert file is not None
        st = os.fstat(file.host_fd())
        host_path = getattr(file, "host_path", "")
        mm.map_file(where, length, prot, file.host_fd(), offset, shared=shared,
                    fd_writable=file.writable and not sealed, file_size=st.st_size,
                    file=FileRef(file.path, st.st_dev, st.st_ino, host_path),
                    extra_flags=vm)
        if prot & M.PROT_EXEC and host_path:
            policy.check_late_object(k, t, host_path, file.path)
    return where
