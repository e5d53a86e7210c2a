"""Signal system calls: sigaction, masks, sigreturn, sigaltstack, kill family, waits,
alarm and interval timers."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.kernel import timers
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT, Blocked
from shstk.emu.kernel.signal import SigInfo, next_signal, pending_mask, sigbit
from shstk.emu.kernel.signal_ia32 import SA_IA32_ABI
from shstk.emu.kernel.task import State, Wait
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

UNBLOCKABLE_MASK = sigbit(S.SIGKILL) | sigbit(S.SIGSTOP)
_SIGACTION = struct.Struct("<QQQQ")


def _valid_sig(sig: int) -> int:
    sig = i32(sig)
    if sig < 1 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    return sig


def sys_rt_sigaction(k: Kernel, t: Task, sig: int, act: int, oact: int,
                     sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise KernelError(E.EINVAL)
    sig = _valid_sig(sig)
    new = None
    if act:
        handler, flags, restorer, mask = _SIGACTION.unpack(t.mm.read(act, 32))
        if sig in S.UNBLOCKABLE:
            raise KernelError(E.EINVAL)
        new = (handler, flags, restorer, mask)
    cur = t.proc.sighand.get(sig)
    if oact:
        t.mm.write(oact, _SIGACTION.pack(cur.handler, cur.flags & ~SA_IA32_ABI, cur.restorer,
                                         cur.mask))
    if new is not None:
        cur.handler, cur.flags, cur.restorer, cur.mask = new
        cur.flags &= ~(S.SA_UNSUPPORTED | SA_IA32_ABI)
        cur.mask &= ~UNBLOCKABLE_MASK
        # POSIX: setting SIG_IGN (or SIG_DFL for a default-ignored signal) discards it
        if k.signals.ignored(t.proc, sig):
            _discard(t.proc, sig)
    return 0


def _discard(proc: Process, sig: int) -> None:
    proc.shared_pending[:] = [i for i in proc.shared_pending if i.signo != sig]
    for th in proc.threads:
        th.pending[:] = [i for i in th.pending if i.signo != sig]


def sys_rt_sigprocmask(k: Kernel, t: Task, how: int, set_addr: int, oset: int,
                       sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise KernelError(E.EINVAL)
    old = t.blocked
    if set_addr:
        mask = t.mm.read_u64(set_addr)
        how = i32(how)
        if how == S.SIG_BLOCK:
            new = old | mask
        elif how == S.SIG_UNBLOCK:
            new = old & ~mask
        elif how == S.SIG_SETMASK:
            new = mask
        else:
            raise KernelError(E.EINVAL)
        t.blocked = new & ~UNBLOCKABLE_MASK
    if oset:
        t.mm.write_u64(oset, old)
    if set_addr:
        k.signals.recalc(t)
    return 0


def sys_rt_sigreturn(k: Kernel, t: Task) -> object:
    try:
        rax = k.frames.restore(t)
    except KernelError:
        # badframe: signal_fault() and force SIGSEGV; the syscall itself returns 0
        k.signals.force(t, SigInfo(S.SIGSEGV, S.SI_KERNEL, addr=0))
        t.cpu.request_stop()
        return 0
    k.set_user_rip(t, t.cpu.rip)
    return rax


def sys_sigaltstack(k: Kernel, t: Task, ss: int, oss: int) -> int:
    cur_sp = t.cpu.reg("rsp")
    if oss:
        sp, flags, size = t.altstack
        if flags & S.SS_DISABLE:
            out = struct.pack("<QiiQ", 0, S.SS_DISABLE, 0, 0)
        else:
            on = k.frames.on_altstack(t, cur_sp)
            out = struct.pack("<QiiQ", sp, (S.SS_ONSTACK if on else 0) | flags, 0, size)
    else:
        out = None
    if ss:
        sp, flags, _pad, size = struct.unpack("<QiiQ", t.mm.read(ss, 24))
        k.frames.set_altstack(t, sp, flags & 0xFFFFFFFF, size)
    if out is not None:
        t.mm.write(oss, out)
    return 0


def _send(k: Kernel, t: Task, target: Process, sig: int) -> None:
    if sig:
        k.signals.send_process(target, SigInfo(sig, S.SI_USER, pid=t.pid, uid=t.proc.uid))


def sys_kill(k: Kernel, t: Task, pid: int, sig: int) -> int:
    pid, sig = i32(pid), i32(sig)
    if sig < 0 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    if pid > 0:
        target = k.processes.get(pid)
        if target is None or target.zombie:
            th = k.tasks.get(pid)
            if th is None:
                raise KernelError(E.ESRCH)
            target = th.proc
        _send(k, t, target, sig)
        return 0
    if pid == 0:
        group = [p for p in k.processes.values() if p.pgid == t.proc.pgid and not p.zombie]
    elif pid == -1:
        group = [p for p in k.processes.values() if p is not t.proc and not p.zombie]
    else:
        group = [p for p in k.processes.values() if p.pgid == -pid and not p.zombie]
    if not group:
        raise KernelError(E.ESRCH)
    for p in group:
        _send(k, t, p, sig)
    return 0


def sys_tgkill(k: Kernel, t: Task, tgid: int, tid: int, sig: int) -> int:
    tgid, tid, sig = i32(tgid), i32(tid), i32(sig)
    if tgid <= 0 or tid <= 0 or sig < 0 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    target = k.tasks.get(tid)
    if target is None or target.pid != tgid or target.state in (State.ZOMBIE, State.DEAD):
        raise KernelError(E.ESRCH)
    if sig:
        k.signals.send_thread(target, SigInfo(sig, S.SI_TKILL, pid=t.pid, uid=t.proc.uid))
    return 0


def sys_tkill(k: Kernel, t: Task, tid: int, sig: int) -> int:
    target = k.tasks.get(i32(tid))
    if i32(tid) <= 0:
        raise KernelError(E.EINVAL)
    if target is None:
        raise KernelError(E.ESRCH)
    return sys_tgkill(k, t, target.pid, tid, sig)


def sys_rt_sigqueueinfo(k: Kernel, t: Task, pid: int, sig: int, uinfo: int) -> int:
    sig = _valid_sig(sig)
    target = k.processes.get(i32(pid))
    if target is None:
        raise KernelError(E.ESRCH)
    info = SigInfo.unpack(t.mm.read(uinfo, 128))
    if info.code >= 0 and target is not t.proc:
        raise KernelError(E.EPERM)
    info.signo = sig
    k.signals.send_process(target, info)
    return 0


def sys_rt_tgsigqueueinfo(k: Kernel, t: Task, tgid: int, tid: int, sig: int,
                          uinfo: int) -> int:
    sig = _valid_sig(sig)
    target = k.tasks.get(i32(tid))
    if target is None or target.pid != i32(tgid):
        raise KernelError(E.ESRCH)
    info = SigInfo.unpack(t.mm.read(uinfo, 128))
    info.signo = sig
    k.signals.send_thread(target, info)
    return 0


def sys_rt_sigpending(k: Kernel, t: Task, set_addr: int, sigsetsize: int) -> int:
    if sigsetsize > 8:
        raise KernelError(E.EINVAL)
    mask = (pending_mask(t.pending) | pending_mask(t.proc.shared_pending)) & t.blocked
    t.mm.write(set_addr, mask.to_bytes(8, "little")[:sigsetsize])
    return 0


def sys_rt_sigsuspend(k: Kernel, t: Task, mask_addr: int, sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise KernelError(E.EINVAL)
    mask = t.mm.read_u64(mask_addr) & ~UNBLOCKABLE_MASK
    t.saved_mask = t.blocked
    t.blocked = mask

    def never() -> int:
        return -E.EINTR

    raise Blocked(Wait(lambda: False, "sigsuspend", polled=False), never)


def sys_pause(k: Kernel, t: Task) -> int:
    raise Blocked(Wait(lambda: False, "pause", polled=False), lambda: -E.EINTR)


def sys_rt_sigtimedwait(k: Kernel, t: Task, set_addr: int, info_addr: int, ts: int,
                        sigsetsize: int) -> int:
    if sigsetsize != 8:
        raise KernelError(E.EINVAL)
    wanted = t.mm.read_u64(set_addr) & ~UNBLOCKABLE_MASK
    deadline = None
    if ts:
        sec, nsec = struct.unpack("<qq", t.mm.read(ts, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
        deadline = k.monotonic_ns() + sec * 10**9 + nsec

    def take() -> int:
        for source in (t.pending, t.proc.shared_pending):
            info = next_signal(source, ~wanted & ((1 << 64) - 1))
            if info is not None:
                source.remove(info)
                if info_addr:
                    t.mm.write(info_addr, info.pack())
                return info.signo
        if deadline is not None and k.monotonic_ns() >= deadline:
            return -E.EAGAIN

        def has() -> bool:
            return next_signal(t.pending, ~wanted & ((1 << 64) - 1)) is not None or \
                next_signal(t.proc.shared_pending, ~wanted & ((1 << 64) - 1)) is not None

        raise Blocked(Wait(has, "sigtimedwait", deadline=deadline), take)

    return take()


# --- timers --------------------------------------------------------------------------------------

def sys_alarm(k: Kernel, t: Task, seconds: int) -> int:
    t.proc.alarm_interval = 0
    left = timers.arm_alarm(k, t.proc, (seconds & 0xFFFFFFFF) * 10**9)
    return (left + 999_999_999) // 10**9 if left else 0


def sys_setitimer(k: Kernel, t: Task, which: int, new: int, old: int) -> int:
    if i32(which) != 0:
        raise KernelError(E.EINVAL, "only ITIMER_REAL is emulated")
    isec, iusec, vsec, vusec = struct.unpack("<qqqq", t.mm.read(new, 32)) if new else \
        (0, 0, 0, 0)
    if new and (iusec < 0 or iusec >= 10**6 or vusec < 0 or vusec >= 10**6):
        raise KernelError(E.EINVAL)
    prev_interval = getattr(t.proc, "alarm_interval", 0)
    left = timers.arm_alarm(k, t.proc, vsec * 10**9 + vusec * 1000) if new else \
        (max(0, t.proc.alarm_deadline - k.monotonic_ns()) if t.proc.alarm_deadline else 0)
    if new:
        t.proc.alarm_interval = isec * 10**9 + iusec * 1000
    if old:
        t.mm.write(old, struct.pack("<qqqq", prev_interval // 10**9,
                                    (prev_interval % 10**9) // 1000, left // 10**9,
                                    (left % 10**9) // 1000))
    return 0


def sys_getitimer(k: Kernel, t: Task, which: int, cur: int) -> int:
    if i32(which) not in (0, 1, 2):
        raise KernelError(E.EINVAL)
    left = max(0, t.proc.alarm_deadline - k.monotonic_ns()) if t.proc.alarm_deadline else 0
    interval = getattr(t.proc, "alarm_interval", 0)
    t.mm.write(cur, struct.pack("<qqqq", interval // 10**9, (interval % 10**9) // 1000,
                                left // 10**9, (left % 10**9) // 1000))
    return 0


__all__ = ["NO_RESULT"]
