"""Builders for the audit's test programs and libraries (imported by other tests), and
checks that what they build is what the tests assume: marked or not, and runnable.

The programs use no libc (tests/guest/audit/tiny.h): Debian's libc.so.6 carries no
SHSTK property, so a program linking it could never be "ready".
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from guestbuild import compile_guest

from shstk.elf.properties import read_cet_properties

FREESTANDING = ("-O2", "-ffreestanding", "-fno-tree-loop-distribute-patterns")
MARK = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")
IBT_ONLY = ("-fcf-protection=branch", "-Wl,-z,ibt")
NO_MARK = ("-fcf-protection=none",)


def library(source: str, soname: str, *, mark=MARK, extra=()) -> Path:
    """A shared library from tests/guest/audit/<source>, cached."""
    return compile_guest(f"audit/{source}", name=soname,
                         flags=(*FREESTANDING, *mark, "-shared", "-fPIC",
                                f"-Wl,-soname,{soname}", *extra))


def program(source: str, libs=(), *, mark=MARK, extra=(), name=None) -> Path:
    """A libc-free program from tests/guest/audit/<source> linked with `libs`."""
    # Libraries go after the source (extra_sources) so the linker sees the references
    # first; their bytes are part of the cache key.
    return compile_guest(f"audit/{source}", name=name or Path(source).stem,
                         flags=(*FREESTANDING, *mark, "-nostdlib", "-Wl,--no-as-needed", *extra),
                         extra_sources=tuple(str(lib) for lib in libs))


def static_program(*, mark=MARK) -> Path:
    return compile_guest("audit/static.c", name="static",
                         flags=(*FREESTANDING, *mark, "-nostdlib", "-static"))


def marked_greet() -> Path:
    return library("libgreet.c", "libgreet.so")


def plain_greet() -> Path:
    return library("libgreet.c", "libgreet.so", mark=NO_MARK)


def inner() -> Path:
    return library("libinner.c", "libinner.so")


def outer() -> Path:
    return compile_guest("audit/libouter.c", name="libouter.so",
                         flags=(*FREESTANDING, *MARK, "-shared", "-fPIC",
                                "-Wl,-soname,libouter.so"),
                         extra_sources=(str(inner()),))


def fake_ld_so() -> Path:
    """An unmarked x86-64 shared object with the real loader's SONAME, to stand in
    for ld.so in test roots (any DT_NEEDED on that name then resolves to it)."""
    return library("libinner.c", "ld-linux-x86-64.so.2", mark=NO_MARK)


def install(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest)
    return dest


def ldd(path: Path | str, env: dict[str, str] | None = None) -> list[str]:
    """What glibc's ldd says, in load order: resolved paths or 'NAME: not found'."""
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env or {})
    out = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if match := re.match(r"(\S+) => not found", line):
            out.append(f"{match.group(1)}: not found")
        elif match := re.match(r"(\S+) => (\S+) \(", line):
            out.append(match.group(2))
        elif (match := re.match(r"(/\S+) \(", line)) and "vdso" not in line:
            out.append(match.group(1))
    return out


needs_ldd = pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd not installed")


def test_marked_and_unmarked_builds_are_what_the_tests_assume():
    assert read_cet_properties(str(marked_greet())).shstk
    assert not read_cet_properties(str(plain_greet())).shstk
    ibt_only = program("greet.c", [marked_greet()], mark=IBT_ONLY, name="greet-ibt")
    props = read_cet_properties(str(ibt_only))
    assert props.ibt and not props.shstk


def test_the_programs_run(tmp_path):
    exe = install(program("greet.c", [marked_greet()], extra=("-Wl,-rpath,$ORIGIN",)),
                  tmp_path / "greet")
    install(marked_greet(), tmp_path / "libgreet.so")
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0 and result.stdout == "hello from libgreet\n"
    static = subprocess.run([str(static_program())], capture_output=True, text=True,
                            timeout=10)
    assert static.stdout == "static\n"
