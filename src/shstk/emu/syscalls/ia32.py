"""The ia32 compat system-call table, entered by `int $0x80` from 64-bit code
(arch/x86/entry/syscalls/syscall_32.tbl, entry_64_compat.S).

Its own numbers; arguments in EBX, ECX, EDX, ESI, EDI, EBP (32 bits, zero-extended);
the result in RAX, sign-extended; every other register preserved (r8-r11 too, since
Linux 4.17). 32-bit structures where the ABI differs (old sigaction, sigaction32, the
old one-word sigprocmask, mmap2's page offset, the ia32 signal frames). Calls not listed
here return -ENOSYS, with one diagnostic line.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.cpu.faults import CpuFault
from shstk.emu.kernel import signal_ia32
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import NO_RESULT, Blocked
from shstk.emu.kernel.signal import SigInfo, sigbit
from shstk.emu.syscalls.table import TABLE
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1
MAP_FIXED = 0x10
MAP_FIXED_NOREPLACE = 0x100000
MAP_32BIT = 0x40
ARG_REGS = ("rbx", "rcx", "rdx", "rsi", "rdi", "rbp")
UNBLOCKABLE = sigbit(S.SIGKILL) | sigbit(S.SIGSTOP)
_OLD_SIGACTION = struct.Struct("<IIII")  # handler, mask, flags, restorer
_SIGACTION32 = struct.Struct("<IIIQ")  # handler, flags, restorer, compat_sigset_t

# ia32 number -> x86-64 number, for calls whose arguments mean the same in both ABIs
SAME: dict[int, int] = {
    1: 60,  # exit
    3: 0,  # read
    4: 1,  # write
    5: 2,  # open
    6: 3,  # close
    20: 39,  # getpid
    37: 62,  # kill
    45: 12,  # brk
    64: 110,  # getppid
    91: 11,  # munmap
    125: 10,  # mprotect
    175: 14,  # rt_sigprocmask (compat_sigset_t is one 64-bit word on x86)
    224: 186,  # gettid
    238: 200,  # tkill
    252: 231,  # exit_group
    270: 234,  # tgkill
}


def _sigaction(k: Kernel, t: Task, sig: int, act: int, oact: int) -> int:
    """compat sys_sigaction (67): struct old_sigaction32, a one-word mask."""
    sig = i32(sig)
    if sig < 1 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    new = _OLD_SIGACTION.unpack(t.mm.read(act, 16)) if act else None
    if new is not None and sig in S.UNBLOCKABLE:
        raise KernelError(E.EINVAL)
    cur = t.proc.sighand.get(sig)
    if oact:
        t.mm.write(oact, _OLD_SIGACTION.pack(cur.handler & MASK32, cur.mask & MASK32,
                                             cur.flags & ~signal_ia32.SA_IA32_ABI & MASK32,
                                             cur.restorer & MASK32))
    if new is not None:
        handler, mask, flags, restorer = new
        _install(k, t, sig, handler, flags, restorer, mask)
    return 0


def _rt_sigaction(k: Kernel, t: Task, sig: int, act: int, oact: int, size: int) -> int:
    """compat rt_sigaction (174): struct sigaction32."""
    if size != 8:
        raise KernelError(E.EINVAL)
    sig = i32(sig)
    if sig < 1 or sig > S.NSIG:
        raise KernelError(E.EINVAL)
    new = _SIGACTION32.unpack(t.mm.read(act, 20)) if act else None
    if new is not None and sig in S.UNBLOCKABLE:
        raise KernelError(E.EINVAL)
    cur = t.proc.sighand.get(sig)
    if oact:
        t.mm.write(oact, _SIGACTION32.pack(cur.handler & MASK32,
                                           cur.flags & ~signal_ia32.SA_IA32_ABI & MASK32,
                                           cur.restorer & MASK32, cur.mask))
    if new is not None:
        handler, flags, restorer, mask = new
        _install(k, t, sig, handler, flags, restorer, mask)
    return 0


def _install(k: Kernel, t: Task, sig: int, handler: int, flags: int, restorer: int,
             mask: int) -> None:
    cur = t.proc.sighand.get(sig)
    cur.handler, cur.restorer = handler, restorer
    # sigaction_compat_abi(): a compat sigaction marks the action for ia32 frames
    cur.flags = (flags & ~S.SA_UNSUPPORTED) | signal_ia32.SA_IA32_ABI
    cur.mask = mask & ~UNBLOCKABLE
    if k.signals.ignored(t.proc, sig):
        proc = t.proc
        proc.shared_pending[:] = [i for i in proc.shared_pending if i.signo != sig]
        for th in proc.threads:
            th.pending[:] = [i for i in th.pending if i.signo != sig]


def _sigprocmask(k: Kernel, t: Task, how: int, set_addr: int, oset: int) -> int:
    """compat sigprocmask (126): the old one-word mask (signals 1-32)."""
    old = t.blocked
    if set_addr:
        mask = struct.unpack("<I", t.mm.read(set_addr, 4))[0]
        how = i32(how)
        if how == S.SIG_BLOCK:
            new = old | mask
        elif how == S.SIG_UNBLOCK:
            new = old & ~mask
        elif how == S.SIG_SETMASK:
            new = (old & ~MASK32) | mask
        else:
            raise KernelError(E.EINVAL)
        t.blocked = new & ~UNBLOCKABLE
    if oset:
        t.mm.write(oset, struct.pack("<I", old & MASK32))
    if set_addr:
        k.signals.recalc(t)
    return 0


def _mmap2(k: Kernel, t: Task, addr: int, length: int, prot: int, flags: int, fd: int,
           pgoff: int) -> int:
    # an ia32 call gets the 32-bit address-space layout: placed below 4 GiB
    # (approximated with MAP_32BIT's window below 2 GiB)
    if not flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
        flags |= MAP_32BIT
    return k.do_mmap(t, addr, length, prot, flags, i32(fd), pgoff << 12)


def _sigreturn(rt: bool) -> Callable[[Kernel, Task], object]:
    def handler(k: Kernel, t: Task) -> object:
        try:
            return signal_ia32.restore_frame(k, t, rt) & MASK64
        except KernelError:
            k.signals.force(t, SigInfo(S.SIGSEGV, S.SI_KERNEL, addr=0))
            t.cpu.request_stop()
            return 0
    return handler


SPECIAL: dict[int, tuple[str, Callable[..., object], int]] = {
    67: ("sigaction", _sigaction, 3),
    119: ("sigreturn", _sigreturn(False), 0),
    126: ("sigprocmask", _sigprocmask, 3),
    173: ("rt_sigreturn", _sigreturn(True), 0),
    174: ("rt_sigaction", _rt_sigaction, 4),
    192: ("mmap2", _mmap2, 6),
}


def dispatch_ia32(k: Kernel, t: Task) -> None:
    """`int $0x80` from 64-bit code: RIP is already past the instruction."""
    cpu = t.cpu
    nr = cpu.reg("rax") & MASK32
    args = [cpu.reg(r) & MASK32 for r in ARG_REGS]
    t.restart = (nr, "never")
    t.orig_rax = nr
    special = SPECIAL.get(nr)
    handler: Callable[..., object] | None = None
    decoded: list[int] = []
    if special is not None:
        _name, handler, nargs = special
        decoded = args[:nargs]
    elif nr in SAME:
        entry = TABLE.get(SAME[nr])
        if entry is not None and entry.handler is not None:
            handler = entry.handler.resolve()
            decoded = [d(v) for d, v in zip(entry.decoders, args, strict=False)]
    if handler is None:
        k.say_once(f"ia32:{nr}", f"ia32 system call {nr} (int $0x80) is not emulated: "
                   "returning -ENOSYS")
        cpu.set_reg("rax", -E.ENOSYS & MASK64)
        return
    result: object
    try:
        result = handler(k, t, *decoded)
    except KernelError as exc:
        result = -exc.errno
    except Blocked as b:
        k.block(t, b)
        return
    except CpuFault:
        result = -E.EFAULT
    except (OverflowError, ValueError):
        result = -E.EINVAL
    if result is NO_RESULT:
        return
    assert isinstance(result, int)
    cpu.set_reg("rax", result & MASK64)


__all__ = ["SAME", "SPECIAL", "dispatch_ia32"]
