"""Process lifetime: clone/fork/vfork (kernel/fork.c), exit and wait (kernel/exit.c)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.kernel import memlimit, posix_timers, ptrace, shstk
from shstk.emu.kernel.entry import Blocked, Death
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import AddressSpace
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.task import State, Task, Wait, WaitResult

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import Engine
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process

NAMESPACE_FLAGS = (C.CLONE_NEWNS | C.CLONE_NEWCGROUP | C.CLONE_NEWUTS | C.CLONE_NEWIPC
                   | C.CLONE_NEWUSER | C.CLONE_NEWPID | C.CLONE_NEWNET)


@dataclass
class CloneArgs:
    """clone/clone3/fork/vfork arguments in clone3's terms."""

    flags: int
    stack: int = 0  # the child's RSP (clone3: stack + stack_size)
    stack_size: int = 0
    parent_tid: int = 0
    child_tid: int = 0
    tls: int = 0
    exit_signal: int = 0
    shadow_stack_size: int = 0  # proposed v4 field
    shstk_token: int = 0  # proposed v23 field
    pidfd: int = 0


def release_mm(k: Kernel, mm: AddressSpace, cpu: Engine) -> None:
    """mmput(): the last user of an address space gives its memory back."""
    users = getattr(mm, "users", 1) - 1
    mm.users = users  # type: ignore[attr-defined]
    if users > 0:
        return
    mm.engine_live = False
    if cpu.current is not None:
        cpu.request_stop()
    cpu.current = None

    def free() -> None:
        # only once the machine is out of emu_start: its hooks may still be on the stack
        for v in list(mm.vmas):
            mm._remove(v)
        mm.pm.close()
        cpu.close()

    k.deferred.append(free)


def check_clone_flags(flags: int) -> None:
    """copy_process()'s flag checks, in its order."""
    if flags & (C.CLONE_NEWNS | C.CLONE_FS) == (C.CLONE_NEWNS | C.CLONE_FS):
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_THREAD and not flags & C.CLONE_SIGHAND:
        raise KernelError(E.EINVAL)
    if flags & C.CLONE_SIGHAND and not flags & C.CLONE_VM:
        raise KernelError(E.EINVAL)
    if flags & NAMESPACE_FLAGS:
        raise KernelError(E.EPERM, "namespaces are not emulated")


def do_clone(k: Kernel, parent: Task, a: CloneArgs) -> int:
    """kernel_clone(): create the child; returns its id to the parent."""
    flags = a.flags
    check_clone_flags(flags)
    memlimit.check_new_task(k, parent, thread=bool(flags & C.CLONE_THREAD))
    if not flags & (C.CLONE_VM | C.CLONE_THREAD):
        memlimit.charge_fork(k, parent)
    pproc = parent.proc
    cpu = parent.cpu
    regs = cpu.dump_regs()
    regs["rip"] = int(regs["rip"]) + 2  # past the syscall insn
    regs["rax"] = 0
    # the kernel's syscall return clobbers rcx (rip) and r11 (rflags) in the child too
    regs["rcx"] = regs["rip"]
    regs["r11"] = regs["eflags"]
    if a.stack:
        regs["rsp"] = a.stack
    if flags & C.CLONE_SETTLS:
        regs["fs_base"] = a.tls
    if flags & C.CLONE_THREAD:
        proc = pproc
        proc.ever_threaded = True
        tid = k.alloc_pid()
        child = Task(tid, proc)
        child.comm = parent.comm
        proc.threads.append(child)
        k.tasks[tid] = child
    else:
        if flags & C.CLONE_VM:
            ccpu, mm = cpu, pproc.mm
            mm.users = getattr(mm, "users", 1) + 1  # type: ignore[attr-defined]
        else:
            ccpu = k.new_cpu()
            mm = AddressSpace(ccpu)
            pproc.mm.copy_into(mm)
        files = pproc.files if flags & C.CLONE_FILES else pproc.files.copy()
        if flags & C.CLONE_FILES:
            files.users += 1
        fs = pproc.fs if flags & C.CLONE_FS else pproc.fs.copy()
        sighand = pproc.sighand if flags & C.CLONE_SIGHAND else pproc.sighand.copy()
        rlimits = {r: list(v) for r, v in pproc.rlimits.items()}
        parent_proc = pproc.parent if flags & C.CLONE_PARENT else pproc
        proc, child = k.new_process(cpu=ccpu, mm=mm, files=files, fs=fs, sighand=sighand,
                                    rlimits=rlimits, parent=parent_proc)
        tid = child.tid
        proc.exit_signal = a.exit_signal
        proc.exe, proc.exe_host = pproc.exe, pproc.exe_host
        proc.argv, proc.auxv, proc.comm = list(pproc.argv), pproc.auxv, pproc.comm
        proc.image, proc.interp_image = pproc.image, pproc.interp_image
        # the loader's and libc's view of the process is memory: the child has a copy
        proc.loader_enabled = pproc.loader_enabled
        proc.libc_manages_shstk = pproc.libc_manages_shstk
        proc.initial_objects = set(pproc.initial_objects)
        proc.ever_threaded = pproc.ever_threaded
        child.comm = parent.comm
        if parent.ptracer is not None and flags & C.CLONE_PTRACE:
            child.ptracer = parent.ptracer
    # the thread struct is duplicated: signal mask, shadow-stack features and locks
    child.blocked = parent.blocked
    child.nice = parent.nice
    child.altstack = parent.altstack if not (flags & C.CLONE_VM and not flags & C.CLONE_VFORK) \
        else (0, S.SS_DISABLE, 0)
    child.shstk.features = parent.shstk.features
    child.shstk.locked = parent.shstk.locked
    ssp, ucet = shstk.get_ssp(parent), shstk.get_ucet(parent)
    child.cet_state = (ssp, ucet, 0, 0, 0, 0)
    child.initial_regs = regs
    try:
        shstk.alloc_thread_stack(k, parent, child, flags, a.stack_size,
                                 a.shadow_stack_size, a.shstk_token)
        if a.shstk_token:
            shstk.check_clone3_token(k, child, a.shstk_token)
    except KernelError:
        _undo_clone(k, child, flags)
        raise
    # the child exists now: Linux ignores a put_user() that faults here
    with contextlib.suppress(KernelError):
        if flags & C.CLONE_PARENT_SETTID and a.parent_tid:
            pproc.mm.write_u32(a.parent_tid, tid)
    with contextlib.suppress(KernelError):
        if flags & C.CLONE_CHILD_SETTID and a.child_tid:
            child.proc.mm.write_u32(a.child_tid, tid)
    if flags & C.CLONE_CHILD_CLEARTID:
        child.clear_child_tid = a.child_tid
    k.make_runnable(child)
    if flags & C.CLONE_VFORK:
        _wait_for_vfork(k, parent, child, tid)
    return tid


def _undo_clone(k: Kernel, child: Task, flags: int) -> None:
    """A clone that failed after the child existed (exit_thread cleanup)."""
    proc = child.proc
    k.tasks.pop(child.tid, None)
    if child in proc.threads:
        proc.threads.remove(child)
    if not flags & C.CLONE_THREAD:
        k.processes.pop(proc.pid, None)
        if proc.parent is not None and proc in proc.parent.children:
            proc.parent.children.remove(proc)
        if not flags & C.CLONE_VM:
            release_mm(k, proc.mm, proc.cpu)


def _wait_for_vfork(k: Kernel, parent: Task, child: Task, tid: int) -> None:
    done = {"flag": False}

    def release() -> None:
        done["flag"] = True

    child.proc.vfork_done = release
    raise Blocked(Wait(lambda: done["flag"], "vfork", interruptible=False), lambda: tid)


# --- exit ------------------------------------------------------------------------------

def exit_process(k: Kernel, proc: Process, status: int) -> None:
    """The last thread is gone: close files, drop the mm, become a zombie, tell the parent."""
    if proc.zombie:
        return
    proc.zombie = True
    proc.exit_status = status
    posix_timers.drop_process(k, proc, exiting=True)  # exit_itimers()
    ptrace.tracer_exited(k, proc)
    proc.files.users -= 1
    if proc.files.users <= 0:
        proc.files.close_all()
    k.release_vfork(proc.threads[0]) if proc.threads else None
    release_mm(k, proc.mm, proc.cpu)
    for child in list(proc.children):
        child.parent = k.init if k.init is not None and k.init is not proc \
            and not k.init.zombie else None
        child.exit_signal = S.SIGCHLD  # reparent_leader(): nobody slays init
        if child.parent is not None:
            child.parent.children.append(child)
        elif child.zombie:
            _reap(k, child)
    proc.children.clear()
    parent = proc.parent
    if parent is None or parent.zombie:
        _reap(k, proc)
    else:
        act = parent.sighand.actions.get(S.SIGCHLD)
        autoreap = act is not None and (act.handler == S.SIG_IGN or act.flags & S.SA_NOCLDWAIT)
        if 0 < proc.exit_signal <= 64:  # do_notify_parent(): only a valid signal
            sig_status, code = _chld_code(status)
            k.signals.send_process(parent, SigInfo(proc.exit_signal, code, pid=proc.pid,
                                                   uid=proc.uid, status=sig_status))
        if autoreap:
            _reap(k, proc)
    if proc is k.init and k.death is None:
        k.death = Death(status, signal=status & 0x7F)


def _chld_code(status: int) -> tuple[int, int]:
    sig = status & 0x7F
    if sig == 0:
        return (status >> 8) & 0xFF, S.CLD_EXITED
    return sig, S.CLD_DUMPED if status & 0x80 else S.CLD_KILLED


def _reap(k: Kernel, proc: Process) -> None:
    proc.reaped = True
    k.processes.pop(proc.pid, None)
    if proc.parent is not None and proc in proc.parent.children:
        proc.parent.children.remove(proc)


# --- wait ---------------------------------------------------------------------------------

def _matches(k: Kernel, waiter: Process, child: Process, pid: int) -> bool:
    if pid > 0:
        return child.pid == pid
    if pid == 0:
        return child.pgid == waiter.pgid
    if pid < -1:
        return child.pgid == -pid
    return True


def find_waitable(k: Kernel, t: Task, pid: int, options: int, *, consume: bool
                  ) -> WaitResult | int | None:
    """One waitable child, None if children exist but none is ready, -ECHILD if none."""
    proc = t.proc
    children = [c for c in proc.children if _matches(k, proc, c, pid)]
    traced = ptrace.traced_by(k, proc, pid)
    if not children and not traced:
        return -E.ECHILD
    hit = ptrace.waitable_stop(k, proc, traced, consume=consume and not options & C.WNOWAIT)
    if hit is not None:
        return hit
    for c in children:
        if c.zombie and options & C.WEXITED:
            status = c.exit_status or 0
            _sig_status, code = _chld_code(status)
            if consume and not options & C.WNOWAIT:
                # wait_task_zombie(): the child's times become the parent's cutime
                proc.child_cpu_ns += c.cpu_ns() + c.child_cpu_ns
                _reap(k, c)
            return WaitResult(c.pid, status, code, c.uid, c)
        if c.stop_status is not None and options & C.WSTOPPED:
            st = c.stop_status
            if consume and not options & C.WNOWAIT:
                c.stop_status = None
            return WaitResult(c.pid, st, S.CLD_STOPPED, c.uid, c)
        if c.continued and options & C.WCONTINUED:
            if consume and not options & C.WNOWAIT:
                c.continued = False
            return WaitResult(c.pid, 0xFFFF, S.CLD_CONTINUED, c.uid, c)
    return None


def wait_child(k: Kernel, t: Task, pid: int, options: int,
               deliver: Callable[[WaitResult], int]) -> int:
    """do_wait(): report at once, or sleep until a child changes state."""
    def attempt() -> int:
        hit = find_waitable(k, t, pid, options, consume=True)
        if isinstance(hit, int):
            return hit
        if hit is None:
            if options & C.WNOHANG:
                return 0
            raise Blocked(Wait(lambda: find_waitable(k, t, pid, options, consume=False)
                               is not None, "wait"), attempt)
        return deliver(hit)

    return attempt()


def task_tid_exists(k: Kernel, tid: int) -> Task | None:
    t = k.tasks.get(tid)
    if t is None or t.state in (State.ZOMBIE, State.DEAD):
        return None
    return t
