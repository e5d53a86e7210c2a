"""Builds the native shadow-stack fast path (a plain C shared object loaded with ctypes).

Everything else is declared in pyproject.toml.
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "shstk.emu.cpu._fastpath",
            sources=["src/shstk/emu/cpu/fastpath.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
