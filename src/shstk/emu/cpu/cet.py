"""CET shadow-stack instructions, user mode, 64-bit (SPEC.md §14; Bochs cpu/cet.cc).

Unicorn runs RDSSP and INCSSP as NOPs and raises invalid-instruction for RSTORSSP,
SAVEPREVSSP, WRSS, WRUSS, SETSSBSY and CLRSSBSY; the CPU calls `execute` at their
addresses. Each function checks in the order the SDM gives, raises `CpuFault` for an
exception (nothing has changed then: faults leave the state as it was), or applies the
instruction's effect and returns the address of the next instruction (None for the
NOP-executed ones, whose NOP then runs).
"""

from __future__ import annotations

from typing import Protocol

from shstk.abi import shstk as A
from shstk.abi.shstk import CET_SHSTK_EN, CET_WRSS_EN
from shstk.emu.cpu.faults import (
    CpuFault,
    control_protection,
    general_protection,
    invalid_opcode,
    page_fault,
)
from shstk.emu.cpu.regs import EFLAGS_CF, EFLAGS_OSZAPC
from shstk.emu.cpu.ssbase import SsEngine

MASK64 = (1 << 64) - 1
HANDLED = frozenset({"rdsspq", "rdsspd", "incsspq", "incsspd", "rstorssp", "saveprevssp",
                     "wrssq", "wrssd", "wrussq", "wrussd", "setssbsy", "clrssbsy"})


class Machine(Protocol):
    """What the instruction semantics need from the CPU."""

    engine: SsEngine
    cr4_cet: bool  # the kernel supports user shadow stacks (CR4.CET set)

    def reg(self, name: str) -> int: ...
    def set_reg(self, name: str, value: int) -> None: ...


class Insn(Protocol):
    address: int
    size: int
    mnemonic: str
    reg_operand: str | None  # register operand name (rdssp, incssp, wrss source)
    mem_address: int | None  # effective address of the memory operand


def _ss_fault(rip: int, addr: int, *, write: bool) -> CpuFault:
    return page_fault(rip, addr, write=write, shstk=True)


def _shstk_enabled(m: Machine) -> bool:
    return m.cr4_cet and bool(m.engine.cet & CET_SHSTK_EN)


def rdssp(m: Machine, insn: Insn) -> None:
    # Without SHSTK_EN it is a NOP: software pre-zeroes the register to detect that.
    if not _shstk_enabled(m):
        return
    assert insn.reg_operand is not None
    value = m.engine.ssp
    if insn.mnemonic == "rdsspd":
        value &= 0xFFFFFFFF
    m.set_reg(reg64(insn.reg_operand), value)


def incssp(m: Machine, insn: Insn) -> None:
    if not _shstk_enabled(m):
        raise invalid_opcode(insn.address, insn=insn.mnemonic)
    assert insn.reg_operand is not None
    n = m.reg(reg64(insn.reg_operand)) & 0xFF
    unit = 8 if insn.mnemonic == "incsspq" else 4
    eng = m.engine
    ssp = eng.ssp
    read = eng.ss_read if unit == 8 else eng.ss_read32
    # The first and the last popped slots are read (so a one-page guard gap is never jumped).
    for addr in (ssp, ssp + unit * (max(n, 1) - 1)):
        if read(addr) is None:
            raise _ss_fault(insn.address, addr, write=False)
    eng.ssp = (ssp + unit * n) & MASK64


def rstorssp(m: Machine, insn: Insn) -> int:
    if not _shstk_enabled(m):
        raise invalid_opcode(insn.address, insn=insn.mnemonic)
    addr = insn.mem_address
    assert addr is not None
    if addr & 7:
        raise general_protection(insn.address, insn=insn.mnemonic, reason="unaligned token")
    eng = m.engine
    token = eng.ss_read(addr)
    if token is None:
        raise _ss_fault(insn.address, addr, write=True)
    # bit 0: the token's mode matches 64-bit; bit 1 clear: a restore token, not a
    # previous-SSP token; the token must name the slot above itself.
    if token & 3 != 1 or (((token & ~1) - 8) & ~7) & MASK64 != addr:
        raise control_protection(insn.address, A.CP_RSTORSSP, token=token, token_addr=addr)
    old = eng.ssp
    eng.ss_write(addr, old | 1 | 2)
    eng.ssp = addr
    flags = m.reg("eflags") & ~EFLAGS_OSZAPC
    if token & 4:
        flags |= EFLAGS_CF
    m.set_reg("eflags", flags)
    return insn.address + insn.size


def saveprevssp(m: Machine, insn: Insn) -> int:
    if not _shstk_enabled(m):
        raise invalid_opcode(insn.address, insn=insn.mnemonic)
    eng = m.engine
    ssp = eng.ssp
    if ssp & 7:
        raise general_protection(insn.address, insn=insn.mnemonic, reason="SSP not aligned")
    prev = eng.ss_read(ssp)
    if prev is None:
        raise _ss_fault(insn.address, ssp, write=True)
    if m.reg("eflags") & EFLAGS_CF:
        raise general_protection(insn.address, insn=insn.mnemonic, reason="CF set in 64-bit mode")
    if not prev & 2:
        raise general_protection(insn.address, insn=insn.mnemonic,
                                 reason="no previous-SSP token at SSP")
    old = prev & ~3
    if not eng.ss_write32(old - 4, 0):
        raise _ss_fault(insn.address, old - 4, write=True)
    token_addr = (old & ~7) - 8
    if not eng.ss_write(token_addr, old | 1):
        raise _ss_fault(insn.address, token_addr, write=True)
    eng.ssp = ssp + 8
    return insn.address + insn.size


def wrss(m: Machine, insn: Insn) -> int:
    eng = m.engine
    if not (_shstk_enabled(m) and eng.cet & CET_WRSS_EN):
        raise invalid_opcode(insn.address, insn=insn.mnemonic)
    addr = insn.mem_address
    assert addr is not None and insn.reg_operand is not None
    value = m.reg(reg64(insn.reg_operand))
    if insn.mnemonic == "wrssq":
        if addr & 7:
            raise general_protection(insn.address, insn=insn.mnemonic, reason="unaligned")
        if not eng.ss_write(addr, value):
            raise _ss_fault(insn.address, addr, write=True)
    else:
        if addr & 3:
            raise general_protection(insn.address, insn=insn.mnemonic, reason="unaligned")
        if not eng.ss_write32(addr, value):
            raise _ss_fault(insn.address, addr, write=True)
    return insn.address + insn.size


def supervisor_only(m: Machine, insn: Insn) -> int:
    # WRUSS needs only CR4.CET and then CPL 0 (#GP). SETSSBSY/CLRSSBSY also need
    # supervisor shadow stacks (IA32_S_CET.SH_STK_EN), which Linux never enables: #UD.
    if insn.mnemonic.startswith("wruss") and m.cr4_cet:
        raise general_protection(insn.address, insn=insn.mnemonic, reason="CPL 3")
    raise invalid_opcode(insn.address, insn=insn.mnemonic)


def execute(m: Machine, insn: Insn) -> int | None:
    """Run one CET instruction. Returns the next RIP, or None when the NOP must run."""
    mn = insn.mnemonic
    if mn in ("rdsspq", "rdsspd"):
        rdssp(m, insn)
        return None
    if mn in ("incsspq", "incsspd"):
        incssp(m, insn)
        return None
    if mn == "rstorssp":
        return rstorssp(m, insn)
    if mn == "saveprevssp":
        return saveprevssp(m, insn)
    if mn in ("wrssq", "wrssd"):
        return wrss(m, insn)
    return supervisor_only(m, insn)


_R32_TO_64 = {"eax": "rax", "ebx": "rbx", "ecx": "rcx", "edx": "rdx", "esi": "rsi",
              "edi": "rdi", "ebp": "rbp", "esp": "rsp"}


def reg64(name: str) -> str:
    """The 64-bit register behind a 32-bit operand name (r8d -> r8, eax -> rax)."""
    if name in _R32_TO_64:
        return _R32_TO_64[name]
    if name.startswith("r") and name.endswith("d"):
        return name[:-1]
    return name
