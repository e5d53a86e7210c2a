"""The CPU of one address space: Unicorn plus the CET shadow-stack model.

One `Cpu` per guest address space (threads of a process share it; the kernel switches
their register state in and out). The CPU reports events and never decides policy:
system calls go to `CpuClient.syscall`, faults come back from `run` as `CpuFault`
values for the kernel to turn into signals.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import unicorn
from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from capstone import x86_const as CX
from unicorn import x86_const as X
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TLB_FLUSH, UC_TLB_VIRTUAL

from shstk.abi import shstk as A
from shstk.emu.cpu import cet
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
    Engine,
    make_engine,
)
from shstk.emu.cpu.faults import (
    CpuFault,
    control_protection,
    general_protection,
    invalid_opcode,
    page_fault,
)
from shstk.emu.cpu.regs import FP, GPRS, REG, RIP, RSP, SYSCALL_REGS, XMM

UC = unicorn
# How Unicorn reports a TLB fill that was refused (newer 2.1.x releases name the access).
_MMU_ERRORS = {UC.UC_ERR_EXCEPTION} | {getattr(UC, n) for n in
                                      ("UC_ERR_MMU_READ", "UC_ERR_MMU_WRITE", "UC_ERR_MMU_FETCH")
                                      if hasattr(UC, n)}
# The CPU model whose CPUID Unicorn emulates faithfully (AVX hidden, SSE4.2 present).
CPU_MODEL = X.UC_CPU_X86_SKYLAKE_CLIENT
CPU_BRAND = "shstk virtual x86-64 CPU with CET"
# emu_start's `until`: an address user code never reaches (kernel half). When a run
# ends Unicorn translates the page of until-1 for a fetch; the MMU answers with a page
# of HLTs. Mid-page, so that until and until-1 share EXIT_PAGE.
NEVER = 0xFFFFFFFFFFFFF800
EXIT_PAGE = NEVER & ~0xFFF

# Why `run` returned.
RAN_OUT = "budget"  # quantum used up
STOPPED = "stopped"  # the kernel asked (blocking syscall, exit, exec, signal, ...)
FAULTED = "fault"  # a CpuFault is attached


@dataclass(slots=True)
class RunResult:
    why: str
    fault: CpuFault | None = None


class CpuClient(Protocol):
    """What the CPU needs from the kernel."""

    def syscall(self, cpu: Cpu) -> None: ...
    def unmapped_access(self, cpu: Cpu, addr: int, write: bool) -> bool: ...


# a memory operand: displacement, base, index, scale, segment (register names)
_MemOperand = tuple[int, str | None, str | None, int, str | None]
_CetShape = tuple[int, str, str | None, _MemOperand | None]  # size, mnemonic, reg, mem


def _mem_operand(insn: object, op: object) -> _MemOperand:
    m = op.mem  # type: ignore[attr-defined]
    name = insn.reg_name  # type: ignore[attr-defined]
    return (m.disp, name(m.base) if m.base else None, name(m.index) if m.index else None,
            m.scale, name(m.segment) if m.segment else None)


@dataclass(slots=True)
class _CetInsn:
    address: int
    size: int
    mnemonic: str
    reg_operand: str | None
    mem_address: int | None


class Cpu:
    def __init__(self, client: CpuClient, *, engine: str | None = None,
                 cr4_cet: bool = True) -> None:
        self.client = client
        self.current: object | None = None  # the task whose registers are loaded
        self.cr4_cet = cr4_cet
        self.uc = UC.Uc(UC.UC_ARCH_X86, UC.UC_MODE_64)
        self.uc.ctl_set_cpu_model(CPU_MODEL)
        # The address space's VMA table is the page table: every TLB miss is answered
        # from it (see mm.py), so mapping never touches Unicorn's region list.
        self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self.engine: Engine = make_engine(engine)
        self.decoder = Decoder()
        self._detail = Cs(CS_ARCH_X86, CS_MODE_64)
        self._detail.detail = True
        self._fault: CpuFault | None = None
        self._hook_error: BaseException | None = None
        self._stop_requested = False
        self._cet_hooks: dict[int, int] = {}  # site -> hook handle
        self._cet_shapes: dict[int, tuple[bytes, _CetShape | None]] = {}
        self._cpuid_cache: dict[tuple[int, int], tuple[int, int, int, int]] = {}
        self._hooks_keepalive: list[object] = []
        self.read_code: Callable[[int, int], bytes] = lambda addr, size: b""
        self._mm: object = None
        self._install_hooks()

    # --- registers -------------------------------------------------------------------
    def reg(self, name: str) -> int:
        return self.uc.reg_read(REG[name])

    def set_reg(self, name: str, value: int) -> None:
        self.uc.reg_write(REG[name], value & 0xFFFFFFFFFFFFFFFF)

    @property
    def rip(self) -> int:
        return self.uc.reg_read(RIP)

    @rip.setter
    def rip(self, value: int) -> None:
        self.uc.reg_write(RIP, value)

    def syscall_args(self) -> list[int]:
        return [self.uc.reg_read(r) for r in SYSCALL_REGS]

    def dump_regs(self) -> dict[str, object]:
        """The full user register state (for fork, frames and ptrace)."""
        uc = self.uc
        regs: dict[str, object] = {name: uc.reg_read(REG[name]) for name in REG}
        regs["xmm"] = [uc.reg_read(r) for r in XMM]
        regs["fp"] = [uc.reg_read(r) for r in FP]
        return regs

    def load_regs(self, regs: dict[str, object]) -> None:
        uc = self.uc
        for name, value in regs.items():
            if name == "xmm":
                for r, v in zip(XMM, value, strict=True):  # type: ignore[arg-type]
                    uc.reg_write(r, v)
            elif name == "fp":
                for r, v in zip(FP, value, strict=True):  # type: ignore[arg-type]
                    uc.reg_write(r, v)
            elif name in REG:
                uc.reg_write(REG[name], value)

    def gprs(self) -> dict[str, int]:
        return {name: self.uc.reg_read(REG[name]) for name in (*GPRS, "rip", "eflags")}

    # --- execution -------------------------------------------------------------------
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
        err: UC.UcError | None = None
        try:
            self.uc.emu_start(self.uc.reg_read(RIP), NEVER)
        except UC.UcError as exc:
            err = exc
        if self._hook_error is not None:
            # a bug in the kernel model (or Ctrl-C) inside a hook: re-raise it out here
            exc, self._hook_error = self._hook_error, None
            raise exc
        return self._classify(err)

    def _hook_failed(self, exc: BaseException) -> None:
        self._hook_error = exc
        self.engine.pending = 0
        self.uc.emu_stop()

    def _classify(self, err: UC.UcError | None) -> RunResult:
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

    def _fault_from_error(self, err: UC.UcError) -> CpuFault:
        rip = self.rip
        if err.errno in _MMU_ERRORS:
            return self._mmu_fault(rip)
        if err.errno == UC.UC_ERR_INSN_INVALID:
            return invalid_opcode(rip)
        return general_protection(rip, reason=str(err))

    def _mmu_fault(self, rip: int) -> CpuFault:
        """A page the TLB could not fill: the #PF, with the exact faulting address."""
        eng = self.engine
        page, access, present = eng.mmu_addr, eng.mmu_type, bool(eng.mmu_present)
        write = access == UC.UC_MEM_WRITE
        fetch = access == UC.UC_MEM_FETCH
        if fetch:
            # A fetch fails at a block start: the CALL/RET that got here has completed
            # (its shadow-stack push or check comes before the fetch).
            addr = rip if rip & ~0xFFF == page else page
            if eng.pending and not eng.resolve_pending(self.uc, rip):
                return self._classify(None).fault or page_fault(rip, addr, fetch=True)
            return page_fault(addr, addr, fetch=True, present=present)
        eng.pending = 0  # the block did not finish: forget its CALL/RET
        return page_fault(rip, self._data_fault_address(rip, page), write=write,
                          present=present)

    def _data_fault_address(self, rip: int, page: int) -> int:
        """CR2: the operand address on the faulting page (the hook sees only the page)."""
        code = self.read_code(rip, 16)
        accesses: list[tuple[int, int]] = []
        for insn in self._detail.disasm(code, rip, 1):
            for op in insn.operands:
                if op.type == CX.X86_OP_MEM:
                    ea = self._effective_address(rip + insn.size, _mem_operand(insn, op))
                    accesses.append((ea, max(op.size, 1)))
            op_name = insn.mnemonic.rsplit(" ", 1)[-1]
            rsp = self.reg("rsp")
            if op_name.startswith(("push", "call")):
                accesses.append((rsp - 8, 8))
            elif op_name.startswith(("pop", "ret", "leave")):
                accesses.append((rsp if op_name != "leave" else self.reg("rbp"), 8))
        for addr, size in accesses:
            if addr & ~0xFFF == page:
                return addr
            if (addr + size - 1) & ~0xFFF == page:
                return page  # the access crosses into the faulting page
        return page

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
        if access == UC.UC_MEM_FETCH:
            return 0
        try:
            return int(self.client.unmapped_access(self, addr, access == UC.UC_MEM_WRITE))
        except BaseException as exc:  # re-raised by run()
            self._hook_error = exc
            return 0

    def flush_tlb(self) -> None:
        self.uc.ctl(UC_CTL_TLB_FLUSH, UC_CTL_IO_WRITE)

    def _abort(self, fault: CpuFault) -> None:
        """A hook ends the instruction with a fault: forget the armed CALL/RET."""
        self._fault = fault
        self.engine.pending = 0
        self.uc.emu_stop()

    # --- hooks -----------------------------------------------------------------------
    def _install_hooks(self) -> None:
        uc = self.uc
        uc.hook_add(UC.UC_HOOK_INSN, self._on_syscall, None, 1, 0, X.UC_X86_INS_SYSCALL)
        uc.hook_add(UC.UC_HOOK_INSN, self._on_cpuid, None, 1, 0, X.UC_X86_INS_CPUID)
        uc.hook_add(UC.UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(UC.UC_HOOK_INTR, self._on_interrupt)
        self.engine.install(uc, self._decode_block, RIP, RSP)
        self.engine.set_cet_slow_path(self._on_cet_nop)

    def _on_syscall(self, uc: UC.Uc, _ud: object) -> None:
        try:
            self.client.syscall(self)
        except CpuFault as fault:
            self._abort(fault)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _on_cpuid(self, uc: UC.Uc, _ud: object) -> int:
        leaf = uc.reg_read(X.UC_X86_REG_EAX) & 0xFFFFFFFF
        sub = uc.reg_read(X.UC_X86_REG_ECX) & 0xFFFFFFFF
        try:
            a, b, c, d = self.cpuid(leaf, sub)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)
            return 1
        uc.reg_write(X.UC_X86_REG_RAX, a)
        uc.reg_write(X.UC_X86_REG_RBX, b)
        uc.reg_write(X.UC_X86_REG_RCX, c)
        uc.reg_write(X.UC_X86_REG_RDX, d)
        return 1  # skip Unicorn's own CPUID

    def cpuid(self, leaf: int, sub: int = 0) -> tuple[int, int, int, int]:
        """CPUID of the emulated CPU: Unicorn's model, plus CET and our brand string."""
        key = (leaf, sub if leaf in (4, 7, 0xB, 0xD, 0xF, 0x10, 0x12, 0x14, 0x17, 0x18) else 0)
        hit = self._cpuid_cache.get(key)
        if hit is None:
            hit = _patch_cpuid(leaf, key[1], _model_cpuid(*key), self.cr4_cet)
            self._cpuid_cache[key] = hit
        return hit

    def _on_interrupt(self, uc: UC.Uc, intno: int, _ud: object) -> None:
        try:
            self._interrupt(uc, intno)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _interrupt(self, uc: UC.Uc, intno: int) -> None:
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
        insn = self._cet_insn(site)
        if insn is not None:
            reg_id = REG.get(cet.reg64(insn.reg_operand)) if insn.reg_operand else None
            handle = self.engine.add_cet_hook(self.uc, site, insn.mnemonic, reg_id)
            if handle is not None:
                return handle
        return self.uc.hook_add(UC.UC_HOOK_CODE, self._on_cet_nop, None, site, site)

    def invalidate_code(self, start: int, end: int) -> None:
        """Code in [start, end) changed or went away: forget what was decoded there."""
        self.engine.invalidate(start, end)
        for addr in [a for a in self._cet_shapes if start <= a < end]:
            del self._cet_shapes[addr]
        for site in [s for s in self._cet_hooks if start <= s < end]:
            handle = self._cet_hooks.pop(site)
            if not self.engine.del_cet_hook(self.uc, handle):
                self.uc.hook_del(handle)
        try:
            self.uc.ctl_remove_cache(start, end)
        except UC.UcError:
            pass

    def _cet_insn(self, addr: int) -> _CetInsn | None:
        code = self.read_code(addr, 16)
        shape = self._cet_shapes.get(addr)
        if shape is None or shape[0] != code:
            shape = (code, self._cet_shape(code, addr))
            self._cet_shapes[addr] = shape
        decoded = shape[1]
        if decoded is None:
            return None
        size, mnemonic, reg_op, mem = decoded
        ea = self._effective_address(addr + size, mem) if mem is not None else None
        return _CetInsn(addr, size, mnemonic, reg_op, ea)

    def _cet_shape(self, code: bytes, addr: int) -> _CetShape | None:
        """What capstone says about the instruction, kept per address (with its bytes):
        a CET instruction in a loop (a coroutine switch) is decoded once."""
        for insn in self._detail.disasm(code, addr, 1):
            reg_op: str | None = None
            mem: _MemOperand | None = None
            for op in insn.operands:
                if op.type == CX.X86_OP_REG:
                    reg_op = insn.reg_name(op.reg)
                elif op.type == CX.X86_OP_MEM:
                    mem = _mem_operand(insn, op)
            return insn.size, insn.mnemonic, reg_op, mem
        return None

    def _effective_address(self, next_rip: int, mem: _MemOperand) -> int:
        disp, base, index, scale, segment = mem
        addr = disp
        wide = True
        if base is not None:
            if base == "rip":
                addr += next_rip
            else:
                wide = not base.startswith("e")
                addr += self.reg(_gpr64(base))
        if index is not None:
            addr += self.reg(_gpr64(index)) * scale
        if segment in ("fs", "gs"):
            addr += self.reg(f"{segment}_base")
        return addr & (0xFFFFFFFFFFFFFFFF if wide else 0xFFFFFFFF)

    def _on_cet_nop(self, uc: UC.Uc, addr: int, size: int, _ud: object) -> None:
        try:
            insn = self._cet_insn(addr)
            if insn is None or insn.mnemonic not in cet.HANDLED:
                return
            cet.execute(self, insn)
        except CpuFault as fault:
            self._abort(fault)
        except BaseException as exc:  # re-raised by run()
            self._hook_failed(exc)

    def _on_invalid(self, uc: UC.Uc, _ud: object) -> bool:
        rip = uc.reg_read(RIP)
        try:
            insn = self._cet_insn(rip)
            if insn is None or insn.mnemonic not in cet.HANDLED:
                self._abort(invalid_opcode(rip))
                return False
            next_rip = cet.execute(self, insn)
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


def _gpr64(name: str) -> str:
    return cet.reg64(name)


# --- CPUID ---------------------------------------------------------------------------
_model_uc: UC.Uc | None = None
_CPUID_CODE = 0x1000


def _model_cpuid(leaf: int, sub: int) -> tuple[int, int, int, int]:
    """What Unicorn's model answers (run once per leaf in a scratch Unicorn)."""
    global _model_uc
    if _model_uc is None:
        _model_uc = UC.Uc(UC.UC_ARCH_X86, UC.UC_MODE_64)
        _model_uc.ctl_set_cpu_model(CPU_MODEL)
        _model_uc.mem_map(_CPUID_CODE, 0x1000)
        _model_uc.mem_write(_CPUID_CODE, b"\x0f\xa2")
    uc = _model_uc
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, sub)
    uc.emu_start(_CPUID_CODE, _CPUID_CODE + 2)
    return tuple(uc.reg_read(r) & 0xFFFFFFFF for r in (  # type: ignore[return-value]
        X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX))


_BRAND = CPU_BRAND.encode().ljust(48, b"\0")


def _patch_cpuid(leaf: int, sub: int, regs: tuple[int, int, int, int],
                 cet_supported: bool) -> tuple[int, int, int, int]:
    a, b, c, d = regs
    if leaf == 7 and sub == 0:
        c |= 1 << 7  # CET_SS: the CPU has shadow stacks
        d |= 1 << 20  # CET_IBT
    elif 0x80000002 <= leaf <= 0x80000004:
        off = (leaf - 0x80000002) * 16
        a, b, c, d = struct.unpack_from("<4I", _BRAND, off)
    return a, b, c, d


def cpu_identity() -> dict[str, object]:
    """Vendor, family/model/stepping and flags of the emulated CPU (for /proc/cpuinfo)."""
    _a, b, c, d = _model_cpuid(0, 0)
    vendor = struct.pack("<III", b, d, c).decode()
    eax1, _b1, ecx1, edx1 = _model_cpuid(1, 0)
    family = (eax1 >> 8) & 0xF
    model = (eax1 >> 4) & 0xF
    if family in (6, 15):
        model |= ((eax1 >> 16) & 0xF) << 4
    if family == 15:
        family += (eax1 >> 20) & 0xFF
    _a7, ebx7, ecx7, edx7 = _patch_cpuid(7, 0, _model_cpuid(7, 0), True)
    return {"vendor": vendor, "family": family, "model": model, "stepping": eax1 & 0xF,
            "brand": CPU_BRAND, "ecx1": ecx1, "edx1": edx1, "ebx7": ebx7, "ecx7": ecx7,
            "edx7": edx7}


__all__ = ["FAULTED", "RAN_OUT", "STOPPED", "Cpu", "CpuClient", "RunResult", "cpu_identity"]
_ = (EV_NONE,)
