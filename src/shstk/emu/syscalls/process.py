"""Process and thread system calls: ids, clone/fork/vfork/clone3, execve, exit, wait,
futex, scheduling, limits, arch_prctl and prctl."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.kernel import futex, shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT
from shstk.emu.kernel.policy import note_libc_shstk_call
from shstk.emu.kernel.process import CloneArgs, WaitResult, do_clone, wait_child
from shstk.emu.syscalls.util import i32, i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

MASK64 = (1 << 64) - 1


# --- identity -------------------------------------------------------------------------------

def sys_getpid(k: Kernel, t: Task) -> int:
    return t.pid


def sys_gettid(k: Kernel, t: Task) -> int:
    return t.tid


def sys_getppid(k: Kernel, t: Task) -> int:
    parent = t.proc.parent
    # The first process's parent lives outside the machine: shstk itself.
    return parent.pid if parent is not None else os.getpid()


def sys_getuid(k: Kernel, t: Task) -> int:
    return t.proc.uid


def sys_geteuid(k: Kernel, t: Task) -> int:
    return t.proc.euid


def sys_getgid(k: Kernel, t: Task) -> int:
    return t.proc.gid


def sys_getegid(k: Kernel, t: Task) -> int:
    return t.proc.egid


def sys_getresuid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    for addr, v in ((r, t.proc.uid), (e, t.proc.euid), (s, t.proc.suid)):
        t.mm.write_u32(addr, v)
    return 0


def sys_getresgid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    for addr, v in ((r, t.proc.gid), (e, t.proc.egid), (s, t.proc.sgid)):
        t.mm.write_u32(addr, v)
    return 0


def sys_getgroups(k: Kernel, t: Task, size: int, addr: int) -> int:
    return 0


def _set_id(t: Task, value: int, attr: str) -> int:
    value = i32(value)
    proc = t.proc
    if value == -1:
        return 0
    if proc.euid != 0 and value not in (proc.uid, proc.euid, proc.suid):
        raise KernelError(E.EPERM)
    setattr(proc, attr, value)
    return 0


def _set_id(t: Task, value: int, real: str, effective: str, saved: str) -> int:
    """setuid/setgid: root sets all three ids; others may only switch among their own."""
    p = t.proc
    value = i32(value)
    if p.euid == 0:
        for attr in (real, effective, saved):
            setattr(p, attr, value)
        return 0
    if value not in (getattr(p, real), getattr(p, saved)):
        raise KernelError(E.EPERM)
    setattr(p, effective, value)
    return 0


def sys_setuid(k: Kernel, t: Task, uid: int) -> int:
    return _set_id(t, uid, "uid", "euid", "suid")


def sys_setgid(k: Kernel, t: Task, gid: int) -> int:
    return _set_id(t, gid, "gid", "egid", "sgid")


def sys_setresuid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    for v, attr in ((r, "uid"), (e, "euid"), (s, "suid")):
        _set_id(t, v, attr)
    return 0


def sys_setresgid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    for v, attr in ((r, "gid"), (e, "egid"), (s, "sgid")):
        _set_id(t, v, attr)
    return 0


def sys_setgroups(k: Kernel, t: Task, size: int, addr: int) -> int:
    if t.proc.euid != 0:
        raise KernelError(E.EPERM)
    return 0


def sys_getpgid(k: Kernel, t: Task, pid: int) -> int:
    proc = t.proc if i32(pid) == 0 else k.processes.get(i32(pid))
    if proc is None:
        raise KernelError(E.ESRCH)
    return proc.pgid


def sys_getpgrp(k: Kernel, t: Task) -> int:
    return t.proc.pgid


def sys_setpgid(k: Kernel, t: Task, pid: int, pgid: int) -> int:
    pid, pgid = i32(pid), i32(pgid)
    if pgid < 0:
        raise KernelError(E.EINVAL)
    proc = t.proc if pid == 0 else k.processes.get(pid)
    if proc is None or (proc is not t.proc and proc.parent is not t.proc):
        raise KernelError(E.ESRCH)
    proc.pgid = proc.pid if pgid == 0 else pgid
    return 0


def sys_getsid(k: Kernel, t: Task, pid: int) -> int:
    proc = t.proc if i32(pid) == 0 else k.processes.get(i32(pid))
    if proc is None:
        raise KernelError(E.ESRCH)
    return proc.sid


def sys_setsid(k: Kernel, t: Task) -> int:
    proc = t.proc
    if proc.pgid == proc.pid:
        raise KernelError(E.EPERM)
    proc.sid = proc.pgid = proc.pid
    return proc.pid


# --- creation ---------------------------------------------------------------------------------

def sys_clone(k: Kernel, t: Task, flags: int, stack: int, parent_tid: int, child_tid: int,
              tls: int) -> int:
    a = CloneArgs(flags & ~C.CSIGNAL & MASK64, stack, 0, parent_tid, child_tid, tls,
                  flags & C.CSIGNAL)
    if a.flags & C.CLONE_PIDFD and a.flags & C.CLONE_PARENT_SETTID:
        raise KernelError(E.EINVAL)
    if a.flags & C.CLONE_PIDFD:
        raise KernelError(E.EINVAL, "pidfd is not emulated")
    return do_clone(k, t, a)


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
    if flags & C.CLONE_PIDFD:
        raise KernelError(E.EINVAL, "pidfd is not emulated")
    return do_clone(k, t, a)


def _read_strings(t: Task, addr: int) -> list[bytes]:
    out = []
    if addr == 0:
        return out
    for i in range(0x20000):
        p = t.mm.read_u64(addr + 8 * i)
        if p == 0:
            return out
        out.append(t.mm.read_cstring(p, 131072))
    raise KernelError(E.E2BIG)


def sys_execve(k: Kernel, t: Task, path_addr: int, argv_addr: int, envp_addr: int) -> object:
    from shstk.emu.kernel import loader

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


# --- exit and wait -------------------------------------------------------------------------------

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


# --- threads and futexes ----------------------------------------------------------------------

def sys_set_tid_address(k: Kernel, t: Task, addr: int) -> int:
    t.clear_child_tid = addr
    return t.tid


def sys_set_robust_list(k: Kernel, t: Task, head: int, length: int) -> int:
    if length != 24:
        raise KernelError(E.EINVAL)
    t.robust_list = (head, length)
    return 0


def sys_get_robust_list(k: Kernel, t: Task, pid: int, head_ptr: int, len_ptr: int) -> int:
    target = t if i32(pid) == 0 else k.tasks.get(i32(pid))
    if target is None:
        raise KernelError(E.ESRCH)
    t.mm.write_u64(head_ptr, target.robust_list[0])
    t.mm.write_u64(len_ptr, target.robust_list[1] or 24)
    return 0


def _timeout(k: Kernel, t: Task, addr: int, absolute: bool) -> int | None:
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 10**9:
        raise KernelError(E.EINVAL)
    ns = sec * 10**9 + nsec
    return ns if absolute else k.monotonic_ns() + ns


def sys_futex(k: Kernel, t: Task, uaddr: int, op: int, val: int, timeout: int, uaddr2: int,
              val3: int) -> int:
    op &= 0xFFFFFFFF
    cmd = op & C.FUTEX_CMD_MASK & 0xFFFFFFFF
    proc = t.proc
    if cmd in (C.FUTEX_WAIT, C.FUTEX_WAIT_BITSET):
        bitset = val3 & 0xFFFFFFFF if cmd == C.FUTEX_WAIT_BITSET else C.FUTEX_BITSET_MATCH_ANY
        absolute = cmd == C.FUTEX_WAIT_BITSET
        deadline = _timeout(k, t, timeout, absolute)
        if absolute and deadline is not None and op & C.FUTEX_CLOCK_REALTIME:
            deadline = deadline - k.realtime_ns() + k.monotonic_ns()
        return futex.wait(k, t, uaddr, val, deadline, bitset)
    if cmd in (C.FUTEX_WAKE, C.FUTEX_WAKE_BITSET):
        bitset = val3 & 0xFFFFFFFF if cmd == C.FUTEX_WAKE_BITSET else C.FUTEX_BITSET_MATCH_ANY
        futex.futex_key(proc, uaddr)
        return futex.wake(k, proc, uaddr, i32(val), bitset)
    if cmd in (C.FUTEX_REQUEUE, C.FUTEX_CMP_REQUEUE):
        cmp = val3 if cmd == C.FUTEX_CMP_REQUEUE else None
        return futex.requeue(k, proc, uaddr, i32(val), timeout & 0x7FFFFFFF, uaddr2, cmp,
                             val3)
    if cmd == C.FUTEX_WAKE_OP:
        return futex.wake_op(k, proc, uaddr, i32(val), uaddr2, timeout & 0x7FFFFFFF, val3)
    raise KernelError(E.ENOSYS, "priority-inheritance futexes are not emulated")


def sys_sched_yield(k: Kernel, t: Task) -> int:
    t.yielded = True  # to the back of the run queue: the others run first
    t.cpu.request_stop()
    return 0


def sys_sched_getaffinity(k: Kernel, t: Task, pid: int, size: int, mask: int) -> int:
    if i32(pid) and k.tasks.get(i32(pid)) is None:
        raise KernelError(E.ESRCH)
    if size < 8 or size % 8:
        raise KernelError(E.EINVAL)
    bits = (1 << k.ncpus) - 1
    t.mm.write(mask, bits.to_bytes(8, "little"))
    return 8


def sys_sched_setaffinity(k: Kernel, t: Task, pid: int, size: int, mask: int) -> int:
    if i32(pid) and k.tasks.get(i32(pid)) is None:
        raise KernelError(E.ESRCH)
    t.mm.read(mask, min(size, 128))
    return 0


def sys_sched_getparam(k: Kernel, t: Task, pid: int, param: int) -> int:
    t.mm.write_u32(param, 0)
    return 0


def sys_sched_getscheduler(k: Kernel, t: Task, pid: int) -> int:
    return 0


def sys_getpriority(k: Kernel, t: Task, which: int, who: int) -> int:
    return 20  # nice 0, in the kernel's 40 - nice encoding


def sys_getcpu(k: Kernel, t: Task, cpu: int, node: int, cache: int) -> int:
    if cpu:
        t.mm.write_u32(cpu, 0)
    if node:
        t.mm.write_u32(node, 0)
    return 0


# --- limits -----------------------------------------------------------------------------------

def _rlim_pair(t: Task, resource: int) -> list[int]:
    if resource >= R.RLIM_NLIMITS:
        raise KernelError(E.EINVAL)
    return t.proc.rlimits[resource]


def sys_prlimit64(k: Kernel, t: Task, pid: int, resource: int, new: int, old: int) -> int:
    target = t.proc if i32(pid) == 0 else k.processes.get(i32(pid))
    if target is None:
        raise KernelError(E.ESRCH)
    resource = i32(resource)
    if resource < 0 or resource >= R.RLIM_NLIMITS:
        raise KernelError(E.EINVAL)
    cur = target.rlimits[resource]
    new_pair = None
    if new:
        soft, hard = struct.unpack("<QQ", t.mm.read(new, 16))
        if soft > hard:
            raise KernelError(E.EINVAL)
        if hard > cur[1] and target.euid != 0:
            raise KernelError(E.EPERM)
        if resource == R.RLIMIT_NOFILE and hard > 1048576:
            raise KernelError(E.EPERM)
        new_pair = [soft, hard]
    if old:
        t.mm.write(old, struct.pack("<QQ", *cur))
    if new_pair is not None:
        target.rlimits[resource] = new_pair
        if resource == R.RLIMIT_NOFILE:
            target.files.limit = min(new_pair[0], 65536)
    return 0


def sys_getrlimit(k: Kernel, t: Task, resource: int, rlim: int) -> int:
    t.mm.write(rlim, struct.pack("<QQ", *_rlim_pair(t, i32(resource))))
    return 0


def sys_setrlimit(k: Kernel, t: Task, resource: int, rlim: int) -> int:
    return sys_prlimit64(k, t, 0, resource, rlim, 0)


def sys_getrusage(k: Kernel, t: Task, who: int, addr: int) -> int:
    if i32(who) not in (R.RUSAGE_SELF, R.RUSAGE_CHILDREN, R.RUSAGE_THREAD):
        raise KernelError(E.EINVAL)
    buf = bytearray(R.RUSAGE_SIZE)
    ns = {R.RUSAGE_SELF: t.proc.cpu_ns(), R.RUSAGE_THREAD: t.cpu_ns,
          R.RUSAGE_CHILDREN: t.proc.child_cpu_ns}[i32(who)]
    struct.pack_into("<qq", buf, 0, ns // 10**9, (ns % 10**9) // 1000)
    t.mm.write(addr, bytes(buf))
    return 0


# --- arch_prctl and prctl -----------------------------------------------------------------------

def sys_arch_prctl(k: Kernel, t: Task, option: int, arg2: int) -> int:
    """do_arch_prctl_64(), with the shadow-stack options of SPEC.md §4."""
    if A.ARCH_SHSTK_ENABLE <= option <= A.ARCH_SHSTK_STATUS:
        note_libc_shstk_call(t)
        return shstk.shstk_prctl(k, t, t, option, arg2)
    cpu = t.cpu
    if option == A.ARCH_SET_FS:
        if arg2 >= 1 << 47:
            raise KernelError(E.EPERM)
        cpu.set_reg("fs_base", arg2)
        return 0
    if option == A.ARCH_SET_GS:
        if arg2 >= 1 << 47:
            raise KernelError(E.EPERM)
        cpu.set_reg("gs_base", arg2)
        return 0
    if option == A.ARCH_GET_FS:
        t.mm.write_u64(arg2, cpu.reg("fs_base"))
        return 0
    if option == A.ARCH_GET_GS:
        t.mm.write_u64(arg2, cpu.reg("gs_base"))
        return 0
    if option == A.ARCH_GET_CPUID:
        return 1
    if option == A.ARCH_SET_CPUID:
        raise KernelError(E.ENODEV)
    if option == A.ARCH_GET_XCOMP_SUPP:
        t.mm.write_u64(arg2, 0x3)  # x87 and SSE state
        return 0
    if option in (A.ARCH_GET_XCOMP_PERM,):
        t.mm.write_u64(arg2, 0x3)
        return 0
    if option == A.ARCH_REQ_XCOMP_PERM:
        raise KernelError(E.EOPNOTSUPP)
    return -E.EINVAL


def sys_prctl(k: Kernel, t: Task, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
    option = i32(option)
    proc = t.proc
    if option == R.PR_SET_NAME:
        name = t.mm.read_cstring(a2, 4096)[:15]
        t.comm = name.decode("utf-8", "replace")
        return 0
    if option == R.PR_GET_NAME:
        t.mm.write(a2, t.comm.encode()[:15].ljust(16, b"\0"))
        return 0
    if option == R.PR_SET_PDEATHSIG:
        if a2 > 64:
            raise KernelError(E.EINVAL)
        return 0
    if option == R.PR_GET_PDEATHSIG:
        t.mm.write_u32(a2, 0)
        return 0
    if option == R.PR_GET_DUMPABLE:
        return proc.dumpable
    if option == R.PR_SET_DUMPABLE:
        if a2 not in (0, 1):
            raise KernelError(E.EINVAL)
        proc.dumpable = a2
        return 0
    if option == R.PR_SET_NO_NEW_PRIVS:
        if a2 != 1 or a3 or a4 or a5:
            raise KernelError(E.EINVAL)
        proc.no_new_privs = True
        return 0
    if option == R.PR_GET_NO_NEW_PRIVS:
        return int(proc.no_new_privs)
    if option == R.PR_CAPBSET_READ:
        return 1 if a2 <= 40 else -E.EINVAL
    if option == R.PR_SET_VMA:
        return _set_vma_name(k, t, a2, a3, a4, a5)
    if option == R.PR_SET_THP_DISABLE:
        return 0
    if option in (R.PR_GET_SHADOW_STACK_STATUS, R.PR_SET_SHADOW_STACK_STATUS,
                  R.PR_LOCK_SHADOW_STACK_STATUS):
        # arm64/RISC-V interface; x86 keeps the weak default
        raise KernelError(E.EINVAL)
    raise KernelError(E.EINVAL)


def _set_vma_name(k: Kernel, t: Task, sub: int, addr: int, size: int, name_addr: int) -> int:
    if sub != 0:  # PR_SET_VMA_ANON_NAME
        raise KernelError(E.EINVAL)
    name = t.mm.read_cstring(name_addr, 79).decode() if name_addr else None
    end = addr + ((size + 0xFFF) & ~0xFFF)
    for v in t.mm.overlapping(addr, end):
        if v.file is None:
            v.anon_name = name
    return 0


def sys_personality(k: Kernel, t: Task, persona: int) -> int:
    old = t.proc.personality
    if persona & 0xFFFFFFFF != 0xFFFFFFFF:
        t.proc.personality = persona & 0xFFFFFFFF
    return old


def sys_rseq(k: Kernel, t: Task, rseq: int, length: int, flags: int, sig: int) -> int:
    """Registration only: this machine never migrates a thread, so cpu_id stays 0."""
    RSEQ_FLAG_UNREGISTER = 1
    if flags & RSEQ_FLAG_UNREGISTER:
        if getattr(t, "rseq", None) != rseq:
            raise KernelError(E.EINVAL)
        t.rseq = None  # type: ignore[attr-defined]
        return 0
    if flags or length < 32 or rseq % 32:
        raise KernelError(E.EINVAL)
    if getattr(t, "rseq", None):
        raise KernelError(E.EBUSY if t.rseq == rseq else E.EINVAL)  # type: ignore[attr-defined]
    t.mm.write(rseq, struct.pack("<II", 0, 0))  # cpu_id_start, cpu_id
    t.rseq = rseq  # type: ignore[attr-defined]
    return 0


def sys_capget(k: Kernel, t: Task, header: int, data: int) -> int:
    version, _pid = struct.unpack("<Ii", t.mm.read(header, 8))
    if version not in (0x19980330, 0x20071026, 0x20080522):
        t.mm.write_u32(header, 0x20080522)
        raise KernelError(E.EINVAL)
    if data:
        full = 0xFFFFFFFF if t.proc.euid == 0 else 0
        t.mm.write(data, struct.pack("<6I", full, full, 0, full & 0x1FF, full & 0x1FF, 0))
    return 0


def sys_ptrace(k: Kernel, t: Task, request: int, pid: int, addr: int, data: int) -> int:
    from shstk.emu.kernel import ptrace

    return ptrace.sys_ptrace(k, t, i64(request), i32(pid), addr, data)
