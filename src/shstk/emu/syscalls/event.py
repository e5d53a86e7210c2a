"""Event files and waits: epoll, eventfd, timerfd, signalfd and POSIX timers."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.kernel import posix_timers as PT
from shstk.emu.kernel.epoll import EPOLL_CTL_DEL, Epoll
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.eventfiles import (
    CLOCK_BOOTTIME,
    CLOCK_BOOTTIME_ALARM,
    CLOCK_MONOTONIC,
    CLOCK_REALTIME,
    CLOCK_REALTIME_ALARM,
    EFD_SEMAPHORE,
    TFD_TIMER_ABSTIME,
    EventFd,
    SignalFd,
    TimerFd,
)
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

_CLOEXEC, _NONBLOCK = F.O_CLOEXEC, F.O_NONBLOCK
EP_MAX_EVENTS = 0x7FFFFFFF // 12
_TIMER_CLOCKS = (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM,
                 CLOCK_BOOTTIME_ALARM)
_UNBLOCKABLE = (1 << (S.SIGKILL - 1)) | (1 << (S.SIGSTOP - 1))


# --- epoll ----------------------------------------------------------------------------
def sys_epoll_create(k: Kernel, t: Task, size: int) -> int:
    if i32(size) <= 0:
        raise KernelError(E.EINVAL)
    return t.proc.files.install(Epoll(0))


def sys_epoll_create1(k: Kernel, t: Task, flags: int) -> int:
    if flags & ~_CLOEXEC:
        raise KernelError(E.EINVAL)
    return t.proc.files.install(Epoll(0), cloexec=bool(flags & _CLOEXEC))


def _epoll(t: Task, epfd: int) -> Epoll:
    ep = t.proc.files.get(epfd)
    if not isinstance(ep, Epoll):
        raise KernelError(E.EINVAL)
    return ep


def sys_epoll_ctl(k: Kernel, t: Task, epfd: int, op: int, fd: int, event: int) -> int:
    events = data = 0
    if op != EPOLL_CTL_DEL:
        events, data = struct.unpack("<IQ", t.mm.read(event, 12))
    ep_file = t.proc.files.get(epfd)
    target = t.proc.files.get(fd)
    if _regular(target):
        raise KernelError(E.EPERM)
    if not isinstance(ep_file, Epoll) or fd == epfd:
        raise KernelError(E.EINVAL)
    ep_file.ctl(op, fd, target, events, data)
    return 0


def _regular(f: object) -> bool:
    """A regular file or directory: epoll refuses it (EPERM), as it has no poll."""
    mode = getattr(f, "_mode", None)
    return mode is not None and (mode & 0o170000) in (0o100000, 0o040000)


def _epoll_wait(k: Kernel, t: Task, epfd: int, events: int, maxevents: int,
                timeout_ns: int | None) -> int:
    maxevents = i32(maxevents)
    if maxevents <= 0 or maxevents > EP_MAX_EVENTS:
        raise KernelError(E.EINVAL)
    if not t.mm.writable_prefix(events, 12 * maxevents) == 12 * maxevents:
        raise KernelError(E.EFAULT)
    ep = _epoll(t, epfd)
    deadline = None if timeout_ns is None else k.monotonic_ns() + timeout_ns

    def attempt() -> int:
        got = ep.collect(maxevents)
        if got or (deadline is not None and k.monotonic_ns() >= deadline):
            t.mm.write(events, b"".join(struct.pack("<IQ", ev, data) for ev, data in got))
            return len(got)
        wake = ep.next_deadline()
        if deadline is not None:
            wake = deadline if wake is None else min(wake, deadline)
        raise Blocked(Wait(ep.any_ready, "epoll_wait", deadline=wake,
                           host_fd=ep.host_fd_hint()), attempt)

    return attempt()


def sys_epoll_wait(k: Kernel, t: Task, epfd: int, events: int, maxevents: int,
                   timeout: int) -> int:
    ms = i32(timeout)
    return _epoll_wait(k, t, epfd, events, maxevents, None if ms < 0 else ms * 10**6)


def _with_sigmask(t: Task, sigmask: int, sigsetsize: int, call: Callable[[], int]) -> int:
    """set_user_sigmask(): the mask is the caller's for the wait only. A handler that runs
    restores the old mask at sigreturn (saved_mask goes into its frame); a call that
    completes restores it at once (restore_saved_sigmask_unless)."""
    if not sigmask:
        return call()
    if sigsetsize != 8:
        raise KernelError(E.EINVAL)
    new = t.mm.read_u64(sigmask) & ~((1 << (S.SIGKILL - 1)) | (1 << (S.SIGSTOP - 1)))
    old = t.blocked

    def restoring(fn: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            try:
                result = fn()
            except Blocked as b:
                raise Blocked(b.wait, restoring(b.retry)) from None
            except KernelError:
                t.blocked, t.saved_mask = old, None
                raise
            t.blocked, t.saved_mask = old, None
            return result
        return run

    t.saved_mask, t.blocked = old, new
    return restoring(call)()


def sys_epoll_pwait(k: Kernel, t: Task, epfd: int, events: int, maxevents: int,
                    timeout: int, sigmask: int, sigsetsize: int) -> int:
    return _with_sigmask(t, sigmask, sigsetsize,
                         lambda: sys_epoll_wait(k, t, epfd, events, maxevents, timeout))


def sys_epoll_pwait2(k: Kernel, t: Task, epfd: int, events: int, maxevents: int,
                     tsp: int, sigmask: int, sigsetsize: int) -> int:
    if sigmask and sigsetsize != 8:
        raise KernelError(E.EINVAL)
    timeout = None
    if tsp:
        timeout = _timespec(t, tsp)
    return _with_sigmask(t, sigmask, sigsetsize,
                         lambda: _epoll_wait(k, t, epfd, events, maxevents, timeout))


def _timespec(t: Task, addr: int) -> int:
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise KernelError(E.EINVAL)
    return sec * 10**9 + nsec


def _itimerspec(t: Task, addr: int) -> tuple[int, int]:
    """(value, interval) of a struct itimerspec."""
    isec, insec, vsec, vnsec = struct.unpack("<qqqq", t.mm.read(addr, 32))
    for sec, nsec in ((isec, insec), (vsec, vnsec)):
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
    return vsec * 10**9 + vnsec, isec * 10**9 + insec


def _put_itimerspec(t: Task, addr: int, value: int, interval: int) -> None:
    t.mm.write(addr, struct.pack("<qqqq", interval // 10**9, interval % 10**9,
                                 value // 10**9, value % 10**9))


# --- eventfd ----------------------------------------------------------------------------
def sys_eventfd2(k: Kernel, t: Task, initval: int, flags: int) -> int:
    if flags & ~(_CLOEXEC | _NONBLOCK | EFD_SEMAPHORE):
        raise KernelError(E.EINVAL)
    f = EventFd(initval & 0xFFFFFFFF, flags & _NONBLOCK, bool(flags & EFD_SEMAPHORE))
    return t.proc.files.install(f, cloexec=bool(flags & _CLOEXEC))


def sys_eventfd(k: Kernel, t: Task, initval: int) -> int:
    return sys_eventfd2(k, t, initval, 0)


# --- timerfd ----------------------------------------------------------------------------
def sys_timerfd_create(k: Kernel, t: Task, clock: int, flags: int) -> int:
    if flags & ~(_CLOEXEC | _NONBLOCK):
        raise KernelError(E.EINVAL)
    if i32(clock) not in _TIMER_CLOCKS:
        raise KernelError(E.EINVAL)
    return t.proc.files.install(TimerFd(k, i32(clock), flags & _NONBLOCK),
                                cloexec=bool(flags & _CLOEXEC))


def _timerfd(t: Task, fd: int) -> TimerFd:
    f = t.proc.files.get(fd)
    if not isinstance(f, TimerFd):
        raise KernelError(E.EINVAL)
    return f


def sys_timerfd_settime(k: Kernel, t: Task, fd: int, flags: int, new: int, old: int) -> int:
    value, interval = _itimerspec(t, new)
    if flags & ~(TFD_TIMER_ABSTIME | 2):
        raise KernelError(E.EINVAL)
    left, ival = _timerfd(t, fd).settime(flags, value, interval)
    if old:
        _put_itimerspec(t, old, left, ival)
    return 0


def sys_timerfd_gettime(k: Kernel, t: Task, fd: int, cur: int) -> int:
    left, ival = _timerfd(t, fd).gettime()
    _put_itimerspec(t, cur, left, ival)
    return 0


# --- signalfd ---------------------------------------------------------------------------
def sys_signalfd4(k: Kernel, t: Task, fd: int, mask_addr: int, size: int, flags: int) -> int:
    if size != 8 or flags & ~(_CLOEXEC | _NONBLOCK):
        raise KernelError(E.EINVAL)
    mask = t.mm.read_u64(mask_addr) & ~_UNBLOCKABLE
    if fd != -1:
        f = t.proc.files.get(fd)
        if not isinstance(f, SignalFd):
            raise KernelError(E.EINVAL)
        f.mask = mask
        return fd
    return t.proc.files.install(SignalFd(t, mask, flags & _NONBLOCK),
                                cloexec=bool(flags & _CLOEXEC))


def sys_signalfd(k: Kernel, t: Task, fd: int, mask_addr: int, size: int) -> int:
    return sys_signalfd4(k, t, fd, mask_addr, size, 0)


# --- POSIX timers -------------------------------------------------------------------------
def sys_timer_create(k: Kernel, t: Task, clock: int, sevp: int, idp: int) -> int:
    clock = i32(clock)
    if clock not in (*_TIMER_CLOCKS, 2, 3) and clock >= 0:
        raise KernelError(E.EINVAL)
    notify, signo, value, target = PT.SIGEV_SIGNAL, S.SIGALRM, 0, None
    raw = t.mm.read(sevp, 20) if sevp else b""
    timer_id = PT.next_id(k, t.proc)  # taken before the sigevent checks, as Linux does
    if sevp:
        value, signo, notify, tid = struct.unpack("<Qiii", raw)
        # good_sigevent(): SIGEV_THREAD is glibc's to implement; the kernel takes it as
        # SIGEV_SIGNAL (a valid signal), and SIGEV_THREAD_ID goes only with SIGEV_SIGNAL
        if notify not in (PT.SIGEV_SIGNAL, PT.SIGEV_NONE, PT.SIGEV_THREAD,
                          PT.SIGEV_SIGNAL | PT.SIGEV_THREAD_ID):
            raise KernelError(E.EINVAL)
        if notify != PT.SIGEV_NONE and not 1 <= signo <= 64:
            raise KernelError(E.EINVAL)
        if notify & PT.SIGEV_THREAD_ID:
            target = k.tasks.get(tid)
            if target is None or target.proc is not t.proc:
                raise KernelError(E.EINVAL)
    timer = PT.PosixTimer(0, t.proc, clock, notify, signo, value, target)
    tid = PT.create(k, t.proc, timer, timer_id)
    if not sevp:
        timer.value = tid
    t.mm.write_u32(idp, tid)
    return 0


def _timer(k: Kernel, t: Task, tid: int) -> PT.PosixTimer:
    tm = PT.lookup(k, t.proc, i32(tid))
    if tm is None:
        raise KernelError(E.EINVAL)
    return tm


def _left(k: Kernel, tm: PT.PosixTimer) -> int:
    return 0 if tm.deadline is None else max(1, tm.deadline - k.monotonic_ns())


def sys_timer_settime(k: Kernel, t: Task, tid: int, flags: int, new: int, old: int) -> int:
    tm = _timer(k, t, tid)
    value, interval = _itimerspec(t, new)
    if old:
        _put_itimerspec(t, old, _left(k, tm), tm.interval)
    tm.interval = interval
    if value == 0:
        tm.deadline = None
    elif flags & 1:  # TIMER_ABSTIME
        offset = k.realtime_ns() - k.monotonic_ns() if tm.clock in (0, 8) else 0
        tm.deadline = value - offset
    else:
        tm.deadline = k.monotonic_ns() + value
    return 0


def sys_timer_gettime(k: Kernel, t: Task, tid: int, cur: int) -> int:
    tm = _timer(k, t, tid)
    _put_itimerspec(t, cur, _left(k, tm), tm.interval)
    return 0


def sys_timer_getoverrun(k: Kernel, t: Task, tid: int) -> int:
    return min(_timer(k, t, tid).overrun, 0x7FFFFFFF)


def sys_timer_delete(k: Kernel, t: Task, tid: int) -> int:
    if not PT.delete(k, t.proc, i32(tid)):
        raise KernelError(E.EINVAL)
    return 0
