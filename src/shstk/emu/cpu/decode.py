"""Decoding translation blocks once, with capstone, for the shadow-stack engines.

The block hook needs three facts about a block: how many instructions it has, whether
its last instruction is a near CALL or RET (and the RET's imm16), and where the CET
instructions that Unicorn executes as NOPs (RDSSP, INCSSP) sit, so that hooks can
emulate them at their addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

K_NONE = 0
K_CALL = 1
K_RET = 2

# CET instructions that Unicorn runs as NOPs: they need a hook at their address.
NOP_CET = frozenset({"rdsspq", "rdsspd", "incsspq", "incsspd"})

_LEGACY_PREFIXES = frozenset({0x66, 0x67, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0xF0})


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What the engines need of one translation block: its size, instruction count, the CALL
    or RET that ends it, and the CET instructions in it."""

    addr: int
    size: int
    kind: int
    last: int  # address of the last instruction
    ret_imm: int
    ninsns: int
    cet_sites: tuple[tuple[int, str], ...]


def _is_far_indirect_call(raw: bytes) -> bool:
    """FF /3 is CALL m16:64 (far); capstone names it plain `call`."""
    i = 0
    while i < len(raw) and raw[i] in _LEGACY_PREFIXES:
        i += 1
    if i < len(raw) and 0x40 <= raw[i] <= 0x4F:
        i += 1
    return i + 1 < len(raw) and raw[i] == 0xFF and (raw[i + 1] >> 3) & 7 == 3


class Decoder:
    def __init__(self) -> None:
        self._cs: object = None  # capstone.Cs, made when first needed

    @property
    def _md(self) -> Any:  # capstone has no type hints
        """capstone, imported on first use: the native engine decodes in C (cslib), so
        a run often never needs the Python binding, whose import is slow."""
        if self._cs is None:
            from capstone import CS_ARCH_X86, CS_MODE_64, Cs

            self._cs = Cs(CS_ARCH_X86, CS_MODE_64)
        return self._cs

    def block(self, code: bytes, addr: int) -> BlockInfo:
        """Describe the block of `code` starting at `addr` (`code` is the whole block)."""
        last_addr, last_size, last_mn, last_ops = addr, 0, "", ""
        count = 0
        sites: list[tuple[int, str]] = []
        for iaddr, isize, mnemonic, ops in self._md.disasm_lite(code, addr):
            count += 1
            last_addr, last_size, last_mn, last_ops = iaddr, isize, mnemonic, ops
            if mnemonic in NOP_CET:
                sites.append((iaddr, mnemonic))
        kind, ret_imm = K_NONE, 0
        # Only an instruction that really ends the block is a transfer we track.
        if count and last_addr + last_size == addr + len(code):
            op = last_mn.rsplit(" ", 1)[-1]  # drop bnd / notrack / rep prefixes
            if op == "call":
                raw = code[last_addr - addr:]
                if not _is_far_indirect_call(raw):
                    kind = K_CALL
            elif op == "ret":
                kind = K_RET
                ret_imm = int(last_ops, 0) if last_ops else 0
        return BlockInfo(addr, len(code), kind, last_addr, ret_imm, count, tuple(sites))

    def one(self, code: bytes, addr: int) -> tuple[int, str, str] | None:
        """(size, mnemonic, operands) of the instruction at `addr`, or None."""
        for _iaddr, isize, mnemonic, ops in self._md.disasm_lite(code, addr, 1):
            return isize, mnemonic, ops
        return None
