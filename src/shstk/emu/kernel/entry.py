"""The kernel's side of system-call entry and of a run's end (Linux: arch/x86/entry).

The kernel never imports the system-call layer. `run` builds a machine and hands the
kernel a `SyscallLayer` (the table's dispatcher and the strace printer), as Linux's entry
code calls through `sys_call_table`. The records here are what handlers and the kernel
share at run time: the sleep request (`Blocked`), the "registers already set" marker
(`NO_RESULT`) and how the first process ended (`Death`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shstk.emu.cpu.faults import CpuFault
    from shstk.emu.kernel.crash import CrashSnapshot
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.signal import SigInfo
    from shstk.emu.kernel.task import Process, Task, Wait

NO_RESULT = object()  # a handler that set the registers itself (sigreturn, execve)


class Blocked(Exception):
    """Raised by a handler that must sleep; `retry` completes the call once woken."""

    def __init__(self, wait: Wait, retry: Callable[[], int]) -> None:
        super().__init__()
        self.wait = wait
        self.retry = retry


@dataclass
class Death:
    """How the initial process ended, for the run's exit status and report."""

    status: int  # wait status
    signal: int = 0
    info: SigInfo | None = None
    task: Task | None = None
    fault: CpuFault | None = None
    regs: dict[str, int] = field(default_factory=dict)
    snapshot: CrashSnapshot | None = None


class RunLimit(Exception):
    """--max-insns or --timeout ended the run."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class Debugger(Protocol):
    """A debugger attached to the run (`shstk run --gdb`; set by `run`)."""

    def fault(self, t: Task, info: SigInfo) -> bool:
        """A fault signal is about to be forced on `t` (at the faulting instruction,
        before delivery, as a native debugger sees it). False: discard it."""
        ...

    def new_engine(self, proc: Process) -> None:
        """`proc` has a new CPU (an exec): keep breakpoints and steps on it."""
        ...


class SyscallLayer(Protocol):
    """What the kernel needs of the system-call layer (handed in by `run`)."""

    def dispatch(self, k: Kernel, t: Task) -> None:
        """Decode the SYSCALL that `t` just executed, run its handler, set RAX."""

    def dispatch_ia32(self, k: Kernel, t: Task) -> None:
        """The same for `int $0x80` (the ia32 table, EBX..EBP arguments)."""

    def trace_resumed(self, k: Kernel, t: Task, result: int | None, *,
                      interrupted: bool = False) -> None:
        """strace: a sleeping call of `t` completed (or was interrupted)."""

    def trace_signal(self, k: Kernel, t: Task, info: SigInfo, rip: int | None) -> None:
        """strace: the `--- SIGxxx {...} ---` line."""

    def trace_execve(self, k: Kernel, path: str, argv: list[bytes],
                     envp: list[bytes]) -> None:
        """strace: the initial execve line."""


class NoSyscalls:
    """A kernel without a system-call layer (in-process kernel tests): every call ENOSYS."""

    def dispatch(self, k: Kernel, t: Task) -> None:
        t.cpu.set_reg("rax", (1 << 64) - 38)

    def dispatch_ia32(self, k: Kernel, t: Task) -> None:
        t.cpu.set_reg("rax", (1 << 64) - 38)

    def trace_resumed(self, k: Kernel, t: Task, result: int | None, *,
                      interrupted: bool = False) -> None:
        pass

    def trace_signal(self, k: Kernel, t: Task, info: SigInfo, rip: int | None) -> None:
        pass

    def trace_execve(self, k: Kernel, path: str, argv: list[bytes],
                     envp: list[bytes]) -> None:
        pass
