"""Physical memory of one guest machine: large host reservations carved into blocks, so
mapping and unmapping never touch the CPU's region list.

The CPU runs in its virtual-TLB mode: each guest page is translated through the address
space's VMA table to a physical address inside one of a few large "chunks". A chunk is
one `Engine.map_physical` region backed by a host reservation (PROT_NONE, costing
nothing) into which blocks are mapped with MAP_FIXED: anonymous memory, a memfd (shared
anonymous memory, which another process's machine can map too), or a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.cpu.intervals import Intervals
from shstk.emu.kernel import hostmem
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import Engine

PAGE = 0x1000
# A process's first chunk is small and each further one twice the last (up to 256 GiB),
# so a process costs host address space in proportion to what it maps: a fork loop of
# thousands of processes fits in the host's 128 TiB.
FIRST_CHUNK = 1 << 30
MAX_CHUNK = 1 << 38
GRAIN = 1 << 30
PHYS_BASE = 1 << 32  # physical addresses start here (0 stays unmapped, for clarity)


class _Free:
    """A free physical range of a chunk."""

    __slots__ = ("end", "start")

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end


@dataclass
class _Chunk:
    """One host allocation backing a range of physical guest memory."""

    phys: int
    size: int
    host: int
    # the free ranges, in address order: thousands of them when thousands of thread
    # stacks were freed in another order than they were taken (a list was O(n) an edit)
    free: Intervals[_Free]


class PhysMemory:
    def __init__(self, cpu: Engine) -> None:
        self.cpu = cpu
        self.chunks: list[_Chunk] = []
        self._next_phys = PHYS_BASE
        self._chunk_size = FIRST_CHUNK

    def _new_chunk(self, size: int) -> _Chunk:
        size = max(self._chunk_size, (size + GRAIN - 1) // GRAIN * GRAIN)
        try:
            host = hostmem.reserve(size)
        except hostmem.HostMemoryError:
            # the host's address space is full: the guest is out of memory, not shstk
            raise KernelError(E.ENOMEM) from None
        self._chunk_size = min(MAX_CHUNK, max(self._chunk_size, size) * 2)
        phys = self._next_phys
        self._next_phys += size
        self.cpu.map_physical(phys, size, host)
        free: Intervals[_Free] = Intervals()
        free.insert(_Free(phys, phys + size))
        chunk = _Chunk(phys, size, host, free)
        self.chunks.append(chunk)
        return chunk

    def _take(self, chunk: _Chunk, size: int) -> int | None:
        """First fit, from the low end of the lowest range that is large enough."""
        for r in chunk.free:
            if r.end - r.start >= size:
                lo = r.start
                chunk.free.remove(r)
                if r.end - lo > size:
                    r.start = lo + size
                    chunk.free.insert(r)
                return lo
        return None

    def alloc(self, size: int) -> tuple[int, int]:
        """A free physical range of `size` bytes: (physical address, host address)."""
        size = (size + PAGE - 1) & ~(PAGE - 1)
        for chunk in self.chunks:
            phys = self._take(chunk, size)
            if phys is not None:
                return phys, chunk.host + (phys - chunk.phys)
        chunk = self._new_chunk(size)
        phys = self._take(chunk, size)
        assert phys is not None
        return phys, chunk.host + (phys - chunk.phys)

    def free(self, phys: int, size: int) -> None:
        """Give a range back: its host memory is released and the range reused."""
        size = (size + PAGE - 1) & ~(PAGE - 1)
        chunk = self._chunk_of(phys)
        hostmem.reserve_at(chunk.host + (phys - chunk.phys), size)
        free = chunk.free
        lo, hi = phys, phys + size
        after = free.starting_at(hi)
        if after is not None:  # merge with the range that follows
            free.remove(after)
            hi = after.end
        before = free.containing(lo - 1)
        if before is not None and before.end == lo:  # and with the one before
            before.end = hi  # its start, the key, stays
            return
        free.insert(_Free(lo, hi))

    def _chunk_of(self, phys: int) -> _Chunk:
        for chunk in self.chunks:
            if chunk.phys <= phys < chunk.phys + chunk.size:
                return chunk
        raise ValueError(f"physical address {phys:#x} is not ours")

    def close(self) -> None:
        for chunk in self.chunks:
            hostmem.unmap(chunk.host, chunk.size)
        self.chunks.clear()


def back_anonymous(host: int, size: int) -> None:
    try:
        hostmem.map_anonymous_at(host, size)
    except hostmem.HostMemoryError:
        raise KernelError(E.ENOMEM) from None  # the host's map count, as Linux's own


def back_fd(host: int, size: int, fd: int, offset: int, *, shared: bool,
            writable: bool) -> None:
    try:
        hostmem.map_file_into(host, fd, size, offset, shared=shared, writable=writable)
    except hostmem.HostMemoryError as exc:  # the host refuses to map this file so
        raise KernelError(exc.errno or E.ENOMEM) from None


def new_memfd(size: int, name: str = "shstk-shared") -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.ftruncate(fd, size)
    return fd
