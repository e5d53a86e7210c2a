"""Opening and closing: open/openat/creat, close/close_range, pipes, memfd_create."""

from __future__ import annotations

import fcntl
import functools
import os
import stat as st
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.devices import HOST_TTY, CappedFile, Device, DeviceFile
from shstk.emu.kernel.entry import Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.fifo import FifoRdwr, PendingEnd
from shstk.emu.kernel.files import HostFile, OpenFile, SyntheticDir, SyntheticFile
from shstk.emu.kernel.pipe import Pipe, PipeEnd
from shstk.emu.kernel.task import Wait
from shstk.emu.kernel.vfs import SHM_SIZE, Node
from shstk.emu.syscalls.fs_common import path_arg, require_writable, resolve_at

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def open_node(k: Kernel, t: Task, node: Node, flags: int, mode: int) -> OpenFile:
    acc = flags & F.O_ACCMODE
    writing = acc in (F.O_WRONLY, F.O_RDWR) or flags & F.O_TRUNC
    if node.device is not None:
        return _open_device(node.device, flags)
    if node.proc is not None:
        return _open_proc(k, t, node, flags, bool(writing))
    assert node.host is not None
    if not node.exists:
        if not flags & F.O_CREAT:
            raise KernelError(E.ENOENT)
        require_writable(k, node)
    elif flags & F.O_CREAT and flags & F.O_EXCL:
        raise KernelError(E.EEXIST)
    lst = node.lstat
    if node.exists and lst is not None:
        if st.S_ISLNK(lst.st_mode) and flags & F.O_NOFOLLOW and not flags & F.O_PATH:
            raise KernelError(E.ELOOP)
        if st.S_ISDIR(lst.st_mode) and (writing or (flags & F.O_CREAT and not node.exists)):
            raise KernelError(E.EISDIR)
        if flags & F.O_DIRECTORY and not st.S_ISDIR(lst.st_mode) and \
                not st.S_ISLNK(lst.st_mode):
            raise KernelError(E.ENOTDIR)
    if lst is not None and (st.S_ISCHR(lst.st_mode) or st.S_ISBLK(lst.st_mode)) and \
            not flags & F.O_PATH and lst.st_rdev not in own_terminals():
        # a host device: the sysroot is mounted nodev (a disk, /dev/mem, another user's
        # terminal are outside the machine); only shstk's own terminal is reachable
        raise KernelError(E.EACCES)
    if writing and not _terminal(node):
        require_writable(k, node)
    host_flags = os.O_CLOEXEC | (acc if not flags & F.O_PATH else 0)
    for g, h in ((F.O_CREAT, os.O_CREAT), (F.O_EXCL, os.O_EXCL), (F.O_TRUNC, os.O_TRUNC),
                 (F.O_APPEND, os.O_APPEND), (F.O_DIRECTORY, os.O_DIRECTORY),
                 (F.O_NOFOLLOW, os.O_NOFOLLOW), (F.O_PATH, os.O_PATH),
                 (F.O_NOCTTY, os.O_NOCTTY)):
        if flags & g:
            host_flags |= h
    if lst is not None and (st.S_ISFIFO(lst.st_mode) or st.S_ISCHR(lst.st_mode)):
        host_flags |= os.O_NONBLOCK  # never let the host block the whole emulator
    try:
        fd = os.open(node.host, host_flags, mode & ~t.proc.fs.umask & 0o7777)
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    status = flags & ~(F.O_CREAT | F.O_EXCL | F.O_TRUNC | F.O_NOCTTY | F.O_CLOEXEC)
    return _host_file(k, node.guest, status, fd, node.host)


def _host_file(k: Kernel, guest: str, status: int, fd: int, host: str) -> HostFile:
    """An open host object, told the mount it lies on (from the object, not a path)."""
    mount = k.vfs.object_mount(Node(guest, host, exists=True))
    f: HostFile
    if k.vfs.is_shm(mount):
        f = CappedFile(guest, status, fd, host, lambda: SHM_SIZE - k.vfs.shm_used())
    else:
        f = HostFile(guest, status, fd, host)
    f.mount = mount
    f.mount_rw = k.vfs.writable_mount(mount)
    return f


def _open_tmpfile(k: Kernel, t: Task, dirfd: int, path: str, flags: int, mode: int) -> int:
    """O_TMPFILE: an unnamed file in a directory (vfs_tmpfile: the mount is asked)."""
    acc = flags & F.O_ACCMODE
    if acc not in (F.O_WRONLY, F.O_RDWR):
        raise KernelError(E.EINVAL)
    node = resolve_at(k, t, dirfd, path)
    if node.host is None or node.lstat is None or not st.S_ISDIR(node.lstat.st_mode):
        raise KernelError(E.ENOTDIR if node.proc is None or node.proc.kind != "dir"
                          else E.EROFS)
    require_writable(k, node)
    host_flags = os.O_TMPFILE | acc | os.O_CLOEXEC | (os.O_EXCL if flags & F.O_EXCL else 0)
    try:
        fd = os.open(node.host, host_flags, mode & ~t.proc.fs.umask & 0o7777)
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    status = flags & ~(F.O_CREAT | F.O_EXCL | F.O_TRUNC | F.O_NOCTTY | F.O_CLOEXEC |
                       F.O_TMPFILE)
    f = _host_file(k, node.guest, status | acc, fd, node.host)
    f.path = f"{node.guest.rstrip('/')}/#{os.fstat(fd).st_ino} (deleted)"
    return t.proc.files.install(f, cloexec=bool(flags & F.O_CLOEXEC))


def _terminal(node: Node) -> bool:
    """shstk's own terminal: writing it changes no file."""
    return node.lstat is not None and st.S_ISCHR(node.lstat.st_mode) and \
        node.lstat.st_rdev in own_terminals()


@functools.cache
def own_terminals() -> frozenset[int]:
    """The device numbers of the terminals shstk itself was given (its stdio, its
    controlling terminal): the only host devices a guest may open by name."""
    rdevs = set()
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd):
                rdevs.add(os.fstat(fd).st_rdev)
        except OSError:
            pass
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return frozenset(rdevs)
    try:
        rdevs.add(os.fstat(fd).st_rdev)
    finally:
        os.close(fd)
    return frozenset(rdevs)


def _open_device(dev: Device, flags: int) -> OpenFile:
    if flags & F.O_DIRECTORY:
        raise KernelError(E.ENOTDIR)
    if flags & F.O_CREAT and flags & F.O_EXCL:
        raise KernelError(E.EEXIST)
    status = flags & ~(F.O_CREAT | F.O_EXCL | F.O_TRUNC | F.O_NOCTTY | F.O_CLOEXEC)
    if dev.name != HOST_TTY or flags & F.O_PATH:
        return DeviceFile(dev, status)
    acc = flags & F.O_ACCMODE
    try:  # the controlling terminal is shstk's own
        fd = os.open("/dev/tty", acc | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        raise KernelError(E.ENXIO) from None
    return HostFile("/dev/tty", status, fd, "")


def reopen(k: Kernel, obj: OpenFile, flags: int) -> OpenFile:
    """open("/proc/self/fd/N") of a pipe, socket or host stream: a new open file on the
    same object (fifo_open() for a pipe: no waiting for a partner)."""
    acc = flags & F.O_ACCMODE
    status = flags & ~(F.O_CREAT | F.O_EXCL | F.O_TRUNC | F.O_NOCTTY | F.O_CLOEXEC)
    if isinstance(obj, PipeEnd):
        if acc == F.O_RDWR:
            return FifoRdwr(obj.pipe, status)
        return PipeEnd(obj.pipe, status, write_end=acc == F.O_WRONLY)
    if isinstance(obj, DeviceFile):
        return DeviceFile(obj.device, status)
    if isinstance(obj, HostFile) and obj.fd >= 0:
        try:
            mode = os.fstat(obj.fd).st_mode
        except OSError:
            raise KernelError(E.ENXIO) from None
        host_flags = acc | os.O_NONBLOCK | os.O_CLOEXEC
        if obj.inherited and st.S_ISREG(mode):
            # a file the user redirected shstk's stdio to: open again with the access the
            # user gave (never more), without truncating it
            given = fcntl.fcntl(obj.fd, fcntl.F_GETFL) & os.O_ACCMODE
            if given != os.O_RDWR and acc != given:
                # more than the user gave: writing is refused as on a read-only mount
                raise KernelError(E.EROFS if acc != os.O_RDONLY else E.EACCES)
            host_flags |= flags & F.O_APPEND
        elif not (st.S_ISFIFO(mode) or st.S_ISCHR(mode)):
            raise KernelError(E.ENXIO)  # a socket, or a host file with no guest path
        try:
            fd = os.open(f"/proc/self/fd/{obj.fd}", host_flags)
        except OSError as exc:
            raise KernelError(exc.errno or E.ENXIO) from None
        return HostFile(obj.path, status, fd, "")
    raise KernelError(E.ENXIO)


def _open_proc(k: Kernel, t: Task, node: Node, flags: int, writing: bool) -> OpenFile:
    entry = node.proc
    assert entry is not None
    if entry.kind == "dir":
        if writing:
            raise KernelError(E.EISDIR)
        return SyntheticDir(node.guest, flags, entry.entries or [], entry.ino)
    if entry.kind == "link":
        if flags & F.O_PATH:
            return SyntheticFile(node.guest, flags, b"", entry.ino, st.S_IFLNK | 0o777)
        if isinstance(entry.obj, OpenFile):
            return reopen(k, entry.obj, flags)
        raise KernelError(E.ENXIO)
    if flags & F.O_DIRECTORY:
        raise KernelError(E.ENOTDIR)
    if entry.opener is not None:
        return entry.opener(flags)  # type: ignore[return-value]
    if writing and not entry.writable:
        raise KernelError(E.EACCES)
    content = entry.content() if entry.content else b""
    return SyntheticFile(node.guest, flags, content, entry.ino)


def sys_openat(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int, mode: int) -> int:
    return openat_path(k, t, dirfd, path_arg(t, path_addr), flags & 0xFFFFFFFF, mode)


def openat_path(k: Kernel, t: Task, dirfd: int, path: str, flags: int, mode: int) -> int:
    """openat with the path already read (openat2 resolves it first)."""
    if flags & F.O_TMPFILE == F.O_TMPFILE:
        return _open_tmpfile(k, t, dirfd, path, flags, mode)
    follow = not flags & F.O_NOFOLLOW or bool(flags & F.O_PATH)
    node = resolve_at(k, t, dirfd, path, follow=not flags & F.O_NOFOLLOW,
                    must_exist=not flags & F.O_CREAT)
    _ = follow
    if node.exists and node.lstat is not None and st.S_ISLNK(node.lstat.st_mode) and \
            flags & F.O_NOFOLLOW and not flags & F.O_PATH:
        raise KernelError(E.ELOOP)
    lst = node.lstat
    if node.exists and lst is not None and st.S_ISFIFO(lst.st_mode) and \
            not flags & F.O_PATH and node.host is not None:
        return _open_fifo(k, t, node, flags)
    f = open_node(k, t, node, flags, mode)
    return t.proc.files.install(f, cloexec=bool(flags & F.O_CLOEXEC))


def _open_fifo(k: Kernel, t: Task, node: Node, flags: int) -> int:
    """A named pipe: writing one changes no file, so a read-only mount allows it."""
    lst = node.lstat
    assert lst is not None
    if flags & F.O_CREAT and flags & F.O_EXCL:
        raise KernelError(E.EEXIST)
    status = flags & ~(F.O_CREAT | F.O_EXCL | F.O_TRUNC | F.O_NOCTTY | F.O_CLOEXEC)
    end, wait = k.vfs.fifos.open((lst.st_dev, lst.st_ino), node.guest, status)
    cloexec = bool(flags & F.O_CLOEXEC)
    if wait is None:
        return t.proc.files.install(end, cloexec=cloexec)
    pending = PendingEnd(end)
    del end  # only the sleep holds it: dropped unfinished, its count goes back
    raise Blocked(Wait(wait, "fifo"),
                  lambda: t.proc.files.install(pending.take(), cloexec=cloexec))


def sys_open(k: Kernel, t: Task, path_addr: int, flags: int, mode: int) -> int:
    return sys_openat(k, t, F.AT_FDCWD, path_addr, flags, mode)


def sys_creat(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_open(k, t, path_addr, F.O_CREAT | F.O_WRONLY | F.O_TRUNC, mode)


def sys_close(k: Kernel, t: Task, fd: int) -> int:
    t.proc.files.close(fd)
    return 0


def sys_close_range(k: Kernel, t: Task, first: int, last: int, flags: int) -> int:
    CLOSE_RANGE_CLOEXEC = 4
    if flags & ~(CLOSE_RANGE_CLOEXEC | 2) or first > last:
        raise KernelError(E.EINVAL)
    files = t.proc.files
    if flags & 2 and files.users > 1:  # CLOSE_RANGE_UNSHARE: a private copy first
        files.users -= 1
        files = t.proc.files = files.copy()
    for fd in [fd for fd in files.fds if first <= fd <= last]:
        if flags & CLOSE_RANGE_CLOEXEC:
            files.fds[fd].cloexec = True
        else:
            files.close(fd)
    return 0


def sys_pipe2(k: Kernel, t: Task, fds_addr: int, flags: int) -> int:
    if flags & ~(F.O_CLOEXEC | F.O_NONBLOCK | F.O_DIRECT):
        raise KernelError(E.EINVAL)
    pipe = Pipe()
    k.pipe_ino += 1
    pipe.ino = k.pipe_ino
    status = flags & F.O_NONBLOCK
    r = PipeEnd(pipe, F.O_RDONLY | status, write_end=False)
    w = PipeEnd(pipe, F.O_WRONLY | status, write_end=True)
    files = t.proc.files
    rfd = files.install(r, cloexec=bool(flags & F.O_CLOEXEC))
    wfd = files.install(w, cloexec=bool(flags & F.O_CLOEXEC))
    try:
        t.mm.write(fds_addr, struct.pack("<ii", rfd, wfd))
    except KernelError:
        files.close(rfd)
        files.close(wfd)
        raise
    return 0


def sys_pipe(k: Kernel, t: Task, fds_addr: int) -> int:
    return sys_pipe2(k, t, fds_addr, 0)


def sys_memfd_create(k: Kernel, t: Task, name_addr: int, flags: int) -> int:
    name = path_arg(t, name_addr)
    if flags & ~0x7 or len(name) > 249:
        raise KernelError(E.EINVAL)
    fd = os.memfd_create(f"shstk:{name}", os.MFD_CLOEXEC | (flags & os.MFD_ALLOW_SEALING))
    f = HostFile(f"/memfd:{name} (deleted)", F.O_RDWR, fd)
    f.mount_rw = True  # memfd lives on an internal tmpfs
    return t.proc.files.install(f, cloexec=bool(flags & 1))
