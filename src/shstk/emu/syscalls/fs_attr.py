"""File attributes that change: mode, owner, times, size; umask."""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import (
    HostFile,
)
from shstk.emu.kernel.vfs import Node
from shstk.emu.syscalls.fs_common import host_op, path_arg, require_changeable, resolve_at
from shstk.emu.syscalls.kinds import UID_UNCHANGED
from shstk.emu.syscalls.util import i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_fchmodat2(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int,
                  flags: int) -> int:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    node = resolve_at(k, t, dirfd, path_arg(t, path_addr))
    require_changeable(k, node)
    return host_op(os.chmod, node.host, mode & 0o7777)


def sys_fchmodat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    return sys_fchmodat2(k, t, dirfd, path_addr, mode, 0)


def sys_chmod(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_fchmodat2(k, t, F.AT_FDCWD, path_addr, mode, 0)


def _writable_host_file(k: Kernel, t: Task, fd: int) -> HostFile:
    """An fd whose inode may change: mnt_want_write_file() says EROFS otherwise."""
    f = t.proc.files.get(fd)
    if not isinstance(f, HostFile) or not k.vfs.may_write(Node(f.path, f.host_path)):
        raise KernelError(E.EROFS)
    return f


def sys_fchmod(k: Kernel, t: Task, fd: int, mode: int) -> int:
    return host_op(os.fchmod, _writable_host_file(k, t, fd).fd, mode & 0o7777)


def _host_id(value: int) -> int:
    """A uid_t/gid_t for the host call: (uid_t)-1, "leave it", is -1 there."""
    return -1 if value == UID_UNCHANGED else value


def sys_fchownat(k: Kernel, t: Task, dirfd: int, path_addr: int, uid: int, gid: int,
                 flags: int) -> int:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr)
    if not path and flags & F.AT_EMPTY_PATH and dirfd != F.AT_FDCWD:
        return sys_fchown(k, t, dirfd, uid, gid)
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    require_changeable(k, node)
    if flags & F.AT_SYMLINK_NOFOLLOW:
        return host_op(os.lchown, node.host, _host_id(uid), _host_id(gid))
    return host_op(os.chown, node.host, _host_id(uid), _host_id(gid))


def sys_chown(k: Kernel, t: Task, path_addr: int, uid: int, gid: int) -> int:
    return sys_fchownat(k, t, F.AT_FDCWD, path_addr, uid, gid, 0)


def sys_lchown(k: Kernel, t: Task, path_addr: int, uid: int, gid: int) -> int:
    return sys_fchownat(k, t, F.AT_FDCWD, path_addr, uid, gid, F.AT_SYMLINK_NOFOLLOW)


def sys_fchown(k: Kernel, t: Task, fd: int, uid: int, gid: int) -> int:
    f = _writable_host_file(k, t, fd)
    return host_op(os.fchown, f.fd, _host_id(uid), _host_id(gid))


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
# The host's time_t holds what Python hands it; the file system clamps further (as Linux's
# timestamp_truncate() does for the guest's own values), so the clamp below changes nothing.
_SEC_LIMIT = 1 << 62


def _set_times(node: Node, times: tuple[tuple[int, int], tuple[int, int]] | None) -> int:
    """vfs_utimes(): None means now; UTIME_NOW / UTIME_OMIT per timestamp."""
    host = node.host
    if host is None:
        raise KernelError(E.EROFS)  # an emulated object: its times are not settable
    if times is None:
        return host_op(lambda: os.utime(host))
    now = time.time_ns()
    old = None
    out = []
    for i, (sec, nsec) in enumerate(times):
        if nsec == UTIME_NOW:
            out.append(now)
        elif nsec == UTIME_OMIT:
            if old is None:
                try:
                    old = os.stat(host)
                except OSError as exc:
                    raise KernelError(exc.errno or E.EIO) from None
            out.append(0 if old is None else (old.st_atime_ns, old.st_mtime_ns)[i])
        else:
            out.append(max(-_SEC_LIMIT, min(sec, _SEC_LIMIT)) * 10**9 + nsec)
    return host_op(lambda: os.utime(host, ns=(out[0], out[1])))


def _times_node(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> Node:
    if path_addr == 0 and dirfd != F.AT_FDCWD:
        if flags:  # do_utimes_fd()
            raise KernelError(E.EINVAL)
        f = t.proc.files.get(dirfd)
        node = Node(f.path, getattr(f, "host_path", None))
    else:
        node = resolve_at(k, t, dirfd, path_arg(t, path_addr),
                          follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    require_changeable(k, node)
    return node


def sys_utimensat(k: Kernel, t: Task, dirfd: int, path_addr: int, times_addr: int,
                  flags: int) -> int:
    times = None
    if times_addr:
        a_s, a_ns, m_s, m_ns = struct.unpack("<qqqq", t.mm.read(times_addr, 32))
        for ns in (a_ns, m_ns):
            if ns not in (UTIME_NOW, UTIME_OMIT) and not 0 <= ns < 10**9:
                raise KernelError(E.EINVAL)
        times = ((a_s, a_ns), (m_s, m_ns))
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    return _set_times(_times_node(k, t, dirfd, path_addr, flags), times)


def sys_utimes(k: Kernel, t: Task, path_addr: int, times_addr: int) -> int:
    """utimes(path, struct timeval[2]): microseconds, and no UTIME_NOW / UTIME_OMIT."""
    times = None
    if times_addr:
        a_s, a_us, m_s, m_us = struct.unpack("<qqqq", t.mm.read(times_addr, 32))
        if not (0 <= a_us < 10**6 and 0 <= m_us < 10**6):
            raise KernelError(E.EINVAL)
        times = ((a_s, a_us * 1000), (m_s, m_us * 1000))
    return _set_times(_times_node(k, t, F.AT_FDCWD, path_addr, 0), times)


def sys_truncate(k: Kernel, t: Task, path_addr: int, length: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, path_arg(t, path_addr), task=t)
    require_changeable(k, node)
    return host_op(os.truncate, node.host, i64(length))


def sys_ftruncate(k: Kernel, t: Task, fd: int, length: int) -> int:
    f = t.proc.files.get(fd)
    if i64(length) < 0:
        raise KernelError(E.EINVAL)
    f.truncate(i64(length))
    return 0


def sys_umask(k: Kernel, t: Task, mask: int) -> int:
    old = t.proc.fs.umask
    t.proc.fs.umask = mask & 0o777
    return old


def sys_fallocate(k: Kernel, t: Task, fd: int, mode: int, offset: int, length: int) -> int:
    """Space is the host's to allocate: only the descriptor and the range are checked."""
    t.proc.files.get(fd)
    if offset < 0 or length <= 0:
        raise KernelError(E.EINVAL)
    return 0
