"""shstk's own ctypes binding of Unicorn (emu/cpu/ucbind.py) against the `unicorn`
package it replaces at run time: the same constants, the same errors, and the package's
rule that an exception in a Python hook stops the run and comes out of emu_start."""

from __future__ import annotations

import subprocess
import sys

import pytest
import unicorn
from unicorn import unicorn_const, x86_const

from shstk.emu.cpu import ucbind, ucconst
from shstk.emu.cpu.ucconst import (
    UC_ARCH_X86,
    UC_HOOK_BLOCK,
    UC_HOOK_CODE,
    UC_HOOK_INSN,
    UC_HOOK_INTR,
    UC_MODE_64,
    UC_X86_INS_CPUID,
    UC_X86_INS_SYSCALL,
    UC_X86_REG_RAX,
    UC_X86_REG_RBX,
    UC_X86_REG_RIP,
)

CODE = 0x10000


def test_every_constant_is_the_packages() -> None:
    names = [n for n in vars(ucconst) if n.startswith("UC_")]
    assert len(names) > 50
    for name in names:
        source = x86_const if name.startswith(("UC_X86_", "UC_CPU_X86_")) else unicorn_const
        assert getattr(ucconst, name) == getattr(source, name), name


def _machine(code: bytes) -> ucbind.Uc:
    uc = ucbind.Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, code)
    return uc


def test_registers_run_and_stop() -> None:
    uc = _machine(b"\x48\xff\xc0" * 3)  # inc rax x3
    uc.reg_write(UC_X86_REG_RAX, 40)
    uc.emu_start(CODE, CODE + 9)
    assert uc.reg_read(UC_X86_REG_RAX) == 43
    assert uc.reg_read(UC_X86_REG_RIP) == CODE + 9
    uc.reg_write(UC_X86_REG_RAX, -1)
    assert uc.reg_read(UC_X86_REG_RAX) == (1 << 64) - 1


def test_hooks_see_what_the_package_passes() -> None:
    uc = _machine(b"\x48\xff\xc0\x0f\xa2\x0f\x05\xcd\x80")  # inc; cpuid; syscall; int 0x80
    seen: list[tuple] = []
    uc.hook_add(UC_HOOK_CODE, lambda u, a, s, d: seen.append(("code", a, s, d)), "ud")
    uc.hook_add(UC_HOOK_BLOCK, lambda u, a, s, d: seen.append(("block", a, d)), "bd")
    uc.hook_add(UC_HOOK_INSN, lambda u, d: 7, None, 1, 0, UC_X86_INS_CPUID)
    uc.hook_add(UC_HOOK_INSN, lambda u, d: seen.append(("syscall", d)), "sd", 1, 0,
                UC_X86_INS_SYSCALL)

    def interrupt(u: ucbind.Uc, intno: int, d: str) -> None:
        seen.append(("intr", intno, d))
        u.emu_stop()

    uc.hook_add(UC_HOOK_INTR, interrupt, "id")
    uc.emu_start(CODE, CODE + 9)
    assert ("block", CODE, "bd") in seen
    assert ("code", CODE, 3, "ud") in seen and ("code", CODE + 3, 2, "ud") in seen
    assert ("syscall", "sd") in seen and ("intr", 0x80, "id") in seen


def test_an_exception_in_a_hook_stops_the_run_and_is_raised_by_emu_start() -> None:
    uc = _machine(b"\x48\xff\xc0" * 4)
    calls = []

    def hook(u: ucbind.Uc, addr: int, size: int, _d: object) -> None:
        calls.append(addr)
        if addr == CODE + 3:
            raise KeyError("from the hook")

    uc.hook_add(UC_HOOK_CODE, hook)
    with pytest.raises(KeyError, match="from the hook"):
        uc.emu_start(CODE, CODE + 12)
    assert calls == [CODE, CODE + 3]  # stopped there, as the package does
    assert uc.reg_read(UC_X86_REG_RAX) < 4


def test_errors_carry_unicorns_errno_and_message() -> None:
    uc = ucbind.Uc(UC_ARCH_X86, UC_MODE_64)
    with pytest.raises(ucbind.UcError) as mine:
        uc.emu_start(0x5000, 0x5010)  # nothing mapped there
    theirs = unicorn.Uc(UC_ARCH_X86, UC_MODE_64)
    with pytest.raises(unicorn.UcError) as pkg:
        theirs.emu_start(0x5000, 0x5010)
    assert mine.value.errno == pkg.value.errno
    assert str(mine.value) == str(pkg.value)
    assert ucconst.UC_ERR_EXCEPTION in ucbind.mmu_errors()


def test_contexts_hook_removal_and_translation_cache() -> None:
    uc = _machine(b"\x48\xff\xc3")  # inc rbx
    uc.reg_write(UC_X86_REG_RBX, 1)
    saved = uc.context_save()
    handle = uc.hook_add(UC_HOOK_CODE, lambda *a: (_ for _ in ()).throw(AssertionError))
    uc.hook_del(handle)
    uc.emu_start(CODE, CODE + 3)
    assert uc.reg_read(UC_X86_REG_RBX) == 2
    uc.context_restore(saved)
    assert uc.reg_read(UC_X86_REG_RBX) == 1
    uc.mem_write(CODE, b"\x48\xff\xcb")  # dec rbx: the old translation must go
    uc.ctl_remove_cache(CODE, CODE + 0x1000)
    uc.emu_start(CODE, CODE + 3)
    assert uc.reg_read(UC_X86_REG_RBX) == 0


_PRELOAD = """
import os, sys, time
from shstk.emu.cpu import preload
paths = [os.path.realpath(preload.unicorn_library()), os.path.realpath(preload.capstone_library())]
def mapped():
    with open("/proc/self/maps") as f:
        return {line.split()[-1] for line in f if line.rstrip().endswith(".so") or ".so." in line}
assert not set(paths) & mapped()
preload.start()
deadline = time.monotonic() + 20
while not set(paths) <= mapped() and time.monotonic() < deadline:
    time.sleep(0.005)
print("loaded" if set(paths) <= mapped() else "not loaded")
from shstk.emu.cpu import cslib, ucbind, ucconst  # the same files: no second copy
cs = cslib.open_x86_64()
uc = ucbind.Uc(ucconst.UC_ARCH_X86, ucconst.UC_MODE_64)
with open("/proc/self/maps") as f:
    code = [line.split()[-1] for line in f if "x" in line.split()[1]]
print(*(code.count(p) for p in paths), cs is not None)
"""


def test_the_engine_libraries_load_on_another_thread_and_are_reused() -> None:
    # preload.start (shstk run's start-up) loads Unicorn's and capstone's libraries on a
    # thread of the fast path while Python imports; the later loads find them
    out = subprocess.run([sys.executable, "-c", _PRELOAD], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["loaded", "1", "1", "True"]  # one executable mapping of each
