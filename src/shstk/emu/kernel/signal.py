"""Signals: generation, delivery with real x86-64 frames, rt_sigreturn (kernel/signal.c,
arch/x86/kernel/signal.c and signal_64.c).

The shadow-stack part of a frame (the sigframe token and the restorer, SPEC.md §8) is
the shadow-stack subsystem's: `shstk.push_sigframe` / `shstk.pop_sigframe`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.cpu.regs import FIX_EFLAGS
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import RegDump
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import SigAction, Task

MASK64 = (1 << 64) - 1
SIGMASK_ALL = (1 << 64) - 1


def sigbit(sig: int) -> int:
    return 1 << (sig - 1)


@dataclass
class SigInfo:
    """A queued signal's siginfo_t fields."""

    signo: int
    code: int = S.SI_USER
    errno: int = 0
    pid: int = 0
    uid: int = 0
    addr: int | None = None  # SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP
    status: int | None = None  # SIGCHLD
    utime: int = 0
    stime: int = 0
    value: int = 0  # sigqueue value
    trapno: int = 0  # into sigcontext.trapno
    error_code: int = 0  # into sigcontext.err
    fault: object | None = field(default=None, repr=False)  # the CpuFault, for reports

    def pack(self) -> bytes:
        """struct siginfo (128 bytes)."""
        buf = bytearray(S.SIGINFO_SIZE)
        struct.pack_into("<iii", buf, 0, self.signo, self.errno, self.code)
        if self.signo == S.SIGCHLD and self.status is not None:
            struct.pack_into("<iIiqq", buf, 16, self.pid, self.uid, self.status,
                             self.utime, self.stime)
        elif self.addr is not None and self.code > 0:
            struct.pack_into("<Q", buf, 16, self.addr & MASK64)
        else:
            struct.pack_into("<iIQ", buf, 16, self.pid, self.uid, self.value & MASK64)
        return bytes(buf)

    @classmethod
    def unpack(cls, raw: bytes) -> SigInfo:
        signo, errno, code = struct.unpack_from("<iii", raw, 0)
        pid, uid, value = struct.unpack_from("<iIQ", raw, 16)
        return cls(signo, code, errno, pid, uid, value=value)


def is_fatal_default(sig: int) -> bool:
    return sig not in S.DEFAULT_IGNORE and sig not in S.DEFAULT_STOP


def next_signal(pending: list[SigInfo], blocked: int) -> SigInfo | None:
    """The signal to deliver first: synchronous fault signals, then lowest number."""
    best: SigInfo | None = None
    for info in pending:
        if blocked & sigbit(info.signo) and info.signo not in S.UNBLOCKABLE:
            continue
        if best is None or info.signo < best.signo:
            best = info
    return best


def pending_mask(pending: list[SigInfo]) -> int:
    mask = 0
    for info in pending:
        mask |= sigbit(info.signo)
    return mask


# --- frames --------------------------------------------------------------------------

_FX = struct.Struct("<HHBxHQQII")  # fcw, fsw, ftw(abridged), fop, rip, rdp, mxcsr, mask


def pack_fxsave(regs: RegDump) -> bytes:
    """The legacy FXSAVE image the frame's fpstate points to."""
    buf = bytearray(S.FXSAVE_SIZE)
    fptag = int(regs.get("fptag", 0xFFFF))
    # full tag word (2 bits per reg, 11 = empty) to the abridged form (1 bit, 1 = valid)
    abridged = 0
    for i in range(8):
        if (fptag >> (2 * i)) & 3 != 3:
            abridged |= 1 << i
    _FX.pack_into(buf, 0, int(regs.get("fpcw", 0x37F)) & 0xFFFF,
                  int(regs.get("fpsw", 0)) & 0xFFFF, abridged, 0, 0, 0,
                  int(regs.get("mxcsr", 0x1F80)) & 0xFFFFFFFF, 0xFFFF)
    for i, v in enumerate(regs.get("fp", [])):
        mant, exp = v if isinstance(v, tuple) else (v, 0)
        struct.pack_into("<QH", buf, 32 + 16 * i, mant & MASK64, exp & 0xFFFF)
    for i, v in enumerate(regs.get("xmm", [])):
        buf[160 + 16 * i:176 + 16 * i] = (v & ((1 << 128) - 1)).to_bytes(16, "little")
    return bytes(buf)


def unpack_fxsave(raw: bytes) -> RegDump:
    fcw, fsw, abridged, _fop, _rip, _rdp, mxcsr, _mask = _FX.unpack_from(raw, 0)
    fptag = 0
    for i in range(8):
        fptag |= (0 if abridged & (1 << i) else 3) << (2 * i)
    fp = [struct.unpack_from("<QH", raw, 32 + 16 * i) for i in range(8)]
    xmm = [int.from_bytes(raw[160 + 16 * i:176 + 16 * i], "little") for i in range(16)]
    return {"fpcw": fcw, "fpsw": fsw, "fptag": fptag, "mxcsr": mxcsr & 0xFFBF, "fp": fp,
            "xmm": xmm}


class SignalFrames:
    """Builds and tears down rt_sigframes in guest memory for one kernel."""

    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def on_altstack(self, task: Task, sp: int) -> bool:
        ss_sp, flags, size = task.altstack
        return not flags & S.SS_DISABLE and ss_sp < sp <= ss_sp + size

    def set_altstack(self, t: Task, sp: int, flags: int, size: int, *,
                     from_sigreturn: bool = False) -> None:
        """sigaltstack's core (do_sigaltstack)."""
        cur_sp = t.cpu.reg("rsp") if t.cpu.current is t else 0
        if self.on_altstack(t, cur_sp) and not from_sigreturn:
            raise KernelError(E.EPERM)
        mode = flags & ~S.SS_AUTODISARM
        if mode not in (S.SS_DISABLE, S.SS_ONSTACK, 0):
            raise KernelError(E.EINVAL)
        if mode == S.SS_DISABLE:
            t.altstack = (0, S.SS_DISABLE, 0)
            return
        if size < S.MINSIGSTKSZ:
            raise KernelError(E.ENOMEM)
        t.altstack = (sp, flags & S.SS_AUTODISARM, size)

    def setup(self, task: Task, info: SigInfo, act: SigAction, oldmask: int) -> None:
        """x64_setup_rt_frame(): write the frame, point the registers at the handler."""
        cpu = task.cpu
        mm = task.mm
        regs = cpu.dump_regs()
        rsp = int(regs["rsp"])
        sp = rsp - S.REDZONE
        ss_sp, ss_flags, ss_size = task.altstack
        if act.flags & S.SA_ONSTACK and not ss_flags & S.SS_DISABLE \
                and not self.on_altstack(task, rsp):
            sp = ss_sp + ss_size
        # the FPU state, 64-byte aligned, then the frame so that (sp + 8) % 16 == 0
        fp_addr = (sp - S.FXSAVE_SIZE) & ~(S.FPSTATE_ALIGN - 1)
        frame = ((fp_addr - S.RT_SIGFRAME_SIZE) & ~0xF) - 8
        if not act.flags & S.SA_RESTORER:
            raise KernelError(E.EFAULT)  # x86-64 refuses frames without a restorer
        uc = bytearray(S.UCONTEXT_SIZE)
        struct.pack_into("<QQ", uc, S.UC_FLAGS, S.UC_SIGCONTEXT_SS | S.UC_STRICT_RESTORE_SS, 0)
        alt_flags = ss_flags if not (ss_flags & S.SS_DISABLE) else S.SS_DISABLE
        if not ss_flags & S.SS_DISABLE:
            alt_flags = S.SS_ONSTACK if self.on_altstack(task, rsp) else 0
        struct.pack_into("<QiiQ", uc, S.UC_STACK, ss_sp, alt_flags, 0, ss_size)
        mc = S.UC_MCONTEXT
        for i, name in enumerate(S.SIGCONTEXT_GREGS):
            struct.pack_into("<Q", uc, mc + 8 * i, int(regs[name]) & MASK64)
        struct.pack_into("<HHHH", uc, mc + S.SC_CS, 0x33, 0, 0, 0x2B)
        struct.pack_into("<QQQQQ", uc, mc + S.SC_ERR, info.error_code & MASK64,
                         info.trapno, oldmask & MASK64,
                         (info.addr or 0) & MASK64 if info.trapno == 14 else 0, fp_addr)
        struct.pack_into("<Q", uc, S.UC_SIGMASK, oldmask & MASK64)
        mm.write(fp_addr, pack_fxsave(regs))
        mm.write(frame + S.RT_SIGFRAME_UC, bytes(uc))
        mm.write(frame + S.RT_SIGFRAME_INFO, info.pack())
        mm.write_u64(frame, act.restorer)
        # the shadow-stack part comes last (setup_signal_shadow_stack, SPEC.md §8.1)
        shstk.push_sigframe(self.k, task, act.restorer)
        cpu.set_reg("rsp", frame)
        cpu.set_reg("rip", act.handler)
        cpu.set_reg("rdi", info.signo)
        cpu.set_reg("rsi", frame + S.RT_SIGFRAME_INFO)
        cpu.set_reg("rdx", frame + S.RT_SIGFRAME_UC)
        cpu.set_reg("rax", 0)
        # the handler starts with DF and TF clear, and (x86) with AC cleared too
        eflags = int(regs["eflags"]) & ~(0x400 | 0x100 | 0x40000)
        cpu.set_reg("eflags", eflags)
        if act.flags & S.SA_ONSTACK and task.altstack[1] & S.SS_AUTODISARM:
            task.altstack = (0, S.SS_DISABLE, 0)

    def restore(self, task: Task) -> int:
        """rt_sigreturn(): registers, mask and alternate stack from the frame; returns RAX.

        A bad frame (including a bad shadow-stack token) is SIGSEGV, as signal_fault().
        """
        cpu = task.cpu
        mm = task.mm
        frame = cpu.reg("rsp") - 8  # the handler's RET popped pretcode
        ucp = frame + S.RT_SIGFRAME_UC
        try:
            raw = mm.read(ucp, S.UCONTEXT_SIZE)
        except KernelError:
            raise KernelError(E.EFAULT, "bad frame") from None
        mc = S.UC_MCONTEXT
        gregs = struct.unpack_from("<18Q", raw, mc)
        fpstate = struct.unpack_from("<Q", raw, mc + S.SC_FPSTATE)[0]
        mask = struct.unpack_from("<Q", raw, S.UC_SIGMASK)[0]
        ss = struct.unpack_from("<QiiQ", raw, S.UC_STACK)
        regs: RegDump = {}
        for name, value in zip(S.SIGCONTEXT_GREGS, gregs, strict=True):
            regs[name] = value
        old_flags = cpu.reg("eflags")
        regs["eflags"] = (old_flags & ~FIX_EFLAGS) | (gregs[17] & FIX_EFLAGS)
        if fpstate:
            try:
                regs.update(unpack_fxsave(mm.read(fpstate, S.FXSAVE_SIZE)))
            except KernelError:
                raise KernelError(E.EFAULT, "bad fpstate") from None
        cpu.load_regs(regs)
        task.blocked = mask & ~(sigbit(S.SIGKILL) | sigbit(S.SIGSTOP))
        self.k.signals.recalc(task)
        # restore_altstack: errors are ignored by the kernel except EFAULT
        self.set_altstack(task, ss[0], ss[1], ss[3], from_sigreturn=True)
        shstk.pop_sigframe(self.k, task)
        return int(regs["rax"])
