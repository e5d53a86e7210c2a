"""POSIX per-process timers (kernel/time/posix-timers.c): timer_create and friends.

A timer is a deadline in monotonic ns that the scheduler fires (`fire`), queueing its
signal (SIGEV_SIGNAL to the process, SIGEV_THREAD_ID to one thread, SIGEV_NONE nothing);
`next_deadline` tells the idle loop (and --virtual-time's clock) when to wake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shstk.abi import signals as S
from shstk.emu.kernel.signal import SigInfo

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
TIMER_MAX = 1 << 20


@dataclass
class PosixTimer:
    """A timer_create timer: its clock, how it notifies, and when it next fires."""

    tid: int
    proc: Process
    clock: int
    notify: int
    signo: int
    value: int
    target: Task | None
    deadline: int | None = None
    interval: int = 0
    overrun: int = 0
    pending: bool = False


def table(k: Kernel) -> dict[tuple[int, int], PosixTimer]:
    tab: dict[tuple[int, int], PosixTimer] = k.__dict__.setdefault("posix_timers", {})
    return tab


def next_id(k: Kernel, proc: Process) -> int:
    """posix_timer_add(): signal->next_posix_timer_id, which only grows (wrapping at
    INT_MAX) and survives exec; a timer_create that then fails its sigevent check has
    used its id already."""
    counters: dict[int, int] = k.__dict__.setdefault("posix_timer_next", {})
    used = {tid for (pid, tid) in table(k) if pid == proc.pid}
    tid = counters.get(proc.pid, 0)
    while tid in used:
        tid = (tid + 1) & 0x7FFFFFFF
    counters[proc.pid] = (tid + 1) & 0x7FFFFFFF
    return tid


def create(k: Kernel, proc: Process, timer: PosixTimer, tid: int) -> int:
    timer.tid = tid
    table(k)[(proc.pid, tid)] = timer
    return tid


def lookup(k: Kernel, proc: Process, tid: int) -> PosixTimer | None:
    return table(k).get((proc.pid, tid))


def delete(k: Kernel, proc: Process, tid: int) -> bool:
    return table(k).pop((proc.pid, tid), None) is not None


def drop_process(k: Kernel, proc: Process, *, exiting: bool = False) -> None:
    """exec() and exit destroy a process's timers (exit_itimers); exit also its id count."""
    for key in [key for key in table(k) if key[0] == proc.pid]:
        del table(k)[key]
    if exiting:
        k.__dict__.setdefault("posix_timer_next", {}).pop(proc.pid, None)


def fire(k: Kernel) -> None:
    tab = table(k)
    if not tab:
        return
    now = k.monotonic_ns()
    for key, tm in list(tab.items()):
        if tm.proc.zombie:
            del tab[key]
            continue
        if tm.deadline is None or now < tm.deadline:
            continue
        if tm.interval:
            n = (now - tm.deadline) // tm.interval + 1
            tm.deadline += n * tm.interval
            extra = n - 1
        else:
            tm.deadline = None
            extra = 0
        if tm.notify == SIGEV_NONE:
            continue
        if tm.pending and _queued(tm):
            tm.overrun += 1 + extra
            continue
        tm.overrun = extra
        tm.pending = True
        info = SigInfo(tm.signo, S.SI_TIMER, pid=tm.tid, uid=tm.overrun, value=tm.value)
        if tm.notify & SIGEV_THREAD_ID and tm.target is not None:
            k.signals.send_thread(tm.target, info)
        else:
            k.signals.send_process(tm.proc, info)


def _queued(tm: PosixTimer) -> bool:
    queues = [tm.proc.shared_pending] + [t.pending for t in tm.proc.threads]
    return any(i.code == S.SI_TIMER and i.pid == tm.tid and i.signo == tm.signo
               for q in queues for i in q)


def next_deadline(k: Kernel) -> int | None:
    ds = [tm.deadline for tm in table(k).values() if tm.deadline is not None]
    return min(ds) if ds else None
