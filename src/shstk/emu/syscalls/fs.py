"""File system calls: open/read/write/stat and friends, directories, pipes, polling.

The guest sees the host file system through the VFS (sysroot, read-only outside --rw
directories, synthetic /proc). Reads and writes go straight to host descriptors.
"""

from __future__ import annotations

import os
import stat as st
import struct
import time
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import (
    FdTable,
    HostFile,
    OpenFile,
    Pipe,
    PipeEnd,
    StatResult,
    SyntheticDir,
    SyntheticFile,
    WouldBlock,
)
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.kernel.vfs import Node
from shstk.emu.syscalls.util import i32, i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

MAX_RW = 0x7FFFF000  # MAX_RW_COUNT
PATH_MAX = 4096
IOV_MAX = 1024


# --- helpers --------------------------------------------------------------------------

def _path(t: Task, addr: int) -> str:
    raw = t.mm.read_cstring(addr, PATH_MAX - 1)
    return os.fsdecode(raw)


def _base_dir(k: Kernel, t: Task, dirfd: int, path: str) -> str:
    """The directory a relative path starts from (AT_FDCWD or a directory fd)."""
    if path.startswith("/"):
        return "/"
    dirfd = i32(dirfd)
    if dirfd == F.AT_FDCWD:
        return t.proc.fs.cwd
    f = t.proc.files.get(dirfd)
    if f.getdents() is None and not isinstance(f, SyntheticDir):
        raise KernelError(E.ENOTDIR)
    return f.path


def _resolve(k: Kernel, t: Task, dirfd: int, path: str, *, follow: bool = True,
             must_exist: bool = True) -> Node:
    return k.vfs.resolve(_base_dir(k, t, dirfd, path), path, follow=follow, task=t,
                         must_exist=must_exist)


def _rw_check(k: Kernel, node: Node) -> None:
    if not k.vfs.may_write(node):
        raise KernelError(E.EROFS)


def _file_for_rw(t: Task, fd: int, write: bool) -> OpenFile:
    f = t.proc.files.get(i32(fd))
    if f.flags & F.O_PATH:
        raise KernelError(E.EBADF)
    if (write and not f.writable) or (not write and not f.readable):
        raise KernelError(E.EBADF)
    return f


def _blocking(t: Task, op: callable) -> int:  # type: ignore[valid-type]
    """Run a file operation; if it would block, sleep until the file is ready."""
    try:
        return op()
    except WouldBlock as wb:
        raise Blocked(Wait(wb.ready, "io", host_fd=wb.host_fd, host_write=wb.write),
                      lambda: _blocking(t, op)) from None


# --- open / close -----------------------------------------------------------------------

def open_node(k: Kernel, t: Task, node: Node, flags: int, mode: int) -> OpenFile:
    acc = flags & F.O_ACCMODE
    writing = acc in (F.O_WRONLY, F.O_RDWR) or flags & F.O_TRUNC
    if node.proc is not None:
        return _open_proc(k, t, node, flags, bool(writing))
    assert node.host is not None
    if not node.exists:
        if not flags & F.O_CREAT:
            raise KernelError(E.ENOENT)
        _rw_check(k, node)
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
    if writing:
        _rw_check(k, node)
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
    return HostFile(node.guest, status, fd, node.host)


def _open_proc(k: Kernel, t: Task, node: Node, flags: int, writing: bool) -> OpenFile:
    entry = node.proc
    assert entry is not None
    if entry.kind == "dir":
        if writing:
            raise KernelError(E.EISDIR)
        entries = entry.entries() if entry.entries else []
        return SyntheticDir(node.guest, flags, entries, entry.ino)
    if entry.kind == "link":
        if flags & F.O_PATH:
            return SyntheticFile(node.guest, flags, b"", entry.ino, st.S_IFLNK | 0o777)
        raise KernelError(E.ENXIO)  # an fd link to a pipe or socket
    if flags & F.O_DIRECTORY:
        raise KernelError(E.ENOTDIR)
    if entry.opener is not None:
        return entry.opener(flags)  # type: ignore[return-value]
    if writing and not entry.writable:
        raise KernelError(E.EACCES)
    content = entry.content() if entry.content else b""
    return SyntheticFile(node.guest, flags, content, entry.ino)


def sys_openat(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int, mode: int) -> int:
    flags &= 0xFFFFFFFF
    path = _path(t, path_addr)
    if flags & F.O_TMPFILE == F.O_TMPFILE:
        raise KernelError(E.EOPNOTSUPP)
    follow = not flags & F.O_NOFOLLOW or bool(flags & F.O_PATH)
    node = _resolve(k, t, dirfd, path, follow=not flags & F.O_NOFOLLOW,
                    must_exist=not flags & F.O_CREAT)
    _ = follow
    if node.exists and node.lstat is not None and st.S_ISLNK(node.lstat.st_mode) and \
            flags & F.O_NOFOLLOW and not flags & F.O_PATH:
        raise KernelError(E.ELOOP)
    f = open_node(k, t, node, flags, mode)
    return t.proc.files.install(f, cloexec=bool(flags & F.O_CLOEXEC))


def sys_open(k: Kernel, t: Task, path_addr: int, flags: int, mode: int) -> int:
    return sys_openat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, flags, mode)


def sys_creat(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_open(k, t, path_addr, F.O_CREAT | F.O_WRONLY | F.O_TRUNC, mode)


def sys_close(k: Kernel, t: Task, fd: int) -> int:
    t.proc.files.close(i32(fd))
    return 0


def sys_close_range(k: Kernel, t: Task, first: int, last: int, flags: int) -> int:
    CLOSE_RANGE_CLOEXEC = 4
    if flags & ~(CLOSE_RANGE_CLOEXEC | 2) or first > last:
        raise KernelError(E.EINVAL)
    files = t.proc.files
    for fd in [fd for fd in files.fds if first <= fd <= last]:
        if flags & CLOSE_RANGE_CLOEXEC:
            files.fds[fd].cloexec = True
        else:
            files.close(fd)
    return 0


# --- read / write ---------------------------------------------------------------------------

def _user_buffer(t: Task, buf: int, count: int) -> int:
    """The part of an output buffer the kernel can fill: reading more would consume data
    (a pipe's, a file offset) that copy_to_user then fails to deliver."""
    if not count:
        return 0
    usable = t.mm.writable_prefix(buf, count)
    if usable == 0:
        raise KernelError(E.EFAULT)
    return usable


def sys_read(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = _file_for_rw(t, fd, False)
    if i64(count) < 0:
        raise KernelError(E.EINVAL)
    count = _user_buffer(t, buf, min(count, MAX_RW))

    def op() -> int:
        data = f.read(count)
        t.mm.write(buf, data)
        return len(data)

    return _blocking(t, op)


def sys_write(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = _file_for_rw(t, fd, True)
    count = min(count, MAX_RW)
    data = t.mm.read(buf, count)
    return _blocking(t, lambda: _write_all(k, t, f, data))


def _write_all(k: Kernel, t: Task, f: OpenFile, data: bytes) -> int:
    try:
        return f.write(data)
    except KernelError as exc:
        if exc.errno == E.EPIPE:
            from shstk.abi import signals as S
            from shstk.emu.kernel.signal import SigInfo

            k.signals.send_thread(t, SigInfo(S.SIGPIPE, S.SI_USER, pid=t.pid))
        raise


def sys_pread64(k: Kernel, t: Task, fd: int, buf: int, count: int, offset: int) -> int:
    f = _file_for_rw(t, fd, False)
    if i64(offset) < 0:
        raise KernelError(E.EINVAL)
    data = f.pread(_user_buffer(t, buf, min(count, MAX_RW)), offset)
    t.mm.write(buf, data)
    return len(data)


def sys_pwrite64(k: Kernel, t: Task, fd: int, buf: int, count: int, offset: int) -> int:
    f = _file_for_rw(t, fd, True)
    if i64(offset) < 0:
        raise KernelError(E.EINVAL)
    return f.pwrite(t.mm.read(buf, min(count, MAX_RW)), offset)


def _iovecs(t: Task, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    iovcnt = i32(iovcnt)
    if iovcnt < 0 or iovcnt > IOV_MAX:
        raise KernelError(E.EINVAL)
    raw = t.mm.read(iov, 16 * iovcnt)
    vecs = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(iovcnt)]
    total = 0
    for _base, n in vecs:
        if i64(n) < 0:
            raise KernelError(E.EINVAL)
        total += n
    if total > 1 << 63:
        raise KernelError(E.EINVAL)
    return vecs


def sys_readv(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int) -> int:
    f = _file_for_rw(t, fd, False)
    vecs = _usable_iovecs(t, _iovecs(t, iov, iovcnt))
    total = sum(n for _b, n in vecs)

    def op() -> int:
        data = f.read(min(total, MAX_RW))
        _scatter(t, vecs, data)
        return len(data)

    return _blocking(t, op)


def _usable_iovecs(t: Task, vecs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The iovecs as far as they can be filled (EFAULT when not even the first)."""
    out = []
    for base, n in vecs:
        if not n:
            continue
        usable = t.mm.writable_prefix(base, n)
        if usable:
            out.append((base, usable))
        if usable < n:
            break
    if not out and any(n for _b, n in vecs):
        raise KernelError(E.EFAULT)
    return out


def _scatter(t: Task, vecs: list[tuple[int, int]], data: bytes) -> None:
    pos = 0
    for base, n in vecs:
        if pos >= len(data):
            break
        chunk = data[pos:pos + n]
        t.mm.write(base, chunk)
        pos += len(chunk)


def sys_writev(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int) -> int:
    f = _file_for_rw(t, fd, True)
    vecs = _iovecs(t, iov, iovcnt)
    data = b"".join(t.mm.read(base, n) for base, n in vecs if n)
    return _blocking(t, lambda: _write_all(k, t, f, data[:MAX_RW]))


def sys_preadv(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, off_lo: int,
               off_hi: int = 0) -> int:
    f = _file_for_rw(t, fd, False)
    vecs = _iovecs(t, iov, iovcnt)
    data = f.pread(sum(n for _b, n in vecs), off_lo)
    _scatter(t, vecs, data)
    return len(data)


def sys_pwritev(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, off_lo: int,
                off_hi: int = 0) -> int:
    f = _file_for_rw(t, fd, True)
    vecs = _iovecs(t, iov, iovcnt)
    return f.pwrite(b"".join(t.mm.read(b, n) for b, n in vecs if n), off_lo)


def sys_lseek(k: Kernel, t: Task, fd: int, offset: int, whence: int) -> int:
    f = t.proc.files.get(i32(fd))
    if whence > F.SEEK_HOLE:
        raise KernelError(E.EINVAL)
    return f.lseek(i64(offset), whence)


def _read_from(t: Task, f: OpenFile, count: int, offset_ptr: int) -> bytes:
    """Read at *offset_ptr (then advance it), or at the file offset when it is NULL."""
    if not offset_ptr:
        return f.read(count)
    off = t.mm.read_u64(offset_ptr)
    data = f.pread(count, off)
    t.mm.write_u64(offset_ptr, off + len(data))
    return data


def sys_sendfile(k: Kernel, t: Task, out_fd: int, in_fd: int, offset_ptr: int,
                 count: int) -> int:
    fin = _file_for_rw(t, in_fd, False)
    fout = _file_for_rw(t, out_fd, True)
    data = _read_from(t, fin, min(count, MAX_RW), offset_ptr)
    return fout.write(data) if data else 0


def sys_copy_file_range(k: Kernel, t: Task, fd_in: int, off_in: int, fd_out: int,
                        off_out: int, length: int, flags: int) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    fin = _file_for_rw(t, fd_in, False)
    fout = _file_for_rw(t, fd_out, True)
    data = _read_from(t, fin, min(length, MAX_RW), off_in)
    if not data:
        return 0
    if off_out:
        o = t.mm.read_u64(off_out)
        n = fout.pwrite(data, o)
        t.mm.write_u64(off_out, o + n)
        return n
    return fout.write(data)


# --- stat -------------------------------------------------------------------------------

def _stat_node(node: Node, follow: bool) -> StatResult:
    if node.proc is not None:
        e = node.proc
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
    t.mm.write(buf, pack_stat(_fstat_file(t.proc.files.get(i32(fd)))))
    return 0


def _stat_at(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> StatResult:
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_NO_AUTOMOUNT | F.AT_EMPTY_PATH |
                 F.AT_STATX_SYNC_TYPE):
        raise KernelError(E.EINVAL)
    path = _path(t, path_addr) if path_addr or not flags & F.AT_EMPTY_PATH else ""
    if path == "" and flags & F.AT_EMPTY_PATH:
        if i32(dirfd) == F.AT_FDCWD:
            return _stat_node(k.vfs.resolve("/", t.proc.fs.cwd, task=t), True)
        return _fstat_file(t.proc.files.get(i32(dirfd)))
    follow = not flags & F.AT_SYMLINK_NOFOLLOW
    node = _resolve(k, t, dirfd, path, follow=follow)
    return _stat_node(node, follow)


def sys_newfstatat(k: Kernel, t: Task, dirfd: int, path_addr: int, buf: int,
                   flags: int) -> int:
    t.mm.write(buf, pack_stat(_stat_at(k, t, dirfd, path_addr, i32(flags))))
    return 0


def sys_stat(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    return sys_newfstatat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, buf, 0)


def sys_lstat(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    return sys_newfstatat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, buf,
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
                   flags: int = 0) -> int:
    mode &= 0xFFFFFFFF
    if mode & ~7:
        raise KernelError(E.EINVAL)
    flags = i32(flags)
    if flags & ~(F.AT_SYMLINK_NOFOLLOW | F.AT_EACCESS | F.AT_EMPTY_PATH):
        raise KernelError(E.EINVAL)
    path = _path(t, path_addr)
    node = _resolve(k, t, dirfd, path, follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    if node.proc is not None:
        if mode & F.W_OK and not node.proc.writable:
            raise KernelError(E.EACCES)
        return 0
    if mode & F.W_OK:
        _rw_check(k, node)
    host_mode = (os.R_OK if mode & F.R_OK else 0) | (os.W_OK if mode & F.W_OK else 0) | \
        (os.X_OK if mode & F.X_OK else 0)
    assert node.host is not None
    if not os.access(node.host, host_mode or os.F_OK):
        raise KernelError(E.EACCES)
    return 0


def sys_faccessat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    return sys_faccessat2(k, t, dirfd, path_addr, mode, 0)


def sys_access(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_faccessat2(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, mode, 0)


def sys_readlinkat(k: Kernel, t: Task, dirfd: int, path_addr: int, buf: int,
                   size: int) -> int:
    if i32(size) <= 0:
        raise KernelError(E.EINVAL)
    path = _path(t, path_addr)
    node = _resolve(k, t, dirfd, path, follow=False)
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
    return sys_readlinkat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, buf, size)


def sys_getcwd(k: Kernel, t: Task, buf: int, size: int) -> int:
    cwd = t.proc.fs.cwd.encode() + b"\0"
    if size < len(cwd):
        raise KernelError(E.ERANGE)
    t.mm.write(buf, cwd)
    return len(cwd)


def sys_chdir(k: Kernel, t: Task, path_addr: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, _path(t, path_addr), task=t)
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
    f = t.proc.files.get(i32(fd))
    if f.getdents() is None:
        raise KernelError(E.ENOTDIR)
    t.proc.fs.cwd = f.path
    return 0


def sys_getdents64(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = t.proc.files.get(i32(fd))
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


# --- descriptors --------------------------------------------------------------------------

def sys_dup(k: Kernel, t: Task, fd: int) -> int:
    files = t.proc.files
    return files.install(files.get(i32(fd)))


def sys_dup3(k: Kernel, t: Task, old: int, new: int, flags: int) -> int:
    files = t.proc.files
    old, new = i32(old), i32(new)
    if flags & ~F.O_CLOEXEC or old == new:
        raise KernelError(E.EINVAL)
    f = files.get(old)
    if new < 0 or new >= files.limit:
        raise KernelError(E.EBADF)
    return files.install(f, at=new, cloexec=bool(flags & F.O_CLOEXEC))


def sys_dup2(k: Kernel, t: Task, old: int, new: int) -> int:
    files = t.proc.files
    if i32(old) == i32(new):
        files.get(i32(old))
        return i32(new)
    return sys_dup3(k, t, old, new, 0)


def sys_fcntl(k: Kernel, t: Task, fd: int, cmd: int, arg: int) -> int:
    files = t.proc.files
    fd, cmd = i32(fd), i32(cmd)
    entry = files.entry(fd)
    f = entry.file
    if cmd in (F.F_DUPFD, F.F_DUPFD_CLOEXEC):
        if i32(arg) < 0 or i32(arg) >= files.limit:
            raise KernelError(E.EINVAL)
        return files.install(f, minimum=i32(arg), cloexec=cmd == F.F_DUPFD_CLOEXEC)
    if cmd == F.F_GETFD:
        return F.FD_CLOEXEC if entry.cloexec else 0
    if cmd == F.F_SETFD:
        entry.cloexec = bool(arg & F.FD_CLOEXEC)
        return 0
    if cmd == F.F_GETFL:
        return f.flags | (F.O_LARGEFILE if f.kind == "host" else 0)
    if cmd == F.F_SETFL:
        settable = F.O_APPEND | F.O_NONBLOCK | F.O_ASYNC | F.O_DIRECT | F.O_NOATIME
        f.flags = (f.flags & ~settable) | (arg & settable)
        return 0
    if cmd in (F.F_GETLK, F.F_OFD_GETLK):
        # nobody else holds locks in this machine: report F_UNLCK
        t.mm.write(arg, struct.pack("<h", 2))
        return 0
    if cmd in (F.F_SETLK, F.F_SETLKW, F.F_OFD_SETLK, F.F_OFD_SETLKW):
        t.mm.read(arg, 32)
        return 0
    if cmd in (F.F_GETPIPE_SZ, F.F_SETPIPE_SZ):
        if not isinstance(f, PipeEnd):
            raise KernelError(E.EBADF)
        if cmd == F.F_SETPIPE_SZ:
            f.pipe.capacity = max(4096, 1 << (max(arg, 1) - 1).bit_length())
        return f.pipe.capacity
    if cmd in (F.F_GETOWN, F.F_SETOWN, F.F_SETSIG, F.F_GETSIG):
        return 0
    if cmd in (F.F_ADD_SEALS, F.F_GET_SEALS):
        raise KernelError(E.EINVAL)
    raise KernelError(E.EINVAL)


def sys_ioctl(k: Kernel, t: Task, fd: int, request: int, arg: int) -> int:
    f = t.proc.files.get(i32(fd))
    request &= 0xFFFFFFFF
    if request == F.FIOCLEX or request == F.FIONCLEX:
        t.proc.files.entry(i32(fd)).cloexec = request == F.FIOCLEX
        return 0
    if request == F.FIONBIO:
        on = t.mm.read_u32(arg)
        f.flags = (f.flags | F.O_NONBLOCK) if on else (f.flags & ~F.O_NONBLOCK)
        return 0
    result, out = f.ioctl(request, arg)
    if out is not None:
        t.mm.write(arg, out)
    return result


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


# --- directories and names (writes need --rw) -----------------------------------------------

def _host_op(fn: callable, *args: object) -> int:  # type: ignore[valid-type]
    try:
        fn(*args)
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    return 0


def sys_mkdirat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int) -> int:
    node = _resolve(k, t, dirfd, _path(t, path_addr), follow=False, must_exist=False)
    if node.exists:
        raise KernelError(E.EEXIST)
    _rw_check(k, node)
    return _host_op(os.mkdir, node.host, mode & ~t.proc.fs.umask & 0o7777)


def sys_mkdir(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_mkdirat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, mode)


def _parent_writable(k: Kernel, t: Task, dirfd: int, path: str) -> Node:
    """mnt_want_write() comes before the last component is looked up: on a read-only
    file system unlink and rename fail with EROFS even for a name that does not exist."""
    node = _resolve(k, t, dirfd, path, follow=False, must_exist=False)
    _rw_check(k, node)
    if not node.exists:
        raise KernelError(E.ENOENT)
    return node


def sys_unlinkat(k: Kernel, t: Task, dirfd: int, path_addr: int, flags: int) -> int:
    if flags & ~F.AT_REMOVEDIR:
        raise KernelError(E.EINVAL)
    node = _parent_writable(k, t, dirfd, _path(t, path_addr))
    return _host_op(os.rmdir if flags & F.AT_REMOVEDIR else os.unlink, node.host)


def sys_unlink(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, 0)


def sys_rmdir(k: Kernel, t: Task, path_addr: int) -> int:
    return sys_unlinkat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, F.AT_REMOVEDIR)


def sys_renameat2(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                  new_addr: int, flags: int = 0) -> int:
    if flags:
        raise KernelError(E.EINVAL)
    dst = _resolve(k, t, newdir, _path(t, new_addr), follow=False, must_exist=False)
    _rw_check(k, dst)
    src = _parent_writable(k, t, olddir, _path(t, old_addr))
    return _host_op(os.rename, src.host, dst.host)


def sys_renameat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int,
                 new_addr: int) -> int:
    return sys_renameat2(k, t, olddir, old_addr, newdir, new_addr, 0)


def sys_rename(k: Kernel, t: Task, old_addr: int, new_addr: int) -> int:
    cwd = F.AT_FDCWD & ((1 << 64) - 1)
    return sys_renameat2(k, t, cwd, old_addr, cwd, new_addr, 0)


def sys_symlinkat(k: Kernel, t: Task, target_addr: int, dirfd: int, path_addr: int) -> int:
    target = _path(t, target_addr)
    node = _resolve(k, t, dirfd, _path(t, path_addr), follow=False, must_exist=False)
    if node.exists:
        raise KernelError(E.EEXIST)
    _rw_check(k, node)
    return _host_op(os.symlink, target, node.host)


def sys_symlink(k: Kernel, t: Task, target_addr: int, path_addr: int) -> int:
    return sys_symlinkat(k, t, target_addr, F.AT_FDCWD & ((1 << 64) - 1), path_addr)


def sys_linkat(k: Kernel, t: Task, olddir: int, old_addr: int, newdir: int, new_addr: int,
               flags: int) -> int:
    src = _resolve(k, t, olddir, _path(t, old_addr), follow=bool(flags & F.AT_SYMLINK_FOLLOW))
    dst = _resolve(k, t, newdir, _path(t, new_addr), follow=False, must_exist=False)
    if dst.exists:
        raise KernelError(E.EEXIST)
    _rw_check(k, dst)
    return _host_op(os.link, src.host, dst.host)


def sys_link(k: Kernel, t: Task, old_addr: int, new_addr: int) -> int:
    cwd = F.AT_FDCWD & ((1 << 64) - 1)
    return sys_linkat(k, t, cwd, old_addr, cwd, new_addr, 0)


def sys_fchmodat(k: Kernel, t: Task, dirfd: int, path_addr: int, mode: int,
                 flags: int = 0) -> int:
    node = _resolve(k, t, dirfd, _path(t, path_addr))
    _rw_check(k, node)
    return _host_op(os.chmod, node.host, mode & 0o7777)


def sys_chmod(k: Kernel, t: Task, path_addr: int, mode: int) -> int:
    return sys_fchmodat(k, t, F.AT_FDCWD & ((1 << 64) - 1), path_addr, mode)


def sys_fchmod(k: Kernel, t: Task, fd: int, mode: int) -> int:
    f = t.proc.files.get(i32(fd))
    if not isinstance(f, HostFile) or not k.vfs.may_write(Node(f.path, f.host_path)):
        raise KernelError(E.EROFS)
    return _host_op(os.fchmod, f.fd, mode & 0o7777)


def sys_fchownat(k: Kernel, t: Task, dirfd: int, path_addr: int, uid: int, gid: int,
                 flags: int) -> int:
    node = _resolve(k, t, dirfd, _path(t, path_addr),
                    follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    _rw_check(k, node)
    return _host_op(os.chown, node.host, i32(uid), i32(gid))


def sys_fchown(k: Kernel, t: Task, fd: int, uid: int, gid: int) -> int:
    f = t.proc.files.get(i32(fd))
    if not isinstance(f, HostFile) or not k.vfs.may_write(Node(f.path, f.host_path)):
        raise KernelError(E.EROFS)
    return _host_op(os.fchown, f.fd, i32(uid), i32(gid))


def sys_utimensat(k: Kernel, t: Task, dirfd: int, path_addr: int, times: int,
                  flags: int) -> int:
    if path_addr == 0:
        f = t.proc.files.get(i32(dirfd))
        node = Node(f.path, getattr(f, "host_path", None))
    else:
        node = _resolve(k, t, dirfd, _path(t, path_addr),
                        follow=not flags & F.AT_SYMLINK_NOFOLLOW)
    _rw_check(k, node)
    if times:
        a_s, a_ns, m_s, m_ns = struct.unpack("<qqqq", t.mm.read(times, 32))
        now = time.time_ns()
        UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
        st_ = os.stat(node.host) if node.host else None
        atime = now if a_ns == UTIME_NOW else (st_.st_atime_ns if a_ns == UTIME_OMIT and st_
                                                else a_s * 10**9 + a_ns)
        mtime = now if m_ns == UTIME_NOW else (st_.st_mtime_ns if m_ns == UTIME_OMIT and st_
                                                else m_s * 10**9 + m_ns)
        return _host_op(lambda: os.utime(node.host, ns=(atime, mtime)))
    return _host_op(lambda: os.utime(node.host))


def sys_truncate(k: Kernel, t: Task, path_addr: int, length: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, _path(t, path_addr), task=t)
    _rw_check(k, node)
    return _host_op(os.truncate, node.host, i64(length))


def sys_ftruncate(k: Kernel, t: Task, fd: int, length: int) -> int:
    f = t.proc.files.get(i32(fd))
    if i64(length) < 0:
        raise KernelError(E.EINVAL)
    f.truncate(i64(length))
    return 0


def sys_fsync(k: Kernel, t: Task, fd: int) -> int:
    t.proc.files.get(i32(fd))
    return 0


def sys_umask(k: Kernel, t: Task, mask: int) -> int:
    old = t.proc.fs.umask
    t.proc.fs.umask = mask & 0o777
    return old


def _statfs_bytes(host: str | None) -> bytes:
    if host is None:
        return struct.pack("<qqqqqqqiiqqqqqq", 0x9FA0, 4096, 0, 0, 0, 0, 0, 0, 0, 255, 4096,
                           0, 0, 0, 0)
    s = os.statvfs(host)
    return struct.pack("<qqqqqqqiiqqqqqq", 0xEF53, s.f_bsize, s.f_blocks, s.f_bfree,
                       s.f_bavail, s.f_files, s.f_ffree, 0, 0, s.f_namemax, s.f_frsize,
                       s.f_flag | 1, 0, 0, 0)


def sys_statfs(k: Kernel, t: Task, path_addr: int, buf: int) -> int:
    node = k.vfs.resolve(t.proc.fs.cwd, _path(t, path_addr), task=t)
    t.mm.write(buf, _statfs_bytes(node.host))
    return 0


def sys_fstatfs(k: Kernel, t: Task, fd: int, buf: int) -> int:
    f = t.proc.files.get(i32(fd))
    t.mm.write(buf, _statfs_bytes(getattr(f, "host_path", None) or None))
    return 0


def sys_fadvise64(k: Kernel, t: Task, fd: int, offset: int, length: int, advice: int) -> int:
    f = t.proc.files.get(i32(fd))
    if isinstance(f, PipeEnd):
        raise KernelError(E.ESPIPE)
    if advice > 5:
        raise KernelError(E.EINVAL)
    return 0


def sys_flock(k: Kernel, t: Task, fd: int, op: int) -> int:
    t.proc.files.get(i32(fd))
    return 0


def sys_memfd_create(k: Kernel, t: Task, name_addr: int, flags: int) -> int:
    name = _path(t, name_addr)
    if flags & ~0x7 or len(name) > 249:
        raise KernelError(E.EINVAL)
    fd = os.memfd_create(f"shstk:{name}", os.MFD_CLOEXEC)
    f = HostFile(f"/memfd:{name} (deleted)", F.O_RDWR, fd)
    return t.proc.files.install(f, cloexec=bool(flags & 1))


# --- polling ------------------------------------------------------------------------------------

def _poll_ready(t: Task, fds: list[tuple[int, int]]) -> list[int]:
    out = []
    for fd, events in fds:
        if fd < 0:
            out.append(0)
            continue
        f = t.proc.files.fds.get(fd)
        if f is None:
            out.append(F.POLLNVAL)
            continue
        ev = f.file.poll()
        out.append(ev & (events | F.POLLERR | F.POLLHUP | F.POLLNVAL))
    return out


def _do_poll(k: Kernel, t: Task, fds_addr: int, nfds: int, timeout_ns: int | None) -> int:
    if nfds > t.proc.rlimits[7][0]:
        raise KernelError(E.EINVAL)
    raw = t.mm.read(fds_addr, 8 * nfds)
    fds = [struct.unpack_from("<ihh", raw, 8 * i)[:2] for i in range(nfds)]
    deadline = None if timeout_ns is None else k.monotonic_ns() + timeout_ns

    def attempt() -> int:
        revents = _poll_ready(t, fds)
        n = sum(1 for r in revents if r)
        if n or (deadline is not None and k.monotonic_ns() >= deadline):
            out = bytearray(raw)
            for i, r in enumerate(revents):
                struct.pack_into("<h", out, 8 * i + 6, r)
            t.mm.write(fds_addr, bytes(out))
            return n
        host = [t.proc.files.fds[fd].file.host_fd() for fd, _e in fds
                if fd in t.proc.files.fds]
        host_fd = next((h for h in host if h >= 0), -1)
        raise Blocked(Wait(lambda: any(_poll_ready(t, fds)), "poll", deadline=deadline,
                           host_fd=host_fd), attempt)

    return attempt()


def sys_poll(k: Kernel, t: Task, fds: int, nfds: int, timeout: int) -> int:
    ms = i32(timeout)
    return _do_poll(k, t, fds, nfds, None if ms < 0 else ms * 10**6)


def sys_ppoll(k: Kernel, t: Task, fds: int, nfds: int, tsp: int, sigmask: int,
              sigsetsize: int) -> int:
    timeout = None
    if tsp:
        sec, nsec = struct.unpack("<qq", t.mm.read(tsp, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + nsec
    return _do_poll(k, t, fds, nfds, timeout)


def _fdset(t: Task, addr: int, nfds: int) -> set[int]:
    if not addr:
        return set()
    raw = int.from_bytes(t.mm.read(addr, ((nfds + 63) // 64) * 8), "little")
    return {fd for fd in range(nfds) if raw >> fd & 1}


def _write_fdset(t: Task, addr: int, nfds: int, fds: set[int]) -> None:
    if addr:
        value = sum(1 << fd for fd in fds)
        t.mm.write(addr, value.to_bytes(((nfds + 63) // 64) * 8, "little"))


def _do_select(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int,
               timeout_ns: int | None) -> int:
    nfds = i32(nfds)
    if nfds < 0 or nfds > 1024:
        raise KernelError(E.EINVAL)
    r, w, x = _fdset(t, rd, nfds), _fdset(t, wr, nfds), _fdset(t, ex, nfds)
    for fd in r | w | x:
        t.proc.files.get(fd)
    deadline = None if timeout_ns is None else k.monotonic_ns() + timeout_ns

    def ready() -> tuple[set[int], set[int]]:
        rr = {fd for fd in r if t.proc.files.get(fd).poll() & (F.POLLIN | F.POLLHUP)}
        ww = {fd for fd in w if t.proc.files.get(fd).poll() & F.POLLOUT}
        return rr, ww

    def attempt() -> int:
        rr, ww = ready()
        if rr or ww or (deadline is not None and k.monotonic_ns() >= deadline):
            _write_fdset(t, rd, nfds, rr)
            _write_fdset(t, wr, nfds, ww)
            _write_fdset(t, ex, nfds, set())
            return len(rr) + len(ww)
        host = [t.proc.files.get(fd).host_fd() for fd in r]
        raise Blocked(Wait(lambda: any(ready()), "select", deadline=deadline,
                           host_fd=next((h for h in host if h >= 0), -1)), attempt)

    return attempt()


def sys_select(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int, tvp: int) -> int:
    timeout = None
    if tvp:
        sec, usec = struct.unpack("<qq", t.mm.read(tvp, 16))
        if sec < 0 or usec < 0:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + usec * 1000
    return _do_select(k, t, nfds, rd, wr, ex, timeout)


def sys_pselect6(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int, tsp: int,
                 sig: int) -> int:
    timeout = None
    if tsp:
        sec, nsec = struct.unpack("<qq", t.mm.read(tsp, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + nsec
    return _do_select(k, t, nfds, rd, wr, ex, timeout)


__all__ = ["FdTable", "open_node", "pack_stat"]
