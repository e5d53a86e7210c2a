"""inotify: the system calls, and the description of a file-system change for its watches.

`before` runs ahead of a file-system call while some watch exists (dispatch's hook) and
notes what the call is about to change (the inode, its directory, whether it exists);
`after` turns that into events once the call succeeded, in the order Linux's fsnotify
hooks give them. Only changes made through this kernel are seen; a process killed by a
signal, or a file closed at exec (close-on-exec), gives no close event.
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel import inotify as IN
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import HostFile, OpenFile
from shstk.emu.kernel.inotify import Inotify
from shstk.emu.syscalls.fs_common import path_arg, resolve_at

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

Key = tuple[int, int]


# --- the calls ------------------------------------------------------------------------
def sys_inotify_init(k: Kernel, t: Task) -> int:
    return sys_inotify_init1(k, t, 0)


def sys_inotify_init1(k: Kernel, t: Task, flags: int) -> int:
    if flags & ~(F.O_CLOEXEC | F.O_NONBLOCK):
        raise KernelError(E.EINVAL)
    return t.proc.files.install(Inotify(k, flags & F.O_NONBLOCK),
                                cloexec=bool(flags & F.O_CLOEXEC))


def _instance(t: Task, fd: int) -> Inotify:
    f = t.proc.files.get(fd)
    if not isinstance(f, Inotify):
        raise KernelError(E.EINVAL)
    return f


def sys_inotify_add_watch(k: Kernel, t: Task, fd: int, path_addr: int, mask: int) -> int:
    if (mask & IN.IN_MASK_ADD) and (mask & IN.IN_MASK_CREATE):
        raise KernelError(E.EINVAL)
    if not mask & IN.IN_ALL_EVENTS:
        raise KernelError(E.EINVAL)
    ino = _instance(t, fd)
    path = path_arg(t, path_addr)
    node = resolve_at(k, t, F.AT_FDCWD, path, follow=not mask & IN.IN_DONT_FOLLOW)
    if node.host is None:
        raise KernelError(E.EACCES)  # the synthetic /proc: no inodes to watch
    try:
        s = os.stat(node.host, follow_symlinks=not mask & IN.IN_DONT_FOLLOW)
    except OSError as exc:
        raise KernelError(exc.errno or E.ENOENT) from None
    if mask & IN.IN_ONLYDIR and not st.S_ISDIR(s.st_mode):
        raise KernelError(E.ENOTDIR)
    if not os.access(node.host, os.R_OK, follow_symlinks=not mask & IN.IN_DONT_FOLLOW):
        raise KernelError(E.EACCES)
    return ino.add_watch((s.st_dev, s.st_ino), mask)


def sys_inotify_rm_watch(k: Kernel, t: Task, fd: int, wd: int) -> int:
    _instance(t, fd).rm_watch(wd)
    return 0


# --- describing changes ---------------------------------------------------------------
@dataclass
class Obj:
    """An inode a call touches: its key, its directory's key and its name there."""

    key: Key | None
    parent: Key | None
    name: str
    isdir: bool = False
    nlink: int = 0


@dataclass
class Pending:
    """What a file-system call is about to change (noted by `before`), turned into inotify
    events by `after` once the call succeeded."""

    kind: str
    objs: list[Obj] = field(default_factory=list)
    extra: int = 0
    file: OpenFile | None = None
    files: list[OpenFile] = field(default_factory=list)


def _key(path: str, follow: bool = False) -> tuple[Key, os.stat_result] | None:
    try:
        s = os.stat(path, follow_symlinks=follow)
    except (OSError, ValueError):
        return None
    return (s.st_dev, s.st_ino), s


def _obj_of_host(host: str, follow: bool = False) -> Obj:
    host = host.rstrip("/") or "/"
    ks = _key(host, follow)
    parent = _key(os.path.dirname(host) or "/", True)
    return Obj(ks[0] if ks else None, parent[0] if parent else None, os.path.basename(host),
               bool(ks and st.S_ISDIR(ks[1].st_mode)), ks[1].st_nlink if ks else 0)


def _obj_at(k: Kernel, t: Task, dirfd: int, addr: int, follow: bool) -> Obj | None:
    try:
        node = resolve_at(k, t, dirfd, path_arg(t, addr), follow=follow, must_exist=False)
    except KernelError:
        return None
    if node.host is None:
        return None
    return _obj_of_host(node.host, follow)


def _obj_of_file(f: OpenFile) -> Obj | None:
    if not isinstance(f, HostFile):
        return None
    try:
        s = os.fstat(f.fd)
    except OSError:
        return None
    parent = _key(os.path.dirname(f.host_path), True) if f.host_path else None
    return Obj((s.st_dev, s.st_ino), parent[0] if parent else None,
               os.path.basename(f.host_path) if f.host_path else "", st.S_ISDIR(s.st_mode),
               s.st_nlink)


_PATH_ATTR = {"chmod": (None, 0, True), "fchmodat": (0, 1, True), "fchmodat2": (0, 1, True),
              "chown": (None, 0, True), "lchown": (None, 0, False), "fchownat": (0, 1, True),
              "utimensat": (0, 1, True), "utimes": (None, 0, True),
              "truncate": (None, 0, True)}
_CREATE = {"mkdir": (None, 0), "mkdirat": (0, 1), "mknod": (None, 0), "mknodat": (0, 1),
           "symlink": (None, 1), "symlinkat": (1, 2)}
_FD_READ = ("read", "pread64", "readv", "preadv", "preadv2", "getdents64")
_FD_WRITE = ("write", "pwrite64", "writev", "pwritev", "pwritev2", "ftruncate", "fallocate")
_FD_ATTR = ("fchmod", "fchown")


def _dirfd(args: list[int], i: int | None) -> int:
    return F.AT_FDCWD if i is None else args[i]


def before(k: Kernel, t: Task, name: str, args: list[int]) -> Pending | None:
    """What a call is about to change, or None when it changes nothing watchable."""
    try:
        return _before(k, t, name, args)
    except (KernelError, OSError):
        return None


def _before(k: Kernel, t: Task, name: str, args: list[int]) -> Pending | None:
    if name in ("open", "openat", "creat"):
        i = 1 if name == "openat" else 0
        flags = F.O_CREAT | F.O_WRONLY | F.O_TRUNC if name == "creat" else args[i + 1]
        o = _obj_at(k, t, _dirfd(args, 0 if i else None), args[i],
                    not flags & F.O_NOFOLLOW)
        return Pending("open", [o] if o else [], extra=int(o is not None and o.key is None)
                       | (2 * bool(flags & F.O_TRUNC)))
    if name in ("exit_group", "dup2", "dup3", "close_range"):
        return _closing(k, t, name, args)
    if name in _FD_READ or name in _FD_WRITE or name in _FD_ATTR or name == "close":
        f = t.proc.files.get(args[0])
        if name == "close" and f.refs != 1:
            return None
        o = _obj_of_file(f)
        return Pending(name, [o], file=f) if o else None
    if name in _PATH_ATTR:
        d, p, follow = _PATH_ATTR[name]
        if name in ("fchownat", "utimensat"):
            follow = not args[-1] & F.AT_SYMLINK_NOFOLLOW
        o = _obj_at(k, t, _dirfd(args, d), args[p], follow)
        return Pending("truncate" if name == "truncate" else "attr", [o]) if o else None
    if name in _CREATE:
        d, p = _CREATE[name]
        o = _obj_at(k, t, _dirfd(args, d), args[p], False)
        return Pending("create", [o], extra=int(name.startswith("mkdir"))) if o else None
    if name in ("link", "linkat"):
        src = (_dirfd(args, 0), args[1], bool(args[4] & F.AT_SYMLINK_FOLLOW)) \
            if name == "linkat" else (F.AT_FDCWD, args[0], False)
        dst = (_dirfd(args, 2), args[3]) if name == "linkat" else (F.AT_FDCWD, args[1])
        a = _obj_at(k, t, *src)
        b = _obj_at(k, t, dst[0], dst[1], False)
        return Pending("link", [a, b]) if a and b else None
    if name in ("unlink", "rmdir", "unlinkat"):
        d = 0 if name == "unlinkat" else None
        o = _obj_at(k, t, _dirfd(args, d), args[1 if d == 0 else 0], False)
        return Pending("unlink", [o]) if o and o.key else None
    if name in ("rename", "renameat", "renameat2"):
        at = name != "rename"
        a = _obj_at(k, t, _dirfd(args, 0 if at else None), args[1 if at else 0], False)
        b = _obj_at(k, t, _dirfd(args, 2 if at else None), args[3 if at else 1], False)
        flags = args[4] if name == "renameat2" else 0
        return Pending("rename", [a, b], extra=flags) if a and b and a.key else None
    return None


def _closing(k: Kernel, t: Task, name: str, args: list[int]) -> Pending | None:
    """Descriptors a call closes besides close(2): the exiting process's last ones (the
    events are given now, as exit_group does not return), dup2's target, a range."""
    files = t.proc.files
    if name == "exit_group":
        if files.users == 1:
            for fd in sorted(files.fds):
                f = files.fds[fd].file
                o = _obj_of_file(f) if f.refs == 1 else None
                if o is not None:
                    _on(k, o, IN.IN_CLOSE_WRITE if f.writable else IN.IN_CLOSE_NOWRITE)
        return None
    if name in ("dup2", "dup3"):
        fds = [args[1]] if args[1] != args[0] else []
    elif args[2] & 4:  # CLOSE_RANGE_CLOEXEC closes nothing
        return None
    else:
        fds = [fd for fd in sorted(files.fds) if args[0] <= fd <= args[1]]
    p = Pending("closing")
    for fd in fds:
        entry = files.fds.get(fd)
        if entry is not None and entry.file.refs == 1:
            o = _obj_of_file(entry.file)
            if o is not None:
                p.objs.append(o)
                p.files.append(entry.file)
    return p if p.objs else None


def _after_closing(k: Kernel, t: Task, p: Pending, result: int) -> None:
    for o, f in zip(p.objs, p.files, strict=True):
        _on(k, o, IN.IN_CLOSE_WRITE if f.writable else IN.IN_CLOSE_NOWRITE)


def after(k: Kernel, t: Task, p: Pending, result: int) -> None:
    """The events of a call that returned `result` (nothing when it failed)."""
    if result < 0:
        return
    try:
        _AFTER[p.kind](k, t, p, result)
    except (KernelError, OSError):
        return


def _isdir(o: Obj) -> int:
    return IN.IN_ISDIR if o.isdir else 0


def _on(k: Kernel, o: Obj, mask: int) -> None:
    IN.emit(k, o.key, o.parent, o.name, mask | _isdir(o))


def _after_open(k: Kernel, t: Task, p: Pending, fd: int) -> None:
    f = t.proc.files.get(fd)
    o = _obj_of_file(f)
    if o is None:
        return
    if p.objs and p.extra & 1:
        IN.emit_dir(k, o.parent or (0, 0), o.name, IN.IN_CREATE | _isdir(o))
    elif p.extra & 2 and f.writable:
        _on(k, o, IN.IN_MODIFY)
    _on(k, o, IN.IN_OPEN)


def _after_fd(k: Kernel, t: Task, p: Pending, result: int) -> None:
    o, f = p.objs[0], p.file
    if p.kind == "close":
        _on(k, o, IN.IN_CLOSE_WRITE if f is not None and f.writable else IN.IN_CLOSE_NOWRITE)
    elif p.kind in _FD_ATTR:
        _on(k, o, IN.IN_ATTRIB)
    elif p.kind in ("ftruncate", "fallocate") or (p.kind in _FD_WRITE and result > 0):
        _on(k, o, IN.IN_MODIFY)
    elif p.kind == "getdents64" or result > 0:
        _on(k, o, IN.IN_ACCESS)


def _after_attr(k: Kernel, t: Task, p: Pending, result: int) -> None:
    _on(k, p.objs[0], IN.IN_MODIFY if p.kind == "truncate" else IN.IN_ATTRIB)


def _after_create(k: Kernel, t: Task, p: Pending, result: int) -> None:
    o = p.objs[0]
    if o.parent is not None:
        IN.emit_dir(k, o.parent, o.name, IN.IN_CREATE | (IN.IN_ISDIR if p.extra else 0))


def _after_link(k: Kernel, t: Task, p: Pending, result: int) -> None:
    src, dst = p.objs
    if src.key is not None:
        IN.emit_self(k, src.key, IN.IN_ATTRIB | _isdir(src))
    if dst.parent is not None:
        IN.emit_dir(k, dst.parent, dst.name, IN.IN_CREATE)


def _after_unlink(k: Kernel, t: Task, p: Pending, result: int) -> None:
    o = p.objs[0]
    assert o.key is not None
    if not o.isdir:
        IN.emit_self(k, o.key, IN.IN_ATTRIB)
    if o.isdir or o.nlink <= 1:  # d_delete drops the last dentry before it notifies
        IN.emit_self(k, o.key, IN.IN_DELETE_SELF | _isdir(o))
    if o.parent is not None:
        IN.emit_dir(k, o.parent, o.name, IN.IN_DELETE | _isdir(o))


def _after_rename(k: Kernel, t: Task, p: Pending, result: int) -> None:
    a, b = p.objs
    assert a.key is not None
    cookie = IN.next_cookie()
    if a.parent is not None:
        IN.emit_dir(k, a.parent, a.name, IN.IN_MOVED_FROM | _isdir(a), cookie)
    if b.parent is not None:
        IN.emit_dir(k, b.parent, b.name, IN.IN_MOVED_TO | _isdir(a), cookie)
    if b.key is not None and b.key != a.key:
        IN.emit_self(k, b.key, IN.IN_ATTRIB | _isdir(b))
    IN.emit_self(k, a.key, IN.IN_MOVE_SELF | _isdir(a))
    if b.key is not None and b.key != a.key and (b.isdir or b.nlink <= 1):
        IN.emit_self(k, b.key, IN.IN_DELETE_SELF | _isdir(b))


_AFTER: dict[str, Callable[[Kernel, Task, Pending, int], None]] = {
    "open": _after_open, "attr": _after_attr, "truncate": _after_attr,
    "create": _after_create, "link": _after_link, "unlink": _after_unlink,
    "rename": _after_rename, "closing": _after_closing,
    **dict.fromkeys((*_FD_READ, *_FD_WRITE, *_FD_ATTR, "close"), _after_fd)}
