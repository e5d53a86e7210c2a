"""The one options record of a `shstk run`: built once by the CLI, read by everyone.

It sits at the bottom of the layers (it imports nothing of shstk), so the CLI, the run
use case and the kernel read the same fields: `--shstk` is `opts.shstk` everywhere.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

QUANTUM_BLOCKS = 20_000  # translation blocks a task runs before the scheduler switches


@dataclass
class RunOptions:
    """Everything `shstk run` was asked for, built by the CLI and read by run and the
    kernel."""

    program: str = ""
    args: list[str] = field(default_factory=list)
    # the machine
    sysroot: str = "/"
    rw: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    unset: list[str] = field(default_factory=list)
    kernel: str = "mainline"
    shstk: str | None = None  # auto | on | off | permissive (None: not given)
    glibc_tunables: str | None = None
    engine: str | None = None  # native | python
    # limits and reproducibility
    max_insns: int | None = None
    max_tasks: int = 1024  # tasks (processes and threads) alive at once; fork gets EAGAIN
    memory_limit: int = 0  # bytes of accounted guest memory; 0: the host's RAM + swap
    timeout: float | None = None
    virtual_time: bool = False
    seed: int | None = None
    # output
    strace: bool = False
    strace_out: TextIO | None = None  # where --strace writes (stderr when None)
    report: str = "text"  # text | json
    report_file: str | None = None
    verbose: bool = False
    gdb: str | None = None  # --gdb [HOST:]PORT: wait for gdb before the first instruction
    diagnostics: TextIO = field(default_factory=lambda: sys.stderr)
    # the scheduler
    quantum: int = QUANTUM_BLOCKS
    ncpus: int = 2

    @property
    def trace_stream(self) -> TextIO | None:
        """Where strace lines go, or None without --strace."""
        if self.strace_out is not None:
            return self.strace_out
        return sys.stderr if self.strace else None
