"""ptrace(2), the part the shadow-stack ABI uses (SPEC.md §9): tracing stops, wait
reporting, register sets (NT_X86_SHSTK), PTRACE_ARCH_PRCTL, PEEK/POKE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import signals as S
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.task import State

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.process import WaitResult
    from shstk.emu.kernel.task import Process, Task


def traced_by(k: Kernel, tracer: Process, pid: int) -> list[Task]:
    out = []
    for t in k.tasks.values():
        if t.ptracer is tracer and (pid <= 0 or t.tid == pid or t.pid == pid):
            out.append(t)
    return out


def waitable_stop(k: Kernel, tracer: Process, traced: list[Task], *, consume: bool
                  ) -> WaitResult | None:
    from shstk.emu.kernel.process import WaitResult

    for t in traced:
        if t.state is State.TRACED and not t.ptrace_reported:
            if consume:
                t.ptrace_reported = True
            return WaitResult(t.tid, (t.ptrace_stop_sig << 8) | 0x7F, S.CLD_TRAPPED,
                              t.proc.uid, t.proc)
    return None


def signal_stop(k: Kernel, t: Task, info: SigInfo) -> bool:
    """signal-delivery-stop: the tracer decides what becomes of the signal."""
    if getattr(t, "ptrace_inject", None) is info:
        t.ptrace_inject = None  # type: ignore[attr-defined]
        return False
    t.state = State.TRACED
    t.ptrace_stop_sig = info.signo
    t.ptrace_siginfo = info
    t.ptrace_reported = False
    if t in k.runq:
        k.runq.remove(t)
    if t.cpu.current is t:
        t.cpu.request_stop()
    tracer = t.ptracer
    if tracer is not None:
        k.signals.send_process(tracer, SigInfo(S.SIGCHLD, S.CLD_TRAPPED, pid=t.tid,
                                               uid=t.proc.uid, status=info.signo))
    return True
