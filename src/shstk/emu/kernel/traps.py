"""Faults: the signal Linux sends for an exception (arch/x86/kernel/traps.c, cet.c, fault.c;
SPEC.md §11, §14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.kernel import userfaultfd
from shstk.emu.kernel.signal import SigInfo

if TYPE_CHECKING:
    from shstk.emu.cpu.faults import CpuFault
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def handle_fault(k: Kernel, t: Task, fault: CpuFault) -> None:
    """An instruction faulted: the signal Linux would send (SPEC.md §11, §14)."""
    if userfaultfd.user_fault(k, t, fault):
        return  # the thread sleeps until a userfaultfd reader resolves the page
    info = fault_siginfo(k, t, fault)
    if info is None:
        return
    t.cpu.rip = fault.rip
    t.last_fault = fault
    if k.debugger is not None and not k.debugger.fault(t, info):
        return  # the debugger resumed without the signal
    k.signals.force(t, info)

def fault_siginfo(k: Kernel, t: Task, fault: CpuFault) -> SigInfo | None:
    trap = fault.trap
    if trap == A.X86_TRAP_PF:
        v = t.mm.find(fault.addr)
        eof = v.eof_start() if v is not None else None
        if eof is not None and fault.addr >= eof and not fault.error_code & A.X86_PF_SHSTK:
            # a page of a file mapping wholly past the end of the file
            return SigInfo(S.SIGBUS, S.BUS_ADRERR, addr=fault.addr, trapno=trap,
                           error_code=fault.error_code, fault=fault)
        code = S.SEGV_ACCERR if v is not None else S.SEGV_MAPERR
        return SigInfo(S.SIGSEGV, code, addr=fault.addr, trapno=trap,
                       error_code=fault.error_code, fault=fault)
    if trap == A.X86_TRAP_CP:
        # cet.c: SIGSEGV, SEGV_CPERR, si_addr 0; err and trapno in the frame
        return SigInfo(S.SIGSEGV, S.SEGV_CPERR, addr=0, trapno=trap,
                       error_code=fault.error_code & 0x7FFF, fault=fault)
    if trap == A.X86_TRAP_UD:
        return SigInfo(S.SIGILL, S.ILL_ILLOPN, addr=fault.rip, trapno=trap, fault=fault)
    if trap == A.X86_TRAP_DE:
        return SigInfo(S.SIGFPE, S.FPE_INTDIV, addr=fault.rip, trapno=trap, fault=fault)
    if trap == A.X86_TRAP_BP:
        return SigInfo(S.SIGTRAP, S.SI_KERNEL, trapno=trap, fault=fault)
    if trap in (16, 19):
        return SigInfo(S.SIGFPE, 0, addr=fault.rip, trapno=trap, fault=fault)
    if trap == 0x80:
        # int $0x80 from 64-bit code enters the ia32 system-call table (RIP is past it)
        t.cpu.rip = fault.rip
        k.syscalls.dispatch_ia32(k, t)
        return None
    return SigInfo(S.SIGSEGV, S.SI_KERNEL, addr=0, trapno=trap, fault=fault)
