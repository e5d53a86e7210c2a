"""Older and rarer calls answered with the newer machinery: utime and futimesat (as
utimensat), the old getdents record format, sched_rr_get_interval and
sched_getattr/sched_setattr (every task is SCHED_OTHER, nice 0)."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.syscalls.fs_attr import _set_times, _times_node
from shstk.emu.syscalls.fs_dir import fill_dirents

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

SCHED_OTHER, SCHED_BATCH, SCHED_IDLE = 0, 3, 5
SCHED_ATTR_SIZE_VER0, SCHED_ATTR_SIZE = 48, 56
PAGE_SIZE = 4096


def sys_utime(k: Kernel, t: Task, path_addr: int, times_addr: int) -> int:
    """utime(path, struct utimbuf *): whole seconds, NULL for now."""
    times = None
    if times_addr:
        actime, modtime = struct.unpack("<qq", t.mm.read(times_addr, 16))
        times = ((actime, 0), (modtime, 0))
    return _set_times(_times_node(k, t, F.AT_FDCWD, path_addr, 0), times)


def sys_futimesat(k: Kernel, t: Task, dirfd: int, path_addr: int, times_addr: int) -> int:
    """futimesat(dirfd, path, struct timeval[2]): utimes relative to a directory."""
    times = None
    if times_addr:
        a_s, a_us, m_s, m_us = struct.unpack("<qqqq", t.mm.read(times_addr, 32))
        if not (0 <= a_us < 10**6 and 0 <= m_us < 10**6):
            raise KernelError(E.EINVAL)
        times = ((a_s, a_us * 1000), (m_s, m_us * 1000))
    return _set_times(_times_node(k, t, dirfd, path_addr, 0), times)


def _linux_dirent(ino: int, off: int, dtype: int, raw: bytes) -> bytes:
    """struct linux_dirent (the old getdents): d_type in the record's last byte."""
    reclen = (18 + len(raw) + 2 + 7) & ~7
    rec = bytearray(struct.pack("<QqH", ino, off, reclen) + raw)
    rec = rec.ljust(reclen, b"\0")
    rec[reclen - 1] = dtype
    return bytes(rec)


def sys_getdents(k: Kernel, t: Task, fd: int, buf: int, count: int) -> int:
    return fill_dirents(t, fd, buf, count, _linux_dirent)


def _sched_target(k: Kernel, t: Task, pid: int) -> None:
    if pid < 0:
        raise KernelError(E.EINVAL)
    if pid and pid not in k.tasks:
        raise KernelError(E.ESRCH)


def sys_sched_rr_get_interval(k: Kernel, t: Task, pid: int, tp: int) -> int:
    _sched_target(k, t, pid)
    t.mm.write(tp, struct.pack("<qq", 0, 0))  # SCHED_OTHER has no round-robin slice
    return 0


def sys_sched_getattr(k: Kernel, t: Task, pid: int, attr: int, size: int, flags: int) -> int:
    if not attr or pid < 0 or flags or size > PAGE_SIZE or size < SCHED_ATTR_SIZE_VER0:
        raise KernelError(E.EINVAL)
    _sched_target(k, t, pid)
    n = min(size, SCHED_ATTR_SIZE)
    data = struct.pack("<IIQiIQQQII", n, SCHED_OTHER, 0, 0, 0, 0, 0, 0, 0, 0)
    t.mm.write(attr, data[:n])
    return 0


def sys_sched_setattr(k: Kernel, t: Task, pid: int, attr: int, flags: int) -> int:
    if not attr or pid < 0 or flags:
        raise KernelError(E.EINVAL)
    size = struct.unpack("<I", t.mm.read(attr, 4))[0] or SCHED_ATTR_SIZE_VER0
    if size < SCHED_ATTR_SIZE_VER0 or size > PAGE_SIZE:
        t.mm.write(attr, struct.pack("<I", SCHED_ATTR_SIZE))
        raise KernelError(E.E2BIG)
    raw = t.mm.read(attr, size)
    if any(raw[SCHED_ATTR_SIZE:]):
        t.mm.write(attr, struct.pack("<I", SCHED_ATTR_SIZE))
        raise KernelError(E.E2BIG)
    _size, policy, _flags, nice = struct.unpack_from("<IIQi", raw)
    _sched_target(k, t, pid)
    if policy not in (SCHED_OTHER, SCHED_BATCH, SCHED_IDLE):
        raise KernelError(E.EPERM)  # real-time and deadline classes: not granted
    if nice != 0:
        raise KernelError(E.EPERM)  # priorities are not emulated (as setpriority)
    return 0
