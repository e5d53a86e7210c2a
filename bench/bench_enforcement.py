"""Shadow-stack enforcement cost: the same static binaries, side by side.

Contenders, per binary (all with shadow stacks enforced from the first instruction,
`--shstk on`, except `bare` which cannot enforce anything):
  native   the binary on this machine's CPU (no CET here): the physical limit
  bare     the emulator with no block hook at all: Unicorn plus the MMU and system-call
           layers this design needs to run anything; the floor of this design
  shstk    the native C fast path
  python   the pure-Python engine
Times are the emulator's kernel.run() (interpreter start-up excluded), medians of
interleaved repetitions; ratios are against `bare`.

Usage: python bench/bench_enforcement.py [--reps N] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import build, emulated_seconds, fmt_s, interleave, wall_seconds

MARKED = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")
# name, source, build flags, arguments (sized so that `bare` takes a few hundred ms)
WORKLOADS = [
    ("fib (call-heavy recursion)", "fib.c", ("-static", "-O2", *MARKED), ["30"]),
    ("sieve (tight loops)", "sieve.c", ("-static", "-O2", *MARKED), ["10000000"]),
    ("mixed (qsort/libm/malloc)", "mixed.c", ("-static", "-O2", *MARKED, "-lm"), ["50000"]),
]


def measure(reps: int, engines: list[str], workloads: list[tuple]) -> list[dict]:
    rows = []
    for label, source, flags, args in workloads:
        extra = [f for f in flags if f.startswith("-l")]
        prog = build(source, [f for f in flags if not f.startswith("-l")], extra=extra)
        contenders = {"cpu": lambda p=prog, a=args: wall_seconds([str(p), *a])}
        for engine in engines:
            contenders[ENGINE_LABEL[engine]] = (lambda p=prog, a=args, e=engine:
                                                emulated_seconds(p, a, e))
        series = interleave(contenders, reps)
        rows.append({"workload": label, **{k: v.median for k, v in series.items()}})
        print(f"  {label}: " + ", ".join(f"{k} {fmt_s(v.median)}" for k, v in series.items()),
              file=sys.stderr, flush=True)
    return rows


ENGINE_LABEL = {"bare": "bare", "native": "shstk", "python": "python"}


def table(rows: list[dict], engines: list[str]) -> str:
    labels = [ENGINE_LABEL[e] for e in engines]
    head = "| binary | native CPU | " + " | ".join(labels) + " | " + \
        " | ".join(f"{x} / bare" for x in labels if x != "bare") + " |"
    sep = "|" + "---|" * (2 + 2 * len(labels) - 1)
    lines = [head, sep]
    for r in rows:
        cells = [r["workload"], fmt_s(r["cpu"]), *(fmt_s(r[x]) for x in labels),
                 *(f"{r[x] / r['bare']:.2f}x" for x in labels if x != "bare")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="skip the pure-Python engine")
    args = ap.parse_args(argv)
    engines = ["bare", "native"] + ([] if args.quick else ["python"])
    print(f"enforcement benchmark: {args.reps} interleaved repetitions, medians",
          file=sys.stderr)
    rows = measure(args.reps, engines, WORKLOADS)
    print(table(rows, engines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
