"""ptrace(2), the part the shadow-stack ABI uses (SPEC.md §9): tracing stops, wait
reporting, register sets (NT_PRSTATUS, NT_X86_SHSTK), PTRACE_ARCH_PRCTL, PEEK/POKE."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, cast

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.cpu.regs import USER_REGS
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.task import State, WaitResult

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import Engine, RegDump
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

_SEGMENTS = {"cs": 0x33, "ss": 0x2B, "ds": 0, "es": 0, "fs": 0, "gs": 0}


def traced_by(k: Kernel, tracer: Process, pid: int) -> list[Task]:
    out = []
    for t in k.tasks.values():
        if t.ptracer is tracer and (pid <= 0 or t.tid == pid or t.pid == pid):
            out.append(t)
    return out


def waitable_stop(k: Kernel, tracer: Process, traced: list[Task], *, consume: bool
                  ) -> WaitResult | None:
    for t in traced:
        if t.state is State.TRACED and not t.ptrace_reported:
            if consume:
                t.ptrace_reported = True
            return WaitResult(t.tid, (t.ptrace_stop_sig << 8) | 0x7F, S.CLD_TRAPPED,
                              t.proc.uid, t.proc)
    return None


def signal_stop(k: Kernel, t: Task, info: SigInfo) -> bool:
    """signal-delivery-stop: the tracer decides what becomes of the signal."""
    if t.ptrace_inject is info:
        t.ptrace_inject = None
        return False
    enter_stop(k, t, info)
    return True


def enter_stop(k: Kernel, t: Task, info: SigInfo) -> None:
    t.state = State.TRACED
    t.ptrace_stop_sig = info.signo
    t.ptrace_siginfo = info
    t.ptrace_reported = False
    if t in k.runq:
        k.runq.remove(t)
    if t.cpu.current is t:
        t.cpu.request_stop()
    tracer = t.ptracer
    if tracer is not None:
        k.signals.send_process(tracer, SigInfo(S.SIGCHLD, S.CLD_TRAPPED, pid=t.tid,
                                               uid=t.proc.uid, status=info.signo))


def after_exec(k: Kernel, t: Task) -> None:
    """A traced task that execs stops with SIGTRAP (without PTRACE_O_TRACEEXEC)."""
    if t.ptracer is not None:
        k.signals.send_thread(t, SigInfo(S.SIGTRAP, S.SI_USER, pid=t.pid))


def tracer_exited(k: Kernel, tracer: Process) -> None:
    for t in list(k.tasks.values()):
        if t.ptracer is tracer:
            _detach(k, t, 0)


# --- the system call -------------------------------------------------------------------

def _tracee(k: Kernel, t: Task, pid: int, *, stopped: bool = True) -> Task:
    """ptrace_check_attach(): our tracee, stopped for us."""
    tracee = k.tasks.get(pid)
    if tracee is None or tracee.ptracer is not t.proc:
        raise KernelError(E.ESRCH)
    if stopped and tracee.state is not State.TRACED:
        raise KernelError(E.ESRCH)
    return tracee


def _resume(k: Kernel, tracee: Task, sig: int) -> None:
    if sig < 0 or sig > S.NSIG:
        raise KernelError(E.EIO)
    info = tracee.ptrace_siginfo
    tracee.ptrace_siginfo = None
    tracee.ptrace_stop_sig = 0
    tracee.state = State.RUNNABLE
    if sig:
        inject = info if info is not None and info.signo == sig else \
            SigInfo(sig, S.SI_USER)
        tracee.ptrace_inject = inject
        tracee.pending.insert(0, inject)
    k.make_runnable(tracee)


def _detach(k: Kernel, tracee: Task, sig: int) -> None:
    tracee.ptracer = None
    if tracee.state is State.TRACED:
        _resume(k, tracee, sig)
        tracee.ptrace_inject = None  # no longer traced: delivered normally


def _user_regs(tracee: Task) -> bytes:
    k_regs = _regs_of(tracee)
    values = []
    for name in USER_REGS:
        if name == "orig_rax":
            values.append(tracee.orig_rax)
        elif name in _SEGMENTS:
            values.append(_SEGMENTS[name])
        else:
            values.append(int(cast(int, k_regs.get(name, 0))) & 0xFFFFFFFFFFFFFFFF)
    return struct.pack(f"<{len(values)}Q", *values)


def _regs_of(tracee: Task) -> RegDump:
    cpu: Engine = tracee.cpu
    if cpu.current is tracee:
        return cpu.dump_regs()
    if tracee.ctx is None and tracee.initial_regs is not None:
        return dict(tracee.initial_regs)  # set by clone
    # read the tracee's saved context through the CPU, then put the running one back
    ctx_now = cpu.save_context()
    try:
        if tracee.ctx is not None:
            cpu.restore_context(tracee.ctx)
        return cpu.dump_regs()
    finally:
        cpu.restore_context(ctx_now)


def _set_regs(tracee: Task, regs: RegDump) -> None:
    cpu: Engine = tracee.cpu
    if cpu.current is tracee:
        cpu.load_regs(regs)
        return
    ctx_now = cpu.save_context()
    try:
        if tracee.ctx is not None:
            cpu.restore_context(tracee.ctx)
        elif tracee.initial_regs is not None:
            tracee.initial_regs.update(regs)  # set by clone
            return
        cpu.load_regs(regs)
        tracee.ctx = cpu.save_context()
    finally:
        cpu.restore_context(ctx_now)


def _regset(k: Kernel, t: Task, tracee: Task, req: int, note: int, iov_addr: int) -> int:
    base, length = struct.unpack("<QQ", t.mm.read(iov_addr, 16))
    if note == A.NT_PRSTATUS:
        size = 8 * len(USER_REGS)
        if length % 8:
            raise KernelError(E.EINVAL)
        if req == R.PTRACE_GETREGSET:
            data = _user_regs(tracee)[:min(length, size)]
            t.mm.write(base, data)
            t.mm.write_u64(iov_addr + 8, len(data))
            return 0
        raw = t.mm.read(base, min(length, size))
        _apply_user_regs(tracee, raw)
        return 0
    if note == A.NT_X86_SHSTK:
        # ptrace_regset(): the length must be a multiple of the regset size (8), then
        # it is clamped to n * size = 8
        if length % 8:
            raise KernelError(E.EINVAL)
        length = min(length, 8)
        if not k.profile.user_shstk or not shstk.enabled(tracee, shstk.SHSTK):
            raise KernelError(E.ENODEV)
        if req == R.PTRACE_GETREGSET:
            t.mm.write(base, struct.pack("<Q", shstk.get_ssp(tracee))[:length])
            t.mm.write_u64(iov_addr + 8, length)
            return 0
        if length != 8:
            raise KernelError(E.EINVAL)
        value = t.mm.read_u64(base)
        if value >= M.TASK_SIZE_MAX or value % 8:
            raise KernelError(E.EINVAL)
        shstk.set_ssp(tracee, value)
        return 0
    raise KernelError(E.EINVAL)


def _apply_user_regs(tracee: Task, raw: bytes) -> None:
    n = len(raw) // 8
    values = struct.unpack(f"<{n}Q", raw[:8 * n])
    regs: RegDump = {}
    for name, value in zip(USER_REGS, values, strict=False):
        if name in _SEGMENTS:
            continue
        if name == "orig_rax":
            tracee.orig_rax = value
            continue
        regs[name] = value
    _set_regs(tracee, regs)


def sys_ptrace(k: Kernel, t: Task, req: int, pid: int, addr: int, data: int) -> int:
    if req == R.PTRACE_TRACEME:
        if t.ptracer is not None or t.proc.parent is None:
            raise KernelError(E.EPERM)
        t.ptracer = t.proc.parent
        return 0
    if req in (R.PTRACE_ATTACH, R.PTRACE_SEIZE):
        target = k.tasks.get(pid)
        if target is None:
            raise KernelError(E.ESRCH)
        if target.proc is t.proc or target.ptracer is not None:
            raise KernelError(E.EPERM)
        target.ptracer = t.proc
        if req == R.PTRACE_ATTACH:
            k.signals.send_thread(target, SigInfo(S.SIGSTOP, S.SI_USER, pid=t.pid))
        return 0
    if req == R.PTRACE_KILL:
        tracee = _tracee(k, t, pid, stopped=False)
        k.exit_group(tracee.proc, S.SIGKILL)
        return 0
    tracee = _tracee(k, t, pid)
    if req in (R.PTRACE_CONT, R.PTRACE_SYSCALL, R.PTRACE_SINGLESTEP):
        if req != R.PTRACE_CONT:
            raise KernelError(E.EIO, "only PTRACE_CONT resumes a tracee here")
        _resume(k, tracee, data)
        return 0
    if req == R.PTRACE_DETACH:
        if data > S.NSIG:
            raise KernelError(E.EIO)
        _detach(k, tracee, data)
        return 0
    if req in (R.PTRACE_PEEKTEXT, R.PTRACE_PEEKDATA):
        try:
            word = tracee.mm.read(addr, 8, force=True)
        except KernelError:
            raise KernelError(E.EIO) from None
        t.mm.write(data, word)
        return 0
    if req in (R.PTRACE_POKETEXT, R.PTRACE_POKEDATA):
        try:
            tracee.mm.write(addr, (data & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"), force=True)
        except KernelError:
            raise KernelError(E.EIO) from None
        return 0
    if req == R.PTRACE_GETREGS:
        t.mm.write(data, _user_regs(tracee))
        return 0
    if req == R.PTRACE_SETREGS:
        _apply_user_regs(tracee, t.mm.read(data, 8 * len(USER_REGS)))
        return 0
    if req in (R.PTRACE_GETREGSET, R.PTRACE_SETREGSET):
        return _regset(k, t, tracee, req, addr, data)
    if req == R.PTRACE_GETSIGINFO:
        info = tracee.ptrace_siginfo or SigInfo(tracee.ptrace_stop_sig)
        t.mm.write(data, info.pack())
        return 0
    if req == R.PTRACE_SETOPTIONS:
        tracee.ptrace_options = data
        return 0
    if req == R.PTRACE_ARCH_PRCTL:
        # x86: do_arch_prctl_64(child, option = data, arg2 = addr)
        if A.ARCH_SHSTK_ENABLE <= data <= A.ARCH_SHSTK_STATUS:
            return shstk.shstk_prctl(k, t, tracee, data, addr)
        raise KernelError(E.EINVAL)
    raise KernelError(E.EIO)
