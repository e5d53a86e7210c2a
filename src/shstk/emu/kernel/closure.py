"""Readiness of a dynamic program: the dependency closure, as `shstk audit` decides."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.loader import ElfImage


def dynamic_readiness(k: Kernel, img: ElfImage) -> tuple[bool, str]:
    from shstk.audit.verdict import shstk_verdict
    from shstk.elf.resolve import Resolver

    resolver = Resolver(sysroot=k.opts.sysroot)
    closure = resolver.closure(img.host_path)
    verdict = shstk_verdict(closure, control="elf_property")
    return verdict.enabled, verdict.reason
