"""Directories and names: cwd, getdents64, mkdir, unlink/rmdir, rename, links (writes need --rw)."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.vfs import Node
from shstk.emu.syscalls.fs_common import host_op, path_arg, require_changeable, resolve_at
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
    assert node.host is not None
    if not os.path.isdir(node.host):
        raise KernelError(E.ENOTDIR)
    if not os.access(node.host, os.X_OK):
        raise KernelError(E.EACCES)


def sys_fchdir(k: Kernel, t: Task, fd: int) -> int:
    f = t.proc.files.get(fd)
    if f.getdents() is None:
        raise KernelError(E.ENOTDIR)
    t.proc.fs.cwd = f.path
    return 0


def sys_getdents64(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = t.proc.files.get(fd)
    entries = f.getdents()
    if entries is None:
        raise KernelError(E.ENOTDIR)
    out = bytearray()
    used = 0
    pos = getattr(f, "dir_pos", 0)
    for ino, dtype, name in entries:
        raw = os.fsencode(name)
        reclen = (19 + len(raw) + 1 + 7) & ~7
        if len(out) + reclen > count:
            if not out:
                raise KernelError(E.EINVAL)
            break
        rec = struct.pack("<QqHB", ino, pos + used + 1, reclen, dtype) + raw + b"\0"
        out += rec.ljust(reclen, b"\0")
        used += 1
    t.mm.write(buf, bytes(out))
    f.advance_dir(used)  # type: ignore[attr-defined]
    return len(out)


def sys_mkdirat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    node = resolve_at(k, t, dirfd, path_arg(t, path_addr), follow=False, must_exist=False)
    if node.exists:
        raise KernelError(E.EEXIST)
    require_changeable(k, node)
    return host_op(os.mkdir, node.host, mode & ~t.proc.fs.umask & 0o7777)


def sys_mkdir(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_mkdirat(k, t, F.AT_FDCWD, path_addr, mode)


def _parent_writable(k: Kernel, t: Task, dirfd: int, path: str) -> Node:
    """mnt_want_write() comes before the last component is looked up: on a read-only
    file system unlink and rename fail with EROFS even for a name that does not exist."""
    node = resolve_at(k, t, dirfd, path, follow=False, must_exist=False)
    require_changeable(k, node)
    if not node.exists:
        raise KernelError(E.ENOENT)
    return node


def sys_unlinkat(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> int:
    if flags & ~F.AT_REMOVEDIR:
        raise KernelError(E.EINVAL)
    node = _parent_writable(k, t, dirfd, path_arg(t, path_addr))
    return host_op(os.rmdir if flags & F.AT_REMOVEDIR else os.unlink, node.host)


def sys_unlink(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD, path_addr, 0)


def sys_rmdir(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD, path_addr, F.AT_REMOVEDIR)


def sys_renameat2(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                  new_addr: int, flags: int) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    dst = resolve_at(k, t, newdir, path_arg(t, new_addr), follow=False, must_exist=False)
    require_changeable(k, dst)
    src = _parent_writable(k, t, olddir, path_arg(t, old_addr))
    return host_op(os.rename, src.host, dst.host)


def sys_renameat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                 new_addr: int) -> int:
    return sys_renameat2(k, t, olddir, old_addr, newdir, new_addr, 0)


def sys_rename(k: Kernel, t: Task, old_addr: int, new_addr: int) -> int:
    cwd = F.AT_FDCWD
    return sys_renameat2(k, t, cwd, old_addr, cwd, new_addr, 0)


def sys_symlinkat(k: Kernel, t: Task, target_addr: int, dirfd: int, path_addr: int) -> int:
    target = path_arg(t, target_addr)
    node = resolve_at(k, t, dirfd, path_arg(t, path_addr), follow=False, must_exist=False)
    if node.exists:
        raise KernelError(E.EEXIST)
    require_changeable(k, node)
    return host_op(os.symlink, target, node.host)


def sys_symlink(k: Kernel, t: Task, target_addr: int, path_addr: int) -> int:
    return sys_symlinkat(k, t, target_addr, F.AT_FDCWD, path_addr)


def sys_linkat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int, new_addr: int,
               flags: int) -> int:
    src = resolve_at(k, t, olddir, path_arg(t, old_addr), follow=bool(flags & F.AT_SYMLINK_FOLLOW))
    dst = resolve_at(k, t, newdir, path_arg(t, new_addr), follow=False, must_exist=False)
    if dst.exists:
        raise KernelError(E.EEXIST)
    require_changeable(k, dst)
    if src.host is None:
        raise KernelError(E.EXDEV)  # a /proc file: another file system
    return host_op(os.link, src.host, dst.host)


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
    else:
        assert node.host is not None
        try:
            target = os.fsencode(os.readlink(node.host))
        except OSError as exc:
            raise KernelError(exc.errno or E.EINVAL) from None
    data = target[:i32(size)]
    t.mm.write(buf, data)
    return len(data)


def sys_readlink(k: Kernel, t: Task, path_addr: int, buf: int, size: int) -> int:
    return sys_readlinkat(k, t, F.AT_FDCWD, path_addr, buf, size)
