"""Extended attributes: the guest's files have none and cannot get any (fs/xattr.c's
checks in its order: flags, name, size, then the path, then the mount).

getxattr of an existing file: ENODATA (no such attribute); listxattr: 0 (an empty list);
setxattr: EROFS on the read-only sysroot, else EOPNOTSUPP; removexattr: EROFS on the
sysroot, else ENODATA. A missing file is ENOENT, a bad descriptor EBADF, as always.
"""

from __future__ import annotations

import os
import stat as st
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.vfs import Node
from shstk.emu.syscalls.fs_common import path_arg, require_writable, resolve_at

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

XATTR_CREATE, XATTR_REPLACE = 1, 2
XATTR_NAME_MAX, XATTR_SIZE_MAX = 255, 65536


def _name(t: Task, addr: int) -> str:
    raw = t.mm.read_cstring(addr, XATTR_NAME_MAX + 1)
    if not raw or len(raw) > XATTR_NAME_MAX:
        raise KernelError(E.ERANGE)
    return raw.decode("utf-8", "surrogateescape")


def _path(k: Kernel, t: Task, addr: int, follow: bool) -> Node:
    return resolve_at(k, t, F.AT_FDCWD, path_arg(t, addr), follow=follow)


def _fd_node(k: Kernel, t: Task, fd: int) -> Node | None:
    f = t.proc.files.get(fd)
    if f.flags & F.O_PATH:
        raise KernelError(E.EBADF)
    try:
        return k.vfs.resolve("/", f.path, follow=False, task=t)
    except KernelError:
        return None  # a pipe, socket or deleted file: no mount to ask


def _set_checks(t: Task, name: int, size: int, flags: int) -> None:
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise KernelError(E.EINVAL)
    _name(t, name)
    if size > XATTR_SIZE_MAX:
        raise KernelError(E.E2BIG)


def _user_ns_denied(node: Node | None, name: str, write: bool) -> None:
    """xattr_permission: user.* attributes exist only on regular files and directories
    (EPERM to change, ENODATA to read on anything else)."""
    if node is None or node.host is None or not name.startswith("user."):
        return
    try:
        mode = os.lstat(node.host).st_mode
    except OSError:
        return
    if not (st.S_ISREG(mode) or st.S_ISDIR(mode)):
        raise KernelError(E.EPERM if write else E.ENODATA)


def _set(k: Kernel, t: Task, node: Node | None, name: int) -> int:
    if node is not None and node.host is not None:
        require_writable(k, node)
    _user_ns_denied(node, _name(t, name), True)
    raise KernelError(E.EOPNOTSUPP)


def _remove(k: Kernel, t: Task, node: Node | None, name: int) -> int:
    if node is not None and node.host is not None:
        require_writable(k, node)
    _user_ns_denied(node, _name(t, name), True)
    raise KernelError(E.ENODATA)


def sys_setxattr(k: Kernel, t: Task, path: int, name: int, value: int, size: int,
                 flags: int) -> int:
    _set_checks(t, name, size, flags)
    return _set(k, t, _path(k, t, path, True), name)


def sys_lsetxattr(k: Kernel, t: Task, path: int, name: int, value: int, size: int,
                  flags: int) -> int:
    _set_checks(t, name, size, flags)
    return _set(k, t, _path(k, t, path, False), name)


def sys_fsetxattr(k: Kernel, t: Task, fd: int, name: int, value: int, size: int,
                  flags: int) -> int:
    _set_checks(t, name, size, flags)
    return _set(k, t, _fd_node(k, t, fd), name)


def sys_getxattr(k: Kernel, t: Task, path: int, name: int, value: int, size: int) -> int:
    _name(t, name)
    _path(k, t, path, True)
    raise KernelError(E.ENODATA)


def sys_lgetxattr(k: Kernel, t: Task, path: int, name: int, value: int, size: int) -> int:
    _name(t, name)
    _path(k, t, path, False)
    raise KernelError(E.ENODATA)


def sys_fgetxattr(k: Kernel, t: Task, fd: int, name: int, value: int, size: int) -> int:
    _name(t, name)
    _fd_node(k, t, fd)
    raise KernelError(E.ENODATA)


def sys_listxattr(k: Kernel, t: Task, path: int, buf: int, size: int) -> int:
    _path(k, t, path, True)
    return 0


def sys_llistxattr(k: Kernel, t: Task, path: int, buf: int, size: int) -> int:
    _path(k, t, path, False)
    return 0


def sys_flistxattr(k: Kernel, t: Task, fd: int, buf: int, size: int) -> int:
    _fd_node(k, t, fd)
    return 0


def sys_removexattr(k: Kernel, t: Task, path: int, name: int) -> int:
    _name(t, name)
    return _remove(k, t, _path(k, t, path, True), name)


def sys_lremovexattr(k: Kernel, t: Task, path: int, name: int) -> int:
    _name(t, name)
    return _remove(k, t, _path(k, t, path, False), name)


def sys_fremovexattr(k: Kernel, t: Task, fd: int, name: int) -> int:
    _name(t, name)
    return _remove(k, t, _fd_node(k, t, fd), name)


# --- the *xattrat calls (Linux 6.13): a dirfd, AT_ flags, and struct xattr_args ------------
XATTR_ARGS_SIZE_VER0 = 16


def _at_node(k: Kernel, t: Task, dirfd: int, path_addr: int, at_flags: int) -> Node | None:
    if at_flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    path = path_arg(t, path_addr) if path_addr else ""
    if not path:
        if not at_flags & F.AT_EMPTY_PATH:
            raise KernelError(E.ENOENT)
        if dirfd == F.AT_FDCWD:
            return resolve_at(k, t, F.AT_FDCWD, ".", follow=True)
        return _fd_node(k, t, dirfd)
    return resolve_at(k, t, dirfd, path, follow=not at_flags & F.AT_SYMLINK_NOFOLLOW)


def _args(t: Task, uargs: int, usize: int) -> tuple[int, int, int]:
    if usize < XATTR_ARGS_SIZE_VER0:
        raise KernelError(E.EINVAL)
    if usize > 4096:
        raise KernelError(E.E2BIG)
    raw = t.mm.read(uargs, usize)
    if any(raw[XATTR_ARGS_SIZE_VER0:]):
        raise KernelError(E.E2BIG)
    value, size, flags = struct.unpack_from("<QII", raw)
    return value, size, flags


def sys_setxattrat(k: Kernel, t: Task, dirfd: int, path: int, at_flags: int, name: int,
                   uargs: int, usize: int) -> int:
    _value, size, flags = _args(t, uargs, usize)
    _set_checks(t, name, size, flags)
    return _set(k, t, _at_node(k, t, dirfd, path, at_flags), name)


def sys_getxattrat(k: Kernel, t: Task, dirfd: int, path: int, at_flags: int, name: int,
                   uargs: int, usize: int) -> int:
    _value, _size, flags = _args(t, uargs, usize)
    if flags:
        raise KernelError(E.EINVAL)
    _name(t, name)
    _at_node(k, t, dirfd, path, at_flags)
    raise KernelError(E.ENODATA)


def sys_listxattrat(k: Kernel, t: Task, dirfd: int, path: int, at_flags: int, buf: int,
                    size: int) -> int:
    _at_node(k, t, dirfd, path, at_flags)
    return 0


def sys_removexattrat(k: Kernel, t: Task, dirfd: int, path: int, at_flags: int,
                      name: int) -> int:
    _name(t, name)
    return _remove(k, t, _at_node(k, t, dirfd, path, at_flags), name)
