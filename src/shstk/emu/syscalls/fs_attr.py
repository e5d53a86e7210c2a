"""File attributes that change: mode, owner, times, size; umask."""

from __future__ import annotations

import os
import stat
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
from shstk.emu.syscalls.fs_common import host_op, path_arg, require_attr_writable, resolve_at
from shstk.emu.syscalls.kinds import UID_UNCHANGED
from shstk.emu.syscalls.util import i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_fchmodat2(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int,
                  flags: int) -> int:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr)
    if not path and flags & F.AT_EMPTY_PATH and dirfd != F.AT_FDCWD:
        f = _writable_host_file(k, t, dirfd, by_path=True)
        return host_op(os.chmod, _fd_path(f), mode & 0o7777)
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    if node.lstat is not None and stat.S_ISLNK(node.lstat.st_mode):
        raise KernelError(E.EOPNOTSUPP)  # a symlink's mode does not change
    require_attr_writable(k, node)
    return host_op(os.chmod, node.host, mode & 0o7777)


def sys_fchmodat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    return sys_fchmodat2(k, t, dirfd, path_addr, mode, 0)


def sys_chmod(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_fchmodat2(k, t, F.AT_FDCWD, path_addr, mode, 0)


def _writable_host_file(k: Kernel, t: Task, fd: int, by_path: bool = False) -> HostFile:
    """An fd whose inode may change: mnt_want_write_file() says EROFS otherwise. The
    open file knows its mount (decided on the object when it was opened). An O_PATH
    descriptor serves only the path calls (AT_EMPTY_PATH): fdget() refuses it (EBADF)."""
    f = t.proc.files.get(fd)
    if f.flags & F.O_PATH and not by_path:
        raise KernelError(E.EBADF)
    if not isinstance(f, HostFile) or not f.mount_rw or f.fd < 0:
        raise KernelError(E.EROFS)
    return f


def _fd_path(f: HostFile) -> str:
    """The host's name for the object an fd holds (works for O_PATH descriptors too)."""
    return f"/proc/self/fd/{f.fd}"


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
        f = _writable_host_file(k, t, dirfd, by_path=True)
        return host_op(os.chown, _fd_path(f), _host_id(uid), _host_id(gid))
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    require_attr_writable(k, node)
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


def _set_times(target: Node | HostFile,
               times: tuple[tuple[int, int], tuple[int, int]] | None) -> int:
    """vfs_utimes(): None means now; UTIME_NOW / UTIME_OMIT per timestamp. The target is
    the resolved entry (not followed again on the host) or an open file."""
    host: int | str
    if isinstance(target, HostFile):
        host, follow = _fd_path(target), True
    else:
        if target.host is None:
            raise KernelError(E.EROFS)  # an emulated object: its times are not settable
        host = target.host
        follow = not (target.lstat is not None and stat.S_ISLNK(target.lstat.st_mode))
    if times is None:
        return host_op(lambda: os.utime(host, follow_symlinks=follow))
    now = time.time_ns()
    old = None
    out = []
    for i, (sec, nsec) in enumerate(times):
        if nsec == UTIME_NOW:
            out.append(now)
        elif nsec == UTIME_OMIT:
            if old is None:
                try:
                    old = os.stat(host, follow_symlinks=follow)
                except OSError as exc:
                    raise KernelError(exc.errno or E.EIO) from None
            out.append(0 if old is None else (old.st_atime_ns, old.st_mtime_ns)[i])
        else:
            out.append(max(-_SEC_LIMIT, min(sec, _SEC_LIMIT)) * 10**9 + nsec)
    return host_op(lambda: os.utime(host, ns=(out[0], out[1]), follow_symlinks=follow))


def _times_node(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int
                ) -> Node | HostFile:
    if path_addr == 0 and dirfd != F.AT_FDCWD:
        if flags:  # do_utimes_fd()
            raise KernelError(E.EINVAL)
        return _writable_host_file(k, t, dirfd)
    path = path_arg(t, path_addr)
    if not path and flags & F.AT_EMPTY_PATH and dirfd != F.AT_FDCWD:
        return _writable_host_file(k, t, dirfd, by_path=True)
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    require_attr_writable(k, node)
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
    node = resolve_at(k, t, F.AT_FDCWD, path_arg(t, path_addr))
    mode = node.device.stat().mode if node.device else node.lstat.st_mode if node.lstat \
        else stat.S_IFREG
    if stat.S_ISDIR(mode):  # vfs_truncate(): before the mount is asked
        raise KernelError(E.EISDIR)
    if not stat.S_ISREG(mode):
        raise KernelError(E.EINVAL)
    require_attr_writable(k, node)
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
