"""userfaultfd (fs/userfaultfd.c, mm/userfaultfd.c): MISSING-mode registration of
anonymous (and shadow-stack) ranges, faults reported as `uffd_msg` and resolved by
UFFDIO_COPY, UFFDIO_ZEROPAGE or UFFDIO_WAKE.

A registered VMA carries VM_UFFD_MISSING, as in Linux. A page of it that has no page yet
(never touched, or dropped by MADV_DONTNEED) is a VM_UFFD_ABSENT piece: no page-table
entry and no shadow-stack region, so every access to it - an ordinary load or store, a
CALL/RET/WRSS shadow-stack access - faults, and the fault path (`user_fault`) queues a
message and puts the thread to sleep until the page is there (or a WAKE asks it to
retry), instead of sending SIGSEGV. Without UFFD_FEATURE_EVENT_FORK a fork child gets
plain memory (mmfork.py clears the flags), and exec drops the address space.
"""

from __future__ import annotations

import stat as st
import struct
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import shstk as A
from shstk.emu.kernel import hostmem
from shstk.emu.kernel.entry import NO_RESULT, Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult, WouldBlock
from shstk.emu.kernel.task import Wait
from shstk.emu.kernel.vma import PAGE, VM_SHADOW_STACK, VM_UFFD_ABSENT, VM_UFFD_MISSING

if TYPE_CHECKING:
    from shstk.emu.cpu.faults import CpuFault
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.mm import AddressSpace
    from shstk.emu.kernel.task import Task

UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1
UFFD_EVENT_PAGEFAULT = 0x12
UFFD_PAGEFAULT_FLAG_WRITE = 1
UFFDIO_REGISTER_MODE_MISSING = 1
UFFDIO_REGISTER_MODE_WP = 2
UFFDIO_REGISTER_MODE_MINOR = 4
UFFDIO_COPY_MODE_DONTWAKE = 1
UFFDIO_ZEROPAGE_MODE_DONTWAKE = 1
_REGISTER, _UNREGISTER, _WAKE, _COPY, _ZEROPAGE, _API = 0x00, 0x01, 0x02, 0x03, 0x04, 0x3F


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (UFFD_API << 8) | nr


UFFDIO_API = _ioc(3, _API, 24)
UFFDIO_REGISTER = _ioc(3, _REGISTER, 32)
UFFDIO_UNREGISTER = _ioc(2, _UNREGISTER, 16)
UFFDIO_WAKE = _ioc(2, _WAKE, 16)
UFFDIO_COPY = _ioc(3, _COPY, 40)
UFFDIO_ZEROPAGE = _ioc(3, _ZEROPAGE, 32)
USERFAULTFD_IOC_NEW = (UFFD_API << 8) | 0x00  # /dev/userfaultfd: _IO(0xAA, 0x00)
API_IOCTLS = (1 << _REGISTER) | (1 << _UNREGISTER) | (1 << _API)
RANGE_IOCTLS = (1 << _WAKE) | (1 << _COPY) | (1 << _ZEROPAGE)
MSG_SIZE = 32


@dataclass
class _Fault:
    """A page fault waiting for a userfaultfd reader to resolve it."""

    addr: int  # page address
    write: bool
    tid: int
    read: bool = False  # handed to the reader already


class Userfaultfd(OpenFile):
    """The `[userfaultfd]` anonymous file: one context for one address space."""

    kind = "anon_inode"

    def __init__(self, mm: AddressSpace, flags: int) -> None:
        super().__init__("anon_inode:[userfaultfd]", F.O_RDONLY | (flags & F.O_NONBLOCK))
        self.mm = mm
        self.api_done = False
        self.ranges: list[tuple[int, int]] = []
        self.faults: deque[_Fault] = deque()
        self.wakes = 0  # UFFDIO_WAKE generation: sleepers retry their access
        _contexts.setdefault(mm, []).append(self)

    # --- the file --------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        if not self.api_done:
            raise KernelError(E.EINVAL)
        if n < MSG_SIZE:
            raise KernelError(E.EINVAL)
        pending = [f for f in self.faults if not f.read]
        if not pending:
            if self.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            raise WouldBlock(lambda: any(not f.read for f in self.faults))
        f = pending[0]
        f.read = True
        flags = UFFD_PAGEFAULT_FLAG_WRITE if f.write else 0
        return struct.pack("<BBHIQQI4x", UFFD_EVENT_PAGEFAULT, 0, 0, 0, flags, f.addr, 0)

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        return F.POLLIN if any(not f.read for f in self.faults) else 0

    def stat(self) -> StatResult:
        return StatResult(0xD, 0, st.S_IFREG | 0o600, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)

    def on_last_close(self) -> None:
        """userfaultfd_release(): the ranges go back to ordinary memory, sleepers retry."""
        for start, end in list(self.ranges):
            _unregister(self.mm, start, end)
        self.ranges.clear()
        self.faults.clear()
        self.wakes += 1
        ctxs = _contexts.get(self.mm)
        if ctxs is not None and self in ctxs:
            ctxs.remove(self)

    # --- the ioctls --------------------------------------------------------------------
    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        mm = self.mm
        if request == UFFDIO_API:
            api, features, _ioctls = struct.unpack("<QQQ", mm.read(arg, 24))
            if self.api_done or api != UFFD_API or features:
                if api != UFFD_API or features:
                    mm.write(arg + 8, bytes(8))
                raise KernelError(E.EINVAL)
            self.api_done = True
            return 0, struct.pack("<QQQ", UFFD_API, 0, API_IOCTLS)
        if not self.api_done:
            raise KernelError(E.EINVAL)
        if request == UFFDIO_REGISTER:
            start, length, mode, _i = struct.unpack("<QQQQ", mm.read(arg, 32))
            self._register(start, length, mode)
            mm.write(arg + 24, struct.pack("<Q", RANGE_IOCTLS))
            return 0, None
        if request == UFFDIO_UNREGISTER:
            start, length = struct.unpack("<QQ", mm.read(arg, 16))
            end = _check_range(start, length)
            _unregister(mm, start, end)
            self.ranges = [(s, e) for s, e in self.ranges if e <= start or s >= end]
            self.wakes += 1
            return 0, None
        if request == UFFDIO_WAKE:
            start, length = struct.unpack("<QQ", mm.read(arg, 16))
            _check_range(start, length)
            self._wake(start, start + length)
            return 0, None
        if request == UFFDIO_COPY:
            dst, src, length, mode, _c = struct.unpack("<QQQQq", mm.read(arg, 40))
            end = _check_range(dst, length)
            if mode & ~UFFDIO_COPY_MODE_DONTWAKE:
                raise KernelError(E.EINVAL)
            data = mm.read(src, length)
            done = self._fill(dst, end, data)
            mm.write(arg + 32, struct.pack("<q", done))
            if not mode & UFFDIO_COPY_MODE_DONTWAKE:
                self._wake(dst, end)
            return 0, None
        if request == UFFDIO_ZEROPAGE:
            start, length, mode, _z = struct.unpack("<QQQq", mm.read(arg, 32))
            end = _check_range(start, length)
            if mode & ~UFFDIO_ZEROPAGE_MODE_DONTWAKE:
                raise KernelError(E.EINVAL)
            done = self._fill(start, end, None)
            mm.write(arg + 24, struct.pack("<q", done))
            if not mode & UFFDIO_ZEROPAGE_MODE_DONTWAKE:
                self._wake(start, end)
            return 0, None
        if request in (F.FIOCLEX, F.FIONCLEX, F.FIONBIO):
            return 0, None
        raise KernelError(E.EINVAL)

    def _register(self, start: int, length: int, mode: int) -> None:
        mm = self.mm
        if not mode or mode & ~(UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP
                                | UFFDIO_REGISTER_MODE_MINOR):
            raise KernelError(E.EINVAL)
        if mode != UFFDIO_REGISTER_MODE_MISSING:
            raise KernelError(E.EINVAL)  # WP and MINOR modes are not emulated
        end = _check_range(start, length)
        if not mm.is_mapped(start, end):
            raise KernelError(E.EINVAL)
        for v in mm.overlapping(start, end):
            if v.file is not None or v.block.shared:
                raise KernelError(E.EINVAL)  # only private anonymous memory here
            if v.flags & VM_UFFD_MISSING and _owner(mm, v.start) not in (None, self):
                raise KernelError(E.EBUSY)
        # the pages that have no page yet become absent
        absent: list[tuple[int, int]] = []
        for v in mm.overlapping(start, end):
            lo, hi = max(v.start, start), min(v.end, end)
            present = hostmem.resident_pages(v.host + (lo - v.start), hi - lo)
            absent += _holes(lo, hi, [(lo + a, lo + a + n) for a, n in present])
        mm.set_flags(start, end, VM_UFFD_MISSING)
        for lo, hi in absent:
            mm.set_flags(lo, hi, VM_UFFD_ABSENT)
        self.ranges.append((start, end))

    def _fill(self, start: int, end: int, data: bytes | None) -> int:
        """Install pages in [start, end): EEXIST if one is there already."""
        mm = self.mm
        for v in mm.overlapping(start, end):
            if not v.flags & VM_UFFD_MISSING:
                raise KernelError(E.ENOENT)
            if not v.flags & VM_UFFD_ABSENT:
                raise KernelError(E.EEXIST)
        if not mm.is_mapped(start, end):
            raise KernelError(E.ENOENT)
        for v in mm.overlapping(start, end):
            lo, hi = max(v.start, start), min(v.end, end)
            view = v.view()
            off = lo - v.start
            if data is None:
                view[off:off + hi - lo] = bytes(hi - lo)
            else:
                view[off:off + hi - lo] = data[lo - start:hi - start]
        mm.set_flags(start, end, 0, VM_UFFD_ABSENT)
        return end - start

    def _wake(self, start: int, end: int) -> None:
        self.faults = deque(f for f in self.faults if not start <= f.addr < end)
        self.wakes += 1


_contexts: weakref.WeakKeyDictionary[AddressSpace, list[Userfaultfd]] = \
    weakref.WeakKeyDictionary()


def _check_range(start: int, length: int) -> int:
    if start % PAGE or length % PAGE or not length or start + length > (1 << 47):
        raise KernelError(E.EINVAL)
    return start + length


def _holes(lo: int, hi: int, present: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, pos = [], lo
    for a, b in sorted(present):
        a, b = max(a, lo), min(b, hi)
        if a > pos:
            out.append((pos, a))
        pos = max(pos, b)
    if pos < hi:
        out.append((pos, hi))
    return out


def _owner(mm: AddressSpace, addr: int) -> Userfaultfd | None:
    for ctx in _contexts.get(mm, []):
        if any(s <= addr < e for s, e in ctx.ranges):
            return ctx
    return None


def _unregister(mm: AddressSpace, start: int, end: int) -> None:
    if mm.overlapping(start, end):
        mm.set_flags(start, end, 0, VM_UFFD_MISSING | VM_UFFD_ABSENT)


def user_fault(k: Kernel, t: Task, fault: CpuFault) -> bool:
    """handle_userfault(): a #PF on an absent page of a registered range puts the thread
    to sleep until the page is filled (or a WAKE); False for any other fault."""
    if fault.trap != A.X86_TRAP_PF:
        return False
    mm = t.mm
    v = mm.find(fault.addr)
    if v is None or not v.flags & VM_UFFD_ABSENT:
        return False
    page = fault.addr & ~(PAGE - 1)
    ctx = _owner(mm, page)
    if ctx is None:
        return False
    write = bool(fault.error_code & A.X86_PF_WRITE) or bool(v.flags & VM_SHADOW_STACK
                                                            and fault.error_code
                                                            & A.X86_PF_SHSTK)
    if not any(f.addr == page and f.tid == t.tid for f in ctx.faults):
        ctx.faults.append(_Fault(page, write, t.tid))
    t.cpu.rip = fault.rip  # the access is retried once the thread wakes
    generation = ctx.wakes

    def ready() -> bool:
        w = mm.find(page)
        return w is None or not w.flags & VM_UFFD_ABSENT or ctx.wakes != generation

    def retry() -> int:
        # not a system call: the registers stay as the fault left them (NO_RESULT)
        return cast(int, NO_RESULT)

    k.block(t, Blocked(Wait(ready, "userfaultfd", interruptible=False), retry))
    return True


__all__ = ["USERFAULTFD_IOC_NEW", "Userfaultfd", "user_fault"]
