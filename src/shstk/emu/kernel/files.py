"""Open files of the guest: file descriptions, descriptor tables and pipes.

An `OpenFile` is Linux's `struct file`: dup() and fork share it (offset and status flags
included); an `FdTable` maps descriptor numbers to them with the close-on-exec bit. Host
files are host descriptors opened under the sysroot; pipes between guest processes are
modelled here, so that blocking and EOF follow the guest's scheduler, not the host's.
"""

from __future__ import annotations

import fcntl
import os
import select
import stat as st
import termios
from collections.abc import Callable
from dataclasses import dataclass

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError

# A read or write that cannot proceed yet raises WouldBlock; the syscall layer parks the
# task until `ready()` is true and retries (or returns EAGAIN for O_NONBLOCK).


class WouldBlock(Exception):
    def __init__(self, ready: Callable[[], bool], host_fd: int = -1, write: bool = False) -> None:
        super().__init__()
        self.ready = ready
        self.host_fd = host_fd
        self.write = write


@dataclass
class StatResult:
    """The fields of struct stat the guest sees."""

    dev: int
    ino: int
    mode: int
    nlink: int
    uid: int
    gid: int
    rdev: int
    size: int
    blksize: int
    blocks: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def from_os(cls, s: os.stat_result) -> StatResult:
        return cls(s.st_dev, s.st_ino, s.st_mode, s.st_nlink, s.st_uid, s.st_gid, s.st_rdev,
                   s.st_size, s.st_blksize, s.st_blocks, s.st_atime_ns, s.st_mtime_ns,
                   s.st_ctime_ns)


class OpenFile:
    """struct file."""

    kind = "file"
    # Does the object lie on a writable mount (an --rw directory)? Decided when it is
    # opened, from the object itself: fchmod/fchown/futimens ask this, never a path.
    mount_rw = False
    mount = ""  # the mount's id (vfs.py): "" the read-only root, else a writable one
    unlock_on_close: Callable[[], None] | None = None  # drops its flock(2) lock (flock.py)

    def __init__(self, path: str, flags: int) -> None:
        self.path = path  # guest path, for /proc/PID/fd and strace
        self.flags = flags  # O_* status and access mode
        self.refs = 0

    @property
    def readable(self) -> bool:
        return (self.flags & F.O_ACCMODE) in (F.O_RDONLY, F.O_RDWR) and \
            not self.flags & F.O_PATH

    @property
    def writable(self) -> bool:
        return (self.flags & F.O_ACCMODE) in (F.O_WRONLY, F.O_RDWR) and \
            not self.flags & F.O_PATH

    def read(self, n: int) -> bytes:
        raise KernelError(E.EINVAL)

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def pread(self, n: int, offset: int) -> bytes:
        raise KernelError(E.ESPIPE)

    def pwrite(self, data: bytes, offset: int) -> int:
        raise KernelError(E.ESPIPE)

    def lseek(self, offset: int, whence: int) -> int:
        raise KernelError(E.ESPIPE)

    def stat(self) -> StatResult:
        raise KernelError(E.EBADF)

    def getdents(self) -> list[tuple[int, int, str]] | None:
        """Directory entries (ino, d_type, name) not yet returned, or None: not a dir."""
        return None

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        raise KernelError(E.ENOTTY)

    def is_directory(self) -> bool:
        return self.getdents() is not None

    def poll(self) -> int:
        """Ready events (POLLIN/POLLOUT/POLLHUP) right now."""
        return F.POLLIN | F.POLLOUT

    def host_fd(self) -> int:
        """The host descriptor behind this file, or -1 (for mmap and fstat)."""
        return -1

    def truncate(self, length: int) -> None:
        raise KernelError(E.EINVAL)

    def on_last_close(self) -> None:
        pass


class HostFile(OpenFile):
    """A host file, directory or device opened under the sysroot (or a host stdio)."""

    kind = "host"
    # one of shstk's own stdin/stdout/stderr, handed to the first process: an object from
    # outside the machine that /dev/std* and /proc/self/fd/N re-open as it is
    inherited = False

    def __init__(self, path: str, flags: int, fd: int, host_path: str = "",
                 owns_fd: bool = True) -> None:
        super().__init__(path, flags)
        self.fd = fd
        self.host_path = host_path
        self.owns_fd = owns_fd
        self._dir: list[tuple[int, int, str]] | None = None
        self._dir_pos = 0
        self._is_tty: bool | None = None
        try:
            self._mode = os.fstat(fd).st_mode
        except OSError:
            self._mode = 0

    def host_fd(self) -> int:
        return self.fd

    def is_directory(self) -> bool:
        return st.S_ISDIR(self._mode)

    def _wrap(self, fn: Callable[[], object]) -> object:
        try:
            return fn()
        except BlockingIOError:
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN) from None
            raise WouldBlock(lambda: _host_ready(self.fd), self.fd) from None
        except OSError as exc:
            raise KernelError(exc.errno or E.EIO) from None

    def _host_would_block(self, write: bool) -> bool:
        """Reading a terminal or host pipe that has nothing yet would stall every task."""
        if st.S_ISREG(self._mode) or st.S_ISDIR(self._mode):
            return False
        return not _host_ready(self.fd, write)

    def read(self, n: int) -> bytes:
        if st.S_ISDIR(self._mode):
            raise KernelError(E.EISDIR)
        if self._host_would_block(False):
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            raise WouldBlock(lambda: _host_ready(self.fd), self.fd)
        return self._wrap(lambda: os.read(self.fd, n))  # type: ignore[return-value]

    def write(self, data: bytes) -> int:
        if self.flags & F.O_APPEND and st.S_ISREG(self._mode):
            os.lseek(self.fd, 0, os.SEEK_END)
        return self._wrap(lambda: os.write(self.fd, data))  # type: ignore[return-value]

    def pread(self, n: int, offset: int) -> bytes:
        if not st.S_ISREG(self._mode) and not st.S_ISBLK(self._mode):
            raise KernelError(E.ESPIPE if st.S_ISFIFO(self._mode) else E.EINVAL)
        return self._wrap(lambda: os.pread(self.fd, n, offset))  # type: ignore[return-value]

    def pwrite(self, data: bytes, offset: int) -> int:
        if not st.S_ISREG(self._mode):
            raise KernelError(E.ESPIPE if st.S_ISFIFO(self._mode) else E.EINVAL)
        return self._wrap(lambda: os.pwrite(self.fd, data, offset))  # type: ignore[return-value]

    def lseek(self, offset: int, whence: int) -> int:
        if st.S_ISFIFO(self._mode) or st.S_ISSOCK(self._mode):
            raise KernelError(E.ESPIPE)
        if st.S_ISDIR(self._mode):
            if whence != F.SEEK_SET or offset < 0:
                raise KernelError(E.EINVAL)
            self._dir_pos = offset
            return offset
        if whence not in (F.SEEK_SET, F.SEEK_CUR, F.SEEK_END, F.SEEK_DATA, F.SEEK_HOLE):
            raise KernelError(E.EINVAL)
        return self._wrap(lambda: os.lseek(self.fd, offset, whence))  # type: ignore[return-value]

    def stat(self) -> StatResult:
        return StatResult.from_os(self._wrap(lambda: os.fstat(self.fd)))  # type: ignore[arg-type]

    def truncate(self, length: int) -> None:
        if not self.writable:
            raise KernelError(E.EINVAL)
        self._wrap(lambda: os.ftruncate(self.fd, length))

    def getdents(self) -> list[tuple[int, int, str]] | None:
        if not st.S_ISDIR(self._mode):
            return None
        if self._dir is None:
            self._dir = _list_dir(self.fd)
        out = self._dir[self._dir_pos:]
        return out

    def advance_dir(self, count: int) -> None:
        self._dir_pos += count

    @property
    def dir_pos(self) -> int:
        return self._dir_pos

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request in (F.TCGETS, F.TIOCGWINSZ, F.TIOCGPGRP, F.FIONREAD):
            # struct termios as the kernel copies it: 4 flag words, c_line, c_cc[19] = 36
            # bytes (glibc's own struct is larger; tcgetattr converts from this one)
            size = {F.TCGETS: 36, F.TIOCGWINSZ: 8, F.TIOCGPGRP: 4, F.FIONREAD: 4}[request]
            if request == F.FIONREAD and (st.S_ISREG(self._mode)):
                pos = os.lseek(self.fd, 0, os.SEEK_CUR)
                left = max(0, os.fstat(self.fd).st_size - pos)
                return 0, left.to_bytes(4, "little")
            try:
                if request == F.TCGETS:
                    termios.tcgetattr(self.fd)  # ENOTTY for anything but a terminal
                    raw = fcntl.ioctl(self.fd, termios.TCGETS, bytes(size))
                else:
                    raw = fcntl.ioctl(self.fd, request, bytes(size))
            except OSError as exc:
                raise KernelError(exc.errno or E.ENOTTY) from None
            except termios.error:
                raise KernelError(E.ENOTTY) from None
            return 0, bytes(raw)[:size]
        if request in (F.FIONBIO, F.FIOCLEX, F.FIONCLEX):
            return 0, None
        if request in (F.TCSETS, F.TCSETSW, F.TCSETSF, F.TIOCSWINSZ, F.TIOCSPGRP):
            if not os.isatty(self.fd):
                raise KernelError(E.ENOTTY)
            return 0, None  # the host terminal is not changed by the guest
        raise KernelError(E.ENOTTY)

    def poll(self) -> int:
        if st.S_ISREG(self._mode) or st.S_ISDIR(self._mode):
            return F.POLLIN | F.POLLOUT
        ev = 0
        if _host_ready(self.fd, False):
            ev |= F.POLLIN
        if _host_ready(self.fd, True):
            ev |= F.POLLOUT
        return ev

    def on_last_close(self) -> None:
        if self.owns_fd:
            try:
                os.close(self.fd)
            except OSError:
                pass


def _host_ready(fd: int, write: bool = False) -> bool:
    try:
        r, w, _x = select.select([] if write else [fd], [fd] if write else [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(w if write else r)


def _list_dir(fd: int) -> list[tuple[int, int, str]]:
    entries: list[tuple[int, int, str]] = []
    try:
        here = os.fstat(fd)
        entries.append((here.st_ino, F.DT_DIR, "."))
        entries.append((here.st_ino, F.DT_DIR, ".."))
        with os.scandir(fd) as it:
            for e in it:
                try:
                    ino = e.inode()
                    if e.is_symlink():
                        dt = F.DT_LNK
                    elif e.is_dir(follow_symlinks=False):
                        dt = F.DT_DIR
                    elif e.is_file(follow_symlinks=False):
                        dt = F.DT_REG
                    else:
                        mode = e.stat(follow_symlinks=False).st_mode
                        dt = _dtype(mode)
                except OSError:
                    continue
                entries.append((ino, dt, e.name))
    except OSError as exc:
        raise KernelError(exc.errno or E.EIO) from None
    return entries


def _dtype(mode: int) -> int:
    if st.S_ISCHR(mode):
        return F.DT_CHR
    if st.S_ISBLK(mode):
        return F.DT_BLK
    if st.S_ISFIFO(mode):
        return F.DT_FIFO
    if st.S_ISSOCK(mode):
        return F.DT_SOCK
    if st.S_ISLNK(mode):
        return F.DT_LNK
    if st.S_ISDIR(mode):
        return F.DT_DIR
    return F.DT_REG


class SyntheticFile(OpenFile):
    """A file whose content the kernel generates (/proc), read at open time like seq_file."""

    kind = "synthetic"

    def __init__(self, path: str, flags: int, content: bytes, ino: int = 0,
                 mode: int = st.S_IFREG | 0o444,
                 writer: Callable[[bytes, int], int] | None = None,
                 reader: Callable[[int, int], bytes] | None = None) -> None:
        super().__init__(path, flags)
        self.content = content
        self.pos = 0
        self.ino = ino
        self.mode = mode
        self.writer = writer  # (data, offset) -> count, for /proc/PID/mem
        self.reader = reader  # (n, offset) -> bytes, for /proc/PID/mem

    def read(self, n: int) -> bytes:
        data = self.pread(n, self.pos)
        self.pos += len(data)
        return data

    def pread(self, n: int, offset: int) -> bytes:
        if self.reader is not None:
            return self.reader(n, offset)
        return self.content[offset:offset + n]

    def write(self, data: bytes) -> int:
        n = self.pwrite(data, self.pos)
        self.pos += n
        return n

    def pwrite(self, data: bytes, offset: int) -> int:
        if self.writer is None:
            raise KernelError(E.EINVAL)
        return self.writer(data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        if whence == F.SEEK_SET:
            new = offset
        elif whence == F.SEEK_CUR:
            new = self.pos + offset
        elif whence == F.SEEK_END:
            new = len(self.content) + offset
        else:
            raise KernelError(E.EINVAL)
        if new < 0 and self.reader is None:
            raise KernelError(E.EINVAL)
        self.pos = new & 0xFFFFFFFFFFFFFFFF
        return self.pos

    def stat(self) -> StatResult:
        return StatResult(0x16, self.ino, self.mode, 1, 0, 0, 0, 0, 1024, 0, 0, 0, 0)


class SyntheticDir(OpenFile):
    """A directory of synthetic entries (/proc/PID/fd, /proc/PID/task)."""

    kind = "synthetic-dir"

    def __init__(self, path: str, flags: int,
                 entries: list[tuple[int, int, str]] | Callable[[], list[tuple[int, int, str]]],
                 ino: int = 0) -> None:
        super().__init__(path, flags)
        # A callable is listed at the first getdents (and again after a rewind), as Linux
        # reads /proc/PID/fd: the listing then shows the descriptor being read.
        self._lister = entries if callable(entries) else None
        self.entries: list[tuple[int, int, str]] | None = None if callable(entries) \
            else entries
        self.dir_pos = 0
        self.ino = ino

    def getdents(self) -> list[tuple[int, int, str]] | None:
        if self.entries is None:
            self.entries = self._lister() if self._lister is not None else []
        return self.entries[self.dir_pos:]

    def advance_dir(self, count: int) -> None:
        self.dir_pos += count

    def read(self, n: int) -> bytes:
        raise KernelError(E.EISDIR)

    def lseek(self, offset: int, whence: int) -> int:
        if whence != F.SEEK_SET or offset < 0:
            raise KernelError(E.EINVAL)
        self.dir_pos = offset
        if offset == 0 and self._lister is not None:
            self.entries = None
        return offset

    def stat(self) -> StatResult:
        return StatResult(0x16, self.ino, st.S_IFDIR | 0o555, 2, 0, 0, 0, 0, 1024, 0, 0, 0, 0)


@dataclass
class FdEntry:
    """A descriptor table slot: the open file and its close-on-exec flag."""

    file: OpenFile
    cloexec: bool = False


class FdTable:
    """struct files_struct: descriptor numbers to open files."""

    def __init__(self, limit: int = 1024) -> None:
        self.fds: dict[int, FdEntry] = {}
        self.limit = limit
        self.users = 1

    def get(self, fd: int) -> OpenFile:
        entry = self.fds.get(fd)
        if entry is None:
            raise KernelError(E.EBADF)
        return entry.file

    def entry(self, fd: int) -> FdEntry:
        entry = self.fds.get(fd)
        if entry is None:
            raise KernelError(E.EBADF)
        return entry

    def lowest_free(self, start: int = 0) -> int:
        fd = start
        while fd in self.fds:
            fd += 1
        if fd >= self.limit:
            raise KernelError(E.EMFILE)
        return fd

    def install(self, file: OpenFile, *, cloexec: bool = False, at: int | None = None,
                minimum: int = 0) -> int:
        fd = self.lowest_free(minimum) if at is None else at
        if at is not None:
            if at < 0 or at >= self.limit:
                raise KernelError(E.EBADF)
            if at in self.fds:
                self.close(at)
        file.refs += 1
        self.fds[fd] = FdEntry(file, cloexec)
        return fd

    def close(self, fd: int) -> None:
        entry = self.fds.pop(fd, None)
        if entry is None:
            raise KernelError(E.EBADF)
        release(entry.file)

    def close_all(self) -> None:
        for fd in list(self.fds):
            self.close(fd)

    def close_on_exec(self) -> None:
        for fd, entry in list(self.fds.items()):
            if entry.cloexec:
                self.close(fd)

    def copy(self) -> FdTable:
        t = FdTable(self.limit)
        for fd, entry in self.fds.items():
            entry.file.refs += 1
            t.fds[fd] = FdEntry(entry.file, entry.cloexec)
        return t


def release(file: OpenFile) -> None:
    file.refs -= 1
    if file.refs <= 0:
        if file.unlock_on_close is not None:
            file.unlock_on_close()
        file.on_last_close()
