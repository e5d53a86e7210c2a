"""Pipes (fs/pipe.c): a buffer of PIPE_CAPACITY bytes shared by a read end and a write end.

As in Linux, the buffer is a ring of page-sized slots (16 by default): a write's first
`len % 4096` bytes go into the last slot if they fit there, the rest into new slots, so a
pipe holds 64 KiB of 4 KiB writes but 64,000 bytes of 1,000-byte writes."""

from __future__ import annotations

import stat as st
from collections import deque

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult, WouldBlock

PAGE = 4096


class Pipe:
    """A pipe's buffer, shared by its two ends."""

    def __init__(self, capacity: int = F.PIPE_CAPACITY) -> None:
        self.buf = bytearray()
        self.capacity = capacity
        self.slots: deque[list[int]] = deque()  # [offset in its page, length] per slot
        self.readers = 0
        self.writers = 0
        self.ino = 0

    @property
    def full(self) -> bool:
        return len(self.slots) >= self.capacity // PAGE

    def push(self, data: bytes) -> int:
        """pipe_write()'s copy: merge the remainder into the last slot, then fill new
        slots while there are free ones. Returns the bytes taken."""
        done = 0
        chars = len(data) % PAGE
        if chars and self.slots and sum(self.slots[-1]) + chars <= PAGE:
            self.slots[-1][1] += chars
            done = chars
        while done < len(data) and not self.full:
            n = min(PAGE, len(data) - done)
            self.slots.append([0, n])
            done += n
        self.buf += data[:done]
        return done

    def take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[:n]
        left = len(data)
        while left:
            slot = self.slots[0]
            k = min(left, slot[1])
            slot[0] += k
            slot[1] -= k
            left -= k
            if not slot[1]:
                self.slots.popleft()
        return data

    def unread(self, data: bytes) -> None:
        """Put back bytes just taken (splice moved fewer than it read)."""
        for i in range(len(data) - (len(data) - 1) % PAGE - 1 if data else 0, -1, -PAGE):
            self.slots.appendleft([0, len(data[i:i + PAGE])])
        self.buf[0:0] = data


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
    if size // PAGE < len(pipe.slots):
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
        return p.take(n)

    def write(self, data: bytes) -> int:
        if not self.write_end:
            raise KernelError(E.EBADF)
        p = self.pipe
        if p.readers == 0:
            raise KernelError(E.EPIPE)
        # a write of at most PIPE_BUF bytes fits one slot: it is all or nothing
        n = p.push(data) if data else 0
        if n == 0 and data:
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            raise WouldBlock(lambda: p.readers == 0 or not p.full, write=True)
        return n

    def poll(self) -> int:
        p = self.pipe
        if self.write_end:
            if p.readers == 0:
                return F.POLLOUT | F.POLLERR
            return 0 if p.full else F.POLLOUT
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
