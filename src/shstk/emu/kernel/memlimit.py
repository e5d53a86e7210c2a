"""Limits on what a run may take from the host: guest memory (--memory-limit) and tasks
(--max-tasks, RLIMIT_NPROC).

Memory is accounted as Linux's overcommit does (mm/util.c __vm_enough_memory, the default
heuristic mode): private writable mappings, shared anonymous memory and the heap count,
MAP_NORESERVE and read-only mappings do not. A request larger than the limit fails with
ENOMEM, as Linux refuses one larger than RAM + swap; so does one that would take the
run's total (every process of the run together) over the limit, so the guest, not the
host, runs out of memory. The default limit is the host's RAM + swap.

Tasks: fork/clone fail with EAGAIN once the run has --max-tasks tasks, or once the
caller's user has RLIMIT_NPROC processes (kernel/fork.c copy_process; root is exempt from
RLIMIT_NPROC as with CAP_SYS_RESOURCE, never from --max-tasks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.mm import AddressSpace
    from shstk.emu.kernel.task import Task


def _host_memory() -> int:
    """MemTotal + SwapTotal of the host, in bytes (16 GiB when /proc says nothing)."""
    total = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("MemTotal", "SwapTotal"):
                    total += int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total or 16 << 30


HOST_MEMORY = _host_memory()


def _committed(mm: AddressSpace) -> int:
    return mm.committed  # kept by mm._insert/_remove (vma.accounted)


def limit(k: Kernel) -> int:
    return k.opts.memory_limit or HOST_MEMORY


def charge(k: Kernel, t: Task, nbytes: int) -> None:
    """ENOMEM unless `nbytes` more of accounted guest memory fit under the limit."""
    if nbytes <= 0:
        return
    cap = limit(k)
    if nbytes > cap:
        raise KernelError(E.ENOMEM)
    # every address space of the run once (threads share theirs; a vfork child its
    # parent's): the processes, not the tasks, so 30,000 threads cost one look
    spaces = {id(p.mm): p.mm for p in k.processes.values() if p.mm is not None}
    total = nbytes + sum(_committed(mm) for mm in spaces.values())
    if total > cap:
        raise KernelError(E.ENOMEM)


def charge_fork(k: Kernel, parent: Task) -> None:
    """A fork copies the parent's accounted memory (dup_mmap accounts each VMA)."""
    mm = parent.proc.mm
    if mm is not None:
        charge(k, parent, _committed(mm))


def check_new_task(k: Kernel, parent: Task, *, thread: bool) -> None:
    """copy_process(): EAGAIN past RLIMIT_NPROC (not for root) or past --max-tasks."""
    if len(k.tasks) >= k.opts.max_tasks:
        raise KernelError(E.EAGAIN)
    proc = parent.proc
    if proc.uid == 0:
        return
    nproc = proc.rlimits.get(R.RLIMIT_NPROC, [R.RLIM_INFINITY])[0]
    if nproc == R.RLIM_INFINITY:
        return
    # Linux counts the user's tasks (threads too) against RLIMIT_NPROC
    mine = sum(1 for task in k.tasks.values() if task.proc.uid == proc.uid)
    if mine >= nproc:
        raise KernelError(E.EAGAIN)
