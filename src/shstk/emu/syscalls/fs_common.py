"""What the file system calls share: path arguments, the directory a relative path starts
from, the --rw check, descriptors opened for reading or writing, sleeping until a file is
ready.

The guest sees the host file system through the VFS (sysroot, read-only outside --rw
directories, synthetic /proc). Reads and writes go straight to host descriptors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import (
    OpenFile,
    SyntheticDir,
    WouldBlock,
)
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.kernel.vfs import Node

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


MAX_RW = 0x7FFFF000  # MAX_RW_COUNT


PATH_MAX = 4096


IOV_MAX = 1024


def path_arg(t: Task, addr: int) -> str:
    raw = t.mm.read_cstring(addr, PATH_MAX - 1)
    return os.fsdecode(raw)


def base_dir(k: Kernel, t: Task, dirfd: int, path: str) -> str:
    """The directory a relative path starts from (AT_FDCWD or a directory fd)."""
    if path.startswith("/"):
        return "/"
    dirfd = dirfd
    if dirfd == F.AT_FDCWD:
        return t.proc.fs.cwd
    f = t.proc.files.get(dirfd)
    if f.getdents() is None and not isinstance(f, SyntheticDir):
        raise KernelError(E.ENOTDIR)
    return f.path


def resolve_at(k: Kernel, t: Task, dirfd: int, path: str, *, follow: bool = True,
             must_exist: bool = True) -> Node:
    return k.vfs.resolve(base_dir(k, t, dirfd, path), path, follow=follow, task=t,
                         must_exist=must_exist)


def require_writable(k: Kernel, node: Node) -> None:
    if not k.vfs.may_write(node):
        raise KernelError(E.EROFS)


def require_changeable(k: Kernel, node: Node) -> None:
    """Changing a name or a file's attributes (unlink, rename, mkdir, chmod, chown...):
    only below --rw directories. The devices a guest may open for writing (/dev/null...)
    are the host's own: their names and modes are never the guest's to change."""
    if node.host is None:
        raise KernelError(E.EPERM)  # /proc: Linux's procfs refuses these too
    # the name itself is changed, not what a symlink there points to
    head, tail = os.path.split(node.host.rstrip("/") or "/")
    real = os.path.join(os.path.realpath(head), tail)
    if not any(real == d or real.startswith(d + "/") for d in k.vfs.rw_dirs):
        raise KernelError(E.EROFS)


def file_for_rw(t: Task, fd: int, write: bool) -> OpenFile:
    f = t.proc.files.get(fd)
    if f.flags & F.O_PATH:
        raise KernelError(E.EBADF)
    if (write and not f.writable) or (not write and not f.readable):
        raise KernelError(E.EBADF)
    return f


def blocking(t: Task, op: Callable[[], int]) -> int:
    """Run a file operation; if it would block, sleep until the file is ready."""
    try:
        return op()
    except WouldBlock as wb:
        raise Blocked(Wait(wb.ready, "io", host_fd=wb.host_fd, host_write=wb.write),
                      lambda: blocking(t, op)) from None


def user_buffer(t: Task, buf: int, count: int) -> int:
    """The part of an output buffer the kernel can fill: reading more would consume data
    (a pipe's, a file offset) that copy_to_user then fails to deliver."""
    if not count:
        return 0
    usable = t.mm.writable_prefix(buf, count)
    if usable == 0:
        raise KernelError(E.EFAULT)
    return usable


def host_op(fn: Callable[..., object], *args: object) -> int:
    try:
        fn(*args)
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    return 0
