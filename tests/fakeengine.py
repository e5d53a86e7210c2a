"""A CPU for kernel unit tests: `shstk.emu.cpu.interface.Engine` in plain Python.

No Unicorn and no instruction execution. Registers live in a dict; physical memory is
what physmem.py maps (host buffers, recorded as ranges); the page table and the
shadow-stack regions are dicts the tests can inspect, and `translate` walks the page
table as the CPU's TLB would. `run` returns the results a test queues (STOPPED by
default), so kernel code that runs a task can be driven step by step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from shstk.emu.cpu.interface import (
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    STOPPED,
    CetState,
    RegDump,
    Region,
    RunResult,
)

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15")
OTHER_REGS = ("rip", "eflags", "fs_base", "gs_base", "mxcsr", "fpcw", "fpsw", "fptag")
SYSCALL_REGS = ("rax", "rdi", "rsi", "rdx", "r10", "r8", "r9")
MASK64 = (1 << 64) - 1


class FakeEngine:
    """Implements interface.Engine; every side effect is recorded for the test."""

    engine_name = "fake"

    def __init__(self) -> None:
        self.current: object | None = None
        self.read_code: Callable[[int, int], bytes] = lambda addr, size: b""
        self.regs: dict[str, int] = dict.fromkeys((*GPRS, *OTHER_REGS), 0)
        self.regs["eflags"] = 0x202
        self.xmm = [0] * 16
        self.fp = [0] * 8
        self.ssp = 0
        self.cet = 0
        self.insns = 0
        self.physical: list[tuple[int, int, int]] = []  # (phys, size, host)
        self.page_table: dict[int, tuple[int, int, int, int]] = {}  # start: end, phys, perms, host
        self.regions: dict[int, Region] = {}
        self.mm: object = None
        self.exit_phys = 0
        self.tlb_flushes = 0
        self.invalidated: list[tuple[int, int]] = []
        self.probes: dict[int, Callable[[int], None]] = {}
        self.stop_requested = False
        self.results: list[RunResult] = []  # what the next runs return
        self.closed = False

    # --- registers -------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self.regs[name]

    def set_reg(self, name: str, value: int) -> None:
        self.regs[name] = value & MASK64

    @property
    def rip(self) -> int:
        return self.regs["rip"]

    @rip.setter
    def rip(self, value: int) -> None:
        self.regs["rip"] = value & MASK64

    def enter_syscall(self) -> list[int]:
        self.regs["rcx"] = (self.regs["rip"] + 2) & MASK64
        self.regs["r11"] = self.regs["eflags"]
        return [self.regs[r] for r in SYSCALL_REGS]

    def dump_regs(self) -> RegDump:
        regs: RegDump = dict(self.regs)
        regs["xmm"] = list(self.xmm)
        regs["fp"] = list(self.fp)
        return regs

    def load_regs(self, regs: RegDump) -> None:
        for name, value in regs.items():
            if name == "xmm":
                self.xmm = list(value)  # type: ignore[call-overload]  # a list of ints
            elif name == "fp":
                self.fp = list(value)  # type: ignore[call-overload]  # a list of ints
            elif name in self.regs:
                self.regs[name] = int(value) & MASK64  # type: ignore[call-overload]  # an int

    def gprs(self) -> dict[str, int]:
        return {name: self.regs[name] for name in (*GPRS, "rip", "eflags")}

    def save_context(self) -> object:
        return (dict(self.regs), list(self.xmm), list(self.fp))

    def restore_context(self, ctx: object) -> None:
        regs, xmm, fp = cast(tuple[dict[str, int], list[int], list[int]], ctx)
        self.regs, self.xmm, self.fp = dict(regs), list(xmm), list(fp)

    # --- CET state ---------------------------------------------------------------------
    def save_thread(self) -> CetState:
        return (self.ssp, self.cet, 0, 0, 0, 0)

    def load_thread(self, state: CetState) -> None:
        self.ssp, self.cet = state[0], state[1]

    # --- execution ---------------------------------------------------------------------
    def run(self, budget_blocks: int = 0) -> RunResult:
        self.stop_requested = False
        return self.results.pop(0) if self.results else RunResult(STOPPED)

    def request_stop(self) -> None:
        self.stop_requested = True

    def cpuid(self, leaf: int, sub: int = 0) -> tuple[int, int, int, int]:
        if leaf == 7 and sub == 0:
            return 0, 0, 1 << 7, 1 << 20  # CET_SS, CET_IBT
        return 0, 0, 0, 0

    # --- memory --------------------------------------------------------------------------
    def map_physical(self, phys: int, size: int, host: int) -> None:
        for p, s, _h in self.physical:
            assert phys + size <= p or phys >= p + s, "physical ranges overlap"
        self.physical.append((phys, size, host))

    def attach_mm(self, mm: object, exit_phys: int) -> None:
        self.mm = mm
        self.exit_phys = exit_phys

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        self.page_table[start] = (end, phys, perms, host)

    def vma_del(self, start: int) -> None:
        del self.page_table[start]

    def add_region(self, region: Region) -> None:
        self.regions[region.start] = region

    def remove_region(self, start: int) -> None:
        del self.regions[start]

    def flush_tlb(self) -> None:
        self.tlb_flushes += 1

    def invalidate_code(self, start: int, end: int) -> None:
        self.invalidated.append((start, end))

    def set_probe(self, addr: int, handler: Callable[[int], None]) -> None:
        self.probes[addr] = handler

    def clear_probe(self, addr: int) -> None:
        self.probes.pop(addr, None)

    def close(self) -> None:
        self.closed = True

    # --- for tests ---------------------------------------------------------------------
    def translate(self, addr: int, access: str = "r") -> int | None:
        """The host address a guest access at `addr` reaches ("r", "w" or "x"), or None
        where the CPU would fault (what a TLB fill would answer)."""
        need = {"r": PROT_READ, "w": PROT_WRITE, "x": PROT_EXEC}[access]
        for start, (end, phys, perms, _host) in self.page_table.items():
            if start <= addr < end:
                if not perms & need:
                    return None
                paddr = phys + (addr - start)
                for p, s, h in self.physical:
                    if p <= paddr < p + s:
                        return h + (paddr - p)
                raise AssertionError(f"physical {paddr:#x} is not mapped")
        return None
