"""A system-call fuzzer: every number in the table, with seeded hostile arguments.

tests/guest/fuzz/syscall_fuzz.c calls each number from 0 to the table's highest with
arguments drawn by their kind in the table (0, -1, 2^63, 2^64-1, small integers, pointers
to unmapped memory, to read-only memory, to a valid buffer, huge sizes...), in child
processes (fork per batch), under `shstk run --rw TMP --timeout`. An internal error of
shstk (exit 125, "internal error" or a Python traceback on stderr) fails the test with a
one-line reproducer: the number, its name and the arguments.

`make test` runs a fixed seed; `make fuzz` runs long with FUZZ_SEED / FUZZ_ITERATIONS.
"""

from __future__ import annotations

import os
import random

from shstkrun import run_guest

from shstk.abi.syscalls import NAMES
from shstk.emu.syscalls.table import TABLE

# Calls the fuzzer leaves out, each with its reason; every other number up to the
# table's highest is fuzzed (a new row in the table is fuzzed automatically).
SKIP: dict[str, str] = {
    "exit": "ends the process",
    "exit_group": "ends the process",
    "execve": "replaces the process",
    "execveat": "replaces the process",
    "rt_sigreturn": "loads registers from the stack: the fuzzer's frame is gone",
    "vfork": "the child runs on the parent's stack until it execs or exits",
}

FLAGS = ("-static", "-O2", "-fno-stack-protector")
SEED = int(os.environ.get("FUZZ_SEED", "14"))
ITERATIONS = int(os.environ.get("FUZZ_ITERATIONS", "0"))
START = int(os.environ.get("FUZZ_START", "0"))


def specs() -> list[str]:
    out = []
    for nr in range(max(TABLE) + 1):
        name = NAMES.get(nr, "")
        if name in SKIP:
            continue
        entry = TABLE.get(nr)
        kinds = ",".join(k.partition(":")[0] for k in entry.args) if entry else ""
        out.append(f"{nr}:{kinds or '-'}")
    return out


def _internal_error(proc) -> bool:
    err = proc.stderr.decode(errors="replace")
    return proc.returncode == 125 or "internal error" in err or "Traceback" in err


def _reproducer(log: str, seed: int = SEED) -> str:
    lines = [ln for ln in log.splitlines() if ln.count(" ") == 7]
    if not lines:
        return "no call was logged"
    index, nr, *args = lines[-1].split()
    name = NAMES.get(int(nr, 16), "?")
    return (f"syscall {int(nr, 16)} ({name}) args {', '.join(args)} "
            f"[FUZZ_SEED={seed} FUZZ_START={int(index, 16)} FUZZ_ITERATIONS=1]")


def run_fuzz(build, tmp_path, seed: int, start: int, count: int, batch: int = 60,
             timeout: float = 300) -> str:
    prog = build("fuzz/syscall_fuzz.c", flags=FLAGS)
    work = tmp_path / "rw"
    work.mkdir()
    log = tmp_path / "rw" / "calls.log"
    proc = run_guest(prog, str(log), str(seed), str(start), str(count), str(batch),
                     *specs(), options=["--rw", str(work), "--timeout", str(timeout)],
                     cwd=work, input=b"", timeout=timeout + 60)
    text = log.read_text() if log.exists() else ""
    if _internal_error(proc):
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise AssertionError(f"internal error: {_reproducer(text, seed)}\n" + "\n".join(tail))
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode()[-2000:],
                                  _reproducer(text, seed))
    return proc.stdout.decode()


def test_every_syscall_with_hostile_arguments(build, tmp_path) -> None:
    """A fixed seed, each number a few times: quick enough for every `make test`."""
    count = ITERATIONS or 8 * len(specs())
    out = run_fuzz(build, tmp_path, SEED, START, count)
    assert out.startswith("fuzz:"), out


def test_skip_list_names_real_calls() -> None:
    names = set(NAMES.values())
    assert set(SKIP) <= names


if __name__ == "__main__":  # `make fuzz`: a long run with a random seed
    import sys
    import tempfile
    from pathlib import Path

    from guestbuild import compile_guest

    seed = int(os.environ.get("FUZZ_SEED") or random.randrange(1 << 32))
    count = int(os.environ.get("FUZZ_ITERATIONS") or 50 * len(specs()))
    print(f"FUZZ_SEED={seed} FUZZ_ITERATIONS={count}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            print(run_fuzz(compile_guest, Path(tmp), seed, START, count,
                           timeout=float(os.environ.get("FUZZ_TIMEOUT", "3600"))))
        except AssertionError as exc:
            print(exc, file=sys.stderr)
            sys.exit(1)
