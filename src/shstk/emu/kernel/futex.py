"""futex(2): wait queues keyed as Linux's get_futex_key(): a word of shared memory by
(object, offset), which every process mapping that object agrees on; a word of private
memory by its host address, which identifies it within the process (and its threads).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.emu.kernel.entry import Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.task import Wait

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task


@dataclass(eq=False)
class Waiter:
    """A task blocked in FUTEX_WAIT (or a waitv entry) on one futex word."""

    task: Task
    bitset: int
    woken: bool = False
    queue: dict[Waiter, None] = field(default_factory=dict)  # the queue it waits in


FutexKey = tuple[int, ...]


def futex_key(proc: Process, addr: int) -> FutexKey:
    """get_futex_key(): a word in shared memory (MAP_SHARED anonymous memory, shm, memfd,
    a shared file mapping) is keyed by the object behind it and the offset in it, so
    processes that map it at other addresses (each process has its own machine and host
    pages) meet on it; private memory by the host address of the word (unique to the
    process and its threads)."""
    if addr % 4:
        raise KernelError(E.EINVAL)
    v = proc.mm.find(addr)
    if v is None:
        raise KernelError(E.EFAULT)
    block = v.block
    inside = v.offset + (addr - v.start)
    if block.shared and block.fd >= 0 and inside < block.file_len:
        try:
            obj = os.fstat(block.fd)
        except OSError:
            raise KernelError(E.EFAULT) from None
        return (obj.st_dev, obj.st_ino, block.fd_offset + inside)
    return (v.host + (addr - v.start),)


# A queue is an insertion-ordered dict (FIFO as Linux's hash bucket, O(1) removal: a
# broadcast to N waiters must not cost N^2).
Queue = dict[Waiter, None]


def _queue(k: Kernel, key: FutexKey) -> Queue:
    queues = k.__dict__.setdefault("futex_queues", {})
    return queues.setdefault(key, {})


def wait(k: Kernel, t: Task, addr: int, val: int, deadline: int | None, bitset: int) -> int:
    if bitset == 0:
        raise KernelError(E.EINVAL)
    key = futex_key(t.proc, addr)
    if t.mm.read_u32(addr) != val & 0xFFFFFFFF:
        raise KernelError(E.EAGAIN)
    w = Waiter(t, bitset)
    w.queue = _queue(k, key)
    w.queue[w] = None

    def done() -> int:
        w.queue.pop(w, None)
        if w.woken:
            return 0
        return -E.ETIMEDOUT

    # only a wake (which kicks the sleeper), a signal or the deadline ends the wait
    raise Blocked(Wait(lambda: w.woken, "futex", deadline=deadline, polled=False), done)


def wake(k: Kernel, proc: Process, addr: int, n: int, bitset: int = C.FUTEX_BITSET_MATCH_ANY
         ) -> int:
    if bitset == 0:
        raise KernelError(E.EINVAL)
    try:
        key = futex_key(proc, addr)
    except KernelError:
        return 0
    q = _queue(k, key)
    woken: list[Waiter] = []
    for w in q:  # stops after n: waking one of N waiters does not walk all N
        if len(woken) >= n:
            break
        if w.bitset & bitset:
            woken.append(w)
    for w in woken:
        w.woken = True
        del q[w]
        k.sleepers.kick(w.task)
    return len(woken)


def requeue(k: Kernel, proc: Process, addr: int, n_wake: int, n_requeue: int, addr2: int,
            cmp: int | None, cmp_val: int) -> int:
    key = futex_key(proc, addr)
    key2 = futex_key(proc, addr2)
    if cmp is not None and proc.mm.read_u32(addr) != cmp_val & 0xFFFFFFFF:
        raise KernelError(E.EAGAIN)
    woken = wake(k, proc, addr, n_wake)
    q, q2 = _queue(k, key), _queue(k, key2)
    moved = 0
    for w in list(itertools.islice(q, max(0, n_requeue))):
        del q[w]
        q2[w] = None
        w.queue = q2
        moved += 1
    return woken + moved


def wake_op(k: Kernel, proc: Process, addr: int, n: int, addr2: int, n2: int, op: int) -> int:
    """FUTEX_WAKE_OP: *addr2 = *addr2 OP oparg; wake n at addr, and n2 at addr2 if CMP."""
    mm = proc.mm
    opcode = (op >> 28) & 0xF
    cmp = (op >> 24) & 0xF
    oparg = (op >> 12) & 0xFFF
    cmparg = op & 0xFFF
    if opcode & 8:
        oparg = 1 << oparg
        opcode &= 7
    old = mm.read_u32(addr2)
    ops = {0: lambda o: oparg, 1: lambda o: o + oparg, 2: lambda o: o | oparg,
           3: lambda o: o & ~oparg, 4: lambda o: o ^ oparg}
    if opcode not in ops:
        raise KernelError(E.ENOSYS)
    mm.write_u32(addr2, ops[opcode](old))
    cmps = {0: old == cmparg, 1: old != cmparg, 2: old < cmparg, 3: old <= cmparg,
            4: old > cmparg, 5: old >= cmparg}
    if cmp not in cmps:
        raise KernelError(E.ENOSYS)
    woken = wake(k, proc, addr, n)
    if cmps[cmp]:
        woken += wake(k, proc, addr2, n2)
    return woken


ROBUST_LIST_LIMIT = 2048  # kernel/futex/core.c: a circular list must not hang the exit


def exit_robust_list(k: Kernel, t: Task) -> None:
    """exit_robust_list(): the futexes of robust mutexes the dying thread still holds get
    FUTEX_OWNER_DIED and one waiter is woken, so pthread_mutex_lock says EOWNERDEAD."""
    head, length = t.robust_list
    t.robust_list = (0, 0)
    if not head or length != 24:  # sizeof(struct robust_list_head)
        return
    try:
        entry = t.mm.read_u64(head)
        offset = int.from_bytes(t.mm.read(head + 8, 8), "little", signed=True)
        pending = t.mm.read_u64(head + 16)
    except KernelError:
        return
    pending_addr, pending_pi = pending & ~1, pending & 1
    for _ in range(ROBUST_LIST_LIMIT):
        addr, pi = entry & ~1, entry & 1
        if addr == head:
            break
        try:
            entry = t.mm.read_u64(addr)  # read the next one before the owner's word changes
        except KernelError:
            return
        if addr != pending_addr:
            _futex_death(k, t, addr + offset, bool(pi), pending_op=False)
    if pending_addr:
        _futex_death(k, t, pending_addr + offset, bool(pending_pi), pending_op=True)


def _futex_death(k: Kernel, t: Task, uaddr: int, pi: bool, *, pending_op: bool) -> None:
    """handle_futex_death()."""
    uaddr &= 0xFFFFFFFFFFFFFFFF
    if uaddr & 3:
        return
    try:
        uval = t.mm.read_u32(uaddr)
        if pending_op and not pi and not uval:
            wake(k, t.proc, uaddr, 1)
            return
        if uval & C.FUTEX_TID_MASK != t.tid:
            return
        t.mm.write_u32(uaddr, (uval & C.FUTEX_WAITERS) | C.FUTEX_OWNER_DIED)
    except KernelError:
        return
    if not pi and uval & C.FUTEX_WAITERS:
        wake(k, t.proc, uaddr, 1)
