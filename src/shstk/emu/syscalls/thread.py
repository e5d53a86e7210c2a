"""Threads: tid address, robust futex lists, futexes, rseq."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.emu.kernel import futex
from shstk.emu.kernel.errors import KernelError
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_set_tid_address(k: Kernel, t: Task, addr: int) -> int:
    t.clear_child_tid = addr
    return t.tid


def sys_set_robust_list(k: Kernel, t: Task, head: int, length: int) -> int:
    if length != 24:
        raise KernelError(E.EINVAL)
    t.robust_list = (head, length)
    return 0


def sys_get_robust_list(k: Kernel, t: Task, pid: int, head_ptr: int, len_ptr: int) -> int:
    target = t if i32(pid) == 0 else k.tasks.get(i32(pid))
    if target is None:
        raise KernelError(E.ESRCH)
    t.mm.write_u64(head_ptr, target.robust_list[0])
    t.mm.write_u64(len_ptr, target.robust_list[1] or 24)
    return 0


def _timeout(k: Kernel, t: Task, addr: int, absolute: bool) -> int | None:
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise KernelError(E.EINVAL)
    ns = sec * 10**9 + nsec
    return ns if absolute else k.monotonic_ns() + ns


def sys_futex(k: Kernel, t: Task, uaddr: int, op: int, val: int, timeout: int, uaddr2: int,
              val3: int) -> int:
    op &= 0xFFFFFFFF
    cmd = op & C.FUTEX_CMD_MASK & 0xFFFFFFFF
    proc = t.proc
    if cmd in (C.FUTEX_WAIT, C.FUTEX_WAIT_BITSET):
        bitset = val3 & 0xFFFFFFFF if cmd == C.FUTEX_WAIT_BITSET else C.FUTEX_BITSET_MATCH_ANY
        absolute = cmd == C.FUTEX_WAIT_BITSET
        deadline = _timeout(k, t, timeout, absolute)
        if absolute and deadline is not None and op & C.FUTEX_CLOCK_REALTIME:
            deadline = deadline - k.realtime_ns() + k.monotonic_ns()
        return futex.wait(k, t, uaddr, val, deadline, bitset)
    if cmd in (C.FUTEX_WAKE, C.FUTEX_WAKE_BITSET):
        bitset = val3 & 0xFFFFFFFF if cmd == C.FUTEX_WAKE_BITSET else C.FUTEX_BITSET_MATCH_ANY
        futex.futex_key(proc, uaddr)
        return futex.wake(k, proc, uaddr, i32(val), bitset)
    if cmd in (C.FUTEX_REQUEUE, C.FUTEX_CMP_REQUEUE):
        cmp = val3 if cmd == C.FUTEX_CMP_REQUEUE else None
        return futex.requeue(k, proc, uaddr, i32(val), timeout & 0x7FFFFFFF, uaddr2, cmp,
                             val3)
    if cmd == C.FUTEX_WAKE_OP:
        return futex.wake_op(k, proc, uaddr, i32(val), uaddr2, timeout & 0x7FFFFFFF, val3)
    raise KernelError(E.ENOSYS, "priority-inheritance futexes are not emulated")


def sys_rseq(k: Kernel, t: Task, rseq: int, length: int, flags: int, sig: int) -> int:
    """Registration only: this machine never migrates a thread, so cpu_id stays 0."""
    RSEQ_FLAG_UNREGISTER = 1
    if flags & RSEQ_FLAG_UNREGISTER:
        if getattr(t, "rseq", None) != rseq:
            raise KernelError(E.EINVAL)
        t.rseq = None
        return 0
    if flags or length < 32 or rseq % 32:
        raise KernelError(E.EINVAL)
    if getattr(t, "rseq", None):
        raise KernelError(E.EBUSY if t.rseq == rseq else E.EINVAL)
    t.mm.write(rseq, struct.pack("<II", 0, 0))  # cpu_id_start, cpu_id
    t.rseq = rseq
    return 0


def sys_membarrier(k: Kernel, t: Task, cmd: int, flags: int, cpu_id: int) -> int:
    """MEMBARRIER_CMD_QUERY answers "no commands": callers then use their own fences."""
    return 0
