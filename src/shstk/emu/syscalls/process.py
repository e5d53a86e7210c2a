"""Processes: clone/fork/vfork/clone3, execve, exit, wait4/waitid."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.kernel import loader
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT
from shstk.emu.kernel.process import CloneArgs, WaitResult, do_clone, wait_child
from shstk.emu.syscalls import pidfd as PF
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


MASK64 = (1 << 64) - 1


def sys_clone(k: Kernel, t: Task, flags: int, stack: int, parent_tid: int, child_tid: int,
              tls: int) -> int:
    # clone() takes the low 32 bits of its flags (clone3 has the 64-bit ones)
    a = CloneArgs(flags & ~C.CSIGNAL & 0xFFFFFFFF, stack, 0, parent_tid, child_tid, tls,
                  flags & C.CSIGNAL)
    if a.flags & C.CLONE_PIDFD and a.flags & C.CLONE_PARENT_SETTID:
        raise KernelError(E.EINVAL)
    PF.check_clone_pidfd(a.flags)
    child = do_clone(k, t, a)
    if a.flags & C.CLONE_PIDFD:
        PF.install_clone_pidfd(k, t, child, parent_tid, a.flags)
    return child


def sys_fork(k: Kernel, t: Task) -> int:
    return do_clone(k, t, CloneArgs(0, exit_signal=S.SIGCHLD))


def sys_vfork(k: Kernel, t: Task) -> int:
    return do_clone(k, t, CloneArgs(C.CLONE_VFORK | C.CLONE_VM, exit_signal=S.SIGCHLD))


def sys_clone3(k: Kernel, t: Task, uargs: int, size: int) -> int:
    """clone3 with every published struct size and the two proposed extensions (§12)."""
    profile = k.profile.clone3
    known = C.CLONE_ARGS_SIZE_VER3 if profile != "mainline" else C.CLONE_ARGS_SIZE_VER2
    if size > 4096:
        raise KernelError(E.E2BIG)
    if size < C.CLONE_ARGS_SIZE_VER0:
        raise KernelError(E.EINVAL)
    raw = t.mm.read(uargs, size)
    if size > known and any(raw[known:]):
        raise KernelError(E.E2BIG)  # a field this kernel does not know is set
    raw = raw[:known].ljust(known, b"\0")
    fields = struct.unpack(f"<{known // 8}Q", raw)
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
     set_tid_size, cgroup) = fields[:11]
    extra = fields[11] if len(fields) > 11 else 0
    if exit_signal & ~C.CSIGNAL or exit_signal > 64:
        raise KernelError(E.EINVAL)
    if flags & (C.CLONE_DETACHED | C.CSIGNAL):
        raise KernelError(E.EINVAL)
    if flags & (C.CLONE_THREAD | C.CLONE_PARENT) and exit_signal:
        raise KernelError(E.EINVAL)
    if set_tid_size > 32 or (set_tid and not set_tid_size) or (set_tid_size and not set_tid):
        raise KernelError(E.EINVAL)
    if set_tid_size:
        raise KernelError(E.EPERM, "set_tid is not emulated")
    if flags & C.CLONE_INTO_CGROUP:
        raise KernelError(E.EINVAL, "cgroups are not emulated")
    if (stack == 0) != (stack_size == 0):
        raise KernelError(E.EINVAL)
    if stack and stack + stack_size > (1 << 47):
        raise KernelError(E.EINVAL)
    a = CloneArgs(flags, stack + stack_size if stack else 0, stack_size, parent_tid,
                  child_tid, tls, exit_signal, pidfd=pidfd)
    _ = cgroup
    if profile == "size" and extra:
        # v4: a size below 8, above RLIMIT_STACK, or with no shadow-stack support: EINVAL
        if not k.profile.user_shstk or extra < A.SHADOW_STACK_SIZE_MIN or \
                extra > t.proc.rlimits[R.RLIMIT_STACK][0]:
            raise KernelError(E.EINVAL)
        a.shadow_stack_size = extra
    elif profile == "token" and extra:
        if extra % 8:
            raise KernelError(E.EINVAL)
        if not k.profile.kconfig:
            raise KernelError(E.EINVAL)
        a.shstk_token = extra
    PF.check_clone_pidfd(flags)
    child = do_clone(k, t, a)
    if flags & C.CLONE_PIDFD:
        PF.install_clone_pidfd(k, t, child, a.pidfd, flags)
    return child


def _read_strings(t: Task, addr: int) -> list[bytes]:
    out: list[bytes] = []
    if addr == 0:
        return out
    for i in range(0x20000):
        p = t.mm.read_u64(addr + 8 * i)
        if p == 0:
            return out
        out.append(t.mm.read_cstring(p, 131072))
    raise KernelError(E.E2BIG)


def sys_execve(k: Kernel, t: Task, path_addr: int, argv_addr: int, envp_addr: int) -> object:
    path = os.fsdecode(t.mm.read_cstring(path_addr, 4095))
    argv = _read_strings(t, argv_addr)
    envp = _read_strings(t, envp_addr)
    old_cpu = t.cpu
    loader.execve(k, t, path, argv, envp)
    # A new machine holds the new image; the old one, whose syscall hook we are in,
    # must stop now. The task resumes on the new one at the entry point.
    old_cpu.request_stop()
    return NO_RESULT


def sys_execveat(k: Kernel, t: Task, dirfd: int, path_addr: int, argv_addr: int,
                 envp_addr: int, flags: int) -> object:
    if i32(dirfd) != -100 and not t.mm.read_cstring(path_addr, 4095).startswith(b"/"):
        raise KernelError(E.ENOSYS, "execveat relative to a directory fd is not emulated")
    return sys_execve(k, t, path_addr, argv_addr, envp_addr)


def sys_exit(k: Kernel, t: Task, code: int) -> object:
    k.exit_thread(t, code & 0xFF)
    return NO_RESULT


def sys_exit_group(k: Kernel, t: Task, code: int) -> object:
    k.exit_group(t.proc, (code & 0xFF) << 8)
    return NO_RESULT


def _rusage(t: Task, addr: int) -> None:
    if addr:
        t.mm.write(addr, bytes(R.RUSAGE_SIZE))


def sys_wait4(k: Kernel, t: Task, pid: int, status_addr: int, options: int,
              rusage: int) -> int:
    options &= 0xFFFFFFFF
    if options & ~(C.WNOHANG | C.WUNTRACED | C.WCONTINUED | C.__WNOTHREAD | C.__WALL |
                   C.__WCLONE):
        raise KernelError(E.EINVAL)

    def deliver(hit: WaitResult) -> int:
        if status_addr:
            t.mm.write_u32(status_addr, hit.status)
        _rusage(t, rusage)
        return hit.pid

    return wait_child(k, t, i32(pid), options | C.WEXITED, deliver)


def sys_waitid(k: Kernel, t: Task, idtype: int, ident: int, infop: int, options: int,
               rusage: int) -> int:
    options &= 0xFFFFFFFF
    if options & ~(C.WNOHANG | C.WNOWAIT | C.WEXITED | C.WSTOPPED | C.WCONTINUED |
                   C.__WNOTHREAD | C.__WALL | C.__WCLONE):
        raise KernelError(E.EINVAL)
    if not options & (C.WEXITED | C.WSTOPPED | C.WCONTINUED):
        raise KernelError(E.EINVAL)
    if idtype == C.P_ALL:
        pid = -1
    elif idtype == C.P_PID:
        pid = i32(ident)
        if pid <= 0:
            raise KernelError(E.EINVAL)
    elif idtype == C.P_PGID:
        pid = -i32(ident) if i32(ident) else 0
    elif idtype == C.P_PIDFD:
        target, nonblock = PF.waitid_target(t, i32(ident))
        pid = target.pid
        if nonblock and not options & C.WNOHANG and not target.zombie:
            raise KernelError(E.EAGAIN)
    else:
        raise KernelError(E.EINVAL)

    def deliver(hit: WaitResult) -> int:
        if infop:
            status = hit.status
            if hit.code == S.CLD_EXITED:
                value = (status >> 8) & 0xFF
            elif hit.code in (S.CLD_KILLED, S.CLD_DUMPED):
                value = status & 0x7F
            elif hit.code in (S.CLD_STOPPED, S.CLD_TRAPPED):
                value = (status >> 8) & 0xFF
            else:
                value = S.SIGCONT
            info = bytearray(128)
            # si_signo, si_errno, si_code, then the union (8-aligned): pid, uid, status
            struct.pack_into("<iii4xiIi", info, 0, S.SIGCHLD, 0, hit.code, hit.pid, hit.uid,
                             value)
            t.mm.write(infop, bytes(info))
        _rusage(t, rusage)
        return 0

    result = wait_child(k, t, pid, options, deliver)
    if result == 0 and infop and options & C.WNOHANG:
        t.mm.write(infop, bytes(128))
    return result
