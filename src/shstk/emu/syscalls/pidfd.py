"""pidfd_open, pidfd_send_signal, pidfd_getfd, and the pidfd parts of clone, clone3 and
waitid(P_PIDFD) (kernel/pid.c, kernel/signal.c, kernel/fork.c, kernel/exit.c)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.pidfd import PidFd, open_pidfd, process_of
from shstk.emu.kernel.signal import SigInfo

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

PIDFD_NONBLOCK = F.O_NONBLOCK
# pidfd_send_signal's scopes (Linux 6.9)
PIDFD_SIGNAL_THREAD, PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP = 1, 2, 4


def sys_pidfd_open(k: Kernel, t: Task, pid: int, flags: int) -> int:
    if flags & ~PIDFD_NONBLOCK:
        raise KernelError(E.EINVAL)
    proc = process_of(k, pid)
    return t.proc.files.install(open_pidfd(k, proc, flags), cloexec=True)


def _pidfd(t: Task, fd: int) -> PidFd:
    f = t.proc.files.get(fd)
    if not isinstance(f, PidFd):
        raise KernelError(E.EBADF)
    return f


def sys_pidfd_send_signal(k: Kernel, t: Task, fd: int, sig: int, info: int,
                          flags: int) -> int:
    if flags & ~7 or flags & (flags - 1):
        raise KernelError(E.EINVAL)
    target = _pidfd(t, fd).proc
    if sig < 0 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    if target.reaped:
        raise KernelError(E.ESRCH)
    if info:
        si = SigInfo.unpack(t.mm.read(info, 128))
        if si.signo != sig:
            raise KernelError(E.EINVAL)
        if (si.code >= 0 or si.code == S.SI_TKILL) and target is not t.proc:
            raise KernelError(E.EPERM)
    else:
        si = SigInfo(sig, S.SI_USER, pid=t.pid, uid=t.proc.uid)
    if not sig:
        return 0
    if flags == PIDFD_SIGNAL_THREAD and target.live_threads():
        k.signals.send_thread(target.live_threads()[0], si)
    elif flags == PIDFD_SIGNAL_PROCESS_GROUP:
        for p in [p for p in k.processes.values() if p.pgid == target.pgid]:
            k.signals.send_process(p, si)
    else:
        k.signals.send_process(target, si)
    return 0


def sys_pidfd_getfd(k: Kernel, t: Task, fd: int, targetfd: int, flags: int) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    target = _pidfd(t, fd).proc
    if target.zombie or target.reaped:
        raise KernelError(E.ESRCH)
    f = target.files.get(targetfd)
    return t.proc.files.install(f, cloexec=True)


def install_clone_pidfd(k: Kernel, t: Task, child_pid: int, where: int, flags: int) -> None:
    """CLONE_PIDFD: the parent gets a pidfd of its new child at `where` (an int)."""
    if flags & C.CLONE_THREAD:
        return
    proc = k.processes.get(child_pid)
    if proc is None:
        return
    fd = t.proc.files.install(open_pidfd(k, proc, 0), cloexec=True)
    t.mm.write(where, struct.pack("<i", fd))


def check_clone_pidfd(flags: int) -> None:
    """CLONE_PIDFD cannot name a thread (no PIDFD_THREAD here) nor go with
    CLONE_DETACHED."""
    if flags & C.CLONE_PIDFD and flags & (C.CLONE_THREAD | C.CLONE_DETACHED):
        raise KernelError(E.EINVAL)


def waitid_target(t: Task, fd: int) -> tuple[Process, bool]:
    """waitid(P_PIDFD, fd): the process the pidfd refers to, and whether the pidfd is
    non-blocking (then a child still running is EAGAIN)."""
    if fd < 0:
        raise KernelError(E.EINVAL)
    f = _pidfd(t, fd)
    return f.proc, bool(f.flags & F.O_NONBLOCK)
