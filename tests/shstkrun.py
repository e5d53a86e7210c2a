"""Run the `shstk` command the way a user does (a subprocess), for behaviour tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ENGINES = ("native", "python")


def shstk(*args: str | Path, env: dict[str, str] | None = None, input: bytes | None = None,
          timeout: float = 300, engine: str | None = None,
          cwd: str | Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """`shstk ARGS...`; returns the completed process (stdout/stderr as bytes)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    if engine:
        full_env["SHSTK_ENGINE"] = engine
    cmd = [sys.executable, "-m", "shstk", *map(str, args)]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                          env=full_env, cwd=cwd)


def run_guest(prog: str | Path, *args: str, options: Sequence[str] = (), **kw: object
              ) -> subprocess.CompletedProcess[bytes]:
    """`shstk run OPTIONS PROG ARGS...`"""
    return shstk("run", *options, prog, *args, **kw)  # type: ignore[arg-type]


def native(prog: str | Path, *args: str, input: bytes | None = None, timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([str(prog), *args], input=input, capture_output=True,
                          timeout=timeout, env=full_env)
