"""Interval timers (ITIMER_REAL / alarm): per-process deadlines the scheduler fires."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import signals as S
from shstk.emu.kernel import posix_timers
from shstk.emu.kernel.signal import SigInfo

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process


def arm_alarm(k: Kernel, proc: Process, ns: int) -> int:
    """Arm (0: cancel) the ITIMER_REAL of `proc`; returns the ns that were left."""
    now = k.monotonic_ns()
    left = max(0, proc.alarm_deadline - now) if proc.alarm_deadline is not None else 0
    proc.alarm_deadline = now + ns if ns else None
    if ns:
        _register(k, proc)
    return left


def _register(k: Kernel, proc: Process) -> None:
    """A kernel-side timer: modelled as a wait that delivers SIGALRM when it expires."""
    timers = k.__dict__.setdefault("alarm_timers", {})
    timers[proc.pid] = proc


def fire_alarms(k: Kernel) -> None:
    posix_timers.fire(k)
    timers = k.__dict__.get("alarm_timers", {})
    now = k.monotonic_ns()
    for pid, proc in list(timers.items()):
        if proc.zombie:
            del timers[pid]
            continue
        if proc.alarm_deadline is not None and now >= proc.alarm_deadline:
            interval = getattr(proc, "alarm_interval", 0)
            proc.alarm_deadline = now + interval if interval else None
            if proc.alarm_deadline is None:
                del timers[pid]
            k.signals.send_process(proc, SigInfo(S.SIGALRM, S.SI_KERNEL))


def next_alarm(k: Kernel) -> int | None:
    timers = k.__dict__.get("alarm_timers", {})
    deadlines = [p.alarm_deadline for p in timers.values() if p.alarm_deadline is not None]
    posix = posix_timers.next_deadline(k)
    if posix is not None:
        deadlines.append(posix)
    return min(deadlines) if deadlines else None
