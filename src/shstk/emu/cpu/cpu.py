"""The CPU of one address space: Unicorn plus the CET shadow-stack model.

One `Cpu` per guest address space (threads of a process share it; the kernel switches
their register state in and out). The CPU reports events and never decides policy:
system calls go to `CpuClient.syscall`, faults come back from `run` as `CpuFault`
values for the kernel to turn into signals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

from shstk.abi import shstk as A
from shstk.emu.cpu import cet, interface, ucbind
from shstk.emu.cpu import ucconst as X
from shstk.emu.cpu.cpuid import CPU_BRAND, CPU_MODEL, CpuidTable, cpu_identity
from shstk.emu.cpu.debug import DebugPort
from shstk.emu.cpu.decode import Decoder
from shstk.emu.cpu.engine import (
    DECODE_OK,
    DECODE_RESTART,
    DECODE_STOP,
    EV_BUDGET,
    EV_CP,
    EV_DECODE,
    EV_NONE,
    EV_SSFAULT,
    SsEngine,
    make_engine,
)
from shstk.emu.cpu.fastregs import FastRegs, dump_registers, load_registers
from shstk.emu.cpu.faults import (
    CpuFault,
    control_protection,
    general_protection,
    invalid_opcode,
    page_fault,
)
from shstk.emu.cpu.interface import FAULTED, RAN_OUT, STOPPED, CetState, RegDump, Region, RunResult
from shstk.emu.cpu.operands import Operands
from shstk.emu.cpu.regs import EFLAGS, GPRS, R11, RCX, REG, RIP, RSP, SYSCALL_REGS

# How Unicorn reports a TLB fill that was refused (newer 2.1.x releases name the access).
_MMU_ERRORS = ucbind.mmu_errors()
# emu_start's `until`: an address user code never reaches (kernel half). When a run
# ends Unicorn translates the page of until-1 for a fetch; the MMU answers with a page
# of HLTs. Mid-page, so that until and until-1 share EXIT_PAGE.
NEVER = 0xFFFFFFFFFFFFF800
EXIT_PAGE = NEVER & ~0xFFF
_CPUID_OUT = (X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX)

# The interface's page-table bits are Unicorn's.
assert (interface.PROT_READ, interface.PROT_WRITE, interface.PROT_EXEC) == \
    (X.UC_PROT_READ, X.UC_PROT_WRITE, X.UC_PROT_EXEC)


class CpuClient(Protocol):
    """What the CPU needs from the kernel."""

    def syscall(self, cpu: Cpu) -> None: ...
    def unmapped_access(self, cpu: Cpu, addr: int, write: bool) -> bool: ...


class Cpu:
    """Implements `interface.Engine` with Unicorn and a shadow-stack engine (`engine`)."""

    def __init__(self, client: CpuClient, *, engine: str | None = None,
                 cr4_cet: bool = True) -> None:
        self.client = client
        self.current: object | None = None  # the task whose registers are loaded
        self.cr4_cet = cr4_cet
        self.uc = ucbind.Uc(X.UC_ARCH_X86, X.UC_MODE_64)
        self.uc.ctl_set_cpu_model(CPU_MODEL)
        # The address space's VMA table is the page table: every TLB miss is answered
        # from it (see mm.py), so mapping never touches Unicorn's region list.
        self.uc.ctl_set_tlb_mode(X.UC_TLB_VIRTUAL)
        self._regs = FastRegs(self.uc._uch, (*SYSCALL_REGS, RIP, EFLAGS))
        self.engine: SsEngine = make_engine(engine)
        self.decoder = Decoder()
        self._fault: CpuFault | None = None
        self._hook_error: BaseException | None = None
        self._stop_requested = False
        self._cet_hooks: dict[int, int] = {}  # site -> hook handle
        self._probes: dict[int, tuple[int, Callable[[int], None]]] = {}  # uprobes
        self._cpuid = CpuidTable(cr4_cet)
        self.read_code: Callable[[int, int], bytes] = lambda addr, size: b""
        self.operands = Operands(lambda: self.read_code, self.reg)
        self._mm: object = None
        self.debug = DebugPort(self.uc, self.engine)  # breakpoints and steps, for `run --gdb`
        self._install_hooks()

    # --- registers -------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self._regs.read(REG[name])

    def set_reg(self, name: str, value: int) -> None:
        self._regs.write(REG[name], value & 0xFFFFFFFFFFFFFFFF)

    @property
    def rip(self) -> int:
        return self._regs.read(RIP)

    @rip.setter
    def rip(self, value: int) -> None:
        self._regs.write(RIP, value)

    def enter_syscall(self) -> list[int]:
        regs = self._regs
        values = regs.read_batch()  # the number, six arguments, RIP, RFLAGS: one call
        regs.write_two(RCX, values[7] + 2, R11, values[8])  # as SYSCALL leaves them
        return values[:7]

    def dump_regs(self) -> RegDump:
        """The full user register state (for fork, frames and ptrace)."""
        return dump_registers(self._regs, REG)

    def load_regs(self, regs: RegDump) -> None:
        load_registers(self._regs, REG, regs)

    def gprs(self) -> dict[str, int]:
        read = self._regs.read
        return {name: read(REG[name]) for name in (*GPRS, "rip", "eflags")}

    def save_context(self) -> object:
        return self.uc.context_save()

    def restore_context(self, ctx: object) -> None:
        self.uc.context_restore(cast(ucbind.Context, ctx))  # what save_context made

    # --- CET state of the current thread (kept by the shadow-stack engine) -------------
    @property
    def ssp(self) -> int:
        return self.engine.ssp

    @ssp.setter
    def ssp(self, value: int) -> None:
        self.engine.ssp = value

    @property
    def cet(self) -> int:
        return self.engine.cet

    @cet.setter
    def cet(self, value: int) -> None:
        self.engine.cet = value

    def save_thread(self) -> CetState:
        return self.engine.save_thread()

    def load_thread(self, state: CetState) -> None:
        self.engine.load_thread(state)

    # --- execution -------------------------------------------------------------------
    @property
    def insns(self) -> int:
        return self.engine.insns

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def request_stop(self) -> None:
        """Called by the kernel from a hook: return from `run` after this instruction."""
        self._stop_requested = True
        self.uc.emu_stop()

    def run(self, budget_blocks: int = 0) -> RunResult:
        eng = self.engine
        eng.clear_event()
        eng.budget = eng.blocks + budget_blocks if budget_blocks else 0
        self._fault = None
        self._stop_requested = False
        if self.debug.hook is not None:
            return self._run_debugged()
        err: ucbind.UcError | None = None
        try:
            self.uc.emu_start(self._regs.read(RIP), NEVER)
        except ucbind.UcError as exc:
            err = exc
        if self._hook_error is not None:
            # a bug in the kernel model (or Ctrl-C) inside a hook: re-raise it out here
            failure, self._hook_error = self._hook_error, None
            raise failure
        return self._classify(err)

    def _run_debugged(self) -> RunResult:
        """`run` under a debugger: stop at breakpoints, steps and interrupts, let the
        debugger look (DebugHook.cpu_stopped), then go on."""
        dbg, eng = self.debug, self.engine
        budget = eng.budget  # the kernel's; DebugPort.interrupt borrows it
        while True:
            eng.budget = budget
            why = dbg.pending(self.rip)
            if why is not None:
                dbg.report(self, why)
                continue
            err: ucbind.UcError | None = None
            rip = self.uc.reg_read(RIP)
            dbg.arm(rip)
            try:
                self.uc.emu_start(rip, NEVER, 0, 1 if dbg.stepping else 0)
            except ucbind.UcError as exc:
                err = exc
            if self._hook_error is not None:
                failure, self._hook_error = self._hook_error, None
                raise failure
            if eng.event == EV_BUDGET and dbg.interrupted():
                eng.clear_event()  # the interrupt's stop, not the kernel's time slice
            clean = (err is None and self._fault is None and not self._stop_requested
                     and eng.event == EV_NONE)
            why = dbg.after_run(clean)
            if why is None:
                eng.budget = budget
                return self._classify(err)
            # A breakpoint or a step stops inside a block (Unicorn's code hooks run after
            # the block hook): the CALL/RET that block armed has not run, and the block
            # is entered again on resume, where it is armed again. Settling it then
            # would push the return address twice (or check a RET that never ran).
            # An interrupt stops at a block entry with nothing armed.
            eng.pending = 0
            dbg.report(self, why)

    def _hook_failed(self, exc: BaseException) -> None:
        self._hook_error = exc
        self.engine.pending = 0
        self.uc.emu_stop()

    def _classify(self, err: ucbind.UcError | None) -> RunResult:
        eng = self.engine
        event = eng.event
        if event == EV_CP:
            return RunResult(FAULTED, control_protection(
                eng.event_rip, eng.event_code, expected=eng.event_expected,
                actual=eng.event_actual, ssp=eng.ssp))
        if event == EV_SSFAULT:
            return RunResult(FAULTED, page_fault(eng.event_rip, eng.event_addr,
                                                 write=True, shstk=True))
        if self._fault is not None:
            return RunResult(FAULTED, self._fault)
        if event == EV_DECODE:
            return RunResult(FAULTED, invalid_opcode(self.rip, reason="undecodable block"))
        if err is not None:
            return RunResult(FAULTED, self._fault_from_error(err))
        if event == EV_BUDGET:
            return RunResult(RAN_OUT)
        if self._stop_requested:
            return RunResult(STOPPED)
        rip = self.rip
        if rip & ~0xFFF == EXIT_PAGE:  # a jump into the kernel half
            return RunResult(FAULTED, page_fault(rip, rip, fetch=True, present=False))
        # Unicorn stops by itself on HLT; in user mode HLT is a privileged instruction.
        return RunResult(FAULTED, general_protection(rip - 1, insn="hlt"))

    def _fault_from_error(self, err: ucbind.UcError) -> CpuFault:
        rip = self.rip
        if err.errno in _MMU_ERRORS:
            return self._mmu_fault(rip)
        if err.errno == X.UC_ERR_INSN_INVALID:
            return invalid_opcode(rip)
        return general_protection(rip, reason=str(err))

    def _mmu_fault(self, rip: int) -> CpuFault:
        """A page the TLB could not fill: the #PF, with the exact faulting address."""
        eng = self.engine
        page, access, present = eng.mmu_addr, eng.mmu_type, bool(eng.mmu_present)
        write = access == X.UC_MEM_WRITE
        fetch = access == X.UC_MEM_FETCH
        if fetch:
            # A fetch fails at a block start: the CALL/RET that got here has completed
            # (its shadow-stack push or check comes before the fetch).
            addr = rip if rip & ~0xFFF == page else page
            if eng.pending and not eng.resolve_pending(self.uc, rip):
                return self._classify(None).fault or page_fault(rip, addr, fetch=True)
            return page_fault(addr, addr, fetch=True, present=present)
        eng.pending = 0  # the block did not finish: forget its CALL/RET
        return page_fault(rip, self.operands.data_fault_address(rip, page), write=write,
                          present=present)

    # --- the page table ----------------------------------------------------------------
    def attach_mm(self, mm: object, exit_phys: int) -> None:
        """Use `mm`'s VMAs as this machine's page table; `exit_phys` is a physical page
        (full of HLT) that translates the `until` page of emu_start for fetches."""
        self._mm = mm
        self.engine.install_mmu(self.uc, self._page_miss)
        self.engine.exit_page = EXIT_PAGE
        self.engine.exit_phys = exit_phys

    def _page_miss(self, addr: int, access: int) -> int:
        """No VMA covers `addr`: the stack may grow into it (expand_stack)."""
        if access == X.UC_MEM_FETCH:
            return 0
        try:
            return int(self.client.unmapped_access(self, addr, access == X.UC_MEM_WRITE))
        except BaseException as exc:  # re-raised by run()
            self._hook_error = exc
            return 0

    def map_physical(self, phys: int, size: int, host: int) -> None:
        self.uc.mem_map_ptr(phys, size, X.UC_PROT_ALL, host)

    def vma_set(self, start: int, end: int, phys: int, perms: int, host: int) -> None:
        self.engine.vma_set(start, end, phys, perms, host)

    def vma_del(self, start: int) -> None:
        self.engine.vma_del(start)

    def add_region(self, region: Region) -> None:
        self.engine.add_region(region)

    def remove_region(self, start: int) -> None:
        self.engine.remove_region(start)

    def flush_tlb(self) -> None:
        self.uc.ctl(X.UC_CTL_TLB_FLUSH, X.UC_CTL_IO_WRITE)

    def _abort(self, fault: CpuFault) -> None:
        """A hook ends the instruction with a fault: forget the armed CALL/RET."""
        self._fault = fault
        self.engine.pending = 0
        self.uc.emu_stop()

    # --- hooks -----------------------------------------------------------------------
    def _install_hooks(self) -> None:
        uc = self.uc
        uc.hook_add(X.UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        uc.hook_add(X.UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        self.engine.install_switch_hook(uc, EFLAGS)  # first: it may catch them
        uc.hook_add(X.UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(X.UC_HOOK_INTR, self._on_interrupt)
        self.engine.install(uc, self._decode_block, RIP, RSP)
        self.engine.set_cet_slow_path(self._on_cet_nop)

    def _on_syscall(self, uc: ucbind.Uc, _ud: object) -> None:
        try:
            self.client.syscall(self)
        except CpuFault as fault:
            self._abort(fault)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _on_cpuid(self, uc: ucbind.Uc, _ud: object) -> int:
        leaf = uc.reg_read(X.UC_X86_REG_EAX) & 0xFFFFFFFF
        sub = uc.reg_read(X.UC_X86_REG_ECX) & 0xFFFFFFFF
        try:
            a, b, c, d = self.cpuid(leaf, sub)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)
            return 1
        for reg_id, value in zip(_CPUID_OUT, (a, b, c, d), strict=True):
            self._regs.write(reg_id, value)
        return 1  # skip Unicorn's own CPUID

    def cpuid(self, leaf: int, sub: int = 0) -> tuple[int, int, int, int]:
        """CPUID of the emulated CPU: Unicorn's model, plus CET and our brand string."""
        return self._cpuid(leaf, sub)

    def _on_interrupt(self, uc: ucbind.Uc, intno: int, _ud: object) -> None:
        try:
            self._interrupt(uc, intno)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _interrupt(self, uc: ucbind.Uc, intno: int) -> None:
        rip = uc.reg_read(RIP)
        if intno == A.X86_TRAP_BP:  # int3 is a trap: RIP is already past it
            fault = CpuFault(A.X86_TRAP_BP, rip)
        elif intno == A.X86_TRAP_DE:
            fault = CpuFault(A.X86_TRAP_DE, rip)
        elif intno == A.X86_TRAP_UD:
            fault = invalid_opcode(rip)
        elif intno == 0x80:
            # int 0x80 from 64-bit code: the ia32 syscall path, not modelled.
            fault = CpuFault(0x80, rip)
        elif intno in (16, 19):
            fault = CpuFault(intno, rip)
        else:
            fault = general_protection(rip, vector=intno)
        self._abort(fault)

    # --- CET instructions -------------------------------------------------------------
    def _decode_block(self, addr: int, size: int) -> int:
        try:
            info = self.decoder.block(self.read_code(addr, size), addr)
            self.engine.insert_block(info)
            new_sites = [site for site, _mn in info.cet_sites if site not in self._cet_hooks]
            if not new_sites:
                return DECODE_OK
            for site in new_sites:
                self._cet_hooks[site] = self._hook_cet_site(site)
            # The block was translated before the hooks existed: translate it again.
            self.uc.ctl_remove_cache(addr & ~0xFFF, (addr + size + 0xFFF) & ~0xFFF)
            return DECODE_RESTART
        except Exception:
            return DECODE_STOP

    def _hook_cet_site(self, site: int) -> int:
        """A code hook on one CET instruction: the engine's own when it has one for it
        (RDSSP and INCSSP natively), the Python one (cet.py) otherwise."""
        insn = self.operands.cet_insn(site)
        if insn is not None:
            reg_id = REG.get(cet.reg64(insn.reg_operand)) if insn.reg_operand else None
            handle = self.engine.add_cet_hook(self.uc, site, insn.mnemonic, reg_id)
            if handle is not None:
                return handle
        return self.uc.hook_add(X.UC_HOOK_CODE, self._on_cet_nop, None, site, site)

    def invalidate_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed or went away: forget what was decoded there."""
        self.engine.invalidate(start, end)
        self.operands.forget(start, end)
        for site in [s for s in self._cet_hooks if start <= s < end]:
            handle = self._cet_hooks.pop(site)
            if not self.engine.del_cet_hook(self.uc, handle):
                self.uc.hook_del(handle)
        try:
            self.uc.ctl_remove_cache(start, end)
        except ucbind.UcError:
            pass

    # --- probes (uprobes: the kernel runs a handler before an instruction) --------------
    def set_probe(self, addr: int, handler: Callable[[int], None]) -> None:
        old = self._probes.pop(addr, None)
        if old is not None:
            self.uc.hook_del(old[0])
        handle = self.uc.hook_add(X.UC_HOOK_CODE, self._on_probe, None, addr, addr)
        self._probes[addr] = (handle, handler)
        self.uc.ctl_remove_cache(addr & ~0xFFF, (addr & ~0xFFF) + 0x1000)

    def clear_probe(self, addr: int) -> None:
        old = self._probes.pop(addr, None)
        if old is not None:
            self.uc.hook_del(old[0])
            self.uc.ctl_remove_cache(addr & ~0xFFF, (addr & ~0xFFF) + 0x1000)

    def _on_probe(self, uc: ucbind.Uc, addr: int, size: int, _ud: object) -> None:
        probe = self._probes.get(addr)
        if probe is None:
            return
        try:
            probe[1](addr)
        except CpuFault as fault:
            self._abort(fault)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _on_cet_nop(self, uc: ucbind.Uc, addr: int, size: int, _ud: object) -> None:
        try:
            insn = self.operands.cet_insn(addr)
            if insn is None or insn.mnemonic not in cet.HANDLED:
                return
            cet.execute(self, insn)
        except CpuFault as fault:
            self._abort(fault)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _on_invalid(self, uc: ucbind.Uc, _ud: object) -> bool:
        rip = uc.reg_read(RIP)
        try:
            insn = self.operands.cet_insn(rip)
            if insn is None or insn.mnemonic not in cet.HANDLED:
                self._abort(invalid_opcode(rip))
                return False
            next_rip = cet.execute(self, insn)
            if insn.mnemonic in ("rstorssp", "saveprevssp") and self.cr4_cet:
                self.engine.note_switch_site(rip, insn.mnemonic, insn.size,
                                             self.operands.mem_operand(rip))
        except CpuFault as fault:
            self._abort(fault)
            return False
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)
            return False
        uc.reg_write(RIP, next_rip if next_rip is not None else rip + insn.size)
        return True

    def close(self) -> None:
        self.engine.close()


__all__ = ["CPU_BRAND", "CPU_MODEL", "FAULTED", "RAN_OUT", "STOPPED", "Cpu", "CpuClient",
           "RunResult", "cpu_identity"]
