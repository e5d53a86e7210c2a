"""What the CPU reports to the kernel when an instruction cannot complete."""

from __future__ import annotations

from dataclasses import dataclass, field

from shstk.abi import shstk as A


@dataclass(slots=True)
class CpuFault(Exception):
    """An x86 exception raised by a user-mode instruction.

    `trap` is the vector (X86_TRAP_*). For #PF, `addr` is CR2 and `error_code` carries the
    X86_PF_* bits (X86_PF_SHSTK for shadow-stack accesses); for #CP, `error_code` is the
    CET code (1 near-ret, 4 rstorssp, ...). `rip` is the instruction that faulted (faults)
    or the one after it (traps such as int3). `detail` carries what the violation report
    shows (expected and actual return addresses, the instruction text).
    """

    trap: int
    rip: int
    addr: int = 0
    error_code: int = 0
    detail: dict[str, int | str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"trap {self.trap} at {self.rip:#x} addr={self.addr:#x} err={self.error_code:#x}"


def page_fault(rip: int, addr: int, *, write: bool = False, fetch: bool = False,
               shstk: bool = False, present: bool = True) -> CpuFault:
    code = A.X86_PF_USER
    if present:
        code |= A.X86_PF_PROT
    if write:
        code |= A.X86_PF_WRITE
    if fetch:
        code |= A.X86_PF_INSTR
    if shstk:
        code |= A.X86_PF_SHSTK
    return CpuFault(A.X86_TRAP_PF, rip, addr, code)


def control_protection(rip: int, code: int, **detail: int | str) -> CpuFault:
    return CpuFault(A.X86_TRAP_CP, rip, 0, code, dict(detail))


def invalid_opcode(rip: int, **detail: int | str) -> CpuFault:
    return CpuFault(A.X86_TRAP_UD, rip, 0, 0, dict(detail))


def general_protection(rip: int, **detail: int | str) -> CpuFault:
    return CpuFault(A.X86_TRAP_GP, rip, 0, 0, dict(detail))
