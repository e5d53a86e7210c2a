"""splice, tee and vmsplice (fs/splice.c): moving data between a pipe and another file,
a second pipe, or the caller's memory, by copying through the kernel's pipe buffer.

One side of splice must be a pipe (EINVAL otherwise); an offset pointer for a pipe is
ESPIPE. A call moves at most what the pipe holds (from a pipe) or has room for (into
one) and sleeps, unless SPLICE_F_NONBLOCK or O_NONBLOCK, while there is nothing to move.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, WouldBlock
from shstk.emu.kernel.pipe import PAGE, Pipe, PipeEnd
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.syscalls.fs_common import MAX_RW, blocking, file_for_rw

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 1, 2, 4, 8
SPLICE_F_ALL = 0xF


def _offset(t: Task, f: OpenFile, addr: int) -> int | None:
    if not addr:
        return None
    if isinstance(f, PipeEnd):
        raise KernelError(E.ESPIPE)
    pos = struct.unpack("<q", t.mm.read(addr, 8))[0]
    if pos < 0:
        raise KernelError(E.EINVAL)
    return pos


def _wait_pipe(p: Pipe, nonblock: bool, ready: object, write: bool = False) -> None:
    if nonblock:
        raise KernelError(E.EAGAIN)
    raise WouldBlock(ready, write=write)  # type: ignore[arg-type]  # Callable[[], bool]


def _from_pipe(p: Pipe, n: int, nonblock: bool, consume: bool = True) -> bytes:
    """Up to n bytes of the pipe (b"" at end of file: no writers left)."""
    if not p.buf:
        if p.writers == 0:
            return b""
        _wait_pipe(p, nonblock, lambda: bool(p.buf) or p.writers == 0)
    return p.take(n) if consume else bytes(p.buf[:n])


def _room(p: Pipe, nonblock: bool) -> int:
    """Bytes that surely fit in the pipe's free slots (Pipe.push takes them all; EPIPE
    when nobody reads it)."""
    if p.readers == 0:
        raise KernelError(E.EPIPE)
    if p.full:
        _wait_pipe(p, nonblock, lambda: p.readers == 0 or not p.full, True)
    return (p.capacity // PAGE - len(p.slots)) * PAGE


def sys_splice(k: Kernel, t: Task, fd_in: int, off_in: int, fd_out: int, off_out: int,
               length: int, flags: int) -> int:
    if flags & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    fin = file_for_rw(t, fd_in, False)
    fout = file_for_rw(t, fd_out, True)
    in_pipe, out_pipe = isinstance(fin, PipeEnd), isinstance(fout, PipeEnd)
    if not in_pipe and not out_pipe:
        raise KernelError(E.EINVAL)
    pos_in, pos_out = _offset(t, fin, off_in), _offset(t, fout, off_out)
    if in_pipe and out_pipe:
        assert isinstance(fin, PipeEnd) and isinstance(fout, PipeEnd)
        if fin.pipe is fout.pipe:
            raise KernelError(E.EINVAL)
    elif not out_pipe and fout.flags & F.O_APPEND:
        raise KernelError(E.EINVAL)
    if length == 0:
        return 0
    length = min(length, MAX_RW)
    nb = bool(flags & SPLICE_F_NONBLOCK)

    def op() -> int:
        if in_pipe:
            assert isinstance(fin, PipeEnd)
            p = fin.pipe
            if out_pipe:
                assert isinstance(fout, PipeEnd)
                if not p.buf and p.writers == 0:
                    return 0
                room = _room(fout.pipe, nb or bool(fout.flags & F.O_NONBLOCK))
                data = _from_pipe(p, min(length, room), nb or bool(fin.flags & F.O_NONBLOCK),
                                  consume=False)
                return len(p.take(fout.pipe.push(data)))
            if not fout.poll() & F.POLLOUT and p.buf and nb:
                raise KernelError(E.EAGAIN)
            data = _from_pipe(p, length, nb or bool(fin.flags & F.O_NONBLOCK), consume=False)
            if not data:
                return 0
            n = fout.pwrite(data, pos_out) if pos_out is not None else fout.write(data)
            p.take(n)
            if pos_out is not None:
                t.mm.write(off_out, struct.pack("<q", pos_out + n))
            return n
        assert isinstance(fout, PipeEnd)
        room = _room(fout.pipe, nb or bool(fout.flags & F.O_NONBLOCK))
        want = min(length, room)
        data = fin.pread(want, pos_in) if pos_in is not None else fin.read(want)
        fout.pipe.push(data)
        if pos_in is not None:
            t.mm.write(off_in, struct.pack("<q", pos_in + len(data)))
        return len(data)
    return _sigpipe(k, t, lambda: blocking(t, op))


def _sigpipe(k: Kernel, t: Task, fn: Callable[[], int]) -> int:
    """EPIPE from a pipe nobody reads also sends SIGPIPE (pipe_write)."""
    try:
        return fn()
    except KernelError as exc:
        if exc.errno == E.EPIPE:
            k.signals.send_thread(t, SigInfo(S.SIGPIPE, S.SI_USER, pid=t.pid))
        raise


def sys_tee(k: Kernel, t: Task, fd_in: int, fd_out: int, length: int, flags: int) -> int:
    if flags & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    fin = file_for_rw(t, fd_in, False)
    fout = file_for_rw(t, fd_out, True)
    if not isinstance(fin, PipeEnd) or not isinstance(fout, PipeEnd) or fin.pipe is fout.pipe:
        raise KernelError(E.EINVAL)
    if length == 0:
        return 0
    nb = bool(flags & SPLICE_F_NONBLOCK)

    def op() -> int:
        p = fin.pipe
        if not p.buf and p.writers == 0:
            return 0
        room = _room(fout.pipe, nb)
        data = _from_pipe(p, min(length, room), nb, consume=False)
        return fout.pipe.push(data)
    return _sigpipe(k, t, lambda: blocking(t, op))


def sys_vmsplice(k: Kernel, t: Task, fd: int, iov: int, nr_segs: int, flags: int) -> int:
    if flags & ~SPLICE_F_ALL:
        raise KernelError(E.EINVAL)
    f = t.proc.files.get(fd)
    if not isinstance(f, PipeEnd):
        raise KernelError(E.EBADF)
    if nr_segs > 1024:
        raise KernelError(E.EINVAL)
    if not nr_segs:
        return 0
    raw = t.mm.read(iov, 16 * nr_segs)
    segs = [struct.unpack_from("<QQ", raw, 16 * i) for i in range(nr_segs)]
    nb = bool(flags & SPLICE_F_NONBLOCK) or bool(f.flags & F.O_NONBLOCK)
    p = f.pipe
    if f.write_end:
        data = b"".join(t.mm.read(base, ln) for base, ln in segs if ln)

        def put() -> int:
            return p.push(data[:_room(p, nb)])
        return _sigpipe(k, t, lambda: blocking(t, put))

    def get() -> int:
        total = sum(ln for _b, ln in segs)
        got = _from_pipe(p, total, nb)
        pos = 0
        for base, ln in segs:
            if pos >= len(got):
                break
            t.mm.write(base, got[pos:pos + ln])
            pos += ln
        return len(got)
    return blocking(t, get)
