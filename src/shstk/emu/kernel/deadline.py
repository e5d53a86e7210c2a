"""--timeout as a host timer: the run ends wherever the guest is.

The run loop checks the deadline between time slices and while every task sleeps; this
timer covers the rest: the loader (a hostile ELF file can keep it busy), one long system
call, a guest execve. SIGALRM raises RunLimit in the main thread, wherever Python is;
inside the CPU, Unicorn's hook wrapper stops emulation and re-raises it.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from types import FrameType

from shstk.emu.kernel.entry import RunLimit
from shstk.options import RunOptions


def message(timeout: float | None) -> str:
    return f"timeout: the guest ran longer than {timeout} s"


def passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def check(opts: RunOptions, total_insns: int, deadline: float | None) -> None:
    """Between time slices: --max-insns and --timeout end the run (RunLimit)."""
    if opts.max_insns is not None and total_insns >= opts.max_insns:
        raise RunLimit(f"stopped after {total_insns} instructions "
                       f"(--max-insns {opts.max_insns})")
    if passed(deadline):
        raise RunLimit(message(opts.timeout))


@contextlib.contextmanager
def alarm(deadline: float | None, timeout: float | None) -> Iterator[None]:
    """Raise RunLimit at `deadline` (time.monotonic()) while the block runs."""
    if deadline is None:
        yield
        return
    import threading  # only with --timeout: its import is a start-up cost otherwise

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise RunLimit(message(timeout))

    old = signal.signal(signal.SIGALRM, expired)
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunLimit(message(timeout))
        signal.setitimer(signal.ITIMER_REAL, remaining)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
