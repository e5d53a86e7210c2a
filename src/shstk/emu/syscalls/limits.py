"""Resource limits and usage: getrlimit/setrlimit/prlimit64, getrusage."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.kernel.errors import KernelError
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task


def _rlim_pair(proc: Process, resource: int) -> list[int]:
    """do_prlimit(): the resource is an unsigned int below RLIM_NLIMITS."""
    if not 0 <= resource < R.RLIM_NLIMITS:
        raise KernelError(E.EINVAL)
    return proc.rlimits[resource]


def sys_prlimit64(k: Kernel, t: Task, pid: int, resource: int, new: int, old: int) -> int:
    target = t.proc if i32(pid) == 0 else k.processes.get(i32(pid))
    if target is None:
        raise KernelError(E.ESRCH)
    cur = _rlim_pair(target, resource)
    new_pair = None
    if new:
        soft, hard = struct.unpack("<QQ", t.mm.read(new, 16))
        if soft > hard:
            raise KernelError(E.EINVAL)
        if hard > cur[1] and target.euid != 0:
            raise KernelError(E.EPERM)
        if resource == R.RLIMIT_NOFILE and hard > 1048576:
            raise KernelError(E.EPERM)
        new_pair = [soft, hard]
    if old:
        t.mm.write(old, struct.pack("<QQ", *cur))
    if new_pair is not None:
        target.rlimits[resource] = new_pair
        if resource == R.RLIMIT_NOFILE:
            target.files.limit = min(new_pair[0], 65536)
    return 0


def sys_getrlimit(k: Kernel, t: Task, resource: int, rlim: int) -> int:
    t.mm.write(rlim, struct.pack("<QQ", *_rlim_pair(t.proc, resource)))
    return 0


def sys_setrlimit(k: Kernel, t: Task, resource: int, rlim: int) -> int:
    return sys_prlimit64(k, t, 0, resource, rlim, 0)


def sys_getrusage(k: Kernel, t: Task, who: int, addr: int) -> int:
    if i32(who) not in (R.RUSAGE_SELF, R.RUSAGE_CHILDREN, R.RUSAGE_THREAD):
        raise KernelError(E.EINVAL)
    buf = bytearray(R.RUSAGE_SIZE)
    ns = {R.RUSAGE_SELF: t.proc.cpu_ns(), R.RUSAGE_THREAD: t.cpu_ns,
          R.RUSAGE_CHILDREN: t.proc.child_cpu_ns}[i32(who)]
    struct.pack_into("<qq", buf, 0, ns // 10**9, (ns % 10**9) // 1000)
    t.mm.write(addr, bytes(buf))
    return 0
