"""The system-call layer as the kernel sees it (emu/kernel/entry.py `SyscallLayer`).

`run` hands `SYSCALLS` to the kernel when it builds a machine: the kernel reaches the
table and the strace printer only through it, never by importing this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.emu.syscalls import strace
from shstk.emu.syscalls.dispatch import dispatch
from shstk.emu.syscalls.spec import Handler

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.signal import SigInfo
    from shstk.emu.kernel.task import Task


# int $0x80 from 64-bit code is rare: its module is imported on first use
_IA32 = Handler("ia32", "dispatch_ia32")


class TableSyscalls:
    """Dispatch through the table; trace with strace.py."""

    def dispatch(self, k: Kernel, t: Task) -> None:
        dispatch(k, t, t.cpu)

    def dispatch_ia32(self, k: Kernel, t: Task) -> None:
        _IA32.resolve()(k, t)

    def trace_resumed(self, k: Kernel, t: Task, result: int | None, *,
                      interrupted: bool = False) -> None:
        strace.resumed(k, t, result, interrupted=interrupted)

    def trace_signal(self, k: Kernel, t: Task, info: SigInfo, rip: int | None) -> None:
        strace.signal_line(k, t, info, rip)

    def trace_execve(self, k: Kernel, path: str, argv: list[bytes],
                     envp: list[bytes]) -> None:
        strace.execve_line(k, path, argv, envp)


SYSCALLS = TableSyscalls()
