"""The shadow-stack subsystem (Linux arch/x86/kernel/shstk.c; SPEC.md §2-§9).

Everything the kernel does for user shadow stacks lives here: allocation, the
arch_prctl handler, map_shadow_stack, thread stacks, the signal-frame token, freeing,
the exec reset and the /proc lines. Each function checks in the order the kernel does,
with early returns, so reading a function is reading the spec section it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.abi.shstk import CET_SHSTK_EN, CET_WRSS_EN
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import VM_ACCOUNT, VM_NOHUGEPAGE, VM_SHADOW_STACK, VM_WRITE, page_align

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.mm import AddressSpace
    from shstk.emu.kernel.task import Task

SHSTK = A.ARCH_SHSTK_SHSTK
WRSS = A.ARCH_SHSTK_WRSS
DATA_BIT = A.SHSTK_DATA_BIT


# --- per-thread CET register state (SSP, U_CET) ------------------------------------------
# While a task is on its CPU the engine holds them; otherwise the task's saved copy does.

def get_ssp(task: Task) -> int:
    if task.cpu.current is task:
        return task.cpu.ssp
    return task.cet_state[0]


def set_ssp(task: Task, value: int) -> None:
    if task.cpu.current is task:
        task.cpu.ssp = value
    else:
        task.cet_state = (value, *task.cet_state[1:])


def get_ucet(task: Task) -> int:
    if task.cpu.current is task:
        return task.cpu.cet
    return task.cet_state[1]


def set_ucet(task: Task, value: int) -> None:
    if task.cpu.current is task:
        task.cpu.cet = value
    else:
        s = task.cet_state
        task.cet_state = (s[0], value, *s[2:])


def enabled(task: Task, feature: int) -> bool:
    return bool(task.shstk.features & feature)


# --- allocation (§3) -----------------------------------------------------------------------

def adjust_shstk_size(task: Task, size: int) -> int:
    """§3.1: PAGE_ALIGN(size), or PAGE_ALIGN(min(RLIMIT_STACK, 4 GiB)) for 0."""
    if size:
        return page_align(size)
    limit = task.proc.rlimits[R.RLIMIT_STACK][0]
    return page_align(min(limit, M.FOUR_GIB))


def _write_user_shstk(mm: AddressSpace, addr: int, value: int) -> None:
    """WRUSS: a shadow-stack write from the kernel (needs a writable shadow-stack page)."""
    v = mm.find(addr)
    if v is None or not v.shadow_stack or not v.flags & VM_WRITE or addr + 8 > v.end:
        raise KernelError(E.EFAULT)
    mm.write(addr, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"), force=True)


def create_rstor_token(mm: AddressSpace, ssp: int) -> int:
    """§3.3: write the restore token `ssp | 1` at `ssp - 8`; returns the token address."""
    if ssp % 8:
        raise KernelError(E.EINVAL)
    addr = ssp - 8
    _write_user_shstk(mm, addr, ssp | 1)
    return addr


def alloc_shstk(k: Kernel, task: Task, addr: int, size: int, token_offset: int,
                set_token: bool) -> int:
    """§3.2: an anonymous private shadow-stack mapping above 4 GiB."""
    flags = M.MAP_ANONYMOUS | M.MAP_PRIVATE | M.MAP_ABOVE4G
    if addr:
        flags |= M.MAP_FIXED_NOREPLACE
    mapped = k.do_mmap(task, addr, size, M.PROT_READ | M.PROT_WRITE, flags,
                       extra_vm=VM_SHADOW_STACK | VM_ACCOUNT | VM_NOHUGEPAGE,
                       start_gap=M.PAGE_SIZE if k.profile.placement_gap else 0)
    if not set_token:
        return mapped
    try:
        create_rstor_token(task.mm, mapped + token_offset)
    except KernelError:
        task.mm.unmap(mapped, mapped + size)
        raise KernelError(E.EINVAL) from None
    return mapped


# --- enable / disable (§4.1-§4.3) ------------------------------------------------------------

def shstk_setup(k: Kernel, task: Task) -> None:
    if enabled(task, SHSTK):
        return
    if not k.profile.user_shstk:
        raise KernelError(E.EOPNOTSUPP)
    size = adjust_shstk_size(task, 0)
    addr = alloc_shstk(k, task, 0, size, 0, False)
    # SSP one past the top, no token: the caller's return addresses are not on it
    set_ssp(task, addr + size)
    set_ucet(task, CET_SHSTK_EN)
    task.shstk.base = addr
    task.shstk.size = size
    task.shstk.features |= SHSTK


def shstk_free(k: Kernel, current: Task, tsk: Task) -> None:
    """§7: unmap a kernel-allocated shadow stack (thread exit, exec, disable)."""
    if not k.profile.user_shstk or not enabled(current, SHSTK):
        return
    if tsk.mm is not current.mm or not tsk.shstk.base:
        return
    if not tsk.shstk.size:
        return  # already freed (the kernel WARNs here)
    base, size = tsk.shstk.base, tsk.shstk.size
    tsk.mm.unmap(base, base + size)
    tsk.shstk.size = 0


def shstk_disable(k: Kernel, task: Task) -> None:
    if not k.profile.user_shstk:
        raise KernelError(E.EOPNOTSUPP)
    if not enabled(task, SHSTK):
        return
    set_ucet(task, 0)
    set_ssp(task, 0)
    shstk_free(k, task, task)
    task.shstk.features &= ~(SHSTK | WRSS)


def wrss_control(k: Kernel, task: Task, enable: bool) -> None:
    if not k.profile.user_shstk:
        raise KernelError(E.EOPNOTSUPP)
    if not enabled(task, SHSTK):
        raise KernelError(E.EPERM)
    if enable == enabled(task, WRSS):
        return
    if enable:
        task.shstk.features |= WRSS
        set_ucet(task, get_ucet(task) | CET_WRSS_EN)
    else:
        task.shstk.features &= ~WRSS
        set_ucet(task, get_ucet(task) & ~CET_WRSS_EN)


# --- arch_prctl (§4) ------------------------------------------------------------------------

def shstk_prctl(k: Kernel, caller: Task, task: Task, option: int, arg2: int) -> int:
    """The 0x5001-0x5005 options, for `task` (== caller, or a tracee via ptrace)."""
    if not k.profile.kconfig:
        raise KernelError(E.EINVAL)
    if option == A.ARCH_SHSTK_STATUS:
        # the value goes to the *caller's* memory (the tracer's, through ptrace)
        caller.mm.write_u64(arg2, task.shstk.features)
        return 0
    if option == A.ARCH_SHSTK_LOCK:
        task.shstk.locked |= arg2
        return 0
    if task is not caller:
        if option == A.ARCH_SHSTK_UNLOCK and k.profile.checkpoint_restore:
            task.shstk.locked &= ~arg2
            return 0
        raise KernelError(E.EINVAL)
    # Only the task itself may change its shadow-stack state.
    if arg2 & task.shstk.locked:
        raise KernelError(E.EPERM)
    if arg2.bit_count() > 1:
        raise KernelError(E.EINVAL)
    if option == A.ARCH_SHSTK_DISABLE:
        if arg2 & WRSS:
            wrss_control(k, task, False)
        elif arg2 & SHSTK:
            shstk_disable(k, task)
        else:
            raise KernelError(E.EINVAL)
        return 0
    # ENABLE, and UNLOCK issued by the task on itself, which the kernel does not
    # special-case ([QUIRK] §4: it behaves exactly like ENABLE).
    if arg2 & SHSTK:
        shstk_setup(k, task)
    elif arg2 & WRSS:
        wrss_control(k, task, True)
    else:
        raise KernelError(E.EINVAL)
    return 0


# --- map_shadow_stack (§5) --------------------------------------------------------------------

def map_shadow_stack(k: Kernel, task: Task, addr: int, size: int, flags: int) -> int:
    if not k.profile.user_shstk:
        raise KernelError(E.EOPNOTSUPP)
    flags &= 0xFFFFFFFF  # `unsigned int flags`
    if flags & ~A.SHADOW_STACK_SET_TOKEN:
        raise KernelError(E.EINVAL)
    set_token = bool(flags & A.SHADOW_STACK_SET_TOKEN)
    if set_token and size < 8:
        raise KernelError(E.ENOSPC)
    if addr and addr < M.FOUR_GIB:
        raise KernelError(E.ERANGE)
    aligned = page_align(size)
    if aligned < size or aligned >= 1 << 64:
        raise KernelError(E.EOVERFLOW)
    # The token goes below the *unaligned* end: `size` is the token offset.
    return alloc_shstk(k, task, addr, aligned, size, set_token)


# --- threads (§6) and clone3 proposals (§12) ------------------------------------------------------

def alloc_thread_stack(k: Kernel, parent: Task, child: Task, clone_flags: int,
                       stack_size: int, shadow_stack_size: int = 0, token: int = 0) -> None:
    """shstk_alloc_thread_stack(): decide the child's shadow stack and SSP."""
    child.shstk.base = child.shstk.size = 0
    if token:
        # v23 proposal: an explicit, user-made stack wins; the kernel never frees it
        if not enabled(parent, SHSTK):
            raise KernelError(E.EINVAL)
        set_ssp(child, token + 8)
        return
    if not enabled(parent, SHSTK):
        if shadow_stack_size:
            raise KernelError(E.EINVAL)
        return
    if shadow_stack_size:
        # v4 size-only proposal: a new stack of that size, whatever the clone flags
        size = page_align(shadow_stack_size)
        addr = alloc_shstk(k, child, 0, size, 0, False)
        child.shstk.base, child.shstk.size = addr, size
        set_ssp(child, addr + size)
        return
    if clone_flags & C.CLONE_VFORK:
        return  # the child runs on the parent's shadow stack, with its SSP
    if not clone_flags & C.CLONE_VM:
        # fork: the child keeps SSP and base/size; its stack is the copy in its mm
        child.shstk.base, child.shstk.size = parent.shstk.base, parent.shstk.size
        return
    size = adjust_shstk_size(parent, stack_size)
    addr = alloc_shstk(k, child, 0, size, 0, False)
    child.shstk.base, child.shstk.size = addr, size
    set_ssp(child, addr + size)


def check_clone3_token(k: Kernel, child: Task, token: int) -> None:
    """v23 §12 steps 4-5, in the child's mm: consume the restore token at `token`."""
    mm = child.mm
    v = mm.find(token)
    if v is None:
        raise KernelError(E.EFAULT)
    if not v.shadow_stack or not v.flags & VM_WRITE:
        raise KernelError(E.EFAULT)
    if mm.read_u64(token) != (token + 8) | 1:
        raise KernelError(E.EINVAL)
    mm.write(token, bytes(8), force=True)  # the token is consumed


# --- signals (§8) -----------------------------------------------------------------------------

def push_sigframe(k: Kernel, task: Task, restorer: int) -> None:
    """setup_signal_shadow_stack(): the sigframe token, then the restorer address."""
    if not k.profile.user_shstk or not enabled(task, SHSTK):
        return
    if not restorer:
        raise KernelError(E.EINVAL)
    ssp = get_ssp(task)
    if not ssp or ssp % 8:
        raise KernelError(E.EINVAL)
    # The high bit marks data, so the token can be taken neither for a return
    # address nor for a restore token.
    _write_user_shstk(task.mm, ssp - 8, ssp | DATA_BIT)
    _write_user_shstk(task.mm, ssp - 16, restorer)
    set_ssp(task, ssp - 16)


def pop_sigframe(k: Kernel, task: Task) -> None:
    """restore_signal_shadow_stack(); any error makes rt_sigreturn a bad frame."""
    if not k.profile.user_shstk or not enabled(task, SHSTK):
        return
    ssp = get_ssp(task)
    if not ssp or ssp % 8:
        raise KernelError(E.EINVAL)
    if k.profile.sigreturn_vma_check_always:
        # 2026 mainline: find_vma(), which does not itself require ssp >= vm_start
        v = task.mm.find_next(ssp)
        if v is None or not v.shadow_stack:
            raise KernelError(E.EINVAL)
        token = _read_user(task.mm, ssp)
    else:
        # 6.6 .. early 2026: read first; check the VMA only for a page-aligned SSP
        token = _read_user(task.mm, ssp)
        if page_align(ssp) == ssp:
            v = task.mm.find_next(ssp)
            if v is None or not v.shadow_stack:
                raise KernelError(E.EFAULT)
    if not token & DATA_BIT:
        raise KernelError(E.EINVAL)
    target = token & ~DATA_BIT
    if target % 8 or target >= M.TASK_SIZE_MAX:
        raise KernelError(E.EINVAL)
    set_ssp(task, target)


def _read_user(mm: AddressSpace, addr: int) -> int:
    return int.from_bytes(mm.read(addr, 8), "little")


# --- exec (§4.5) and /proc (§10) ---------------------------------------------------------------

def reset_on_exec(task: Task) -> None:
    """reset_thread_features(): features, locks and the stack record go; SSP is 0."""
    task.shstk.features = 0
    task.shstk.locked = 0
    task.shstk.base = task.shstk.size = 0
    set_ssp(task, 0)
    set_ucet(task, 0)


_FEATURE_WORDS = ((SHSTK, "shstk"), (WRSS, "wrss"))


def proc_status_lines(k: Kernel, task: Task) -> str:
    """arch_proc_pid_thread_features(): the two lines of /proc/PID/status."""
    if not k.profile.kconfig:
        return ""

    def words(bits: int) -> str:
        return "".join(f"{w} " for bit, w in _FEATURE_WORDS if bits & bit)

    return (f"x86_Thread_features:\t{words(task.shstk.features)}\n"
            f"x86_Thread_features_locked:\t{words(task.shstk.locked)}\n")


# --- the loader policy: the part a CET-enabled glibc plays at start-up (§15.1) ------------------

def loader_enable(k: Kernel, task: Task, *, lock: bool) -> None:
    """What glibc's start-up does: ENABLE(SHSTK), then LOCK(all) unless permissive."""
    shstk_setup(k, task)
    if lock:
        task.shstk.locked |= (1 << 64) - 1
