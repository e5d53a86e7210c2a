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
    return dir_of_fd(k, t.proc.files.get(dirfd))


def dir_of_fd(k: Kernel, f: OpenFile) -> str:
    """The guest path of the directory an fd holds, now: the object it was opened on (a
    directory renamed since is followed), never the path it was opened by."""
    if isinstance(f, SyntheticDir):
        return f.path
    if not f.is_directory():
        raise KernelError(E.ENOTDIR)
    host_fd = f.host_fd()
    if host_fd < 0:
        return f.path
    where = k.vfs.current_guest_path(host_fd)
    if where is None:
        raise KernelError(E.ENOENT)  # removed, or not in the guest's tree
    return where


def resolve_at(k: Kernel, t: Task, dirfd: int, path: str, *, follow: bool = True,
             must_exist: bool = True) -> Node:
    return k.vfs.resolve(base_dir(k, t, dirfd, path), path, follow=follow, task=t,
                         must_exist=must_exist)


def require_writable(k: Kernel, node: Node) -> None:
    """The object may change (mnt_want_write on its mount), else EROFS."""
    if not k.vfs.may_write(node):
        raise KernelError(E.EROFS)


def require_attr_writable(k: Kernel, node: Node) -> None:
    """chmod, chown, utimes, truncate: the object's mount may change (else EROFS), and the
    object is one the host holds: a writable /proc file keeps its attributes (EPERM, as
    proc_setattr refuses)."""
    require_writable(k, node)
    if node.host is None:
        raise KernelError(E.EPERM)


def require_entry_writable(k: Kernel, node: Node) -> None:
    """The directory holding the name may change (create, unlink, rename), else EROFS."""
    if not k.vfs.writable_mount(k.vfs.entry_mount(node)):
        raise KernelError(E.EROFS)


def last_type(path: str) -> str:
    """namei's type of the last component: "norm", "dot", "dotdot" or "root"."""
    comps = [c for c in path.split("/") if c]
    if not comps:
        return "root" if path.startswith("/") else "norm"
    return {".": "dot", "..": "dotdot"}.get(comps[-1], "norm")


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
        raise Blocked(Wait(wb.ready, "io", host_fd=wb.host_fd, host_write=wb.write,
                           deadline=getattr(wb, "deadline", None)),
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
