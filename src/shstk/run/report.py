"""The report printed when a signal ends the program: what a user needs to fix it.

For a shadow-stack violation (#CP): the faulting instruction with its symbol, the return
address taken from the normal stack and the one the shadow stack expected, both stacks
side by side, the #CP kind in words and the usual causes of that kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.elf.symbols import Symbolizer

if TYPE_CHECKING:
    from shstk.emu.kernel.crash import CrashSnapshot

CAUSES = {
    A.CP_NEAR_RET: (
        "RET found a return address on the stack that differs from the one its CALL pushed "
        "on the shadow stack. Usual causes: a corrupted return address (stack buffer "
        "overflow, ROP); a stack switch (coroutine, swapcontext, green threads, a JIT "
        "trampoline) that did not also switch the shadow stack with RSTORSSP/SAVEPREVSSP; "
        "a longjmp or unwinder that skipped frames without popping them with INCSSP."),
    A.CP_RSTORSSP: (
        "RSTORSSP found no valid restore token at its operand. Usual causes: switching to "
        "a shadow stack that was not made by map_shadow_stack(SHADOW_STACK_SET_TOKEN), a "
        "token already consumed by an earlier switch, or a wrong token address."),
    A.CP_FAR_RET_IRET: (
        "A far RET or IRET did not match the shadow stack: mode switches (32-bit code) are "
        "not supported with shadow stacks."),
    A.CP_ENDBRANCH: ("An indirect branch landed on an instruction that is not ENDBR64 "
                     "(indirect-branch tracking)."),
    A.CP_SETSSBSY: "SETSSBSY found a busy supervisor shadow-stack token.",
}
SSFAULT_CAUSE = (
    "A shadow-stack access (CALL, RET, INCSSP, RSTORSSP, WRSS) touched memory that is not "
    "a writable shadow stack. Usual causes: SSP pivoted to ordinary memory, a shadow stack "
    "made read-only with mprotect, or a shadow stack that overflowed into its guard gap.")

_md: list[Any] = []  # capstone.Cs, made for the first report (its import is slow)


@dataclass
class Report:
    """The shadow-stack report of a run, as data (for --json) and as text."""

    data: dict[str, Any]
    text: str


def _insn(code: bytes, addr: int) -> str:
    if not _md:
        from capstone import CS_ARCH_X86, CS_MODE_64, Cs

        _md.append(Cs(CS_ARCH_X86, CS_MODE_64))
    for _a, _size, mn, ops in _md[0].disasm_lite(code, addr, 1):
        return f"{mn} {ops}".strip()
    return "(undecodable)"


def _signal_name(signo: int) -> str:
    return S.NAMES.get(signo, f"signal {signo}")


_CODE_NAMES = {
    S.SIGSEGV: S.SEGV_CODE_NAMES,
    S.SIGBUS: {S.BUS_ADRALN: "BUS_ADRALN", S.BUS_ADRERR: "BUS_ADRERR",
               S.BUS_OBJERR: "BUS_OBJERR"},
    S.SIGILL: {S.ILL_ILLOPC: "ILL_ILLOPC", S.ILL_ILLOPN: "ILL_ILLOPN",
               S.ILL_PRVOPC: "ILL_PRVOPC"},
    S.SIGFPE: {S.FPE_INTDIV: "FPE_INTDIV", S.FPE_INTOVF: "FPE_INTOVF"},
    S.SIGTRAP: {S.TRAP_BRKPT: "TRAP_BRKPT", S.TRAP_TRACE: "TRAP_TRACE"},
}


def _code_name(signo: int, code: int) -> str:
    if code == S.SI_KERNEL:
        return "SI_KERNEL"
    return _CODE_NAMES.get(signo, {}).get(code, str(code))


class _Names:
    """Symbols for file-backed code; the mapping's kind ([heap], [anonymous rwx]...) else."""

    def __init__(self, snap: CrashSnapshot) -> None:
        self._sym = Symbolizer(snap.maps)
        self._anon = snap.anon

    def describe(self, addr: int) -> str:
        where = self._sym.describe(addr)
        if where != "?":
            return where
        for start, end, what in self._anon:
            if start <= addr < end:
                return f"{what}+{addr - start:#x}"
        return "(unmapped)"

    def is_code(self, addr: int) -> bool:
        return self._sym.is_code(addr)


def build(snap: CrashSnapshot, prog: str) -> Report:
    sym = _Names(snap)
    fault = snap.fault
    rip = snap.regs.get("rip", fault.rip if fault else 0)
    insn = _insn(snap.code, rip) if snap.code else "?"
    cp = fault is not None and fault.trap == A.X86_TRAP_CP
    ss_fault = fault is not None and fault.trap == A.X86_TRAP_PF and \
        bool(fault.error_code & A.X86_PF_SHSTK)
    data: dict[str, Any] = {
        "program": prog, "pid": snap.pid, "tid": snap.tid, "comm": snap.comm,
        "signal": _signal_name(snap.signo), "si_code": _code_name(snap.signo, snap.si_code),
        "si_addr": snap.si_addr, "rip": rip, "rip_symbol": sym.describe(rip),
        "instruction": insn, "shadow_stack_enabled": snap.shstk_enabled, "ssp": snap.ssp,
        "registers": snap.regs, "exe": snap.exe, "ppid": snap.ppid,
        "first_process": snap.first,
    }
    lines: list[str] = []
    # the thread that faulted, when it is not the main one
    who = f"pid {snap.pid}" if snap.tid == snap.pid else f"pid {snap.pid}, thread {snap.tid}"
    # a child process is named by what it runs and who started it
    who = f"[{who}]" if snap.first else f"[{who}, parent {snap.ppid}]"
    if cp:
        assert fault is not None
        code = fault.error_code
        kind = A.CP_NAMES.get(code, "unknown")
        data["violation"] = {"kind": kind, "error_code": code}
        lines.append(f"shstk: shadow-stack violation (#CP {kind}) in {prog} "
                     f"{who}: {_signal_name(snap.signo)} "
                     f"({_code_name(snap.signo, snap.si_code)})")
        lines.append(f"  at {rip:#x}  {sym.describe(rip)}: {insn}")
        if code == A.CP_NEAR_RET:
            actual = int(fault.detail.get("actual", 0))
            expected = int(fault.detail.get("expected", 0))
            data["violation"].update(return_address=actual, expected=expected,
                                     return_symbol=sym.describe(actual),
                                     expected_symbol=sym.describe(expected))
            lines.append(f"  return address on the stack:   {actual:#018x}  "
                         f"{sym.describe(actual)}")
            lines.append(f"  shadow stack expected:         {expected:#018x}  "
                         f"{sym.describe(expected)}")
        elif code == A.CP_RSTORSSP:
            token = int(fault.detail.get("token", 0))
            where = int(fault.detail.get("token_addr", 0))
            data["violation"].update(token=token, token_address=where)
            lines.append(f"  token at {where:#x}: {token:#x} (a restore token there would "
                         f"be {(where + 8) | 1:#x})")
        cause = CAUSES.get(code, "")
        data["violation"]["why"] = cause
    elif ss_fault:
        assert fault is not None
        data["violation"] = {"kind": "shadow-stack access fault", "address": fault.addr,
                             "why": SSFAULT_CAUSE}
        lines.append(f"shstk: shadow-stack access fault in {prog} {who}: "
                     f"{_signal_name(snap.signo)} ({_code_name(snap.signo, snap.si_code)}) "
                     f"at address {fault.addr:#x}")
        lines.append(f"  at {rip:#x}  {sym.describe(rip)}: {insn}")
        cause = SSFAULT_CAUSE
    else:
        accessing = f" accessing {snap.si_addr:#x}" if snap.si_addr is not None and \
            snap.signo in (S.SIGSEGV, S.SIGBUS) and snap.si_code > 0 else ""
        lines.append(f"shstk: {prog} {who} killed by {_signal_name(snap.signo)} "
                     f"({_code_name(snap.signo, snap.si_code)}){accessing}")
        lines.append(f"  at {rip:#x}  {sym.describe(rip)}: {insn}")
        cause = ""
    shadow = [{"address": a, "value": v, "symbol": sym.describe(v)} for a, v in snap.shadow]
    frames = [{"address": a, "value": v, "symbol": sym.describe(v)} for a, v in snap.stack
              if sym.is_code(v)][:12]
    data["shadow_stack"] = shadow
    data["stack_return_addresses"] = frames
    if snap.shstk_enabled or shadow:
        lines.append("")
        lines.append(f"  shadow stack (SSP {snap.ssp:#x})")
        for entry in shadow[:8]:
            lines.append(f"    {entry['address']:#x}: {entry['value']:#018x}  {entry['symbol']}")
        if not shadow:
            lines.append("    (empty)")
    if frames:
        lines.append(f"  return addresses on the normal stack (RSP {snap.regs.get('rsp', 0):#x})")
        for entry in frames[:8]:
            lines.append(f"    {entry['address']:#x}: {entry['value']:#018x}  {entry['symbol']}")
    if cause:
        lines.append("")
        lines.extend(_wrap("why: " + cause, 86, "       ", first="  "))
    return Report(data, "\n".join(lines))


def _wrap(text: str, width: int, indent: str, first: str = "") -> list[str]:
    words = text.split()
    out, line = [], first
    for w in words:
        if line.strip() and len(line) + 1 + len(w) > width:
            out.append(line)
            line = indent + w
        else:
            line = f"{line} {w}" if line.strip() else line + w
    if line:
        out.append(line)
    return out


def to_json(report: Report) -> str:
    """One line of JSON: a run with several reports writes JSON lines."""
    import json  # here, not at start-up: most runs write no JSON (1 ms of a hello world)

    return json.dumps(report.data, sort_keys=True, default=str)
