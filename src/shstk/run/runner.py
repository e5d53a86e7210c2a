"""`shstk run`: run one program in the emulator and report how it ended."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Kernel
from shstk.emu.kernel.loader import ExecFormatError
from shstk.emu.kernel.policy import POLICIES
from shstk.emu.kernel.profile import get_profile
from shstk.emu.syscalls.layer import SYSCALLS
from shstk.errors import CannotRun, UsageError
from shstk.options import RunOptions
from shstk.run.report import Report, build

if TYPE_CHECKING:
    from shstk.emu.kernel.task import Process


@dataclass
class RunResult:
    """How a guest run ended: exit status, wait status, signal, and its reports and events."""

    exit_status: int  # what `shstk run` exits with
    wait_status: int
    signal: int = 0
    report: Report | None = None  # the first process's, when a fault killed it
    reports: list[Report] = field(default_factory=list)  # every process a fault killed
    events: list[str] = field(default_factory=list)
    dlopen_events: list[str] = field(default_factory=list)


def _quote(word: str) -> str:
    """shlex.quote, imported only for a crash report (not at every start-up)."""
    import shlex

    return shlex.quote(word)


def guest_environment(opts: RunOptions) -> list[bytes]:
    env = dict(os.environb)
    for item in opts.env:
        if "=" not in item:
            raise UsageError(f"--env needs KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        env[os.fsencode(key)] = os.fsencode(value)
    for key in opts.unset:
        env.pop(os.fsencode(key), None)
    if opts.glibc_tunables is not None:
        env[b"GLIBC_TUNABLES"] = os.fsencode(opts.glibc_tunables)
    return [k + b"=" + v for k, v in env.items()]


def _search_path(opts: RunOptions, env: list[bytes]) -> str:
    """execvp(): a name without a slash is looked up in the guest's PATH (in the sysroot)."""
    prog = opts.program
    if "/" in prog:
        return prog
    path = next((e[5:].decode() for e in env if e.startswith(b"PATH=")), "/usr/bin:/bin")
    root = os.path.realpath(opts.sysroot)
    for d in path.split(":"):
        cand = os.path.join(d or ".", prog)
        host = cand if root == "/" else root + (cand if cand.startswith("/") else "/" + cand)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return cand
    raise CannotRun(f"{prog}: command not found in PATH", missing=True)


def _guest_cwd(sysroot: str) -> str:
    cwd = os.getcwd()
    root = os.path.realpath(sysroot)
    if root == "/":
        return cwd
    if cwd == root:
        return "/"
    if cwd.startswith(root + "/"):
        return cwd[len(root):]
    return "/"


def _check_options(opts: RunOptions) -> None:
    get_profile(opts.kernel)
    if opts.shstk is not None and opts.shstk not in POLICIES:
        raise UsageError(f"--shstk must be one of {', '.join(POLICIES)}")
    if not os.path.isdir(opts.sysroot):
        raise UsageError(f"--sysroot {opts.sysroot}: not a directory")
    for d in opts.rw:
        if not os.path.isdir(d):
            raise UsageError(f"--rw {d}: not a directory")
    if opts.max_insns is not None and opts.max_insns <= 0:
        raise UsageError("--max-insns must be positive")
    if opts.timeout is not None and opts.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if opts.engine not in (None, "native", "python"):
        raise UsageError("--engine must be native or python")


class Debugger(Protocol):
    """What `--gdb` attaches (run/gdb/stub.py's GdbStub); the CLI passes its class in,
    so a run without --gdb never imports the socket code."""

    def attach(self, proc: Process) -> None: ...
    def exited(self, status: int) -> None: ...


def run(opts: RunOptions,
        debugger: Callable[[Kernel, str], Debugger] | None = None) -> RunResult:
    _check_options(opts)
    if opts.gdb is not None and debugger is None:
        raise UsageError("--gdb: this caller of run() passed no debugger")
    env = guest_environment(opts)
    prog = _search_path(opts, env)
    strace_out = opts.trace_stream
    kernel = Kernel(opts, SYSCALLS)
    argv = [os.fsencode(opts.program), *(os.fsencode(a) for a in opts.args)]
    try:
        kernel.spawn(prog, argv, env, _guest_cwd(opts.sysroot))
    except ExecFormatError as exc:
        raise CannotRun(f"{opts.program}: cannot run: {exc.why}") from None
    except KernelError as exc:
        raise CannotRun(f"{opts.program}: cannot run: {os.strerror(exc.errno)}",
                        missing=exc.errno == E.ENOENT) from None
    if opts.verbose:
        print(f"shstk: engine {kernel.init.cpu.engine_name if kernel.init else '?'}, "
              f"kernel profile {kernel.profile.name}", file=sys.stderr)
    stub = debugger(kernel, opts.gdb) if debugger is not None and opts.gdb is not None else None
    if stub is not None and kernel.init is not None:
        stub.attach(kernel.init)
    try:
        death = kernel.run()
    finally:
        if stub is not None:
            stub.exited(kernel.death.status if kernel.death is not None else 0)
    status = death.status
    result = RunResult(0, status, events=list(kernel.events),
                       dlopen_events=list(kernel.dlopen_events))
    for snap in kernel.crashes:
        report = build(snap, _quote(opts.program if snap.first else snap.exe))
        result.reports.append(report)
        if snap is death.snapshot:
            result.report = report
    if status & 0x7F == 0:
        result.exit_status = (status >> 8) & 0xFF
        if strace_out is not None:
            strace_out.write(f"+++ exited with {result.exit_status} +++\n")
        return result
    sig = status & 0x7F
    result.signal = sig
    result.exit_status = 128 + sig
    if strace_out is not None:
        strace_out.write(f"+++ killed by {S.NAMES.get(sig, sig)} +++\n")
    return result


__all__ = ["RunOptions", "RunResult", "run"]
