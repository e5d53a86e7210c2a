"""System-call entry: from the SYSCALL instruction to a handler and back.

Handlers take `(kernel, task, *args)`, one argument per kind in the table row, decoded
from the registers with Linux's width and sign rules (kinds.py). They return the result
(a negative errno for errors), raise `KernelError(errno)`, raise `Blocked` to sleep, or
return NO_RESULT when they set the registers themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi.syscalls import NAMES
from shstk.emu.cpu.faults import CpuFault
from shstk.emu.kernel import inotify
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT, Blocked
from shstk.emu.syscalls import notify, strace
from shstk.emu.syscalls.table import TABLE

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import Engine
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

MASK64 = (1 << 64) - 1


def dispatch(k: Kernel, t: Task, cpu: Engine) -> None:
    args = cpu.enter_syscall()  # with RCX and R11 as SYSCALL leaves them
    nr = args[0]
    entry = TABLE.get(nr)
    if entry is None or entry.handler is None:
        error = -(entry.errno if entry is not None else E.ENOSYS)
        if entry is None or not entry.quiet:
            _unknown(k, nr)
        if k.strace is not None:
            strace.trace(k, t, entry, nr, args[1:], error)
        cpu.set_reg("rax", error)
        return
    t.restart = (nr, entry.restart)
    t.orig_rax = nr
    call_args = args[1:1 + len(entry.args)]  # the raw registers, as strace shows them
    pre = None
    if k.strace is not None:
        pre = strace.before(k, t, entry, call_args)
    decoded = [d(v) for d, v in zip(entry.decoders, call_args, strict=True)]
    change = notify.before(k, t, entry.name, decoded) if inotify.watching(k) else None
    result: object
    try:
        result = entry.handler.resolve()(k, t, *decoded)
    except KernelError as exc:
        result = -exc.errno
    except Blocked as b:
        if pre is not None:
            t.strace_pending = (entry, call_args, pre)
        k.block(t, b)
        return
    except CpuFault:
        result = -E.EFAULT
    except (OverflowError, ValueError) as exc:
        # a value the decode let through and a host call refused: a bug to fix where the
        # argument is decoded, reported once; the guest sees what Linux gives for a value
        # out of range
        k.say_once(f"overflow:{nr}", f"system call {nr} ({entry.name}): argument out of "
                   f"range for the host ({exc}): returning -EINVAL")
        result = -E.EINVAL
    if result is NO_RESULT:
        if k.strace is not None:
            strace.after(k, t, entry, call_args, pre, None)
        return
    assert isinstance(result, int)
    if change is not None:
        notify.after(k, t, change, result)
    if k.strace is not None:
        strace.after(k, t, entry, call_args, pre, result)
    cpu.set_reg("rax", result & MASK64)


def _unknown(k: Kernel, nr: int) -> None:
    name = NAMES.get(nr, f"syscall_{nr}")
    entry = TABLE.get(nr)
    why = entry.note if entry is not None and entry.note else "not implemented"
    errname = E.NAMES.get(entry.errno if entry is not None else E.ENOSYS, "ENOSYS")
    k.say_once(f"nosys:{nr}", f"system call {nr} ({name}) {why}: returning -{errname}")
