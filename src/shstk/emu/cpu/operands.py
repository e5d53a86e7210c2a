"""Instruction operands, from capstone's detail mode: where a CET instruction's memory
operand points, and which address on a faulting page an instruction touched (CR2).

The block decoder (decode.py) needs no operands; only these two slow paths do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shstk.emu.cpu import cet

_X86_OP_REG, _X86_OP_MEM = 1, 3  # capstone.x86_const (checked by tests/test_engine_decode)
# a memory operand: displacement, base, index, scale, segment (register names)
MemOperand = tuple[int, str | None, str | None, int, str | None]
_CetShape = tuple[int, str, str | None, MemOperand | None]  # size, mnemonic, reg, mem


def _mem_operand(insn: object, op: object) -> MemOperand:
    m = op.mem  # type: ignore[attr-defined]  # capstone's operand classes are untyped
    name = insn.reg_name  # type: ignore[attr-defined]  # (same)
    return (m.disp, name(m.base) if m.base else None, name(m.index) if m.index else None,
            m.scale, name(m.segment) if m.segment else None)


@dataclass(slots=True)
class CetInsn:
    """A CET instruction at one address, as cet.execute wants it (cet.Insn)."""

    address: int
    size: int
    mnemonic: str
    reg_operand: str | None
    mem_address: int | None


class Operands:
    """Operand decoding against the current registers.

    `read_code(addr, size)` gives instruction bytes, `reg(name)` a register's value; both
    are looked up at each call (the address space replaces read_code when it attaches).
    """

    def __init__(self, read_code: Callable[[], Callable[[int, int], bytes]],
                 reg: Callable[[str], int]) -> None:
        self._read_code = read_code
        self._reg = reg
        self._cs: Any = None  # capstone.Cs in detail mode, made when first needed
        self._cet_shapes: dict[int, tuple[bytes, _CetShape | None]] = {}

    @property
    def _detail(self) -> Any:
        """capstone, imported on first use (slow to import; most runs never need it)."""
        if self._cs is None:
            from capstone import CS_ARCH_X86, CS_MODE_64, Cs

            self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
            self._cs.detail = True
        return self._cs

    def cet_insn(self, addr: int) -> CetInsn | None:
        """The instruction at `addr` with its memory operand resolved, or None."""
        code = self._read_code()(addr, 16)
        shape = self._cet_shapes.get(addr)
        if shape is None or shape[0] != code:
            shape = (code, self._cet_shape(code, addr))
            self._cet_shapes[addr] = shape
        decoded = shape[1]
        if decoded is None:
            return None
        size, mnemonic, reg_op, mem = decoded
        ea = self.effective_address(addr + size, mem) if mem is not None else None
        return CetInsn(addr, size, mnemonic, reg_op, ea)

    def mem_operand(self, addr: int) -> MemOperand | None:
        """The memory operand of the CET instruction cet_insn last decoded at `addr`."""
        shape = self._cet_shapes.get(addr)
        return shape[1][3] if shape is not None and shape[1] is not None else None

    def forget(self, start: int, end: int) -> None:
        """Code in [start, end) changed: drop what was decoded there."""
        for addr in [a for a in self._cet_shapes if start <= a < end]:
            del self._cet_shapes[addr]

    def _cet_shape(self, code: bytes, addr: int) -> _CetShape | None:
        """What capstone says about the instruction, kept per address (with its bytes):
        a CET instruction in a loop (a coroutine switch) is decoded once."""
        for insn in self._detail.disasm(code, addr, 1):
            reg_op: str | None = None
            mem: MemOperand | None = None
            for op in insn.operands:
                if op.type == _X86_OP_REG:
                    reg_op = insn.reg_name(op.reg)
                elif op.type == _X86_OP_MEM:
                    mem = _mem_operand(insn, op)
            return insn.size, insn.mnemonic, reg_op, mem
        return None

    def effective_address(self, next_rip: int, mem: MemOperand) -> int:
        disp, base, index, scale, segment = mem
        addr = disp
        wide = True
        reg = self._reg
        if base is not None:
            if base == "rip":
                addr += next_rip
            else:
                wide = not base.startswith("e")
                addr += reg(cet.reg64(base))
        if index is not None:
            addr += reg(cet.reg64(index)) * scale
        if segment in ("fs", "gs"):
            addr += reg(f"{segment}_base")
        return addr & (0xFFFFFFFFFFFFFFFF if wide else 0xFFFFFFFF)

    def data_fault_address(self, rip: int, page: int) -> int:
        """CR2: the operand address on the faulting page (the hook sees only the page)."""
        code = self._read_code()(rip, 16)
        accesses: list[tuple[int, int]] = []
        for insn in self._detail.disasm(code, rip, 1):
            for op in insn.operands:
                if op.type == _X86_OP_MEM:
                    ea = self.effective_address(rip + insn.size, _mem_operand(insn, op))
                    accesses.append((ea, max(op.size, 1)))
            op_name = insn.mnemonic.rsplit(" ", 1)[-1]
            rsp = self._reg("rsp")
            if op_name.startswith(("push", "call")):
                accesses.append((rsp - 8, 8))
            elif op_name.startswith(("pop", "ret", "leave")):
                accesses.append((rsp if op_name != "leave" else self._reg("rbp"), 8))
        for addr, size in accesses:
            if addr & ~0xFFF == page:
                return addr
            if (addr + size - 1) & ~0xFFF == page:
                return page  # the access crosses into the faulting page
        return page
