"""`shstk run`: run an x86-64 Linux program with shadow stacks enforced."""

from __future__ import annotations

import argparse
import gc
import sys

from shstk.errors import UsageError
from shstk.options import RunOptions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run an x86-64 Linux program with shadow stacks enforced",
        description="Run an unmodified x86-64 Linux program in an emulator whose CPU "
        "enforces shadow stacks (CET SHSTK) and whose kernel implements Linux's "
        "shadow-stack API. The program's output and exit status are the command's.")
    p.add_argument("program", metavar="PROG", help="program to run (searched in PATH)")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="arguments for the program")
    p.add_argument("--strace", action="store_true",
                   help="print each system call to stderr, in strace's format")
    p.add_argument("--sysroot", default="/", metavar="DIR",
                   help="root directory the program sees (read-only; default /)")
    p.add_argument("--rw", action="append", default=[], metavar="DIR",
                   help="allow writes below DIR (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="add or override an environment variable")
    p.add_argument("--unset", action="append", default=[], metavar="K",
                   help="remove an environment variable")
    p.add_argument("--max-insns", type=int, metavar="N",
                   help="stop after about N guest instructions (exit status 124)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="stop after S seconds of wall time (exit status 124)")
    p.add_argument("--max-tasks", type=_positive, default=1024, metavar="N",
                   help="most tasks (processes and threads) alive at once: fork and clone "
                   "fail with EAGAIN past it (default 1024)")
    p.add_argument("--memory-limit", type=_size, default=0, metavar="SIZE",
                   help="most guest memory the run's processes may commit together "
                   "(writable private and shared anonymous mappings, the heap), e.g. 4G or "
                   "512M: mmap, brk and fork fail with ENOMEM past it (default: the host's "
                   "RAM + swap)")
    p.add_argument("--kernel", default="mainline", metavar="NAME",
                   help="kernel profile: mainline (default), 6.6, nousershstk, no-shstk, "
                   "clone3-shadow-stack-size, clone3-shstk-token")
    p.add_argument("--shstk", choices=("auto", "on", "off", "permissive"),
                   help="loader policy: enable shadow stacks at start when the program and "
                   "every library it loads are marked (auto, the default), always (on), "
                   "never (off: the program may still enable them itself), or auto "
                   "without the lock (permissive)")
    p.add_argument("--glibc-tunables", metavar="STRING",
                   help="GLIBC_TUNABLES for the guest, also read as a CET-enabled glibc "
                   "2.39+ would to choose the loader policy when --shstk is not given: "
                   "shadow stacks need glibc.cpu.hwcaps=SHSTK; glibc.cpu.x86_shstk="
                   "on|off|permissive picks the control")
    p.add_argument("--engine", choices=("native", "python"),
                   help="shadow-stack engine: native C fast path (default when built) or "
                   "the pure-Python fallback (also: SHSTK_ENGINE=python)")
    p.add_argument("--virtual-time", action="store_true",
                   help="clocks follow the instruction count (reproducible runs)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed for AT_RANDOM and getrandom (reproducible runs)")
    p.add_argument("--report", choices=("text", "json"), default="text",
                   help="format of the report printed when a signal ends the program")
    p.add_argument("--report-file", metavar="FILE",
                   help="write the report there instead of stderr")
    p.add_argument("--gdb", metavar="[HOST:]PORT",
                   help="wait for gdb (`target remote HOST:PORT`) before the first "
                   "instruction; HOST defaults to 127.0.0.1, PORT 0 picks a free port "
                   "(printed on stderr)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say what the loader policy decided, and why")
    p.set_defaults(handler=handle)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"not a positive number: {text!r}")
    return n


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """A size: bytes, or a number with K, M, G or T (powers of 1024)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    try:
        n = int(t[:len(t) - len(unit)]) * _UNITS[unit]
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 4G, 512M)")
    return n


def handle(args: argparse.Namespace) -> int:
    # imported here, not at the top: `shstk audit` and `shstk status` never load Unicorn.
    # The cyclic GC is paused while the emulator's modules load (it would walk the new
    # objects over and over: about 6% of a static hello world), and what they made is
    # then frozen out of later collections.
    gc.disable()
    try:
        from shstk.run.report import to_json
        from shstk.run.runner import run
    finally:
        gc.freeze()
        gc.enable()

    if args.args and args.args[0] == "--":
        args.args = args.args[1:]
    opts = RunOptions(
        program=args.program, args=args.args, sysroot=args.sysroot, rw=args.rw,
        env=args.env, unset=args.unset, strace=args.strace, max_insns=args.max_insns,
        timeout=args.timeout, max_tasks=args.max_tasks, memory_limit=args.memory_limit,
        kernel=args.kernel, shstk=args.shstk, engine=args.engine,
        virtual_time=args.virtual_time, seed=args.seed, report=args.report,
        report_file=args.report_file, verbose=args.verbose,
        glibc_tunables=args.glibc_tunables, gdb=args.gdb)
    if opts.gdb is not None:
        from shstk.run.gdb.stub import GdbStub  # the socket code only for --gdb

        result = run(opts, GdbStub)
    else:
        result = run(opts)
    for event in result.dlopen_events:
        print(f"shstk: {event}", file=sys.stderr)
    if result.reports:
        render = to_json if opts.report == "json" else (lambda r: r.text)
        # text reports are separated by a blank line; JSON reports are JSON lines
        sep = "\n" if opts.report == "json" else "\n\n"
        text = sep.join(render(r) for r in result.reports)
        if opts.report_file:
            try:
                with open(opts.report_file, "w") as f:
                    f.write(text + "\n")
            except OSError as exc:
                raise UsageError(f"--report-file {opts.report_file}: {exc.strerror}") from None
        else:
            sys.stdout.flush()
            print(text, file=sys.stderr)
    return result.exit_status
