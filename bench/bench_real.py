"""Real commands under qemu-user and shstk, and the CET/thread/start-up micro-benchmarks
of issue 18. Used by run_all.py; runnable alone:

    .venv/bin/python bench/bench_real.py [--reps N]

Every number is a wall time of a whole command in a fresh process (shstk's Python
start-up included, as a user sees it), contenders interleaved, medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PYTHON, ROOT, build, fmt_s, interleave, wall_seconds

INCLUDE = ROOT / "tests" / "guest" / "include"
MARKED = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")
QEMU = shutil.which("qemu-x86_64")
SHSTK = [PYTHON, "-m", "shstk", "run"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def commands() -> list[tuple[str, list[str]]]:
    fib = build("fib.c", ["-static", "-O2", *MARKED, f"-I{INCLUDE}"])
    py = "/usr/bin/python3"
    return [
        ("static fib(35)", [str(fib), "35"]),
        ("`python3 -c pass`", [py, "-c", "pass"]),
        ("`python3 -c 'print(sum(i*i for i in range(10**6)))'`",
         [py, "-c", "print(sum(i*i for i in range(10**6)))"]),
        ("`gzip -c /usr/bin/python3 > /dev/null`", ["/usr/bin/gzip", "-c", py]),
        ("`sort /etc/services`", ["/usr/bin/sort", "/etc/services"]),
        ("`ls -la /usr/bin`", ["/usr/bin/ls", "-la", "/usr/bin"]),
        ("`sha256sum /usr/bin/python3`", ["/usr/bin/sha256sum", py]),
    ]


def real_commands(reps: int) -> list[dict]:
    """native | qemu-x86_64 | shstk --shstk off | shstk --shstk on, per command."""
    rows = []
    for label, cmd in commands():
        contenders = {"native": lambda c=cmd: wall_seconds(c)}
        if QEMU:
            contenders["qemu"] = lambda c=cmd: wall_seconds([QEMU, *c])
        contenders["off"] = lambda c=cmd: wall_seconds([*SHSTK, "--shstk", "off", *c])
        contenders["on"] = lambda c=cmd: wall_seconds([*SHSTK, "--shstk", "on", *c])
        s = interleave(contenders, reps)
        row = {"command": label, **{k: v.median for k, v in s.items()}}
        rows.append(row)
        log(f"  {label}: " + ", ".join(f"{k} {fmt_s(v)}" for k, v in row.items()
                                      if k != "command"))
    return rows


def real_table(rows: list[dict]) -> str:
    head = ["command", "native", "qemu-x86_64", "`shstk run --shstk off`",
            "`shstk run --shstk on`", "shstk-on / qemu"]
    if not QEMU:
        head = [h for h in head if "qemu" not in h]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["command"], fmt_s(r["native"])]
        if QEMU:
            cells.append(fmt_s(r["qemu"]))
        cells += [fmt_s(r["off"]), fmt_s(r["on"])]
        if QEMU:
            cells.append(f"{r['on'] / r['qemu']:.1f}x")
        lines.append("| " + " | ".join(cells) + " |")
    if not QEMU:
        lines.append("\n(qemu-x86_64 is not installed: the qemu-user column is skipped; "
                     "`apt-get install qemu-user` adds it.)")
    return "\n".join(lines)


# --- RSTORSSP + SAVEPREVSSP round trips -------------------------------------------------

def _switch_run(prog: Path, n: int, engine: str) -> float:
    env = dict(os.environ, SHSTK_ENGINE=engine)
    return wall_seconds([*SHSTK, "--shstk", "off", str(prog), str(n)], env=env)


def switch_round_trip(reps: int) -> dict[str, float]:
    """µs per RSTORSSP + SAVEPREVSSP pair (switches.c: two pairs per iteration), as the
    difference between a long and a short run (start-up cancels out)."""
    prog = build("switches.c", ["-static", "-O2", *MARKED, f"-I{INCLUDE}"])
    out = {}
    for engine, small, big in (("native", 1000, 201000), ("python", 1000, 21000)):
        s = interleave({"small": lambda e=engine, n=small: _switch_run(prog, n, e),
                        "big": lambda e=engine, n=big: _switch_run(prog, n, e)}, reps)
        out[engine] = max(0.0, s["big"].median - s["small"].median) / (2 * (big - small)) * 1e6
        log(f"  switches ({engine}): {out[engine]:.2f} µs per RSTORSSP+SAVEPREVSSP")
    return out


# --- live threads ---------------------------------------------------------------------------

def thread_curve(sizes: tuple[int, ...] = (1000, 4000, 10000, 30000), cap: float = 90.0
                 ) -> list[tuple[int, float | None]]:
    """Wall time per thread with N threads alive at once; a point is skipped (None) once
    the previous one took longer than `cap` seconds."""
    prog = build("livethreads.c", ["-static", "-O2", "-pthread", *MARKED])
    run = [*SHSTK, "--shstk", "on", "--max-tasks", "100000", str(prog)]
    base = statistics.median(wall_seconds([*run, "1"]) for _ in range(3))
    points: list[tuple[int, float | None]] = []
    last = 0.0
    for n in sizes:
        if last > cap:
            points.append((n, None))
            continue
        t = wall_seconds([*run, str(n)])
        last = t
        points.append((n, (t - base) / n))
        log(f"  live threads {n}: {t:.2f} s, {(t - base) / n * 1e6:.0f} µs per thread")
    return points


def hello_startup(reps: int) -> float:
    hello = build("hello.c", ["-static", "-O2"], name="hello-static")
    return statistics.median(wall_seconds([*SHSTK, "--shstk", "on", str(hello)])
                             for _ in range(reps))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    log(f"load average {load()}")
    print(real_table(real_commands(args.reps)))
    print(switch_round_trip(args.reps))
    print(f"static hello {fmt_s(hello_startup(5))}")
    print(thread_curve())
    log(f"load average {load()}; {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
