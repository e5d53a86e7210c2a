"""What the kernel keeps of a task that a signal killed: enough for the violation report.

Taken at the moment of death, before the address space is released: registers, the fault,
the top of the shadow stack, the normal stack, the instruction bytes and the file
mappings (for symbols).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import VM_EXEC, VM_READ, VM_WRITE, FileMapping

if TYPE_CHECKING:
    from shstk.emu.cpu.faults import CpuFault
    from shstk.emu.kernel.signal import SigInfo
    from shstk.emu.kernel.task import Task

STACK_WORDS = 64
SHADOW_WORDS = 16


@dataclass
class CrashSnapshot:
    """The state of a task killed by a signal, for the crash report."""

    pid: int
    tid: int
    comm: str
    signo: int
    si_code: int
    si_addr: int | None
    regs: dict[str, int]
    fault: CpuFault | None
    ssp: int
    shstk_enabled: bool
    shadow: list[tuple[int, int]] = field(default_factory=list)  # (address, value)
    stack: list[tuple[int, int]] = field(default_factory=list)
    code: bytes = b""
    maps: list[FileMapping] = field(default_factory=list)
    # every other mapping, for addresses outside files: (start, end, description)
    anon: list[tuple[int, int, str]] = field(default_factory=list)
    features: int = 0
    locked: int = 0
    exe: str = ""  # the program the process runs (after execve)
    ppid: int = 0
    first: bool = True  # the process shstk run started (its status is the run's)


def capture(t: Task, info: SigInfo) -> CrashSnapshot:
    cpu = t.cpu
    regs = cpu.gprs() if cpu.current is t else {}
    fault = t.last_fault if info.fault is not None else None
    rip = fault.rip if fault is not None else regs.get("rip", 0)
    if regs and fault is not None:
        regs["rip"] = fault.rip
    mm = t.mm
    ssp = shstk.get_ssp(t)
    snap = CrashSnapshot(t.pid, t.tid, t.comm, info.signo, info.code, info.addr, regs,
                         fault, ssp, shstk.enabled(t, shstk.SHSTK),
                         features=t.shstk.features, locked=t.shstk.locked,
                         exe=t.proc.exe, ppid=t.proc.parent.pid if t.proc.parent else 0)
    if ssp:
        for i in range(SHADOW_WORDS):
            addr = ssp + 8 * i
            v = mm.find(addr)
            if v is None or not v.shadow_stack:
                break
            try:
                snap.shadow.append((addr, mm.read_u64(addr)))
            except KernelError:
                break
    rsp = regs.get("rsp", 0)
    for i in range(STACK_WORDS):
        try:
            snap.stack.append((rsp + 8 * i, mm.read_u64(rsp + 8 * i)))
        except KernelError:
            break
    snap.code = mm.read_code(rip, 16)
    snap.maps = mm.file_mappings()
    snap.anon = [(v.start, v.end, _describe_anon(v)) for v in mm.vmas if v.file is None]
    return snap


def _describe_anon(v: object) -> str:
    f = v.flags  # type: ignore[attr-defined]
    if v.shadow_stack:  # type: ignore[attr-defined]
        return "[shadow stack]"
    if v.name:  # type: ignore[attr-defined]
        return v.name  # type: ignore[attr-defined]
    perms = ("r" if f & VM_READ else "") + ("w" if f & VM_WRITE else "") + \
        ("x" if f & VM_EXEC else "")
    return f"[anonymous {perms or '---'}]"
