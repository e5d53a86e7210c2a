"""Host memory behind guest memory: anonymous and file mappings made with the host's mmap.

Guest pages live in host mappings that Unicorn uses directly (uc_mem_map_ptr), so an
untouched guest page costs no host memory (a 4 GiB shadow-stack reservation is normal),
the kernel model reads and writes guest memory without going through Unicorn, and
MADV_DONTNEED / private file mappings behave as Linux's do because they *are* Linux's.
"""

from __future__ import annotations

import ctypes
import os


def _load_libc() -> ctypes.CDLL:
    """glibc's soname first: find_library runs `ldconfig -p` (a subprocess, a few ms of
    every start-up)."""
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library  # only here: 1.5 ms of every start-up

        return ctypes.CDLL(find_library("c"), use_errno=True)


libc = _load_libc()
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int,
                         ctypes.c_void_p]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]

PROT_READ = 1
PROT_WRITE = 2
MAP_SHARED = 0x01
MAP_PRIVATE = 0x02
MAP_FIXED = 0x10
MAP_ANONYMOUS = 0x20
MAP_NORESERVE = 0x4000
MADV_DONTNEED = 4
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MAP_FAILED = ctypes.c_void_p(-1).value
PAGE = 0x1000


class HostMemoryError(OSError):
    pass


def _check(ptr: int | None, what: str) -> int:
    if ptr is None or ptr == MAP_FAILED:
        err = ctypes.get_errno()
        raise HostMemoryError(err, f"host {what}: {os.strerror(err)}")
    return ptr


PROT_NONE = 0


def reserve(size: int) -> int:
    """Address space only: PROT_NONE, nothing committed."""
    return _check(libc.mmap(None, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                             -1, 0), "mmap (reservation)")


def reserve_at(addr: int, size: int) -> None:
    """Drop whatever is mapped at [addr, addr+size) and keep the range reserved."""
    _check(libc.mmap(addr, size, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0),
           "mmap (release)")


def map_anonymous_at(addr: int, size: int) -> None:
    """Fresh zeroed private memory at `addr` (inside a reservation)."""
    _check(libc.mmap(addr, size, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0),
           "mmap")


def map_anonymous(size: int, *, shared: bool = False) -> int:
    """Fresh zeroed host memory, reserved lazily (MAP_NORESERVE)."""
    flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE
    return _check(libc.mmap(None, size, PROT_READ | PROT_WRITE, flags, -1, 0), "mmap")


def map_file_into(addr: int, fd: int, size: int, offset: int, *, shared: bool,
                  writable: bool) -> None:
    """Replace host memory at `addr` with a mapping of a file (same address)."""
    prot = PROT_READ | (PROT_WRITE if writable else 0)
    flags = (MAP_SHARED if shared else MAP_PRIVATE) | MAP_FIXED
    _check(libc.mmap(addr, size, prot, flags, fd, offset), "mmap of a file")


def unmap(addr: int, size: int) -> None:
    if size:
        libc.munmap(addr, size)


def discard(addr: int, size: int) -> None:
    """MADV_DONTNEED: anonymous pages read back as zero, private file pages as the file."""
    if size:
        libc.madvise(addr, size, MADV_DONTNEED)


def move(addr: int, old_size: int, new_size: int) -> int:
    """Grow or shrink host memory, moving it when needed (contents kept)."""
    return _check(libc.mremap(addr, old_size, new_size, MREMAP_MAYMOVE, None), "mremap")


def view(addr: int, size: int) -> memoryview:
    """A writable byte view of host memory."""
    return memoryview((ctypes.c_char * size).from_address(addr)).cast("B")


def copy(dst: int, src: int, size: int) -> None:
    ctypes.memmove(dst, src, size)


HUGE = 2 << 20
MADV_HUGEPAGE = 14


def copy_fresh(dst: int, src: int, size: int) -> None:
    """Copy into never-touched memory. Most of the cost of a large copy is faulting the
    destination in 4 KiB at a time; where the run covers whole 2 MiB pages, ask for
    transparent huge pages first (THP in `madvise` mode, the usual default). Only runs
    that are resident in full get this, so sparse memory never grows to 2 MiB pages."""
    lo = (dst + HUGE - 1) & ~(HUGE - 1)
    hi = (dst + size) & ~(HUGE - 1)
    if hi > lo:
        libc.madvise(lo, hi - lo, MADV_HUGEPAGE)  # advice: failure changes nothing
    ctypes.memmove(dst, src, size)


def resident_pages(addr: int, size: int) -> list[tuple[int, int]]:
    """Offsets and lengths of the runs of pages that hold data (never-touched pages don't).

    Used to copy an address space at fork in proportion to what was touched, not to
    what was reserved.
    """
    npages = (size + PAGE - 1) // PAGE
    if npages == 0:
        return []
    vec = (ctypes.c_ubyte * npages)()
    if libc.mincore(addr, npages * PAGE, vec) != 0:
        return [(0, size)]
    runs: list[tuple[int, int]] = []
    raw = bytes(vec)
    i = 0
    while i < npages:
        if raw[i] & 1:
            j = i
            while j < npages and raw[j] & 1:
                j += 1
            runs.append((i * PAGE, (j - i) * PAGE))
            i = j
        else:
            nxt = raw.find(b"\x01", i)
            # mincore sets only bit 0; any other set byte is handled by the slow loop
            i = npages if nxt < 0 else nxt
    return runs
