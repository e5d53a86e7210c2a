"""pidfds: descriptors that refer to a process of the emulated machine (kernel/pid.c).

A pidfd is readable (POLLIN) once the process has exited, and also hung up (POLLHUP)
once it has been reaped, as pidfd_poll says. Only guest processes have pidfds: a pid
that is not one of this machine's is ESRCH, whatever the host has under that number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.eventfiles import AnonFile

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process


class PidFd(AnonFile):
    kind = "pidfd"
    name = "pidfd"

    def __init__(self, proc: Process, flags: int) -> None:
        super().__init__(flags)
        self.proc = proc

    def read(self, n: int) -> bytes:
        raise KernelError(E.EINVAL)

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        if getattr(self.proc, "reaped", False):
            return F.POLLIN | F.POLLRDNORM | F.POLLHUP
        if self.proc.zombie:
            return F.POLLIN | F.POLLRDNORM
        return 0

    def fdinfo(self) -> str:
        pid = -1 if getattr(self.proc, "reaped", False) else self.proc.pid
        return f"Pid:\t{pid}\nNSpid:\t{pid}\n"


def process_of(k: Kernel, pid: int) -> Process:
    """The live or zombie process `pid` of this machine (thread-group leaders only)."""
    if pid <= 0:
        raise KernelError(E.EINVAL)
    proc = k.processes.get(pid)
    if proc is None:
        if pid in k.tasks:
            raise KernelError(E.EINVAL)  # a thread that is not a group leader
        raise KernelError(E.ESRCH)
    return proc


def open_pidfd(k: Kernel, proc: Process, flags: int) -> PidFd:
    return PidFd(proc, flags & F.O_NONBLOCK)
