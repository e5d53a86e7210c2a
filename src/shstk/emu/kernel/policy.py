"""The loader policy (`shstk run --shstk auto|on|off|permissive`, SPEC.md §15.1).

Debian's glibc never enables shadow stacks, so the emulator can play the part of a
CET-enabled loader: before the first instruction it does what glibc's start-up does
(ENABLE SHSTK, then LOCK all features unless permissive) when the policy says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import elf as EL
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.loader import ElfImage
    from shstk.emu.kernel.task import Task

POLICIES = ("auto", "on", "off", "permissive")


def image_marked(img: ElfImage) -> bool:
    return bool((img.feature_1_and or 0) & EL.GNU_PROPERTY_X86_FEATURE_1_SHSTK)


def readiness(k: Kernel, img: ElfImage, interp: ElfImage | None) -> tuple[bool, str]:
    """Would a CET-enabled loader turn shadow stacks on for this program, and why."""
    if interp is None:
        if image_marked(img):
            return True, f"{img.guest_path} carries the SHSTK property"
        return False, f"{img.guest_path} has no SHSTK property"
    from shstk.emu.kernel.closure import dynamic_readiness

    return dynamic_readiness(k, img)


def apply_loader_policy(k: Kernel, t: Task, img: ElfImage, interp: ElfImage | None) -> None:
    policy = k.opts.shstk_policy
    if policy == "off":
        return
    if policy == "on":
        enable, why = True, "--shstk on"
    else:
        enable, why = readiness(k, img, interp)
    if not enable:
        k.event(f"shadow stack left off: {why}")
        return
    try:
        shstk.loader_enable(k, t, lock=policy != "permissive")
    except KernelError as exc:
        k.event(f"shadow stack could not be enabled ({why}): errno {exc.errno}")
        return
    locked = "" if policy == "permissive" else ", locked"
    k.event(f"shadow stack enabled{locked}: {why}")
