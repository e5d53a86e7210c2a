"""Kernel profiles: which Linux the emulator plays (`shstk run --kernel NAME`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from shstk.errors import UsageError


@dataclass(frozen=True)
class Profile:
    """A kernel the emulator behaves as: its configuration and the shadow-stack behaviours
    that differ between versions."""

    name: str
    description: str
    kconfig: bool = True  # CONFIG_X86_USER_SHADOW_STACK built in
    user_shstk: bool = True  # X86_FEATURE_USER_SHSTK: CPU + Kconfig + no `nousershstk`
    # rt_sigreturn looks up the shadow-stack VMA for every SSP, failing with EINVAL
    # (commit 9874b2917b9f, Apr 2026); before, only page-aligned SSPs, with EFAULT.
    sigreturn_vma_check_always: bool = True
    clone3: str = "mainline"  # "mainline" | "size" (v4 series) | "token" (v23 series)
    checkpoint_restore: bool = True  # CONFIG_CHECKPOINT_RESTORE: ptrace UNLOCK works
    # A new shadow stack keeps a free page below itself (stack_guard_placement(), the
    # 6.10-era "cover a guard gap corner case"); 6.6 only had the start gap of §3.4.
    placement_gap: bool = True
    uname_release: str = "6.19.0-shstk"


# utsname beyond the profile's release: uname(2), /proc/version, /proc/sys/kernel/*.
UTS_VERSION = "#1 SMP PREEMPT_DYNAMIC shstk emulated kernel"
# The host's name, as Linux gives in the host's UTS namespace: `hostname`, `uname -n`
NODENAME = os.uname().nodename


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("mainline", "Linux mainline as of 2026 (default)"),
    Profile("6.6", "Linux 6.6: the older rt_sigreturn shadow-stack check, no placement gap",
            sigreturn_vma_check_always=False, placement_gap=False,
            uname_release="6.6.0-shstk"),
    Profile("nousershstk", "booted with `nousershstk`: EOPNOTSUPP, no cpuinfo flag",
            user_shstk=False),
    Profile("no-shstk", "kernel built without X86_USER_SHADOW_STACK",
            kconfig=False, user_shstk=False),
    Profile("clone3-shadow-stack-size",
            "proposed clone3 `shadow_stack_size` (v4 series, CLONE_ARGS_SIZE_VER3 = 96)",
            clone3="size"),
    Profile("clone3-shstk-token",
            "proposed clone3 `shstk_token` (v23 series, CLONE_ARGS_SIZE_VER3 = 96)",
            clone3="token"),
)}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown kernel profile {name!r}; choose from "
                         + ", ".join(PROFILES)) from None
