"""Who a process is: pids, process groups and sessions, user and group ids."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.kernel.errors import KernelError
from shstk.emu.syscalls.kinds import UID_UNCHANGED
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_getpid(k: Kernel, t: Task) -> int:
    return t.pid


def sys_gettid(k: Kernel, t: Task) -> int:
    return t.tid


def sys_getppid(k: Kernel, t: Task) -> int:
    parent = t.proc.parent
    if parent is not None:
        return parent.pid
    # The first process's parent lives outside the machine: shstk itself. An orphan whose
    # parents are all gone was re-parented to init, as on Linux.
    return os.getpid() if t.proc is k.init else 1


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


def _capable(t: Task) -> bool:
    """CAP_SETUID / CAP_SETGID: this machine has no capability model, root has them all."""
    return t.proc.euid == 0


def _set_id(t: Task, value: int, real: str, effective: str, saved: str) -> int:
    """__sys_setuid(): the privileged set all three ids, others only the effective one,
    to their real or saved id. (uid_t)-1 is no valid id here."""
    if value == UID_UNCHANGED:
        raise KernelError(E.EINVAL)
    p = t.proc
    if _capable(t):
        setattr(p, real, value)
        setattr(p, saved, value)
    elif value not in (getattr(p, real), getattr(p, saved)):
        raise KernelError(E.EPERM)
    setattr(p, effective, value)
    return 0


def sys_setuid(k: Kernel, t: Task, uid: int) -> int:
    return _set_id(t, uid, "uid", "euid", "suid")


def sys_setgid(k: Kernel, t: Task, gid: int) -> int:
    return _set_id(t, gid, "gid", "egid", "sgid")


def _set_res_id(t: Task, values: tuple[int, int, int], attrs: tuple[str, str, str]) -> int:
    """__sys_setresuid(): (uid_t)-1 leaves an id as it is; without the capability each
    new id must be one of the current real, effective or saved ids."""
    p = t.proc
    current = tuple(getattr(p, a) for a in attrs)
    changes = [v != UID_UNCHANGED and v not in current for v in values]
    if any(changes) and not _capable(t):
        raise KernelError(E.EPERM)
    for v, attr in zip(values, attrs, strict=True):
        if v != UID_UNCHANGED:
            setattr(p, attr, v)
    return 0


def sys_setresuid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    return _set_res_id(t, (r, e, s), ("uid", "euid", "suid"))


def sys_setresgid(k: Kernel, t: Task, r: int, e: int, s: int) -> int:
    return _set_res_id(t, (r, e, s), ("gid", "egid", "sgid"))


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


def sys_capget(k: Kernel, t: Task, header: int, data: int) -> int:
    version, _pid = struct.unpack("<Ii", t.mm.read(header, 8))
    if version not in (0x19980330, 0x20071026, 0x20080522):
        t.mm.write_u32(header, 0x20080522)
        raise KernelError(E.EINVAL)
    if data:
        full = 0xFFFFFFFF if t.proc.euid == 0 else 0
        t.mm.write(data, struct.pack("<6I", full, full, 0, full & 0x1FF, full & 0x1FF, 0))
    return 0
