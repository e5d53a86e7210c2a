"""System information: uname, sysinfo, getrandom."""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.profile import NODENAME, UTS_VERSION

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

def sys_uname(k: Kernel, t: Task, buf: int) -> int:
    fields = ["Linux", NODENAME, k.profile.uname_release, UTS_VERSION, "x86_64", "(none)"]
    raw = b"".join(f.encode()[:64].ljust(R.UTS_FIELD, b"\0") for f in fields)
    t.mm.write(buf, raw)
    return 0


# struct sysinfo: uptime, loads[3], totalram, freeram, sharedram, bufferram, totalswap,
# freeswap, procs (u16) + padding, totalhigh, freehigh, mem_unit (u32), padding: 112 bytes
_SYSINFO = struct.Struct("<q3Q6QH6xQQI4x")


def sys_sysinfo(k: Kernel, t: Task, buf: int) -> int:
    """The machine's memory as the host has it (programs size their buffers from it)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = os.sysconf("SC_PHYS_PAGES") * page
    free = os.sysconf("SC_AVPHYS_PAGES") * page
    up = k.monotonic_ns() // 10**9
    raw = _SYSINFO.pack(up, 0, 0, 0, total, free, 0, 0, 0, 0,
                        min(len(k.processes), 0xFFFF), 0, 0, 1)
    t.mm.write(buf, raw)
    return 0


def sys_getrandom(k: Kernel, t: Task, buf: int, count: int, flags: int) -> int:
    if flags & ~(R.GRND_NONBLOCK | R.GRND_RANDOM | R.GRND_INSECURE):
        raise KernelError(E.EINVAL)
    if flags & R.GRND_INSECURE and flags & R.GRND_RANDOM:
        raise KernelError(E.EINVAL)
    count = min(count, 0x1FFFFFF)
    t.mm.write(buf, k.random_bytes(count))
    return count
