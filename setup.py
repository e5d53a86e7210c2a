"""Builds the native parts: the shadow-stack fast path (a plain C shared object loaded with
ctypes) and the vDSO image the emulated kernel maps into every process
(src/shstk/emu/kernel/vdso/: gcc -nostdlib -shared, one read+execute segment).

Everything else is declared in pyproject.toml.
"""
import subprocess
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

VDSO_DIR = Path("src/shstk/emu/kernel/vdso")
VDSO_IMAGE = "linux-vdso.so.1"
VDSO_FLAGS = [
    "-O2", "-fPIC", "-fno-asynchronous-unwind-tables", "-fno-stack-protector",
    "-fcf-protection=full", "-nostdlib", "-shared",
    "-Wl,-soname=linux-vdso.so.1", "-Wl,--hash-style=both", "-Wl,--build-id=none",
    "-Wl,-z,shstk", "-Wl,-z,ibt",
]


class BuildWithVdso(build_ext):
    """build_ext, then the vDSO image beside the kernel package (in place for an editable
    install, in build_lib for a wheel)."""

    def run(self) -> None:
        super().run()
        root = Path("src") if self.inplace else Path(self.build_lib)
        out = root / "shstk" / "emu" / "kernel" / "vdso" / VDSO_IMAGE
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["gcc", *VDSO_FLAGS, f"-Wl,--version-script={VDSO_DIR / 'vdso.lds'}",
               f"-Wl,-T,{VDSO_DIR / 'layout.lds'}", "-o", str(out), str(VDSO_DIR / "vdso.c")]
        subprocess.run(cmd, check=True)


setup(
    cmdclass={"build_ext": BuildWithVdso},
    ext_modules=[
        Extension(
            "shstk.emu.cpu._fastpath",
            sources=["src/shstk/emu/cpu/fastpath.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ],
)
