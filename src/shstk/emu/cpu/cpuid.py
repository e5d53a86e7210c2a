"""CPUID of the emulated CPU: Unicorn's CPU model, plus CET and our brand string."""

from __future__ import annotations

import struct

from shstk.emu.cpu import ucbind
from shstk.emu.cpu import ucconst as X

# The CPU model whose CPUID Unicorn emulates faithfully (AVX hidden, SSE4.2 present).
CPU_MODEL = X.UC_CPU_X86_SKYLAKE_CLIENT
CPU_BRAND = "shstk virtual x86-64 CPU with CET"
# Leaves whose answer depends on the sub-leaf in ECX.
SUBLEAF_LEAVES = frozenset({4, 7, 0xB, 0xD, 0xF, 0x10, 0x12, 0x14, 0x17, 0x18})

_model_uc: ucbind.Uc | None = None
_CPUID_CODE = 0x1000


def model_cpuid(leaf: int, sub: int) -> tuple[int, int, int, int]:
    """What Unicorn's model answers (run once per leaf in a scratch Unicorn)."""
    global _model_uc
    if _model_uc is None:
        _model_uc = ucbind.Uc(X.UC_ARCH_X86, X.UC_MODE_64)
        _model_uc.ctl_set_cpu_model(CPU_MODEL)
        _model_uc.mem_map(_CPUID_CODE, 0x1000)
        _model_uc.mem_write(_CPUID_CODE, b"\x0f\xa2")
    uc = _model_uc
    uc.reg_write(X.UC_X86_REG_RAX, leaf)
    uc.reg_write(X.UC_X86_REG_RCX, sub)
    uc.emu_start(_CPUID_CODE, _CPUID_CODE + 2)
    a, b, c, d = (uc.reg_read(r) & 0xFFFFFFFF for r in (
        X.UC_X86_REG_RAX, X.UC_X86_REG_RBX, X.UC_X86_REG_RCX, X.UC_X86_REG_RDX))
    return a, b, c, d


_BRAND = CPU_BRAND.encode().ljust(48, b"\0")


def patch_cpuid(leaf: int, sub: int, regs: tuple[int, int, int, int],
                cet_supported: bool) -> tuple[int, int, int, int]:
    a, b, c, d = regs
    if leaf == 7 and sub == 0:
        c |= 1 << 7  # CET_SS: the CPU has shadow stacks
        d |= 1 << 20  # CET_IBT
    elif 0x80000002 <= leaf <= 0x80000004:
        off = (leaf - 0x80000002) * 16
        a, b, c, d = struct.unpack_from("<4I", _BRAND, off)
    return a, b, c, d


def cpu_identity() -> dict[str, object]:
    """Vendor, family/model/stepping and flags of the emulated CPU (for /proc/cpuinfo)."""
    _a, b, c, d = model_cpuid(0, 0)
    vendor = struct.pack("<III", b, d, c).decode()
    eax1, _b1, ecx1, edx1 = model_cpuid(1, 0)
    family = (eax1 >> 8) & 0xF
    model = (eax1 >> 4) & 0xF
    if family in (6, 15):
        model |= ((eax1 >> 16) & 0xF) << 4
    if family == 15:
        family += (eax1 >> 20) & 0xFF
    _a7, ebx7, ecx7, edx7 = patch_cpuid(7, 0, model_cpuid(7, 0), True)
    return {"vendor": vendor, "family": family, "model": model, "stepping": eax1 & 0xF,
            "brand": CPU_BRAND, "ecx1": ecx1, "edx1": edx1, "ebx7": ebx7, "ecx7": ecx7,
            "edx7": edx7}


class CpuidTable:
    """CPUID answers of one CPU, computed once per (leaf, sub-leaf)."""

    def __init__(self, cet_supported: bool) -> None:
        self.cet_supported = cet_supported
        self._cache: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    def __call__(self, leaf: int, sub: int = 0) -> tuple[int, int, int, int]:
        key = (leaf, sub if leaf in SUBLEAF_LEAVES else 0)
        hit = self._cache.get(key)
        if hit is None:
            hit = patch_cpuid(leaf, key[1], model_cpuid(*key), self.cet_supported)
            self._cache[key] = hit
        return hit
