"""arch_prctl(ARCH_SHSTK_*) (SPEC.md §4): every row of the §4.4 table with its errno, the
order of checks (STATUS and LOCK first, EPERM before EINVAL, the ptrace branch, the
self-UNLOCK quirk), the allocation rule (§3.1, §4.1), disable (§4.2), inheritance across
fork and exec (§4.5), the /proc lines (§10), and the nousershstk / no-shstk profiles.

Guest: tests/guest/shstk/prctl.c, one run per group and engine.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES
from test_shstk_cpu import assert_parts, build_shstk, run_group

GROUPS = {
    "table": ["table-off", "table-status-efault", "table-enable", "table-enable-again",
              "table-wrss", "table-disable", "table-reenable"],
    "size": ["size-rlimit-0x100001", "size-rlimit-0x202001", "size-rlimit-0x800000",
             "size-rlimit-0x140000000", "size-rlimit-0xffffffffffffffff", "size-rlimit-0x1",
             "size-rlimit-0"],
    "proc": ["proc-status-off", "proc-status-on", "proc-smaps-ss", "proc-cpuinfo-user-shstk"],
    "lock": ["lock-unknown-bits", "lock-wrss", "lock-shstk"],
    "unlock-self": ["unlock-self-is-enable"],
    "old-codes": ["old-codes-einval"],
    "ptrace": ["ptrace-arch-prctl"],
    "fork": ["fork-inherits"],
    "exec": ["exec-resets"],
}

PROFILE_GROUPS = {
    "nousershstk": ["nousershstk-prctl", "nousershstk-lock-proc"],
    "no-shstk": ["no-shstk-prctl-einval"],
}


@pytest.fixture(scope="module")
def prctl_prog(build):
    return build_shstk(build, "prctl")


# Groups whose outcome no CPU decides: the in-process kernel tests (test_kernel_unit.py)
# check them row by row; here one engine suffices to see them from a real guest.
KERNEL_ONLY = {"table", "size", "lock", "unlock-self", "old-codes"}


@pytest.mark.parametrize(("group", "engine"), [
    (g, e) for g in sorted(GROUPS) for e in ENGINES if e == ENGINES[0] or g not in KERNEL_ONLY])
def test_prctl_group(prctl_prog, group, engine):
    proc, out, err = run_group(prctl_prog, group, engine)
    assert_parts(proc, out, err, GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("profile", sorted(PROFILE_GROUPS))
def test_prctl_kernel_profile(prctl_prog, profile, engine):
    proc, out, err = run_group(prctl_prog, profile, engine, "--kernel", profile)
    assert_parts(proc, out, err, PROFILE_GROUPS[profile])


@pytest.mark.parametrize("engine", ENGINES)
def test_mainline_expectations_fail_under_nousershstk(prctl_prog, engine):
    """The table group really depends on the kernel: under nousershstk ENABLE fails."""
    proc, out, _err = run_group(prctl_prog, "table", engine, "--kernel", "nousershstk")
    assert proc.returncode == 1
    assert "arch_prctl(0x5001, 0x1) = -95, want 0" in out
