"""Directories and names: cwd, getdents64, mkdir, unlink/rmdir, rename, links (writes need --rw)."""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import HostFile
from shstk.emu.kernel.vfs import Node
from shstk.emu.syscalls.fs_common import (
    dir_of_fd,
    host_op,
    last_type,
    path_arg,
    require_entry_writable,
    resolve_at,
)
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_getcwd(k: Kernel, t: Task, buf: int, size: int) -> int:
    cwd = t.proc.fs.cwd.encode() + b"\0"
    if size < len(cwd):
        raise KernelError(E.ERANGE)
    t.mm.write(buf, cwd)
    return len(cwd)


def sys_chdir(k: Kernel, t: Task, path_addr: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, path_arg(t, path_addr), task=t)
    _require_dir(node)
    t.proc.fs.cwd = node.guest
    return 0


def _require_dir(node: Node) -> None:
    if node.proc is not None:
        if node.proc.kind != "dir":
            raise KernelError(E.ENOTDIR)
        return
    if node.device is not None or node.host is None:
        raise KernelError(E.ENOTDIR)  # an emulated device node (/dev/null, ...)
    if not os.path.isdir(node.host):
        raise KernelError(E.ENOTDIR)
    if not os.access(node.host, os.X_OK):
        raise KernelError(E.EACCES)


def sys_fchdir(k: Kernel, t: Task, fd: int) -> int:
    t.proc.fs.cwd = dir_of_fd(k, t.proc.files.get(fd))
    return 0


def fill_dirents(t: Task, fd: int, buf: int, count: int,
                 record: Callable[[int, int, int, bytes], bytes]) -> int:
    """getdents/getdents64: as many records as fit in `count` bytes (EINVAL when not even
    one does); `record(ino, next_off, dtype, name)` lays one out in its struct."""
    f = t.proc.files.get(fd)
    entries = f.getdents()
    if entries is None:
        raise KernelError(E.ENOTDIR)
    out = bytearray()
    used = 0
    pos = getattr(f, "dir_pos", 0)
    for ino, dtype, name in entries:
        rec = record(ino, pos + used + 1, dtype, os.fsencode(name))
        if len(out) + len(rec) > count:
            if not out:
                raise KernelError(E.EINVAL)
            break
        out += rec
        used += 1
    t.mm.write(buf, bytes(out))
    f.advance_dir(used)  # type: ignore[attr-defined]
    return len(out)


def _dirent64(ino: int, off: int, dtype: int, raw: bytes) -> bytes:
    """struct linux_dirent64: d_type before the name."""
    reclen = (19 + len(raw) + 1 + 7) & ~7
    return (struct.pack("<QqHB", ino, off, reclen, dtype) + raw + b"\0").ljust(reclen, b"\0")


def sys_getdents64(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    return fill_dirents(t, fd, buf, count, _dirent64)


def new_entry(k: Kernel, t: Task, dirfd: int, path: str) -> Node:
    """filename_create(): the name must be new (EEXIST first), in a writable directory."""
    if last_type(path) != "norm":
        raise KernelError(E.EEXIST)
    node = resolve_at(k, t, dirfd, path, follow=False, must_exist=False)
    if node.exists:
        raise KernelError(E.EEXIST)
    require_entry_writable(k, node)
    return node


def sys_mkdirat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    node = new_entry(k, t, dirfd, path_arg(t, path_addr))
    return host_op(os.mkdir, node.host, mode & ~t.proc.fs.umask & 0o7777)


def sys_mknodat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int, dev: int) -> int:
    """may_mknod(), then filename_create(): a FIFO, socket or regular file in an --rw
    folder; device nodes are not emulated (EPERM, as without CAP_MKNOD)."""
    kind = mode & F.S_IFMT
    if kind == stat.S_IFDIR:
        raise KernelError(E.EPERM)
    if kind not in (0, stat.S_IFREG, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
        raise KernelError(E.EINVAL)
    node = new_entry(k, t, dirfd, path_arg(t, path_addr))
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise KernelError(E.EPERM)
    perm = mode & ~t.proc.fs.umask & 0o7777
    host = node.host
    assert host is not None
    if kind == stat.S_IFIFO:
        return host_op(os.mkfifo, host, perm)
    if kind == stat.S_IFSOCK:
        return host_op(os.mknod, host, perm | stat.S_IFSOCK)
    return host_op(lambda: os.close(os.open(host, os.O_CREAT | os.O_EXCL | os.O_WRONLY |
                                            os.O_CLOEXEC, perm)))


def sys_mknod(k: Kernel, t: Task, path_addr: int, mode: int, dev: int) -> int:
    return sys_mknodat(k, t, F.AT_FDCWD, path_addr, mode, dev)


def sys_mkdir(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_mkdirat(k, t, F.AT_FDCWD, path_addr, mode)


def _existing_entry(k: Kernel, t: Task, dirfd: int, path: str, rmdir: bool = False) -> Node:
    """mnt_want_write() comes before the last component is looked up: on a read-only
    file system unlink and rename fail with EROFS even for a name that does not exist.
    The directory's mount is asked, never the object a final symlink points at."""
    node = resolve_at(k, t, dirfd, path, follow=False, must_exist=False)
    if node.proc is not None and node.proc.kind == "link" and rmdir:
        raise KernelError(E.ENOTDIR)  # /proc/self/cwd: a link, not a directory
    require_entry_writable(k, node)
    if not node.exists:
        raise KernelError(E.ENOENT)
    return node


def sys_unlinkat(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> int:
    if flags & ~F.AT_REMOVEDIR:
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr)
    kind = last_type(path)
    if flags & F.AT_REMOVEDIR:  # do_rmdir()
        if kind != "norm":
            raise KernelError({"dot": E.EINVAL, "dotdot": E.ENOTEMPTY}.get(kind, E.EBUSY))
    elif kind != "norm":
        raise KernelError(E.EISDIR)
    if flags & F.AT_REMOVEDIR and path.rstrip("/"):
        path = path.rstrip("/")  # do_rmdir() never follows the last component
    node = _existing_entry(k, t, dirfd, path, bool(flags & F.AT_REMOVEDIR))
    if k.vfs.is_mount_point(node):
        raise KernelError(E.EBUSY)
    return host_op(os.rmdir if flags & F.AT_REMOVEDIR else os.unlink, node.host)


def sys_unlink(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD, path_addr, 0)


def sys_rmdir(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD, path_addr, F.AT_REMOVEDIR)


RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4


def sys_renameat2(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                  new_addr: int, flags: int) -> int:
    """do_renameat2(): flags, both parents, EXDEV across mounts, then mnt_want_write
    (EROFS), then the names (ENOENT/EEXIST), then mount points (EBUSY)."""
    flags &= 0xFFFFFFFF
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or (
            flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)):
        raise KernelError(E.EINVAL)
    old, new = path_arg(t, old_addr), path_arg(t, new_addr)
    if last_type(old) != "norm" or last_type(new) != "norm":
        raise KernelError(E.EBUSY)
    src = resolve_at(k, t, olddir, old, follow=False, must_exist=False)
    dst = resolve_at(k, t, newdir, new, follow=False, must_exist=False)
    if k.vfs.entry_mount(src) != k.vfs.entry_mount(dst):
        raise KernelError(E.EXDEV)
    require_entry_writable(k, src)
    if not src.exists:
        raise KernelError(E.ENOENT)
    if flags & RENAME_NOREPLACE and dst.exists:
        raise KernelError(E.EEXIST)
    if flags & RENAME_EXCHANGE and not dst.exists:
        raise KernelError(E.ENOENT)
    if k.vfs.is_mount_point(src) or k.vfs.is_mount_point(dst):
        raise KernelError(E.EBUSY)
    if flags & RENAME_WHITEOUT:
        raise KernelError(E.EINVAL)  # no whiteouts on the host's behalf
    a, b = src.host, dst.host
    assert a is not None and b is not None
    if flags & RENAME_EXCHANGE:
        if os.path.realpath(a) == os.path.realpath(b):
            return 0
        tmp = f"{a}.shstk-xchg-{os.getpid()}"
        host_op(os.rename, a, tmp)
        try:
            host_op(os.rename, b, a)
        except KernelError:
            os.rename(tmp, a)
            raise
        return host_op(os.rename, tmp, b)
    return host_op(os.rename, a, b)


def sys_renameat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                 new_addr: int) -> int:
    return sys_renameat2(k, t, olddir, old_addr, newdir, new_addr, 0)


def sys_rename(k: Kernel, t: Task, old_addr: int, new_addr: int) -> int:
    cwd = F.AT_FDCWD
    return sys_renameat2(k, t, cwd, old_addr, cwd, new_addr, 0)


def sys_symlinkat(k: Kernel, t: Task, target_addr: int, dirfd: int, path_addr: int) -> int:
    target = path_arg(t, target_addr)
    if not target:
        raise KernelError(E.ENOENT)
    node = new_entry(k, t, dirfd, path_arg(t, path_addr))
    return host_op(os.symlink, target, node.host)


def sys_symlink(k: Kernel, t: Task, target_addr: int, path_addr: int) -> int:
    return sys_symlinkat(k, t, target_addr, F.AT_FDCWD, path_addr)


def sys_linkat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int, new_addr: int,
               flags: int) -> int:
    if flags & ~(F.AT_SYMLINK_FOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    old_path = path_arg(t, old_addr)
    if not old_path and flags & F.AT_EMPTY_PATH and olddir != F.AT_FDCWD:
        return _link_fd(k, t, olddir, newdir, path_arg(t, new_addr))
    src = resolve_at(k, t, olddir, old_path,
                     follow=bool(flags & F.AT_SYMLINK_FOLLOW))
    dst = new_entry(k, t, newdir, path_arg(t, new_addr))
    # do_linkat(): both names on one mount, else EXDEV; the source is the object itself
    if k.vfs.object_mount(src) != k.vfs.entry_mount(dst) or src.host is None:
        raise KernelError(E.EXDEV)
    if src.lstat is not None and stat.S_ISDIR(src.lstat.st_mode):
        raise KernelError(E.EPERM)
    old, new = src.host, dst.host
    assert new is not None
    return host_op(lambda: os.link(old, new, follow_symlinks=False))


def _link_fd(k: Kernel, t: Task, fd: int, newdir: int, new: str) -> int:
    """linkat(fd, "", ..., AT_EMPTY_PATH): a name for the object the fd holds (an
    O_TMPFILE file, say), on the fd's own mount only (EXDEV otherwise)."""
    f = t.proc.files.get(fd)
    dst = new_entry(k, t, newdir, new)
    host_fd = f.host_fd()
    if host_fd < 0 or not isinstance(f, HostFile) or f.mount != k.vfs.entry_mount(dst):
        raise KernelError(E.EXDEV)
    if f.is_directory():
        raise KernelError(E.EPERM)
    target = dst.host
    assert target is not None
    return host_op(lambda: os.link(f"/proc/self/fd/{host_fd}", target, follow_symlinks=True))


def sys_link(k: Kernel, t: Task, old_addr: int, new_addr: int) -> int:
    cwd = F.AT_FDCWD
    return sys_linkat(k, t, cwd, old_addr, cwd, new_addr, 0)


def sys_readlinkat(k: Kernel, t: Task, dirfd: int, path_addr: int, buf: int,
                   size: int) -> int:
    if i32(size) <= 0:
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr)
    node = resolve_at(k, t, dirfd, path, follow=False)
    if node.proc is not None:
        if node.proc.kind != "link":
            raise KernelError(E.EINVAL)
        target = node.proc.target.encode()
    elif node.device is not None or node.host is None:
        raise KernelError(E.EINVAL)  # an emulated device node: not a symbolic link
    else:
        try:
            target = os.fsencode(os.readlink(node.host))
        except OSError as exc:
            raise KernelError(exc.errno or E.EINVAL) from None
    data = target[:i32(size)]
    t.mm.write(buf, data)
    return len(data)


def sys_readlink(k: Kernel, t: Task, path_addr: int, buf: int, size: int) -> int:
    return sys_readlinkat(k, t, F.AT_FDCWD, path_addr, buf, size)
