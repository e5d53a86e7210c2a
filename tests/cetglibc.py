"""A glibc built with --enable-cet, for the tests of the real client of the kernel API.

The archive ../shared/glibc-cet/glibc-cet-2.41.tar.xz (glibc 2.41 from Debian's source
package, built with --enable-cet) is unpacked once into build/cet-glibc/; `make cet-glibc`
builds the same tree from Debian's source package when the archive is absent. Guests are
linked against it as its README says: static (crt1.o + libc.a), dynamic (its libc.so.6
through its own ld.so, found with -Wl,--dynamic-linker and an rpath), and static C++
(this machine's libstdc++.a and libgcc_eh.a, whose unwinder is shadow-stack aware).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from guestbuild import BUILD_DIR, GUEST_DIR, INCLUDE_DIR, _digest

ROOT = Path(__file__).resolve().parent.parent
# the team's shared archive next to the checkout, or wherever SHSTK_CET_GLIBC points
ARCHIVE = Path(os.environ.get("SHSTK_CET_GLIBC") or
               ROOT.parent / "shared" / "glibc-cet" / "glibc-cet-2.41.tar.xz")
TREE = ROOT / "build" / "cet-glibc"
SKIP_REASON = (f"no CET-enabled glibc: {ARCHIVE} is absent (set SHSTK_CET_GLIBC) and "
               "build/cet-glibc was not built; `make cet-glibc` builds it from Debian's "
               "source package (30-40 min)")
CET_FLAGS = ("-O2", "-fcf-protection=full")
MARK = ("-Wl,-z,shstk", "-Wl,-z,ibt")


def glibc_dir() -> Path | None:
    """The unpacked tree (include/, lib/), unpacking the archive on first use."""
    for candidate in (TREE / "glibc-cet-2.41", TREE / "install"):
        if (candidate / "lib" / "libc.a").exists():
            return candidate
    if not ARCHIVE.exists():
        return None
    TREE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TREE) as tmp:
        with tarfile.open(ARCHIVE) as tar:
            tar.extractall(tmp, filter="tar")
        try:
            os.replace(Path(tmp) / "glibc-cet-2.41", TREE / "glibc-cet-2.41")
        except OSError:
            pass  # another worker unpacked it first
    return TREE / "glibc-cet-2.41"


def _gcc_file(name: str, compiler: str = "gcc") -> str:
    return subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                          text=True, check=True).stdout.strip()


def _cxx_include_dirs() -> list[str]:
    out = subprocess.run(["g++", "-E", "-x", "c++", "-", "-v"], input="",
                         capture_output=True, text=True).stderr
    lines = out.split("#include <...> search starts here:")[1].split("End of search list")[0]
    return [d.strip() for d in lines.splitlines() if "c++" in d]


def _run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}\n{proc.stderr}")


def compile_cet(source: str | Path, *, mode: str = "static", name: str | None = None,
                cflags: Sequence[str] = (), ldflags: Sequence[str] = (),
                mark: bool = False) -> Path:
    """Build a guest against the CET glibc: mode static, dynamic or static-c++."""
    g = glibc_dir()
    assert g is not None, SKIP_REASON
    src = Path(source)
    if not src.is_absolute():
        src = GUEST_DIR / src
    key = _digest(["cet", str(g), mode, *cflags, *ldflags, str(mark), src.read_bytes(),
                   *(f.read_bytes() for f in sorted(INCLUDE_DIR.glob("*.h")))])
    out = BUILD_DIR / key / (name or src.stem)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        obj = Path(tmp) / "prog.o"
        lib = g / "lib"
        cxx = mode == "static-c++"
        compiler = "g++" if cxx else "gcc"
        includes = ["-nostdinc"]
        if cxx:
            includes += ["-nostdinc++"] + [f"-isystem{d}" for d in _cxx_include_dirs()]
        # the kernel's uapi headers (linux/, asm/) are not part of glibc: this machine's
        includes += [f"-isystem{g / 'include'}", f"-isystem{_gcc_file('include')}",
                     f"-I{INCLUDE_DIR}", "-idirafter/usr/include/x86_64-linux-gnu",
                     "-idirafter/usr/include"]
        _run([compiler, *CET_FLAGS, *cflags, *includes, "-c", "-o", str(obj), str(src)])
        tmp_out = Path(tmp) / out.name
        marks = list(MARK) if mark or cxx else []
        if mode in ("static", "static-c++"):
            group = [str(lib / "libc.a"), _gcc_file("libgcc.a"), _gcc_file("libgcc_eh.a")]
            if cxx:
                group = [_gcc_file("libstdc++.a", "g++"), str(lib / "libm.a"), *group]
            cmd = [compiler, "-static", "-nostdlib", "-nostartfiles", "-o", str(tmp_out),
                   str(lib / "crt1.o"), str(lib / "crti.o"), _gcc_file("crtbeginT.o"),
                   str(obj), *ldflags, "-Wl,--start-group", *group, "-Wl,--end-group",
                   _gcc_file("crtend.o"), str(lib / "crtn.o"), *marks]
        elif mode == "dynamic":
            cmd = ["gcc", "-nostdlib", "-nostartfiles", "-no-pie", "-o", str(tmp_out),
                   str(lib / "crt1.o"), str(lib / "crti.o"), _gcc_file("crtbegin.o"),
                   str(obj), *ldflags, f"-L{lib}", "-lc", _gcc_file("libgcc.a"),
                   _gcc_file("crtend.o"), str(lib / "crtn.o"),
                   f"-Wl,--dynamic-linker={lib / 'ld-linux-x86-64.so.2'}",
                   f"-Wl,-rpath,{lib}", *marks]
        else:
            raise ValueError(mode)
        _run(cmd)
        os.replace(tmp_out, out)
    return out


def shared_library(source: str | Path, name: str, *, marked: bool) -> Path:
    """A shared library for dlopen tests (no libc of its own: it must not depend on one)."""
    src = Path(source)
    if not src.is_absolute():
        src = GUEST_DIR / src
    flags = ["-O2", "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{name}"]
    flags += ["-fcf-protection=full", *MARK] if marked else ["-fcf-protection=none"]
    key = _digest(["cetlib", *flags, src.read_bytes()])
    out = BUILD_DIR / key / name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        _run(["gcc", *flags, "-o", str(tmp), str(src)])
        os.replace(tmp, out)
    return out


def have_tools() -> bool:
    return shutil.which("gcc") is not None and shutil.which("g++") is not None
