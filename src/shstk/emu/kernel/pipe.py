"""Pipes (fs/pipe.c): a buffer of PIPE_CAPACITY bytes shared by a read end and a write end."""

from __future__ import annotations

import stat as st

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult, WouldBlock


class Pipe:
    """A pipe's buffer, shared by its two ends."""

    def __init__(self, capacity: int = F.PIPE_CAPACITY) -> None:
        self.buf = bytearray()
        self.capacity = capacity
        self.readers = 0
        self.writers = 0
        self.ino = 0


PIPE_MAX_SIZE = 1 << 20  # /proc/sys/fs/pipe-max-size


def pipe_set_size(pipe: Pipe, arg: int) -> int:
    """fs/pipe.c pipe_set_size(): a power of two pages, at most pipe-max-size (the guest
    never has CAP_SYS_RESOURCE for this: a pipe's buffer is host memory), and never below
    what the pipe holds."""
    if arg > 1 << 31:
        raise KernelError(E.EINVAL)
    size = max(4096, 1 << (max(arg, 1) - 1).bit_length())
    if size > PIPE_MAX_SIZE:
        raise KernelError(E.EPERM)
    if size < len(pipe.buf):
        raise KernelError(E.EBUSY)
    return size


class PipeEnd(OpenFile):
    kind = "pipe"

    def __init__(self, pipe: Pipe, flags: int, write_end: bool) -> None:
        super().__init__(f"pipe:[{pipe.ino}]", flags)
        self.pipe = pipe
        self.write_end = write_end
        if write_end:
            pipe.writers += 1
        else:
            pipe.readers += 1

    def read(self, n: int) -> bytes:
        if self.write_end:
            raise KernelError(E.EBADF)
        p = self.pipe
        if not p.buf:
            if p.writers == 0:
                return b""
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            raise WouldBlock(lambda: bool(p.buf) or p.writers == 0)
        data = bytes(p.buf[:n])
        del p.buf[:n]
        return data

    def write(self, data: bytes) -> int:
        if not self.write_end:
            raise KernelError(E.EBADF)
        p = self.pipe
        if p.readers == 0:
            raise KernelError(E.EPIPE)
        room = p.capacity - len(p.buf)
        # Writes of at most PIPE_BUF bytes are atomic: all or wait.
        if room <= 0 or (len(data) <= F.PIPE_BUF and room < len(data)):
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            need = len(data) if len(data) <= F.PIPE_BUF else 1
            raise WouldBlock(lambda: p.readers == 0 or p.capacity - len(p.buf) >= need,
                             write=True)
        n = min(room, len(data))
        p.buf += data[:n]
        return n

    def poll(self) -> int:
        p = self.pipe
        if self.write_end:
            if p.readers == 0:
                return F.POLLOUT | F.POLLERR
            return F.POLLOUT if len(p.buf) < p.capacity else 0
        ev = F.POLLIN if p.buf else 0
        if p.writers == 0:
            ev |= F.POLLHUP
        return ev

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request == F.FIONREAD:
            return 0, len(self.pipe.buf).to_bytes(4, "little")
        if request in (F.FIONBIO, F.FIOCLEX, F.FIONCLEX):
            return 0, None
        raise KernelError(E.ENOTTY)

    def stat(self) -> StatResult:
        return StatResult(0xD, self.pipe.ino, st.S_IFIFO | 0o600, 1, 0, 0, 0,
                          len(self.pipe.buf), 4096, 0, 0, 0, 0)

    def on_last_close(self) -> None:
        if self.write_end:
            self.pipe.writers -= 1
        else:
            self.pipe.readers -= 1
