"""Descriptor operations: dup, fcntl, ioctl, flock, fsync, fadvise."""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import HostFile, OpenFile
from shstk.emu.kernel.pipe import Pipe, PipeEnd, pipe_set_size
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_dup(k: Kernel, t: Task, fd: int) -> int:
    files = t.proc.files
    return files.install(files.get(fd))


def sys_dup3(k: Kernel, t: Task, old: int, new: int, flags: int) -> int:
    files = t.proc.files
    old, new = i32(old), i32(new)
    if flags & ~F.O_CLOEXEC or old == new:
        raise KernelError(E.EINVAL)
    f = files.get(old)
    if new < 0 or new >= files.limit:
        raise KernelError(E.EBADF)
    return files.install(f, at=new, cloexec=bool(flags & F.O_CLOEXEC))


def sys_dup2(k: Kernel, t: Task, old: int, new: int) -> int:
    files = t.proc.files
    if i32(old) == i32(new):
        files.get(i32(old))
        return i32(new)
    return sys_dup3(k, t, old, new, 0)


def sys_fcntl(k: Kernel, t: Task, fd: int, cmd: int, arg: int) -> int:
    files = t.proc.files
    fd, cmd = fd, i32(cmd)
    entry = files.entry(fd)
    f = entry.file
    if cmd in (F.F_DUPFD, F.F_DUPFD_CLOEXEC):
        if i32(arg) < 0 or i32(arg) >= files.limit:
            raise KernelError(E.EINVAL)
        return files.install(f, minimum=i32(arg), cloexec=cmd == F.F_DUPFD_CLOEXEC)
    if cmd == F.F_GETFD:
        return F.FD_CLOEXEC if entry.cloexec else 0
    if cmd == F.F_SETFD:
        entry.cloexec = bool(arg & F.FD_CLOEXEC)
        return 0
    if cmd == F.F_GETFL:
        return f.flags | (F.O_LARGEFILE if f.kind == "host" else 0)
    if cmd == F.F_SETFL:
        settable = F.O_APPEND | F.O_NONBLOCK | F.O_ASYNC | F.O_DIRECT | F.O_NOATIME
        f.flags = (f.flags & ~settable) | (arg & settable)
        return 0
    if cmd in (F.F_GETLK, F.F_OFD_GETLK):
        # nobody else holds locks in this machine: report F_UNLCK
        t.mm.write(arg, struct.pack("<h", 2))
        return 0
    if cmd in (F.F_SETLK, F.F_SETLKW, F.F_OFD_SETLK, F.F_OFD_SETLKW):
        t.mm.read(arg, 32)
        return 0
    if cmd in (F.F_GETPIPE_SZ, F.F_SETPIPE_SZ):
        if not isinstance(f, PipeEnd):
            return _host_pipe_size(f, cmd, arg)
        if cmd == F.F_SETPIPE_SZ:
            f.pipe.capacity = pipe_set_size(f.pipe, arg)
        return f.pipe.capacity
    if cmd in (F.F_GETOWN, F.F_SETOWN, F.F_SETSIG, F.F_GETSIG):
        return 0
    if cmd in (F.F_ADD_SEALS, F.F_GET_SEALS):
        return _seals(f, cmd, arg)
    raise KernelError(E.EINVAL)


def _seals(f: OpenFile, cmd: int, arg: int) -> int:
    """memfd seals: the host's memfd holds and enforces them (writes, truncation and
    mappings of the guest all reach it), so the calls go to it; any other file: EINVAL."""
    if not isinstance(f, HostFile) or not f.path.startswith("/memfd:"):
        raise KernelError(E.EINVAL)
    if cmd == F.F_ADD_SEALS and not f.writable:
        raise KernelError(E.EPERM)
    try:
        return fcntl.fcntl(f.fd, cmd, arg & 0xFFFFFFFF) if cmd == F.F_ADD_SEALS \
            else fcntl.fcntl(f.fd, cmd)
    except OSError as exc:
        raise KernelError(exc.errno or E.EINVAL) from None


def sys_ioctl(k: Kernel, t: Task, fd: int, request: int, arg: int) -> int:
    f = t.proc.files.get(fd)
    request &= 0xFFFFFFFF
    if request == F.FIOCLEX or request == F.FIONCLEX:
        t.proc.files.entry(fd).cloexec = request == F.FIOCLEX
        return 0
    if request == F.FIONBIO:
        on = t.mm.read_u32(arg)
        f.flags = (f.flags | F.O_NONBLOCK) if on else (f.flags & ~F.O_NONBLOCK)
        return 0
    result, out = f.ioctl(request, arg)
    if out is not None:
        t.mm.write(arg, out)
    return result


def sys_fsync(k: Kernel, t: Task, fd: int) -> int:
    t.proc.files.get(fd)
    return 0


def sys_fadvise64(k: Kernel, t: Task, fd: int, offset: int, length: int, advice: int) -> int:
    f = t.proc.files.get(fd)
    if isinstance(f, PipeEnd):
        raise KernelError(E.ESPIPE)
    if advice > 5:
        raise KernelError(E.EINVAL)
    return 0


def sys_flock(k: Kernel, t: Task, fd: int, op: int) -> int:
    return k.vfs.flocks.flock(t.proc.files.get(fd), op)


def sys_sync(k: Kernel, t: Task) -> int:
    return 0


def _host_pipe_size(f: object, cmd: int, arg: int) -> int:
    """A host pipe the guest inherited (its stdout under a shell's `|`): the host's own
    size, changed within the limits of a guest pipe. Anything else is EBADF."""
    host_fd = getattr(f, "fd", -1) if getattr(f, "kind", "") == "host" else -1
    try:
        if host_fd < 0 or not stat.S_ISFIFO(os.fstat(host_fd).st_mode):
            raise KernelError(E.EBADF)
        if cmd == F.F_SETPIPE_SZ:
            arg = pipe_set_size(Pipe(), arg)
        return fcntl.fcntl(host_fd, cmd, arg)
    except OSError as exc:
        raise KernelError(exc.errno or E.EBADF) from None
