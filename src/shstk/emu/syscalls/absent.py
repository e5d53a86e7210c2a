"""Calls that answer as on a machine without the hardware or the work they describe:
protection keys (a CPU without PKU), readahead (nothing to prefetch), process_mrelease
(no memory to reap early), I/O priorities (kept, never used: there is no disk queue)."""

from __future__ import annotations

import stat as st
import weakref
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.pidfd import PidFd
from shstk.emu.syscalls.mm import sys_mprotect

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_SHIFT = 13


# --- protection keys: a CPU without PKU (measured on Linux 6.18) ----------------------
def sys_pkey_mprotect(k: Kernel, t: Task, addr: int, length: int, prot: int,
                      pkey: int) -> int:
    if pkey != -1:
        raise KernelError(E.EINVAL)
    return sys_mprotect(k, t, addr, length, prot)


def sys_pkey_alloc(k: Kernel, t: Task, flags: int, init_val: int) -> int:
    raise KernelError(E.EINVAL)


def sys_pkey_free(k: Kernel, t: Task, pkey: int) -> int:
    raise KernelError(E.EINVAL)


# --- readahead, process_mrelease --------------------------------------------------------
def sys_readahead(k: Kernel, t: Task, fd: int, offset: int, count: int) -> int:
    f = t.proc.files.get(fd)
    if not f.readable:
        raise KernelError(E.EBADF)
    if not st.S_ISREG(f.stat().mode):
        raise KernelError(E.EINVAL)
    return 0


def sys_process_mrelease(k: Kernel, t: Task, pidfd: int, flags: int) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    f = t.proc.files.get(pidfd)
    if not isinstance(f, PidFd):
        raise KernelError(E.EBADF)
    if f.proc.reaped:
        raise KernelError(E.ESRCH)
    if not f.proc.zombie:
        raise KernelError(E.EINVAL)  # only a process being killed can be reaped early
    return 0


# --- I/O priorities ---------------------------------------------------------------------
_IOPRIO: weakref.WeakKeyDictionary[Process, int] = weakref.WeakKeyDictionary()


def _targets(k: Kernel, t: Task, which: int, who: int) -> list[Process]:
    if which == IOPRIO_WHO_PROCESS:
        if who == 0:
            return [t.proc]
        task = k.tasks.get(who)
        return [task.proc] if task is not None else []
    if which == IOPRIO_WHO_PGRP:
        pgid = who or t.proc.pgid
        return [p for p in k.processes.values() if p.pgid == pgid and not p.zombie]
    if which == IOPRIO_WHO_USER:
        uid = who or t.proc.uid
        return [p for p in k.processes.values() if p.uid == uid and not p.zombie]
    raise KernelError(E.EINVAL)


def sys_ioprio_get(k: Kernel, t: Task, which: int, who: int) -> int:
    procs = _targets(k, t, which, who)
    if not procs:
        raise KernelError(E.ESRCH)
    return max(_IOPRIO.get(p, 0) for p in procs)


def sys_ioprio_set(k: Kernel, t: Task, which: int, who: int, ioprio: int) -> int:
    cls, data = ioprio >> IOPRIO_CLASS_SHIFT, ioprio & ((1 << IOPRIO_CLASS_SHIFT) - 1)
    if cls > 3 or (cls == 0 and data & 7) or ioprio < 0:
        raise KernelError(E.EINVAL)  # ioprio_check_cap (the upper data bits are hints)
    if cls == 1 and t.proc.euid != 0:
        raise KernelError(E.EPERM)
    procs = _targets(k, t, which, who)
    if not procs:
        raise KernelError(E.ESRCH)
    for p in procs:
        _IOPRIO[p] = ioprio
    return 0
