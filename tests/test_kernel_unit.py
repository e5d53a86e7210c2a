"""The kernel in-process (tests/kernelunit.py): SPEC.md §3-§5 row by row, in milliseconds.

These are the cases that need no real CPU: the arch_prctl outcome table (§4.4) and its
order of checks, the allocation rule (§3.1), map_shadow_stack's checks (§5), the kernel
profiles. The guest programs in test_shstk_prctl.py and test_shstk_map.py keep what needs
a CPU: a CALL/RET on the new stack, the /proc text, fork, exec and ptrace.
"""

from __future__ import annotations

import pytest
from kernelunit import SCRATCH, machine

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.abi import shstk as A
from shstk.emu.cpu.interface import Region

ENABLE, DISABLE, LOCK, UNLOCK, STATUS = (A.ARCH_SHSTK_ENABLE, A.ARCH_SHSTK_DISABLE,
                                         A.ARCH_SHSTK_LOCK, A.ARCH_SHSTK_UNLOCK,
                                         A.ARCH_SHSTK_STATUS)
SHSTK, WRSS = A.ARCH_SHSTK_SHSTK, A.ARCH_SHSTK_WRSS
FOUR_GIB = 1 << 32


def prctl(m, option, arg):
    return m.call("arch_prctl", option, arg)


def status(m) -> int:
    assert prctl(m, STATUS, SCRATCH) == 0
    return m.u64(SCRATCH)


# --- §4.4: the outcome table --------------------------------------------------------------

def test_enable_allocates_a_shadow_stack_with_ssp_one_past_the_top():
    m = machine()
    assert prctl(m, ENABLE, SHSTK) == 0
    sh = m.task.shstk
    assert sh.features == SHSTK
    assert sh.size == 8 << 20 and sh.base >= FOUR_GIB
    assert m.cpu.ssp == sh.base + sh.size  # no token at the top (§4.1)
    v = m.task.mm.find(sh.base)
    assert v is not None and v.shadow_stack and v.start == sh.base and v.end == sh.base + sh.size
    # the CPU was told where shadow-stack memory is
    assert isinstance(m.cpu.regions[sh.base], Region)
    assert status(m) == SHSTK


def test_enable_again_changes_nothing():
    m = machine()
    prctl(m, ENABLE, SHSTK)
    ssp, base = m.cpu.ssp, m.task.shstk.base
    assert prctl(m, ENABLE, SHSTK) == 0
    assert (m.cpu.ssp, m.task.shstk.base) == (ssp, base)
    assert len([v for v in m.task.mm.vmas if v.shadow_stack]) == 1


@pytest.mark.parametrize("option", [ENABLE, DISABLE])
def test_wrss_needs_shadow_stacks_on(option):
    assert prctl(machine(), option, WRSS) == -E.EPERM


def test_wrss_on_and_off():
    m = machine()
    prctl(m, ENABLE, SHSTK)
    assert prctl(m, ENABLE, WRSS) == 0
    assert status(m) == SHSTK | WRSS and m.cpu.cet & A.CET_WRSS_EN
    assert prctl(m, DISABLE, WRSS) == 0
    assert status(m) == SHSTK and not m.cpu.cet & A.CET_WRSS_EN


def test_disable_when_off_is_0():
    m = machine()
    assert prctl(m, DISABLE, SHSTK) == 0
    assert status(m) == 0


def test_disable_unmaps_the_stack_and_clears_wrss():
    m = machine()
    prctl(m, ENABLE, SHSTK)
    prctl(m, ENABLE, WRSS)
    base = m.task.shstk.base
    assert prctl(m, DISABLE, SHSTK) == 0
    assert status(m) == 0
    assert m.cpu.ssp == 0 and m.cpu.cet == 0
    assert m.task.mm.find(base) is None and base not in m.cpu.regions


@pytest.mark.parametrize("option", [ENABLE, DISABLE])
@pytest.mark.parametrize("arg", [SHSTK | WRSS, 0, 1 << 2, 1 << 63])
def test_no_or_several_or_unknown_bits_are_einval(option, arg):
    assert prctl(machine(), option, arg) == -E.EINVAL


def test_locked_bit_is_eperm_before_the_bit_count():
    m = machine()
    assert prctl(m, LOCK, SHSTK) == 0
    assert prctl(m, ENABLE, SHSTK) == -E.EPERM
    assert prctl(m, ENABLE, SHSTK | WRSS) == -E.EPERM  # two bits, but locked first
    assert prctl(m, ENABLE, WRSS) == -E.EPERM  # not locked: SHSTK is off
    assert status(m) == 0


@pytest.mark.parametrize("arg", [0, 1 << 40, (1 << 64) - 1, SHSTK])
def test_lock_takes_any_bits_and_is_idempotent(arg):
    m = machine()
    assert prctl(m, LOCK, arg) == 0
    assert prctl(m, LOCK, arg) == 0
    assert m.task.shstk.locked == arg


def test_unlock_on_self_behaves_as_enable():
    """[QUIRK] §4: UNLOCK from the task itself falls through to ENABLE."""
    m = machine()
    assert prctl(m, UNLOCK, SHSTK) == 0
    assert status(m) == SHSTK
    assert prctl(m, UNLOCK, 0) == -E.EINVAL
    prctl(m, LOCK, WRSS)
    assert prctl(m, UNLOCK, WRSS) == -E.EPERM


def test_status_to_a_bad_pointer_is_efault():
    assert prctl(machine(), STATUS, 0x1000) == -E.EFAULT


def test_old_option_numbers_are_einval():
    m = machine()
    for option in (0x3001, 0x3002, 0x3003, 0x4001):
        assert prctl(m, option, SHSTK) == -E.EINVAL, hex(option)


# --- §3.1: the size of a kernel-allocated stack ------------------------------------------

@pytest.mark.parametrize(("rlimit", "size"), [
    (0x100001, 0x101000), (8 << 20, 8 << 20), (0x140000000, FOUR_GIB),
    ((1 << 64) - 1, FOUR_GIB), (1, 0x1000)])
def test_size_follows_rlimit_stack(rlimit, size):
    m = machine(stack_rlimit=rlimit)
    assert prctl(m, ENABLE, SHSTK) == 0
    assert m.task.shstk.size == size


# --- kernel profiles ----------------------------------------------------------------------

def test_nousershstk_is_eopnotsupp_but_lock_and_status_work():
    m = machine("nousershstk")
    assert prctl(m, ENABLE, SHSTK) == -E.EOPNOTSUPP
    assert prctl(m, DISABLE, SHSTK) == -E.EOPNOTSUPP
    assert prctl(m, LOCK, SHSTK) == 0
    assert status(m) == 0
    assert m.call("map_shadow_stack", 0, 0x1000, 0) == -E.EOPNOTSUPP


def test_without_the_kconfig_option_prctl_is_einval_and_the_syscall_enosys():
    m = machine("no-shstk")
    assert prctl(m, ENABLE, SHSTK) == -E.EINVAL
    assert prctl(m, STATUS, SCRATCH) == -E.EINVAL
    assert m.call("map_shadow_stack", 0, 0x1000, 0) == -E.ENOSYS


# --- §5: map_shadow_stack -----------------------------------------------------------------

SET_TOKEN = A.SHADOW_STACK_SET_TOKEN


def test_map_shadow_stack_with_a_token_at_the_unaligned_end():
    m = machine()
    addr = m.call("map_shadow_stack", 0, 0x1ff8, SET_TOKEN)
    assert addr >= FOUR_GIB and addr % M.PAGE_SIZE == 0
    v = m.task.mm.find(addr)
    assert v is not None and v.shadow_stack and v.end - v.start == 0x2000
    assert m.u64(addr + 0x1ff8 - 8) == (addr + 0x1ff8) | 1
    assert m.u64(addr + 0x1ff8) == 0  # the rest of the page stays zero


def test_map_shadow_stack_without_a_token_is_all_zero():
    m = machine()
    addr = m.call("map_shadow_stack", 0, 0x1000, 0)
    assert addr >= FOUR_GIB
    assert m.task.mm.read(addr, 0x1000, force=True) == bytes(0x1000)


@pytest.mark.parametrize(("addr", "size", "flags", "errno"), [
    (0, 0x1000, 1 << 1, E.EINVAL),  # SHADOW_STACK_SET_MARKER is not x86's
    (0, 0x1000, 1 << 32 | 1 << 1, E.EINVAL),  # flags is 32-bit: the high word is gone
    (0, 4, SET_TOKEN, E.ENOSPC),  # checked before the address
    (0x1000, 4, SET_TOKEN, E.ENOSPC),
    (0x7000_0000, 0x1000, 0, E.ERANGE),  # below 4 GiB
    (0, (1 << 64) - 0x10, 0, E.EOVERFLOW),
    (0, 0, 0, E.EINVAL),  # nothing to map
    (FOUR_GIB + 0x10, 0x1000, 0, E.EINVAL),  # not page-aligned
    (0, 0x1004, SET_TOKEN, E.EINVAL),  # the token would not be 8-aligned
    ((1 << 47) - 0x1000, 0x2000, 0, E.ENOMEM),  # beyond TASK_SIZE
])
def test_map_shadow_stack_errors_in_order(addr, size, flags, errno):
    m = machine()
    before = list(m.task.mm.vmas)
    assert m.call("map_shadow_stack", addr, size, flags) == -errno
    assert list(m.task.mm.vmas) == before  # nothing left mapped by a failure


def test_map_shadow_stack_at_an_existing_mapping_is_eexist():
    m = machine()
    addr = m.call("map_shadow_stack", 0, 0x1000, 0)
    assert m.call("map_shadow_stack", addr, 0x1000, 0) == -E.EEXIST


def test_a_new_shadow_stack_keeps_a_guard_page_below_the_last():
    """§3.4: the top-down search leaves one free page below every shadow stack."""
    m = machine()
    first = m.call("map_shadow_stack", 0, 0x1000, 0)
    second = m.call("map_shadow_stack", 0, 0x1000, 0)
    assert second + 0x1000 <= first - 0x1000


# --- decoded arguments reach handlers within range ------------------------------------------

def test_getrlimit_of_an_unknown_resource_is_einval():
    m = machine()
    assert m.call("getrlimit", (1 << 64) - 1, SCRATCH) == -E.EINVAL
    assert m.call("prlimit64", 0, 1 << 31, 0, SCRATCH) == -E.EINVAL


def test_setresuid_minus_one_keeps_ids_and_root_may_change_them():
    m = machine()
    proc = m.task.proc
    proc.uid = proc.euid = proc.suid = 0
    minus1 = (1 << 64) - 1
    assert m.call("setresuid", minus1, 1000, minus1) == 0
    assert (proc.uid, proc.euid, proc.suid) == (0, 1000, 0)
    # no longer privileged (euid 1000): only to one of its own ids
    assert m.call("setresuid", minus1, 5, minus1) == -E.EPERM
    assert m.call("setresuid", minus1, 0, minus1) == 0
