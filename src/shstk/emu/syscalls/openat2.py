"""openat2 (fs/open.c build_open_how/build_open_flags, fs/namei.c's scoped lookups).

The path is walked here one component at a time on the kernel's resolver (each prefix
resolved without following its last name), applying the RESOLVE_* restrictions; the
walk ends in an absolute guest path with every symlink already expanded, which openat
then opens.
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
from shstk.emu.syscalls.fs_common import base_dir, path_arg
from shstk.emu.syscalls.fs_open import openat_path

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
OPEN_HOW_SIZE_VER0 = 24
O_TMPFILE_BIT = 0o20000000
VALID_OPEN_FLAGS = (F.O_ACCMODE | F.O_CREAT | F.O_EXCL | F.O_NOCTTY | F.O_TRUNC | F.O_APPEND
                    | F.O_NONBLOCK | 0o10000 | 0o20000 | 0o40000 | 0o100000 | F.O_DIRECTORY
                    | F.O_NOFOLLOW | 0o1000000 | F.O_CLOEXEC | 0o4000000 | F.O_PATH
                    | O_TMPFILE_BIT)
MAXSYMLINKS = 40


def sys_openat2(k: Kernel, t: Task, dirfd: int, path_addr: int, how_addr: int,
                size: int) -> int:
    if size < OPEN_HOW_SIZE_VER0:
        raise KernelError(E.EINVAL)
    if size > 4096:
        raise KernelError(E.E2BIG)
    raw = t.mm.read(how_addr, size)
    if any(raw[OPEN_HOW_SIZE_VER0:]):
        raise KernelError(E.E2BIG)
    flags, mode, resolve = struct.unpack_from("<QQQ", raw)
    if flags & ~VALID_OPEN_FLAGS:
        raise KernelError(E.EINVAL)
    creating = flags & F.O_CREAT or flags & O_TMPFILE_BIT
    if creating:
        if mode & ~0o7777:
            raise KernelError(E.EINVAL)
    elif mode:
        raise KernelError(E.EINVAL)
    if flags & F.O_CREAT and flags & F.O_DIRECTORY:
        raise KernelError(E.EINVAL)
    if resolve & ~0x3F:
        raise KernelError(E.EINVAL)
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        raise KernelError(E.EINVAL)
    if resolve & RESOLVE_CACHED and flags & (F.O_CREAT | F.O_TRUNC | O_TMPFILE_BIT):
        raise KernelError(E.EAGAIN)  # "don't bother even trying" (build_open_flags)
    path = path_arg(t, path_addr)
    if resolve & ~RESOLVE_CACHED:
        follow = not flags & F.O_NOFOLLOW and not (flags & F.O_CREAT and flags & F.O_EXCL)
        path = _walk(k, t, dirfd, path, resolve, follow)
        dirfd = F.AT_FDCWD
    return openat_path(k, t, dirfd, path, flags, mode)


def _node(k: Kernel, t: Task, comps: list[str]) -> Node:
    return k.vfs.resolve("/", "/" + "/".join(comps), follow=False, task=t, must_exist=False)


def _magic(node: Node) -> bool:
    """A /proc link that jumps to an object (fd/N, exe, cwd, root), not a plain symlink
    like /proc/self."""
    return node.proc is not None and node.proc.kind == "link" and \
        node.guest.startswith("/proc/") and node.guest.count("/") >= 3


def _walk(k: Kernel, t: Task, dirfd: int, path: str, resolve: int, follow: bool) -> str:
    if path == "":
        raise KernelError(E.ENOENT)
    scoped = resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)
    start = base_dir(k, t, dirfd, "x")  # the dirfd's directory even for absolute paths
    root = [c for c in start.split("/") if c] if scoped else []
    if path.startswith("/"):
        if resolve & RESOLVE_BENEATH:
            raise KernelError(E.EXDEV)
        done = list(root)
    else:
        done = [c for c in start.split("/") if c]
    start_mount = k.vfs.object_mount(_node(k, t, done))
    todo = path.split("/")
    trailing = path.endswith("/")
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp in ("", "."):
            continue
        if comp == "..":
            if done == root and scoped:
                if resolve & RESOLVE_BENEATH:
                    raise KernelError(E.EXDEV)
                continue
            if done:
                done.pop()
            _xdev(k, t, done, resolve, start_mount)
            continue
        cand = [*done, comp]
        node = _node(k, t, cand)
        last = not any(c not in ("", ".") for c in todo)
        link_target = _link(node)
        if link_target is not None and (not last or follow or trailing):
            if resolve & RESOLVE_NO_SYMLINKS:
                raise KernelError(E.ELOOP)
            if _magic(node):
                if resolve & RESOLVE_NO_MAGICLINKS:
                    raise KernelError(E.ELOOP)
                if scoped or resolve & RESOLVE_NO_XDEV:
                    raise KernelError(E.EXDEV)
            links += 1
            if links > MAXSYMLINKS:
                raise KernelError(E.ELOOP)
            if link_target.startswith("/"):
                if resolve & RESOLVE_BENEATH:
                    raise KernelError(E.EXDEV)
                done = list(root)
            todo = [*link_target.split("/"), *todo]
            continue
        done = cand
        if node.exists:
            _xdev(k, t, done, resolve, start_mount)
    return "/" + "/".join(done) + ("/" if trailing and done else "")


def _xdev(k: Kernel, t: Task, done: list[str], resolve: int, start_mount: str) -> None:
    if resolve & RESOLVE_NO_XDEV and k.vfs.object_mount(_node(k, t, done)) != start_mount:
        raise KernelError(E.EXDEV)


def _link(node: Node) -> str | None:
    """The target if `node` is a symlink (a host one or a /proc one), else None."""
    if node.proc is not None and node.proc.kind == "link":
        return node.proc.target
    if node.host is not None and node.exists and node.lstat is not None \
            and st.S_ISLNK(node.lstat.st_mode):
        try:
            return os.readlink(node.host)
        except OSError:
            return None
    return None
