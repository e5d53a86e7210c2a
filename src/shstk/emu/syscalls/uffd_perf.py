"""userfaultfd(2) and perf_event_open(2) (the parts the kernel's shadow-stack selftest and
its uprobe tests use): the objects live in emu/kernel/userfaultfd.py and perf.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel import perf
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT
from shstk.emu.kernel.userfaultfd import UFFD_USER_MODE_ONLY, Userfaultfd

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_userfaultfd(k: Kernel, t: Task, flags: int) -> int:
    flags &= 0xFFFFFFFF
    if flags & ~(F.O_CLOEXEC | F.O_NONBLOCK | UFFD_USER_MODE_ONLY):
        raise KernelError(E.EINVAL)
    # vm.unprivileged_userfaultfd = 0: kernel-mode faults need CAP_SYS_PTRACE
    if not flags & UFFD_USER_MODE_ONLY and t.proc.euid != 0:
        raise KernelError(E.EPERM)
    uffd = Userfaultfd(t.mm, flags)
    return t.proc.files.install(uffd, cloexec=bool(flags & F.O_CLOEXEC))


PERF_ATTR_SIZE_VER0 = 64
PERF_ATTR_SIZE_LATEST = 136


def sys_perf_event_open(k: Kernel, t: Task, attr: int, pid: int, cpu: int, group_fd: int,
                        flags: int) -> int:
    size = t.mm.read_u32(attr + 4)
    if size == 0:
        size = PERF_ATTR_SIZE_VER0
    if size < PERF_ATTR_SIZE_VER0 or size > 4096:
        t.mm.write_u32(attr + 4, PERF_ATTR_SIZE_LATEST)
        raise KernelError(E.E2BIG)
    raw = t.mm.read(attr, min(size, PERF_ATTR_SIZE_LATEST)).ljust(PERF_ATTR_SIZE_LATEST, b"\0")
    event = perf.open_uprobe(k, t, raw, pid, cpu, group_fd, flags & 0xFFFFFFFFFFFFFFFF)
    return t.proc.files.install(event, cloexec=bool(flags & perf.PERF_FLAG_FD_CLOEXEC))


def sys_uretprobe(k: Kernel, t: Task) -> object:
    result = perf.sys_uretprobe(k, t)
    return NO_RESULT if result is None else result


def sys_uprobe(k: Kernel, t: Task) -> int:
    return perf.sys_uprobe(k, t)
