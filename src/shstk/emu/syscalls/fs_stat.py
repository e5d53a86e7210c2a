"""File status: stat/fstat/newfstatat/statx, access checks, statfs."""

from __future__ import annotations

import ctypes
import os
import stat as st
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import (
    OpenFile,
    StatResult,
)
from shstk.emu.kernel.hostmem import libc
from shstk.emu.kernel.vfs import SHM_GUEST, SHM_SIZE, Node
from shstk.emu.syscalls.fs_common import path_arg, require_writable, resolve_at
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def _stat_node(node: Node, follow: bool) -> StatResult:
    if node.device is not None:
        return node.device.stat()
    if node.proc is not None:
        e = node.proc
        if follow and e.kind == "link" and isinstance(e.obj, OpenFile):
            return e.obj.stat()  # /proc/self/fd/N of a pipe or socket: the object
        mode = {"dir": st.S_IFDIR | 0o555, "link": st.S_IFLNK | 0o777}.get(
            e.kind, st.S_IFREG | (0o600 if e.opener else 0o444))
        nlink = 2 if e.kind == "dir" else 1
        return StatResult(0x16, e.ino, mode, nlink, 0, 0, 0, 0, 1024, 0, 0, 0, 0)
    assert node.host is not None
    try:
        s = os.stat(node.host) if follow else os.lstat(node.host)
    except OSError as exc:
        raise KernelError(exc.errno or E.ENOENT) from None
    return StatResult.from_os(s)


def pack_stat(s: StatResult) -> bytes:
    return struct.pack(F.STAT_FORMAT, s.dev, s.ino, s.nlink, s.mode, s.uid, s.gid, 0, s.rdev,
                       s.size, s.blksize, s.blocks, s.atime_ns // 10**9, s.atime_ns % 10**9,
                       s.mtime_ns // 10**9, s.mtime_ns % 10**9, s.ctime_ns // 10**9,
                       s.ctime_ns % 10**9, 0, 0, 0)


def _fstat_file(f: OpenFile) -> StatResult:
    return f.stat()


def sys_fstat(k: Kernel, t: Task, fd: int, buf: int) -> int:
    t.mm.write(buf, pack_stat(_fstat_file(t.proc.files.get(fd))))
    return 0


def _stat_at(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> StatResult:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_NO_AUTOMOUNT | F.AT_EMPTY_PATH |
                 F.AT_STATX_SYNC_TYPE):
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr) if path_addr or not flags & F.AT_EMPTY_PATH else ""
    if path == "" and flags & F.AT_EMPTY_PATH:
        if dirfd == F.AT_FDCWD:
            return _stat_node(k.vfs.resolve("/", t.proc.fs.cwd, task=t), True)
        return _fstat_file(t.proc.files.get(dirfd))
    follow = not flags & F.AT_SYMLINK_NOFOLLOW
    node = resolve_at(k, t, dirfd, path, follow=follow)
    return _stat_node(node, follow)


def sys_newfstatat(k: Kernel, t: Task, dirfd: int, path_addr: int, buf: int,
                   flags: int) -> int:
    t.mm.write(buf, pack_stat(_stat_at(k, t, dirfd, path_addr, i32(flags))))
    return 0


def sys_stat(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    return sys_newfstatat(k, t, F.AT_FDCWD, path_addr, buf, 0)


def sys_lstat(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    return sys_newfstatat(k, t, F.AT_FDCWD, path_addr, buf,
                          F.AT_SYMLINK_NOFOLLOW)


def sys_statx(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int, mask: int,
              buf: int) -> int:
    s = _stat_at(k, t, dirfd, path_addr, i32(flags))
    out = bytearray(F.STATX_SIZE)

    def ts(off: int, ns: int) -> None:
        struct.pack_into("<qI", out, off, ns // 10**9, ns % 10**9)

    struct.pack_into("<IIQIIIH", out, 0, F.STATX_BASIC_STATS, s.blksize, 0, s.nlink, s.uid,
                     s.gid, s.mode)
    struct.pack_into("<QQQQ", out, 0x20, s.ino, s.size, s.blocks, 0)
    ts(0x40, s.atime_ns)
    ts(0x50, 0)
    ts(0x60, s.ctime_ns)
    ts(0x70, s.mtime_ns)
    struct.pack_into("<IIII", out, 0x80, os.major(s.rdev), os.minor(s.rdev), os.major(s.dev),
                     os.minor(s.dev))
    t.mm.write(buf, bytes(out))
    return 0


def sys_faccessat2(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int,
                   flags: int) -> int:
    mode &= 0xFFFFFFFF
    if mode & ~7:
        raise KernelError(E.EINVAL)
    flags = i32(flags)
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EACCESS | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr)
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    if node.device is not None:
        return 0  # crw-rw-rw-
    if node.proc is not None:
        if mode & F.W_OK and not node.proc.writable:
            raise KernelError(E.EACCES)
        return 0
    if mode & F.W_OK:
        require_writable(k, node)
    host_mode = (os.R_OK if mode & F.R_OK else 0) | (os.W_OK if mode & F.W_OK else 0) | \
        (os.X_OK if mode & F.X_OK else 0)
    assert node.host is not None
    if not os.access(node.host, host_mode or os.F_OK):
        raise KernelError(E.EACCES)
    return 0


def sys_faccessat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    return sys_faccessat2(k, t, dirfd, path_addr, mode, 0)


def sys_access(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_faccessat2(k, t, F.AT_FDCWD, path_addr, mode, 0)


# f_type of struct statfs (include/uapi/linux/magic.h)
TMPFS_MAGIC, PROC_SUPER_MAGIC, SYSFS_MAGIC, EXT4_MAGIC = 0x01021994, 0x9FA0, 0x62656572, 0xEF53
# struct statfs on x86-64 (asm-generic/statfs.h): 7 longs, f_fsid, f_namelen, f_frsize,
# f_flags, f_spare[4]: 120 bytes. The host's statfs() fills this whole size.
_STATFS = struct.Struct("<qqqqqqqiiqqqqqqq")


def _host_fs_type(host: str | int) -> int:
    """The host file system's f_type (os.statvfs has none): a --rw directory on a tmpfs
    is a tmpfs to the guest too."""
    buf = ctypes.create_string_buffer(_STATFS.size)
    if isinstance(host, int):
        rc = libc.fstatfs(host, buf)
    else:
        rc = libc.statfs(os.fsencode(host), buf)
    return int(_STATFS.unpack(buf.raw)[0]) if rc == 0 else EXT4_MAGIC


def _synthetic_statfs(magic: int, blocks: int = 0, free: int = 0) -> bytes:
    return _STATFS.pack(magic, 4096, blocks, free, free, 0, 0, 0, 0, 255, 4096, 0, 0, 0, 0, 0)


def _statfs_bytes(k: Kernel, host: str | int | None, guest: str = "") -> bytes:
    """struct statfs of a host path or descriptor (an unlinked file still has one), or of
    a synthetic tree: /proc, /sys, the devtmpfs of /dev, the emulated tmpfs of /dev/shm."""
    if guest == SHM_GUEST or guest.startswith(SHM_GUEST + "/"):
        free = max(SHM_SIZE - k.vfs.shm_used(), 0) // 4096
        return _synthetic_statfs(TMPFS_MAGIC, SHM_SIZE // 4096, free)
    if host is None:
        if guest == "/sys" or guest.startswith("/sys/"):
            return _synthetic_statfs(SYSFS_MAGIC)
        if guest == "/dev" or guest.startswith("/dev/"):
            return _synthetic_statfs(TMPFS_MAGIC)
        return _synthetic_statfs(PROC_SUPER_MAGIC)
    try:
        s = os.statvfs(host)
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    return _STATFS.pack(_host_fs_type(host), s.f_bsize, s.f_blocks, s.f_bfree,
                        s.f_bavail, s.f_files, s.f_ffree, 0, 0, s.f_namemax, s.f_frsize,
                        s.f_flag | 1, 0, 0, 0, 0)


def sys_statfs(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, path_arg(t, path_addr), task=t)
    host = None if node.device is not None else node.host
    t.mm.write(buf, _statfs_bytes(k, host, node.guest))
    return 0


def sys_fstatfs(k: Kernel, t: Task, fd: int, buf: int) -> int:
    f = t.proc.files.get(fd)
    host_fd = f.host_fd()
    host = host_fd if host_fd >= 0 and bool(getattr(f, "host_path", "")) else None
    t.mm.write(buf, _statfs_bytes(k, host, f.path))
    return 0
