"""Named pipes (fs/pipe.c fifo_open): a FIFO made by mknod/mkfifo inside an --rw folder is
a node on the host, but its buffer is a kernel pipe, keyed by the node's identity, so that
opening, blocking and EOF follow the guest's scheduler.

fifo_open(): a reader counts as a reader while it waits for a writer (so an O_NONBLOCK
writer may open meanwhile), and gives the count back when a signal interrupts the wait;
O_RDWR opens both ends at once and never blocks.
"""

from __future__ import annotations

import weakref
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


class FifoRdwr(PipeEnd):
    """A FIFO opened O_RDWR: one file holding both ends (a reader and a writer)."""

    def __init__(self, pipe: Pipe, flags: int) -> None:
        super().__init__(pipe, flags, write_end=False)
        pipe.writers += 1

    def write(self, data: bytes) -> int:
        self.write_end = True
        try:
            return super().write(data)
        finally:
            self.write_end = False

    def poll(self) -> int:
        self.write_end = True
        out = super().poll() & ~F.POLLERR
        self.write_end = False
        return out | super().poll()

    def on_last_close(self) -> None:
        self.pipe.writers -= 1
        self.pipe.readers -= 1


class PendingEnd:
    """An end whose open sleeps: installed by the retry, or (interrupted, never
    installed) its count given back when the sleep is dropped."""

    def __init__(self, end: PipeEnd) -> None:
        self.end = end
        state = {"taken": False}
        self._state = state
        pipe, write_end = end.pipe, end.write_end

        def give_back() -> None:
            if not state["taken"]:
                if write_end:
                    pipe.writers -= 1
                else:
                    pipe.readers -= 1

        weakref.finalize(end, give_back)

    def take(self) -> PipeEnd:
        self._state["taken"] = True
        return self.end


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
            fifo.r_opens += 1
            fifo.w_opens += 1
            return _named(FifoRdwr(pipe, flags), path), None
        if acc == F.O_RDONLY:
            end = PipeEnd(pipe, flags, write_end=False)
            fifo.r_opens += 1
            if nonblock or pipe.writers > 0:
                return _named(end, path), None
            start = fifo.w_opens
            return _named(end, path), lambda: fifo.w_opens != start
        if acc != F.O_WRONLY:
            raise KernelError(E.EINVAL)
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
