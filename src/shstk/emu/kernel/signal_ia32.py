"""ia32 signal frames in a 64-bit process (arch/x86/kernel/signal_32.c, sigframe.h).

A handler installed through the ia32 sigaction (int $0x80 from 64-bit code) carries the
kernel-internal SA_IA32_ABI flag; its signals get a `sigframe_ia32` (or, with SA_SIGINFO,
an `rt_sigframe_ia32`) and the return to user mode lands in 32-bit code (CS 0x23).

This emulator cannot run 32-bit code. What it can do exactly is the one thing Linux does
on CET hardware: entering compatibility mode with shadow stacks enabled and SSP at or
above 4 GiB is #GP (SDM: IRET/SYSRET to compatibility mode checks SSP[63:32]), which the
kernel's bad-IRET fixup turns into SIGSEGV with SI_KERNEL (trapno 13, error code 0). In
every other case 32-bit code would really have to run: the run ends with one line.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.cpu.faults import general_protection
from shstk.emu.cpu.regs import FIX_EFLAGS
from shstk.emu.kernel import shstk
from shstk.emu.kernel.entry import RunLimit
from shstk.emu.kernel.signal import SigInfo, sigbit

if TYPE_CHECKING:
    from shstk.emu.cpu.interface import RegDump
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import SigAction, Task

SA_IA32_ABI = 0x02000000  # include/linux/signal_types.h: set by a compat sigaction
USER32_CS = 0x23
USER32_DS = 0x2B
USER_CS = 0x33
MASK32 = 0xFFFFFFFF

# struct sigcontext_32: gs, fs, es, ds (u16 + pad), then these u32 registers
SC32_REGS = ("rdi", "rsi", "rbp", "rsp", "rbx", "rdx", "rcx", "rax")
SC32_SIZE = 88
FPSTATE32_SIZE = 624  # struct _fpstate_32 (fsave header + fxsave image)
FRAME_SIZE = 4 + 4 + SC32_SIZE + FPSTATE32_SIZE + 4 + 8  # struct sigframe_ia32
RT_INFO = 16  # rt_sigframe_ia32: pretcode, sig, pinfo, puc, then compat_siginfo
RT_UC = RT_INFO + 128
UC32_SIZE = 4 + 4 + 12 + SC32_SIZE + 8  # uc_flags, uc_link, stack_t32, mcontext, mask
RT_FRAME_SIZE = RT_UC + UC32_SIZE + 8
# popl %eax; movl $__NR_ia32_sigreturn, %eax; int $0x80 (and the rt form without popl)
RETCODE = bytes([0x58, 0xB8, 119, 0, 0, 0, 0xCD, 0x80])
RT_RETCODE = bytes([0xB8, 173, 0, 0, 0, 0xCD, 0x80, 0])


def _sigcontext(regs: RegDump, info: SigInfo, oldmask: int, fp: int) -> bytes:
    sc = bytearray(SC32_SIZE)
    struct.pack_into("<HHHHHHHH", sc, 0, 0, 0, 0, 0, USER32_DS, 0, USER32_DS, 0)
    for i, name in enumerate(SC32_REGS):
        struct.pack_into("<I", sc, 16 + 4 * i, int(regs[name]) & MASK32)
    struct.pack_into("<IIIHHIIHHIII", sc, 48, info.trapno, info.error_code & MASK32,
                     int(regs["rip"]) & MASK32, USER_CS, 0, int(regs["eflags"]) & MASK32,
                     int(regs["rsp"]) & MASK32, USER32_DS, 0, fp & MASK32,
                     oldmask & MASK32, (info.addr or 0) & MASK32 if info.trapno == 14 else 0)
    return bytes(sc)


def setup_frame(k: Kernel, task: Task, info: SigInfo, act: SigAction, oldmask: int) -> None:
    """ia32_setup_frame() / ia32_setup_rt_frame(), then the return to 32-bit code."""
    cpu = task.cpu
    mm = task.mm
    regs = cpu.dump_regs()
    sp = int(regs["rsp"])
    ss_sp, ss_flags, ss_size = task.altstack
    if act.flags & S.SA_ONSTACK and not ss_flags & S.SS_DISABLE \
            and not k.frames.on_altstack(task, sp):
        sp = ss_sp + ss_size
    fp = (sp - S.FXSAVE_SIZE) & ~(S.FPSTATE_ALIGN - 1)
    rt = bool(act.flags & S.SA_SIGINFO)
    size = RT_FRAME_SIZE if rt else FRAME_SIZE
    frame = ((fp - 112 - size + 4) & ~0xF) - 4
    restorer = act.restorer if act.flags & S.SA_RESTORER else 0
    sc = _sigcontext(regs, info, oldmask, fp)
    if rt:
        retcode_at = frame + RT_UC + UC32_SIZE
        uc = bytearray(UC32_SIZE)
        struct.pack_into("<IIIiI", uc, 0, 0, 0, ss_sp & MASK32,
                         S.SS_DISABLE if ss_flags & S.SS_DISABLE else 0, ss_size & MASK32)
        uc[20:20 + SC32_SIZE] = sc
        struct.pack_into("<Q", uc, 20 + SC32_SIZE, oldmask)
        head = struct.pack("<IiII", (restorer or retcode_at) & MASK32, info.signo,
                           (frame + RT_INFO) & MASK32, (frame + RT_UC) & MASK32)
        body = head + info.pack() + bytes(uc) + RT_RETCODE
    else:
        retcode_at = frame + FRAME_SIZE - 8
        body = (struct.pack("<Ii", (restorer or retcode_at) & MASK32, info.signo) + sc
                + bytes(FPSTATE32_SIZE) + struct.pack("<I", (oldmask >> 32) & MASK32)
                + RETCODE)
    mm.write(frame, body)
    cpu.set_reg("rsp", frame)
    cpu.set_reg("rip", act.handler & MASK32)
    cpu.set_reg("rax", info.signo)
    cpu.set_reg("rdx", (frame + RT_INFO) & MASK32 if rt else 0)
    cpu.set_reg("rcx", (frame + RT_UC) & MASK32 if rt else 0)
    cpu.set_reg("eflags", int(regs["eflags"]) & ~(0x400 | 0x100 | 0x40000))
    if act.flags & S.SA_ONSTACK and task.altstack[1] & S.SS_AUTODISARM:
        task.altstack = (0, S.SS_DISABLE, 0)
    enter_compat(k, task)


def restore_frame(k: Kernel, task: Task, rt: bool) -> int:
    """The ia32 sigreturn/rt_sigreturn: registers and mask from the frame; returns EAX.

    A bad frame is EFAULT (the caller forces SIGSEGV, as signal_fault()).
    """
    cpu = task.cpu
    if rt:
        frame = (cpu.reg("rsp") - 4) & MASK32
        sc_at = frame + RT_UC + 20
        mask = task.mm.read_u64(frame + RT_UC + 20 + SC32_SIZE)
    else:
        frame = (cpu.reg("rsp") - 8) & MASK32
        sc_at = frame + 8
        low = struct.unpack("<I", task.mm.read(sc_at + 80, 4))[0]
        high = struct.unpack("<I", task.mm.read(frame + FRAME_SIZE - 12, 4))[0]
        mask = low | high << 32
    sc = task.mm.read(sc_at, SC32_SIZE)
    regs: RegDump = {}
    for i, name in enumerate(SC32_REGS):
        regs[name] = struct.unpack_from("<I", sc, 16 + 4 * i)[0]
    eip, cs, eflags = struct.unpack_from("<IHxxI", sc, 56)
    regs["rip"] = eip
    regs["eflags"] = (cpu.reg("eflags") & ~FIX_EFLAGS) | (eflags & FIX_EFLAGS)
    for name, value in regs.items():
        cpu.set_reg(name, int(value))
    task.blocked = mask & ~(sigbit(S.SIGKILL) | sigbit(S.SIGSTOP))
    k.signals.recalc(task)
    k.set_user_rip(task, eip)
    if (cs | 3) != USER_CS:
        enter_compat(k, task)
    return int(regs["rax"])


def enter_compat(k: Kernel, task: Task) -> None:
    """The return to user mode loads a 32-bit code segment (SDM: IRET to compatibility
    mode with CET shadow stacks on and SSP[63:32] != 0 is #GP(0))."""
    rip = task.cpu.rip
    if shstk.enabled(task, A.ARCH_SHSTK_SHSTK) and shstk.get_ssp(task) >> 32:
        fault = general_protection(rip, why="return to 32-bit code with SSP above 4 GiB")
        task.last_fault = fault
        k.signals.force(task, SigInfo(S.SIGSEGV, S.SI_KERNEL, addr=0, trapno=A.X86_TRAP_GP,
                                      error_code=0, fault=fault))
        task.cpu.request_stop()
        return
    raise RunLimit(f"32-bit code would have to run at {rip:#x} (a return to compatibility "
                   "mode); this emulator runs only 64-bit code")


__all__ = ["SA_IA32_ABI", "enter_compat", "restore_frame", "setup_frame"]
