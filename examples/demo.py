"""`make demo`: shstk on example programs, one step after another.

Each step is a function taking the shared `Demo` context; `STEPS` lists them in order.
To add a step, write a function and append it to STEPS. A step fails the demo by
raising `StepFailed`; an exit status that a step expects (shstk audit exits 1 for a
blocked program) is not a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BUILD = ROOT / "build" / "examples"

# Marked: every object compiled with CET instrumentation and the output forced to carry
# IBT and SHSTK. Unmarked: no property note at all.
FREESTANDING = ["-O2", "-ffreestanding", "-fno-tree-loop-distribute-patterns"]
MARKED = ["-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt"]
UNMARKED = ["-fcf-protection=none"]


class StepFailed(Exception):
    pass


@dataclass
class Demo:
    build: Path = BUILD
    python: str = sys.executable

    def shstk(self, *args: str, expect: Sequence[int] = (0,)) -> int:
        """Run `shstk ARGS` with this Python, output to the terminal."""
        return self.run([self.python, "-m", "shstk", *args], expect=expect)

    def run(self, cmd: Sequence[str], *, expect: Sequence[int] = (0,)) -> int:
        print(f"$ {' '.join(_shown(c) for c in cmd)}", flush=True)
        status = subprocess.run(list(cmd), cwd=ROOT).returncode
        if status not in expect:
            raise StepFailed(f"{cmd[0]} exited with {status}, expected {list(expect)}")
        return status

    def gcc(self, *args: str | Path) -> None:
        cmd = ["gcc", *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise StepFailed(f"gcc failed:\n{' '.join(cmd)}\n{result.stderr}")


def _shown(arg: str) -> str:
    for prefix, short in ((str(ROOT) + "/", ""), (sys.executable, "python")):
        if arg.startswith(prefix):
            return short + arg[len(prefix):]
    return arg


def heading(text: str) -> None:
    print(f"\n=== {text} ===", flush=True)


# -- steps -----------------------------------------------------------------------------


def build_audit_examples(demo: Demo) -> None:
    """Build ready/hello (marked libgreet.so) and blocked/hello (unmarked one)."""
    heading("build the audit examples with gcc")
    if shutil.which("gcc") is None:
        raise StepFailed("gcc is needed to build the examples")
    src = EXAMPLES / "audit"
    for variant, lib_flags in (("ready", MARKED), ("blocked", UNMARKED)):
        out = demo.build / variant
        out.mkdir(parents=True, exist_ok=True)
        demo.gcc(*FREESTANDING, *lib_flags, "-shared", "-fPIC", "-Wl,-soname,libgreet.so",
                 "-o", out / "libgreet.so", src / "libgreet.c")
        demo.gcc(*FREESTANDING, *MARKED, "-nostdlib", "-Wl,--no-as-needed",
                 "-Wl,-rpath,$ORIGIN", "-o", out / "hello", src / "hello.c",
                 out / "libgreet.so")
        print(f"built {_shown(str(out / 'hello'))} and libgreet.so"
              f" ({'marked' if lib_flags is MARKED else 'NOT marked'} SHSTK)")


def run_audit_examples(demo: Demo) -> None:
    """Both programs run normally: the marking changes nothing without CET."""
    heading("the examples run (shadow stacks or not)")
    for variant in ("ready", "blocked"):
        demo.run([str(demo.build / variant / "hello")])


def audit_examples(demo: Demo) -> None:
    """One ready program, one blocked by its unmarked library (exit status 1)."""
    heading("shstk audit: would glibc enable the shadow stack?")
    demo.shstk("audit", str(demo.build / "ready" / "hello"),
               str(demo.build / "blocked" / "hello"), expect=(1,))


def audit_this_machine(demo: Demo) -> None:
    """The same question for every program in /usr/bin, summarized."""
    heading("shstk audit -q /usr/bin: this machine's programs")
    if os.path.isdir("/usr/bin"):
        demo.shstk("audit", "-q", "--top", "5", "/usr/bin", expect=(0, 1, 2))


def build_run_examples(demo: Demo) -> None:
    """rop: a stack smash to win(); coro: coroutines on Debian's swapcontext."""
    heading("build the shstk run examples with gcc")
    src = EXAMPLES / "run"
    demo.build.mkdir(parents=True, exist_ok=True)
    demo.gcc("-static", "-O0", "-fno-stack-protector", *MARKED, "-o", demo.build / "rop",
             src / "rop.c")
    demo.gcc("-O2", *MARKED, "-o", demo.build / "coro", src / "coro.c")
    print("built rop (static) and coro (dynamic), both marked SHSTK")


def rop_hijack(demo: Demo) -> None:
    """Without shadow stacks the overwritten return address is followed (exit 42)."""
    heading("rop natively, then under shstk run --shstk off: the hijack works")
    demo.run([str(demo.build / "rop")], expect=(42,))
    demo.shstk("run", "--shstk", "off", str(demo.build / "rop"), expect=(42,))


def rop_stopped(demo: Demo) -> None:
    """With shadow stacks (the program is marked, so they are on) the RET is stopped."""
    heading("rop under shstk run: the shadow stack stops the hijack")
    demo.shstk("run", str(demo.build / "rop"), expect=(139,))


def coro_not_ready(demo: Demo) -> None:
    """A program marked ready that is not: Debian's swapcontext ignores shadow stacks."""
    heading("coro under shstk run --shstk on: marked ready, but swapcontext is not")
    demo.shstk("run", "--shstk", "on", str(demo.build / "coro"), expect=(139,))


def _cet_glibc(demo: Demo):
    """tests/cetglibc.py knows where the CET-enabled glibc is and how to link with it."""
    sys.path.insert(0, str(ROOT / "tests"))
    import cetglibc

    return cetglibc if cetglibc.glibc_dir() is not None else None


def cet_glibc_ready(demo: Demo) -> None:
    """The same coroutines linked against a glibc built with --enable-cet: glibc enables
    shadow stacks at start-up, locks them, and makecontext/swapcontext switch them."""
    heading("coro against a CET-enabled glibc: shadow stacks locked on, and it works")
    cet = _cet_glibc(demo)
    if cet is None:
        print("skipped: no CET-enabled glibc here (`make cet-glibc` builds one)")
        return
    prog = cet.compile_cet(EXAMPLES / "run" / "coro.c", mode="dynamic", name="coro-cet")
    demo.shstk("run", "--shstk", "off", "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK",
               str(prog))


def cet_glibc_broken(demo: Demo) -> None:
    """A hand-written stack switch is broken under shadow stacks, whatever the libc."""
    heading("green threads with a hand-written switch, CET glibc: stopped with the report")
    cet = _cet_glibc(demo)
    if cet is None:
        print("skipped: no CET-enabled glibc here (`make cet-glibc` builds one)")
        return
    prog = cet.compile_cet(EXAMPLES / "run" / "greenthreads.c", mode="dynamic")
    demo.shstk("run", "--shstk", "off", "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK",
               str(prog), expect=(139,))


def check_examples(demo: Demo) -> None:
    """All four examples at once under --shstk on: what breaks, and where (exit 1)."""
    heading("shstk check: the examples with shadow stacks on, in parallel")
    demo.shstk("check", "--junit", str(demo.build / "check.xml"),
               "--reports", str(demo.build / "check-reports"),
               *(str(demo.build / p) for p in ("rop", "coro", "ready/hello", "blocked/hello")),
               expect=(1,))


STEPS: list[Callable[[Demo], None]] = [
    build_audit_examples,
    run_audit_examples,
    audit_examples,
    audit_this_machine,
    build_run_examples,
    rop_hijack,
    rop_stopped,
    coro_not_ready,
    cet_glibc_ready,
    cet_glibc_broken,
    check_examples,
]


def main(argv: Sequence[str] = ()) -> int:
    demo = Demo()
    try:
        for step in STEPS:
            step(demo)
    except StepFailed as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print("\ndemo finished")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
