"""Reading and writing: read/write and their positioned and vectored forms, lseek,
sendfile, copy_file_range."""

from __future__ import annotations

import contextlib
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, WouldBlock
from shstk.emu.kernel.pipe import PipeEnd
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.syscalls.fs_common import IOV_MAX, MAX_RW, blocking, file_for_rw, user_buffer
from shstk.emu.syscalls.kinds import s64
from shstk.emu.syscalls.util import i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


# Large reads and writes go through host memory CHUNK bytes at a time: a 1 GiB write
# to /dev/null or a pipe costs a chunk of host memory, not a copy (or two) of the total.
CHUNK = 1 << 20


def _streams_on(f: OpenFile) -> bool:
    """Whether a read that filled its chunk may go on without blocking: regular files
    and the endless devices. A pipe, socket or terminal gives what it has, once."""
    return (getattr(f, "_mode", 0) & 0o170000 == 0o100000
            or getattr(f, "host_path", f.path) in ("/dev/zero", "/dev/urandom",
                                                     "/dev/random"))


def _read_chunked(k: Kernel, t: Task, f: OpenFile, buf: int, count: int,
                  pos: int | None = None) -> int:
    """Read up to `count` bytes into guest memory at `buf`, a chunk at a time (at the file
    position, or at `pos`). Stops at a short read, and early (with what it has) when the
    run must stop. Errors after the first chunk end the read with the count so far."""
    done = 0
    while True:  # once at least: a read of 0 bytes still checks the file
        n = min(CHUNK, count - done)
        try:
            data = f.read(n) if pos is None else f.pread(n, pos + done)
            t.mm.write(buf + done, data)
        except (KernelError, WouldBlock):
            if done:
                return done
            raise
        done += len(data)
        if done >= count or len(data) < n or not _streams_on(f) or k.stop_requested():
            break
    return done


def _write_chunked(k: Kernel, t: Task, f: OpenFile, buf: int, count: int,
                   pos: int | None = None) -> int:
    """Write `count` bytes from guest memory at `buf`, a chunk at a time."""
    done = 0
    while True:
        n = min(CHUNK, count - done)
        try:
            data = t.mm.read(buf + done, n)
            w = _write_all(k, t, f, data) if pos is None else f.pwrite(data, pos + done)
        except (KernelError, WouldBlock):
            if done:
                return done
            raise
        done += w
        if done >= count or w < n or k.stop_requested():
            break
    return done


def sys_read(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = file_for_rw(t, fd, False)
    if i64(count) < 0:
        raise KernelError(E.EINVAL)
    count = user_buffer(t, buf, min(count, MAX_RW))
    return blocking(t, lambda: _read_chunked(k, t, f, buf, count))


def sys_write(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    f = file_for_rw(t, fd, True)
    count = min(count, MAX_RW)
    if count <= CHUNK:
        data = t.mm.read(buf, count)
        return blocking(t, lambda: _write_all(k, t, f, data))
    return blocking(t, lambda: _write_chunked(k, t, f, buf, count))


def _write_all(k: Kernel, t: Task, f: OpenFile, data: bytes) -> int:
    try:
        return f.write(data)
    except KernelError as exc:
        if exc.errno == E.EPIPE:
            k.signals.send_thread(t, SigInfo(S.SIGPIPE, S.SI_USER, pid=t.pid))
        raise


def sys_pread64(k: Kernel, t: Task, fd: int, buf: int, count: int, offset: int) -> int:
    f = file_for_rw(t, fd, False)
    if i64(offset) < 0:
        raise KernelError(E.EINVAL)
    return _read_chunked(k, t, f, buf, user_buffer(t, buf, min(count, MAX_RW)), offset)


def sys_pwrite64(k: Kernel, t: Task, fd: int, buf: int, count: int, offset: int) -> int:
    f = file_for_rw(t, fd, True)
    if i64(offset) < 0:
        raise KernelError(E.EINVAL)
    return _write_chunked(k, t, f, buf, min(count, MAX_RW), offset)


def _iovecs(t: Task, iov: int, iovcnt: int) -> list[tuple[int, int]]:
    """import_iovec(): at most UIO_MAXIOV vectors (the count is an unsigned int there)."""
    if iovcnt > IOV_MAX:
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
    f = file_for_rw(t, fd, False)
    vecs = _usable_iovecs(t, _iovecs(t, iov, iovcnt))
    total = sum(n for _b, n in vecs)

    def op() -> int:
        data = f.read(min(total, MAX_RW))
        _scatter(t, vecs, data)
        return len(data)

    return blocking(t, op)


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
    f = file_for_rw(t, fd, True)
    vecs = _iovecs(t, iov, iovcnt)
    data = b"".join(t.mm.read(base, n) for base, n in vecs if n)
    return blocking(t, lambda: _write_all(k, t, f, data[:MAX_RW]))


RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT = 0x1, 0x2, 0x4, 0x8
RWF_APPEND, RWF_NOAPPEND, RWF_ATOMIC, RWF_DONTCACHE = 0x10, 0x20, 0x40, 0x80
RWF_SUPPORTED = 0xFF


def _rw_flags(flags: int, write: bool) -> None:
    """kiocb_set_rw_flags(): what a preadv2/pwritev2 flag asks of this file."""
    if flags & ~RWF_SUPPORTED:
        raise KernelError(E.EOPNOTSUPP)
    if flags & RWF_APPEND and flags & RWF_NOAPPEND:
        raise KernelError(E.EINVAL)
    if flags & RWF_ATOMIC:  # needs O_DIRECT on a file system that offers it
        raise KernelError(E.EOPNOTSUPP)


def _preadv(t: Task, fd: int, iov: int, iovcnt: int, pos: int, flags: int) -> int:
    """vfs_readv() at `pos`, or at the file position when pos is -1."""
    f = file_for_rw(t, fd, False)
    vecs = _iovecs(t, iov, iovcnt)
    total = min(sum(n for _b, n in vecs), MAX_RW)
    if not total:
        return 0
    _rw_flags(flags, False)
    if pos == -1:
        vecs = _usable_iovecs(t, vecs)
        total = min(total, sum(n for _b, n in vecs))

        def op() -> int:
            data = f.read(total)
            _scatter(t, vecs, data)
            return len(data)

        return blocking(t, op)
    data = f.pread(total, pos)
    _scatter(t, vecs, data)
    return len(data)


def _pwritev(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, pos: int,
             flags: int) -> int:
    """vfs_writev() at `pos`, or at the file position when pos is -1."""
    f = file_for_rw(t, fd, True)
    vecs = _iovecs(t, iov, iovcnt)
    if not sum(n for _b, n in vecs):
        return 0
    _rw_flags(flags, True)
    data = b"".join(t.mm.read(b, n) for b, n in vecs if n)[:MAX_RW]
    if flags & RWF_APPEND:
        end = f.stat().size
        n = f.pwrite(data, end)
        if pos == -1:
            f.lseek(end + n, F.SEEK_SET)
        return n
    if pos == -1:
        return blocking(t, lambda: _write_all(k, t, f, data))
    return f.pwrite(data, pos)


def sys_preadv(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, pos_l: int,
               pos_h: int) -> int:
    # pos_from_hilo(): on 64-bit the whole loff_t is in pos_l; do_preadv() checks it first
    if pos_l < 0:
        raise KernelError(E.EINVAL)
    return _preadv(t, fd, iov, iovcnt, pos_l, 0)


def sys_pwritev(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, pos_l: int,
                pos_h: int) -> int:
    if pos_l < 0:
        raise KernelError(E.EINVAL)
    return _pwritev(k, t, fd, iov, iovcnt, pos_l, 0)


def sys_preadv2(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, pos_l: int,
                pos_h: int, flags: int) -> int:
    """preadv2: offset -1 reads at the file position (and advances it)."""
    if pos_l < -1:
        raise KernelError(E.EINVAL)
    return _preadv(t, fd, iov, iovcnt, pos_l, flags)


def sys_pwritev2(k: Kernel, t: Task, fd: int, iov: int, iovcnt: int, pos_l: int,
                 pos_h: int, flags: int) -> int:
    if pos_l < -1:
        raise KernelError(E.EINVAL)
    return _pwritev(k, t, fd, iov, iovcnt, pos_l, flags)


def sys_lseek(k: Kernel, t: Task, fd: int, offset: int, whence: int) -> int:
    f = t.proc.files.get(fd)
    if whence > F.SEEK_HOLE:
        raise KernelError(E.EINVAL)
    return f.lseek(i64(offset), whence)


def _loff_at(t: Task, addr: int) -> int | None:
    """A loff_t passed by pointer (NULL: use the file position)."""
    return s64(t.mm.read_u64(addr)) if addr else None


def _read_at(f: OpenFile, count: int, pos: int | None) -> bytes:
    """rw_verify_area() refuses a negative position; then read there or at the file's."""
    if pos is None:
        return f.read(count)
    if pos < 0:
        raise KernelError(E.EINVAL)
    return f.pread(count, pos)


def _unread(f: OpenFile, data: bytes, pos: int | None) -> None:
    """Give back what was read but could not be written (splice moves only what fits)."""
    if not data or pos is not None:
        return
    if isinstance(f, PipeEnd):
        f.pipe.unread(data)
        return
    with contextlib.suppress(KernelError):
        f.lseek(-len(data), F.SEEK_CUR)


def _transfer(k: Kernel, t: Task, fin: OpenFile, fout: OpenFile, count: int,
              pos_in: int | None, pos_out: int | None) -> tuple[int, int]:
    """Move up to `count` bytes from `fin` to `fout` a chunk at a time (do_splice_direct):
    (bytes moved, bytes consumed from fin). Stops at the end of the input, a short write
    or an error after the first chunk; WouldBlock only when nothing moved."""
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        try:
            data = _read_at(fin, n, None if pos_in is None else pos_in + done)
        except (KernelError, WouldBlock):
            if done:
                break
            raise
        if not data:
            break
        try:
            w = (_write_all(k, t, fout, data) if pos_out is None
                 else fout.pwrite(data, pos_out + done))
        except (KernelError, WouldBlock):
            _unread(fin, data, pos_in)
            if done:
                break
            raise
        _unread(fin, data[w:], pos_in)
        done += w
        if w < len(data) or len(data) < n or k.stop_requested():
            break
    return done, done


def sys_sendfile(k: Kernel, t: Task, out_fd: int, in_fd: int, offset_ptr: int,
                 count: int) -> int:
    pos = _loff_at(t, offset_ptr)  # sendfile64() reads it before looking at the fds
    fin = file_for_rw(t, in_fd, False)
    if pos is not None and pos < 0:
        raise KernelError(E.EINVAL)
    fout = file_for_rw(t, out_fd, True)

    def op() -> int:
        n, used = _transfer(k, t, fin, fout, min(count, MAX_RW), pos, None)
        if pos is not None:
            t.mm.write_u64(offset_ptr, pos + used)
        return n

    return blocking(t, op)


def sys_copy_file_range(k: Kernel, t: Task, fd_in: int, off_in: int, fd_out: int,
                        off_out: int, length: int, flags: int) -> int:
    fin = file_for_rw(t, fd_in, False)
    fout = file_for_rw(t, fd_out, True)
    pos_in, pos_out = _loff_at(t, off_in), _loff_at(t, off_out)
    if flags:
        raise KernelError(E.EINVAL)
    for pos in (pos_in, pos_out):
        if pos is not None and pos < 0:
            raise KernelError(E.EINVAL)

    def op() -> int:
        n, used = _transfer(k, t, fin, fout, min(length, MAX_RW), pos_in, pos_out)
        if pos_in is not None:
            t.mm.write_u64(off_in, pos_in + used)
        if pos_out is not None:
            t.mm.write_u64(off_out, pos_out + n)
        return n

    return blocking(t, op)
