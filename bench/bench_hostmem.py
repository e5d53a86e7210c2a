"""Host memory for bulk I/O and many processes (`make bench`, or run alone).

Each case runs `shstk run` in a fresh process and reports its peak RSS (ru_maxrss):
1 GiB written to /dev/null in one write(), 1 GiB through a pipe, and 1,000 processes
alive at once. Writes bench/hostmem.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from guestbuild import compile_guest
from harness import PYTHON, build


def peak_rss(cmd: list[str]) -> tuple[float, float, str]:
    """(peak RSS in MiB, seconds, stdout) of one fresh process running `cmd`."""
    code = ("import resource, subprocess, sys, time; t = time.monotonic(); "
            "p = subprocess.run(sys.argv[1:], capture_output=True); "
            "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "print(r, time.monotonic() - t, p.returncode, p.stdout.decode().strip())")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True,
                         text=True, check=True).stdout.split()
    rss_kb, secs, rc, *rest = out
    return int(rss_kb) / 1024, float(secs), f"exit {rc}: {' '.join(rest)}"


def main() -> int:
    bulk = build("bulkio.c")
    fork_many = compile_guest("fuzz/fork_many.c")
    run = [PYTHON, "-m", "shstk", "run"]
    cases = [
        ("`true` (baseline)", [*run, "/bin/true"]),
        ("1 GiB to /dev/null, one write()", [*run, str(bulk), "null"]),
        ("1 GiB through a pipe", [*run, str(bulk), "pipe"]),
        ("1,000 processes at once (fork loop)", [*run, str(fork_many), "1000"]),
    ]
    lines = ["# Host memory of `shstk run`", "",
             f"Measured {time.strftime('%Y-%m-%d')} by bench/bench_hostmem.py (peak RSS of "
             "the shstk process, ru_maxrss).", "",
             "| case | peak RSS (MiB) | wall (s) | result |", "|---|---:|---:|---|"]
    for name, cmd in cases:
        rss, secs, result = peak_rss(cmd)
        lines.append(f"| {name} | {rss:.0f} | {secs:.1f} | {result} |")
        print(lines[-1], flush=True)
    (Path(__file__).resolve().parent / "hostmem.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
