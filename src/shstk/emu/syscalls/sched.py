"""Scheduling: yield, affinity, policies and priorities, getcpu."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.kernel.errors import KernelError
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_sched_yield(k: Kernel, t: Task) -> int:
    t.yielded = True  # to the back of the run queue: the others run first
    t.cpu.request_stop()
    return 0


def sys_sched_getaffinity(k: Kernel, t: Task, pid: int, size: int, mask: int) -> int:
    if i32(pid) and k.tasks.get(i32(pid)) is None:
        raise KernelError(E.ESRCH)
    if size < 8 or size % 8:
        raise KernelError(E.EINVAL)
    bits = (1 << k.ncpus) - 1
    t.mm.write(mask, bits.to_bytes(8, "little"))
    return 8


def sys_sched_setaffinity(k: Kernel, t: Task, pid: int, size: int, mask: int) -> int:
    if i32(pid) and k.tasks.get(i32(pid)) is None:
        raise KernelError(E.ESRCH)
    t.mm.read(mask, min(size, 128))
    return 0


def sys_sched_getparam(k: Kernel, t: Task, pid: int, param: int) -> int:
    t.mm.write_u32(param, 0)
    return 0


def sys_sched_getscheduler(k: Kernel, t: Task, pid: int) -> int:
    return 0


PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2


def _prio_targets(k: Kernel, t: Task, which: int, who: int) -> list[Task]:
    """The threads `which`/`who` name (kernel/sys.c getpriority/setpriority)."""
    if which == PRIO_PROCESS:
        target = k.tasks.get(who) if who else t
        return [target] if target is not None else []
    if which == PRIO_PGRP:
        pgid = who or t.proc.pgid
        return [x for x in k.tasks.values() if x.proc.pgid == pgid and not x.released]
    if which == PRIO_USER:
        uid = who or t.proc.uid
        return [x for x in k.tasks.values() if x.proc.uid == uid and not x.released]
    raise KernelError(E.EINVAL)


def sys_getpriority(k: Kernel, t: Task, which: int, who: int) -> int:
    """The highest priority among the targets, as 20 - nice (1..40)."""
    targets = _prio_targets(k, t, which, who)
    if not targets:
        raise KernelError(E.ESRCH)
    return max(20 - x.nice for x in targets)


def sys_setpriority(k: Kernel, t: Task, which: int, who: int, prio: int) -> int:
    """set_one_prio(): anyone may lower a thread of their own user; raising it (a smaller
    nice) needs root or RLIMIT_NICE (EACCES); another user's thread is EPERM."""
    nice = min(max(prio, -20), 19)
    targets = _prio_targets(k, t, which, who)
    error = E.ESRCH
    for x in targets:
        creds = t.proc
        if creds.euid and x.proc.uid != creds.euid and x.proc.euid != creds.euid:
            error = E.EPERM
            continue
        if nice < x.nice and creds.euid and t.proc.rlimits[R.RLIMIT_NICE][0] < 20 - nice:
            error = E.EACCES
            continue
        x.nice = nice
        if error == E.ESRCH:
            error = 0
    if error:
        raise KernelError(error)
    return 0


def sys_getcpu(k: Kernel, t: Task, cpu: int, node: int, cache: int) -> int:
    if cpu:
        t.mm.write_u32(cpu, 0)
    if node:
        t.mm.write_u32(node, 0)
    return 0


SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE = 0, 1, 2, 3, 5, 6


def _priority_range(policy: int) -> tuple[int, int]:
    if policy in (SCHED_FIFO, SCHED_RR):
        return 1, 99
    if policy in (SCHED_NORMAL, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE):
        return 0, 0
    raise KernelError(E.EINVAL)


def sys_sched_get_priority_max(k: Kernel, t: Task, policy: int) -> int:
    return _priority_range(policy)[1]


def sys_sched_get_priority_min(k: Kernel, t: Task, policy: int) -> int:
    return _priority_range(policy)[0]


def sys_sched_setparam(k: Kernel, t: Task, pid: int, param: int) -> int:
    """Accepted and ignored: one CPU runs every task in turn."""
    return 0


def sys_sched_setscheduler(k: Kernel, t: Task, pid: int, policy: int, param: int) -> int:
    """Accepted and ignored: one CPU runs every task in turn."""
    return 0
