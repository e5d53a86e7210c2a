"""userfaultfd(2) and perf_event_open(2) (the parts the kernel's shadow-stack selftest and
its uprobe tests use): the objects live in emu/kernel/userfaultfd.py and perf.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
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
