"""Clocks and sleeping: clock_gettime, gettimeofday, time, nanosleep, clock_nanosleep,
times. With --virtual-time every clock is derived from the instruction count."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

_REALTIME = (R.CLOCK_REALTIME, R.CLOCK_REALTIME_COARSE, 8)  # 8: CLOCK_REALTIME_ALARM
_MONOTONIC = (R.CLOCK_MONOTONIC, R.CLOCK_MONOTONIC_RAW, R.CLOCK_MONOTONIC_COARSE,
              R.CLOCK_BOOTTIME, 9)


def clock_ns(k: Kernel, t: Task, clock: int) -> int:
    clock = i32(clock)
    if clock in _REALTIME:
        return k.realtime_ns()
    if clock in _MONOTONIC:
        return k.monotonic_ns()
    if clock == R.CLOCK_PROCESS_CPUTIME_ID:
        return t.proc.cpu_ns() + _running_ns(k, t)
    if clock == R.CLOCK_THREAD_CPUTIME_ID:
        return t.cpu_ns + _running_ns(k, t)
    if clock < 0:
        # CPU-time clocks of other processes/threads (clockid from a pid)
        return t.cpu_ns
    raise KernelError(E.EINVAL)


def _running_ns(k: Kernel, t: Task) -> int:
    return k.insns_now() - k.total_insns


def sys_clock_gettime(k: Kernel, t: Task, clock: int, tp: int) -> int:
    ns = clock_ns(k, t, clock)
    t.mm.write(tp, struct.pack("<qq", ns // 10**9, ns % 10**9))
    return 0


def sys_clock_getres(k: Kernel, t: Task, clock: int, res: int) -> int:
    if i32(clock) not in (*_REALTIME, *_MONOTONIC, R.CLOCK_PROCESS_CPUTIME_ID,
                          R.CLOCK_THREAD_CPUTIME_ID):
        raise KernelError(E.EINVAL)
    if res:
        coarse = i32(clock) in (R.CLOCK_REALTIME_COARSE, R.CLOCK_MONOTONIC_COARSE)
        t.mm.write(res, struct.pack("<qq", 0, 4_000_000 if coarse else 1))
    return 0


def sys_gettimeofday(k: Kernel, t: Task, tv: int, tz: int) -> int:
    ns = k.realtime_ns()
    if tv:
        t.mm.write(tv, struct.pack("<qq", ns // 10**9, (ns % 10**9) // 1000))
    if tz:
        t.mm.write(tz, struct.pack("<ii", 0, 0))
    return 0


def sys_time(k: Kernel, t: Task, tloc: int) -> int:
    sec = k.realtime_ns() // 10**9
    if tloc:
        t.mm.write_u64(tloc, sec)
    return sec


def _sleep_until(k: Kernel, t: Task, deadline: int, rem: int) -> int:
    def done() -> int:
        return 0

    def interrupted_left() -> int:
        return max(0, deadline - k.monotonic_ns())

    t.sleep_rem = (rem, interrupted_left)
    raise Blocked(Wait(lambda: k.monotonic_ns() >= deadline, "nanosleep", deadline=deadline,
                       polled=False), done)


def _timespec(t: Task, addr: int) -> int:
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise KernelError(E.EINVAL)
    return sec * 10**9 + nsec


def sys_nanosleep(k: Kernel, t: Task, req: int, rem: int) -> int:
    ns = _timespec(t, req)
    if ns == 0:
        return 0
    return _sleep_until(k, t, k.monotonic_ns() + ns, rem)


def sys_clock_nanosleep(k: Kernel, t: Task, clock: int, flags: int, req: int,
                        rem: int) -> int:
    clock = i32(clock)
    if clock not in (*_REALTIME, *_MONOTONIC, R.CLOCK_PROCESS_CPUTIME_ID):
        raise KernelError(E.EINVAL)
    ns = _timespec(t, req)
    if flags & R.TIMER_ABSTIME:
        now = clock_ns(k, t, clock)
        if ns <= now:
            return 0
        return _sleep_until(k, t, k.monotonic_ns() + (ns - now), 0)
    if ns == 0:
        return 0
    return _sleep_until(k, t, k.monotonic_ns() + ns, rem)


def sys_times(k: Kernel, t: Task, buf: int) -> int:
    ticks = t.proc.cpu_ns() // 10_000_000
    child_ticks = t.proc.child_cpu_ns // 10_000_000
    if buf:
        t.mm.write(buf, struct.pack("<qqqq", ticks, 0, child_ticks, 0))
    return k.monotonic_ns() // 10_000_000
