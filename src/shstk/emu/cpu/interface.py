"""The engine interface: everything the kernel asks of a CPU, and nothing more.

The kernel (tasks, mm, ptrace, the shadow-stack subsystem) holds an `Engine` and uses
only what this Protocol declares: registers, the per-thread SSP and U_CET state, guest
memory (the physical memory behind it and the page table that maps it), run and stop.
`shstk.emu.cpu.cpu.Cpu` implements it with Unicorn and one of the two shadow-stack
engines (native C or pure Python); a test can implement it with a dict
(tests/fakeengine.py) and exercise kernel logic in-process without a CPU.

No Unicorn here: the records below are plain data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from shstk.emu.cpu.faults import CpuFault

# Why `run` returned.
RAN_OUT = "budget"  # quantum used up
STOPPED = "stopped"  # the kernel asked (blocking syscall, exit, exec, signal, ...)
FAULTED = "fault"  # a CpuFault is attached

# Page-table permission bits (the values of Unicorn's UC_PROT_*).
PROT_NONE = 0
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4

# A thread's CET state while it is off the CPU: (SSP, U_CET, and the CALL/RET the
# interrupted block had armed: kind, address, instruction, RET imm16). Opaque to the
# kernel except for the first two.
CetState = tuple[int, int, int, int, int, int]


# A thread's user registers by name: the general-purpose and segment registers and the
# FPU/SSE control words are ints; "xmm" is a list of 128-bit ints and "fp" a list of
# (mantissa, exponent) pairs.
RegDump = dict[str, Any]


@dataclass(slots=True)
class RunResult:
    """Why `Engine.run` returned: RAN_OUT, STOPPED, or FAULTED with the fault."""

    why: str
    fault: CpuFault | None = None


@dataclass(frozen=True, slots=True)
class Region:
    """One shadow-stack VMA as the engines see it."""

    start: int
    end: int
    host: int  # host address of `start`
    writable: bool  # VM_WRITE: shadow-stack accesses allowed


@runtime_checkable
class Engine(Protocol):
    """One guest machine's CPU, as the kernel layer uses it."""

    # The task whose registers are loaded (the kernel sets it on a switch). Opaque to
    # the CPU, which sits below the kernel and never looks inside it.
    current: Any
    # Instruction bytes at (addr, size), for the decoder; the address space supplies it.
    read_code: Callable[[int, int], bytes]

    # --- registers of the current thread ---------------------------------------------
    def reg(self, name: str) -> int: ...
    def set_reg(self, name: str, value: int) -> None: ...

    @property
    def rip(self) -> int: ...
    @rip.setter
    def rip(self, value: int) -> None: ...

    def enter_syscall(self) -> list[int]:
        """What the SYSCALL instruction did (RCX = the next instruction, R11 = RFLAGS),
        then rax (the number), rdi, rsi, rdx, r10, r8, r9."""
        ...

    def dump_regs(self) -> RegDump:
        """The full user register state (GPRs, segment bases, "xmm", "fp")."""
        ...

    def load_regs(self, regs: RegDump) -> None: ...
    def gprs(self) -> dict[str, int]: ...

    def save_context(self) -> object:
        """An opaque snapshot of every register (a thread switch)."""
        ...

    def restore_context(self, ctx: object) -> None: ...

    # --- CET state of the current thread ---------------------------------------------
    @property
    def ssp(self) -> int: ...
    @ssp.setter
    def ssp(self, value: int) -> None: ...

    @property
    def cet(self) -> int:
        """The U_CET bits (CET_SHSTK_EN, CET_WRSS_EN)."""
        ...

    @cet.setter
    def cet(self, value: int) -> None: ...

    def save_thread(self) -> CetState: ...
    def load_thread(self, state: CetState) -> None: ...

    # --- execution ---------------------------------------------------------------------
    def run(self, budget_blocks: int = 0) -> RunResult: ...

    def request_stop(self) -> None:
        """From inside a hook: `run` returns after the current instruction."""
        ...

    @property
    def insns(self) -> int:
        """Guest instructions executed so far (monotonic)."""
        ...

    @property
    def engine_name(self) -> str: ...

    def cpuid(self, leaf: int, sub: int = 0) -> tuple[int, int, int, int]: ...

    # --- memory --------------------------------------------------------------------------
    def map_physical(self, phys: int, size: int, host: int) -> None:
        """Physical [phys, phys+size) is the host memory at `host`."""
        ...

    def attach_mm(self, mm: object, exit_phys: int) -> None:
        """`mm`'s VMAs are the page table from now on (see vma_set)."""
        ...

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        """Virtual [start, end) maps physical `phys` with PROT_* `perms` (a new entry or
        a new version of the one at `start`); `host` is its host address (0: none)."""
        ...

    def vma_del(self, start: int) -> None: ...
    def add_region(self, region: Region) -> None: ...
    def remove_region(self, start: int) -> None: ...
    def flush_tlb(self) -> None: ...

    def invalidate_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed or went away: forget what was decoded there."""
        ...

    def set_probe(self, addr: int, handler: Callable[[int], None]) -> None:
        """Call `handler(addr)` each time the instruction at `addr` is about to run
        (uprobes); the handler may change registers and memory, or raise CpuFault."""
        ...

    def clear_probe(self, addr: int) -> None: ...

    def close(self) -> None: ...


class DebugHook(Protocol):
    """A debugger (`shstk run --gdb`): told when the CPU stopped for it."""

    def cpu_stopped(self, engine: Engine, why: str) -> None:
        """`why`: "break" (before the instruction at a breakpoint), "step" (one
        instruction done) or "interrupt"; return to resume."""
        ...


class DebugControl(Protocol):
    """The CPU's debug port (`Cpu.debug`): breakpoints, single step, stop requests."""

    hook: DebugHook | None

    def add_breakpoint(self, addr: int) -> None: ...
    def remove_breakpoint(self, addr: int) -> None: ...

    def step(self, rip: int, on: bool) -> None:
        """The next resume runs one instruction from `rip`."""
        ...

    def interrupt(self) -> None:
        """From any thread: stop at the next instruction boundary."""
        ...


ENGINE_METHODS = ("reg", "set_reg", "enter_syscall", "dump_regs", "load_regs", "gprs",
                  "save_context", "restore_context", "save_thread", "load_thread", "run",
                  "request_stop", "cpuid", "map_physical", "attach_mm", "vma_set", "vma_del",
                  "add_region", "remove_region", "flush_tlb", "invalidate_code", "set_probe",
                  "clear_probe", "close")
ENGINE_PROPERTIES = ("rip", "ssp", "cet", "insns", "engine_name", "current", "read_code")
