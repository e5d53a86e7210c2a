"""Named pipes (fs/pipe.c fifo_open): a FIFO made by mknod/mkfifo inside an --rw folder is
a node on the host, but its buffer is a kernel pipe, keyed by the node's identity, so that
opening, blocking and EOF follow the guest's scheduler."""

from __future__ import annotations

from collections.abc import Callable

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.pipe import Pipe, PipeEnd


class Fifo:
    def __init__(self, ino: int) -> None:
        self.pipe = Pipe()
        self.pipe.ino = ino
        self.r_opens = 0  # pipe->r_counter: how many times a reader opened it
        self.w_opens = 0


class FifoTable:
    def __init__(self) -> None:
        self.fifos: dict[tuple[int, int], Fifo] = {}

    def open(self, key: tuple[int, int], path: str, flags: int
             ) -> tuple[PipeEnd, Callable[[], bool] | None]:
        """A new end of the FIFO `key` (st_dev, st_ino), and what it waits for: a reader
        waits for a writer to open it, a writer for a reader (unless O_NONBLOCK)."""
        fifo = self.fifos.get(key)
        if fifo is None:
            fifo = self.fifos[key] = Fifo(key[1])
        pipe = fifo.pipe
        if pipe.readers == 0 and pipe.writers == 0:
            pipe.buf.clear()  # the last close freed the buffer
        acc = flags & F.O_ACCMODE
        nonblock = bool(flags & F.O_NONBLOCK)
        if acc == F.O_RDWR:
            raise KernelError(E.EINVAL)  # TODO: one file holding both ends
        if acc == F.O_RDONLY:
            end = PipeEnd(pipe, flags, write_end=False)
            fifo.r_opens += 1
            if nonblock or pipe.writers > 0:
                return _named(end, path), None
            start = fifo.w_opens
            return _named(end, path), lambda: fifo.w_opens != start
        if pipe.readers == 0 and nonblock:
            raise KernelError(E.ENXIO)
        end = PipeEnd(pipe, flags, write_end=True)
        fifo.w_opens += 1
        if pipe.readers > 0:
            return _named(end, path), None
        start = fifo.r_opens
        return _named(end, path), lambda: fifo.r_opens != start


def _named(end: PipeEnd, path: str) -> PipeEnd:
    end.path = path
    return end
