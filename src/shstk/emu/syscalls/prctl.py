"""Process controls: arch_prctl (with the shadow-stack options), prctl, personality, ptrace."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.emu.kernel import ptrace, shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.policy import note_libc_shstk_call
from shstk.emu.syscalls.util import i32, i64

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def sys_arch_prctl(k: Kernel, t: Task, option: int, arg2: int) -> int:
    """do_arch_prctl_64(), with the shadow-stack options of SPEC.md §4."""
    if A.ARCH_SHSTK_ENABLE <= option <= A.ARCH_SHSTK_STATUS:
        note_libc_shstk_call(t)
        return shstk.shstk_prctl(k, t, t, option, arg2)
    cpu = t.cpu
    if option == A.ARCH_SET_FS:
        if arg2 >= 1 << 47:
            raise KernelError(E.EPERM)
        cpu.set_reg("fs_base", arg2)
        return 0
    if option == A.ARCH_SET_GS:
        if arg2 >= 1 << 47:
            raise KernelError(E.EPERM)
        cpu.set_reg("gs_base", arg2)
        return 0
    if option == A.ARCH_GET_FS:
        t.mm.write_u64(arg2, cpu.reg("fs_base"))
        return 0
    if option == A.ARCH_GET_GS:
        t.mm.write_u64(arg2, cpu.reg("gs_base"))
        return 0
    if option == A.ARCH_GET_CPUID:
        return 1
    if option == A.ARCH_SET_CPUID:
        raise KernelError(E.ENODEV)
    if option == A.ARCH_GET_XCOMP_SUPP:
        t.mm.write_u64(arg2, 0x3)  # x87 and SSE state
        return 0
    if option in (A.ARCH_GET_XCOMP_PERM,):
        t.mm.write_u64(arg2, 0x3)
        return 0
    if option == A.ARCH_REQ_XCOMP_PERM:
        raise KernelError(E.EOPNOTSUPP)
    return -E.EINVAL


def sys_prctl(k: Kernel, t: Task, option: int, a2: int, a3: int, a4: int, a5: int) -> int:
    option = i32(option)
    proc = t.proc
    if option == R.PR_SET_NAME:
        name = t.mm.read_cstring(a2, 4096)[:15]
        t.comm = name.decode("utf-8", "replace")
        return 0
    if option == R.PR_GET_NAME:
        t.mm.write(a2, t.comm.encode()[:15].ljust(16, b"\0"))
        return 0
    if option == R.PR_SET_PDEATHSIG:
        if a2 > 64:
            raise KernelError(E.EINVAL)
        return 0
    if option == R.PR_GET_PDEATHSIG:
        t.mm.write_u32(a2, 0)
        return 0
    if option == R.PR_GET_DUMPABLE:
        return proc.dumpable
    if option == R.PR_SET_DUMPABLE:
        if a2 not in (0, 1):
            raise KernelError(E.EINVAL)
        proc.dumpable = a2
        return 0
    if option == R.PR_SET_NO_NEW_PRIVS:
        if a2 != 1 or a3 or a4 or a5:
            raise KernelError(E.EINVAL)
        proc.no_new_privs = True
        return 0
    if option == R.PR_GET_NO_NEW_PRIVS:
        return int(proc.no_new_privs)
    if option == R.PR_CAPBSET_READ:
        return 1 if a2 <= 40 else -E.EINVAL
    if option == R.PR_SET_VMA:
        return _set_vma_name(k, t, a2, a3, a4, a5)
    if option == R.PR_SET_THP_DISABLE:
        return 0
    if option in (R.PR_GET_SHADOW_STACK_STATUS, R.PR_SET_SHADOW_STACK_STATUS,
                  R.PR_LOCK_SHADOW_STACK_STATUS):
        # arm64/RISC-V interface; x86 keeps the weak default
        raise KernelError(E.EINVAL)
    raise KernelError(E.EINVAL)


def _set_vma_name(k: Kernel, t: Task, sub: int, addr: int, size: int, name_addr: int) -> int:
    if sub != 0:  # PR_SET_VMA_ANON_NAME
        raise KernelError(E.EINVAL)
    name = t.mm.read_cstring(name_addr, 79).decode() if name_addr else None
    end = addr + ((size + 0xFFF) & ~0xFFF)
    for v in t.mm.overlapping(addr, end):
        if v.file is None:
            v.anon_name = name
    return 0


def sys_personality(k: Kernel, t: Task, persona: int) -> int:
    old = t.proc.personality
    if persona & 0xFFFFFFFF != 0xFFFFFFFF:
        t.proc.personality = persona & 0xFFFFFFFF
    return old


def sys_ptrace(k: Kernel, t: Task, request: int, pid: int, addr: int, data: int) -> int:
    return ptrace.sys_ptrace(k, t, i64(request), i32(pid), addr, data)
