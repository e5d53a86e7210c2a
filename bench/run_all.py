"""`make bench`: where shstk stands, measured side by side in one run.

Writes bench/results.md (tables) and bench/results.png (ratios and growth curves).
Every comparison runs its contenders interleaved, in fresh processes, several times, and
reports medians and ratios; never a lone absolute time as a claim.

Sections:
  1. enforcement cost: static binaries under the native CPU, bare Unicorn (this design
     with no block hook: the floor), shstk with the native fast path, shstk with the
     pure-Python engine, and Qiling (no shadow stacks at all) when it installs;
  2. start-up: static and dynamic hello world, `import shstk`, `python3 -c pass`,
     and `shstk audit /usr/bin` against a `readelf -n` + `ldd` loop;
  3. growth: recursion depth, threads, fork of a large reserved/touched address space,
     distinct basic blocks (the decode cache), shadow-stack switches;
  4. real commands against qemu-user (Debian's qemu-x86_64; skipped with a note when it is
     not installed), the RSTORSSP+SAVEPREVSSP round trip, live threads up to 30,000 and
     the static hello start-up (bench_real.py; issue 18).
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_real
from harness import (
    BUILD,
    PYTHON,
    ROOT,
    build,
    emulated_seconds,
    fmt_s,
    interleave,
    wall_seconds,
)

BENCH = Path(__file__).resolve().parent
INCLUDE = ROOT / "tests" / "guest" / "include"
MARKED = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")
QILING_VENV = BUILD / "qiling-venv"
QILING_ROOT = BUILD / "qiling-rootfs"
THREADS_CAP = 60.0  # seconds: the next size of the live-threads curve is skipped beyond
# (30,000 took 614 s before the scheduler stopped polling every sleeper per pick)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- contenders --------------------------------------------------------------------------

def qiling_python() -> str | None:
    """A separate virtualenv with Qiling (it pins its own Unicorn); None if it won't install."""
    py = QILING_VENV / "bin" / "python"
    if py.exists():
        return str(py)
    log("setting up Qiling in build/bench/qiling-venv (once)...")
    try:
        subprocess.run([PYTHON, "-m", "venv", str(QILING_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "qiling"], check=True,
                       timeout=600, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (subprocess.SubprocessError, OSError):
        log("Qiling did not install: the peer comparison is skipped")
        shutil.rmtree(QILING_VENV, ignore_errors=True)
        return None
    return str(py)


_QL_CODE = """
import sys, time
from qiling import Qiling
from qiling.const import QL_VERBOSE
t = time.perf_counter()
ql = Qiling(sys.argv[2:], rootfs=sys.argv[1], verbose=QL_VERBOSE.DISABLED)
ql.run()
print("%.6f" % (time.perf_counter() - t), file=sys.stderr)
"""


def qiling_seconds(py: str, prog: Path, args: list[str]) -> float:
    """Qiling's own run time (its set-up excluded as far as possible: construction + run)."""
    QILING_ROOT.mkdir(parents=True, exist_ok=True)
    inside = QILING_ROOT / prog.name  # Qiling wants the program inside its rootfs
    if not inside.exists() or inside.stat().st_mtime < prog.stat().st_mtime:
        shutil.copy2(prog, inside)
    proc = subprocess.run([py, "-c", _QL_CODE, str(QILING_ROOT), str(inside), *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"qiling failed on {prog.name}: {proc.stderr.strip()[-300:]}")
    return float(proc.stderr.strip().splitlines()[-1])


# --- 1. enforcement cost -------------------------------------------------------------------

WORKLOADS = [
    # label, source, flags, arguments for the emulators, arguments for the Python engine
    ("fib (call-heavy recursion)", "fib.c", ("-static", "-O2", *MARKED), ["30"], ["24"]),
    ("sieve (tight loops)", "sieve.c", ("-static", "-O2", *MARKED), ["10000000"],
     ["1000000"]),
    ("qsort/libm mix", "mixed.c", ("-static", "-O2", *MARKED, "-lm"), ["50000"], ["5000"]),
    ("C++ exceptions", "exceptions.cc", ("-static", "-O2", *MARKED), ["3000"], ["300"]),
    ("pthreads (4 threads)", "threads.c", ("-static", "-O2", "-pthread", *MARKED),
     ["4", "26"], ["4", "19"]),
]


def _prog(source: str, flags: tuple[str, ...]) -> Path:
    libs = [f for f in flags if f.startswith("-l")]
    return build(source, [*(f for f in flags if not f.startswith("-l")), f"-I{INCLUDE}"],
                 extra=libs)


def enforcement(reps: int, ql: str | None) -> list[dict]:
    rows = []
    for label, source, flags, args, py_args in WORKLOADS:
        prog = _prog(source, flags)
        # the big input: native CPU, bare, shstk, Qiling
        big = {"cpu": lambda p=prog, a=args: wall_seconds([str(p), *a]),
               "bare": lambda p=prog, a=args: emulated_seconds(p, a, "bare"),
               "shstk": lambda p=prog, a=args: emulated_seconds(p, a, "native")}
        if ql:
            big["qiling"] = lambda p=prog, a=args: qiling_seconds(ql, p, a)
        s_big = interleave(big, reps)
        # the small input: the pure-Python engine against bare on the same input
        small = {"bare": lambda p=prog, a=py_args: emulated_seconds(p, a, "bare"),
                 "python": lambda p=prog, a=py_args: emulated_seconds(p, a, "python")}
        s_small = interleave(small, reps)
        row = {"workload": label, **{k: v.median for k, v in s_big.items()},
               "bare_small": s_small["bare"].median, "python": s_small["python"].median}
        rows.append(row)
        log(f"  {label}: " + ", ".join(f"{k} {fmt_s(v)}" for k, v in row.items()
                                      if k != "workload"))
    return rows


def enforcement_table(rows: list[dict], has_ql: bool) -> str:
    head = ["binary", "native CPU", "bare Unicorn", "shstk (native)", "shstk / bare",
            "Python engine / bare"]
    if has_ql:
        head += ["Qiling", "Qiling / shstk"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["workload"], fmt_s(r["cpu"]), fmt_s(r["bare"]), fmt_s(r["shstk"]),
                 f"{r['shstk'] / r['bare']:.2f}x", f"{r['python'] / r['bare_small']:.1f}x"]
        if has_ql:
            cells += [fmt_s(r["qiling"]), f"{r['qiling'] / r['shstk']:.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- 2. start-up ----------------------------------------------------------------------------

def _import_seconds(module: str = "shstk") -> float:
    code = (f"import time; t = time.perf_counter(); import {module}; "
            "print(time.perf_counter() - t)")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def startup(reps: int) -> list[tuple[str, float, float | None, str]]:
    """(what, median, minimum or None, target). The minimum is shown beside the median:
    on this shared machine a neighbour's load moves medians by 10-30% from run to run,
    the minimum much less (the yardstick row, `python -c pass`, shows the day's speed)."""
    hello_static = build("hello.c", ["-static", "-O2"], name="hello-static")
    hello_dynamic = build("hello.c", ["-O2"], name="hello-dynamic")
    shstk = [PYTHON, "-m", "shstk", "run"]
    series = interleave({
        "import shstk": _import_seconds,
        "static hello": lambda: wall_seconds([*shstk, str(hello_static)]),
        "dynamic hello": lambda: wall_seconds([*shstk, str(hello_dynamic)]),
        "static hello natively": lambda: wall_seconds([str(hello_static)]),
        # the interpreter's own start-up: the floor under every `shstk` command, and a
        # yardstick of the machine's speed at the time of the run
        "python -c pass": lambda: wall_seconds([PYTHON, "-c", "pass"]),
    }, reps * 3)  # a tenth of a second each: more repetitions, a steadier median
    def row(what: str, name: str, target: str) -> tuple[str, float, float | None, str]:
        return what, series[name].median, min(series[name].samples), target

    rows = [
        row("`import shstk` (timed inside a fresh interpreter)", "import shstk", "< 0.1 s"),
        ("`import shstk.cli` (what the `shstk` command imports first)",
         statistics.median(_import_seconds("shstk.cli") for _ in range(reps)), None, ""),
        row("`shstk run` static hello world, wall", "static hello", "< 80 ms"),
        row("`shstk run` dynamic hello world, wall", "dynamic hello", "< 0.5 s"),
        row("the static hello world natively", "static hello natively", ""),
        row("the Python interpreter alone (`python -c pass`), wall", "python -c pass", ""),
    ]
    py3 = shutil.which("python3")
    real_py3 = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else py3
    if real_py3:
        t = statistics.median(wall_seconds([*shstk, real_py3, "-c", "pass"])
                              for _ in range(max(1, reps // 2)))
        rows.append((f"`shstk run {real_py3} -c pass`, wall", t, None, "< 15 s"))
    return rows


def audit_vs_loop(reps: int) -> tuple[float, float] | None:
    """`shstk audit /usr/bin` against `readelf -n` + `ldd` per file (bench_audit.py)."""
    import bench_audit

    target = "/usr/bin"
    if not os.path.isdir(target) or not shutil.which("readelf") or not shutil.which("ldd"):
        return None
    times = bench_audit.run(target, reps)
    return (statistics.median(times["readelf -n + ldd loop"]),
            statistics.median(times["shstk audit"]))


# --- 3. growth -------------------------------------------------------------------------------

def _big_stack() -> None:
    resource.setrlimit(resource.RLIMIT_STACK, (1 << 30, resource.RLIM_INFINITY))


def _emulated_with_rss(prog: Path, args: list[str], policy: str = "on"
                       ) -> tuple[float, int, str]:
    """kernel.run() seconds, the max RSS (KiB) of the shstk process, and the guest output."""
    code = (
        "import sys,time,os,resource\n"
        "from shstk.run.runner import RunOptions, run\n"
        "import shstk.emu.kernel.kernel as K\n"
        "orig = K.Kernel.run\nspent=[]\n"
        "def timed(self):\n"
        "    t=time.perf_counter(); r=orig(self); spent.append(time.perf_counter()-t); return r\n"
        "K.Kernel.run = timed\n"
        "res = run(RunOptions(program=sys.argv[2], args=sys.argv[3:], shstk=sys.argv[1],\n"
        "                    max_tasks=100_000))  # the thread curve goes to 30,000\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "os.write(2, ('%.6f %d\\n' % (spent[0], rss)).encode())\n"
        "sys.exit(res.exit_status)\n")
    proc = subprocess.run([PYTHON, "-c", code, policy, str(prog), *args], capture_output=True,
                          text=True, preexec_fn=_big_stack)
    if proc.returncode != 0:
        raise RuntimeError(f"{prog.name} {args}: exit {proc.returncode}: {proc.stderr[-300:]}")
    secs, rss = proc.stderr.strip().splitlines()[-1].split()
    return float(secs), int(rss), proc.stdout.strip()


def _blocks_program(n: int) -> Path:
    """A program with n distinct functions, each called once: n new blocks to decode."""
    src = BUILD / "gen" / f"blocks{n}.c"
    if not src.exists():
        src.parent.mkdir(parents=True, exist_ok=True)
        body = [f"__attribute__((noinline)) long f{i}(long x) {{ return x * {i + 3} + {i}; }}"
                for i in range(n)]
        calls = "".join(f"  s += f{i}(s);\n" for i in range(n))
        src.write_text("#include <stdio.h>\n" + "\n".join(body) +
                       f"\nint main(void) {{\n  long s = 1;\n{calls}"
                       "  printf(\"%ld\\n\", s);\n  return 0;\n}\n")
    out = src.with_suffix("")
    if not out.exists():
        subprocess.run(["gcc", "-static", "-O1", *MARKED, "-o", str(out), str(src)],
                       check=True)
    return out


def growth() -> dict[str, list[tuple[float, float, float]]]:
    """Each curve: (size, seconds or µs, max RSS KiB)."""
    curves: dict[str, list[tuple[float, float, float]]] = {}
    rec = _prog("recursion.c", ("-static", "-O2", *MARKED))
    curves["recursion depth (frames)"] = [
        (n, *_emulated_with_rss(rec, [str(n)])[:2]) for n in (1000, 10000, 100000, 1000000)]
    log("  recursion done")
    live = _prog("livethreads.c", ("-static", "-O2", "-pthread", *MARKED))
    pts = []
    for n in (1000, 4000, 10000, 30000):
        if pts and pts[-1][1] > THREADS_CAP:
            log(f"  live threads: {n} skipped ({pts[-1][0]} took {pts[-1][1]:.0f} s)")
            break
        # the faster of two runs: one run a point let a noisy neighbour on this shared
        # machine bend the slope by +-0.15
        runs = [_emulated_with_rss(live, [str(n)])[:2] for _ in range(2)]
        pts.append((n, min(r[0] for r in runs), max(r[1] for r in runs)))
        log(f"  live threads {n}: {pts[-1][1]:.2f} s")
    curves["live threads (all alive at once)"] = pts
    log("  threads done")
    sw = _prog("switches.c", ("-static", "-O2", *MARKED))
    curves["shadow-stack switches (RSTORSSP pairs)"] = [
        (n, *_emulated_with_rss(sw, [str(n)], "off")[:2]) for n in (100, 1000, 10000, 100000)]
    log("  switches done")
    curves["distinct basic blocks (decode cache)"] = [
        (n * 2, *_emulated_with_rss(_blocks_program(n), [])[:2])
        for n in (1000, 3000, 10000, 30000)]
    log("  blocks done")
    fk = _prog("forkmem.c", ("-static", "-O2", *MARKED))
    points = []
    for mib in (0, 16, 64, 256):
        _secs, rss, out = _emulated_with_rss(fk, [str(mib)], "off")
        points.append((mib, int(out.splitlines()[-1]) / 1e6, rss))
    curves["fork: MiB touched, 4 GiB shadow stack reserved"] = points
    log("  fork done")
    return curves


def _slope(points: list[tuple[float, float, float]]) -> str:
    """How time scales, as the worst log-log slope between neighbouring points after the
    first (whose time is mostly fixed costs): 1.0 is linear, above 1 is worse."""
    import math

    slopes = []
    for (x0, y0, _), (x1, y1, _) in itertools.pairwise(points[1:]):
        if y0 > 0 and y1 > 0 and x1 > x0 > 0:
            slopes.append(math.log(y1 / y0) / math.log(x1 / x0))
    return f"{max(slopes):.2f}" if slopes else "n/a"


# --- output --------------------------------------------------------------------------------------

def plot(rows: list[dict], start: list[tuple[str, float, float | None, str]], curves: dict,
         has_ql: bool, path: Path, real: list[dict] | None = None) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter
    except ImportError:
        log("matplotlib is missing: no picture")
        return False
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    cells = [ax for row in axes for ax in row]
    ax = cells[0]
    names = [r["workload"].split(" (")[0] for r in rows]
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r["shstk"] / r["bare"] for r in rows], 0.4,
           label="shstk (native fast path) / bare")
    if has_ql:
        ax.bar([x + 0.2 for x in xs], [r["qiling"] / r["bare"] for r in rows], 0.4,
               label="Qiling (no shadow stacks) / bare")
    ax.axhline(1.10, color="gray", linestyle="--", linewidth=1, label="target 1.10x")
    ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    ax.set_ylabel("time relative to bare Unicorn")
    ax.set_title("Enforcement cost (lower is better)")
    ax.legend(fontsize=8)
    ax = cells[1]
    ax.bar(list(xs), [r["python"] / r["bare_small"] for r in rows], 0.5, color="tab:orange")
    ax.axhline(12, color="gray", linestyle="--", linewidth=1, label="target 12x")
    ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
    ax.set_ylabel("time relative to bare Unicorn")
    ax.set_title("Pure-Python engine (fallback) / bare Unicorn")
    ax.legend(fontsize=8)
    ax = cells[2]
    shown = [(what.split(",")[0].replace("`", ""), t) for what, t, _min, _target in start
             if "natively" not in what]
    ax.barh([w for w, _ in shown][::-1], [t for _, t in shown][::-1], color="tab:green")
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log)")
    ax.set_title("Start-up (wall)")
    ax.tick_params(axis="y", labelsize=7)
    for ax, (title, pts) in zip(cells[3:], curves.items(), strict=False):
        xs_ = [p[0] for p in pts if p[0] > 0]
        ys_ = [p[1] for p in pts if p[0] > 0]
        ax.loglog(xs_, ys_, "o-", label="time")
        # linear growth through the last point, for comparison
        ax.loglog(xs_, [ys_[-1] * x / xs_[-1] for x in xs_], ":", color="gray",
                  label="linear")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("size")
        ax.set_ylabel("seconds")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax2 = ax.twinx()
        ax2.plot(xs_, [p[2] / 1024 for p in pts if p[0] > 0], "s--", color="tab:green",
                 label="max RSS (MiB)")
        ax2.set_ylim(bottom=0)
        ax2.set_ylabel("max RSS of shstk (MiB)", fontsize=8)
        ax.legend(loc="upper left", fontsize=7)
        ax2.legend(loc="lower right", fontsize=7)
    free = cells[3 + len(curves):]
    if real and free:
        ax = free.pop(0)
        names = [r["command"].strip("`").replace("static ", "")[:22] for r in real]
        ys = range(len(real))
        if bench_real.QEMU:
            ax.barh([y - 0.2 for y in ys], [r["on"] / r["qemu"] for r in real], 0.4,
                    label="shstk --shstk on / qemu-x86_64")
            ax.barh([y + 0.2 for y in ys], [r["off"] / r["qemu"] for r in real], 0.4,
                    label="shstk --shstk off / qemu-x86_64")
            ax.axvline(1.5, color="gray", linestyle="--", linewidth=1, label="target 1.5x")
            ax.set_xlabel("wall time relative to qemu-x86_64")
        else:
            ax.barh(list(ys), [r["on"] / r["native"] for r in real], 0.5,
                    label="shstk --shstk on / native (qemu-x86_64 not installed)")
            ax.set_xlabel("wall time relative to native")
        ax.set_yticks(list(ys), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_title("Real commands (lower is better)")
        ax.legend(fontsize=7)
    for ax in free:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    ap.add_argument("--no-qiling", action="store_true")
    ap.add_argument("--skip-growth", action="store_true")
    ap.add_argument("--skip-real", action="store_true", help="no qemu-user section")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    load0 = bench_real.load()
    ql = None if args.no_qiling else qiling_python()
    log("1. enforcement cost")
    rows = enforcement(args.reps, ql)
    log("2. start-up")
    start = startup(max(args.reps, 5))
    audit = audit_vs_loop(args.reps)
    curves = {} if args.skip_growth else (log("3. growth") or growth())
    real: list[dict] = []
    switch: dict[str, float] = {}
    if not args.skip_real:
        log("4. real commands, qemu-user, CET switches")
        real = bench_real.real_commands(args.reps)
        switch = bench_real.switch_round_trip(args.reps)
    md = [
        "# shstk benchmark results", "",
        f"Measured by `make bench` ({args.reps} interleaved repetitions, medians) on "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}. Times of the emulators are "
        "their `kernel.run()` (interpreter start-up excluded); `native CPU` and start-up "
        "rows are wall times. The Python engine is compared with bare Unicorn on a smaller "
        "input of the same binary.", "",
        "## 1. Enforcement cost", "",
        enforcement_table(rows, ql is not None), "",
        "Targets: shstk / bare at most 1.10x; Python engine / bare at most 12x"
        + ("; faster than Qiling (Qiling / shstk above 1)." if ql else
           "; Qiling did not install, so no peer column."), "",
        "## 2. Start-up", "",
        "| what | median | minimum | target |", "|---|---|---|---|",
        *(f"| {what} | {fmt_s(t)} | {fmt_s(m) if m is not None else ''} | {target} |"
          for what, t, m, target in start),
    ]
    if audit:
        loop, aud = audit
        md += ["", f"`shstk audit /usr/bin` {fmt_s(aud)} against a `readelf -n` + `ldd` "
               f"loop {fmt_s(loop)}: {loop / aud:.1f}x faster."]
    if curves:
        md += ["", "## 3. Growth", "",
               "Each curve: time at each size, and the maximum RSS of the shstk process; "
               "`slope` is the worst log(time ratio) / log(size ratio) between neighbouring "
               "points after the first (1.0 is linear).", ""]
        for title, pts in curves.items():
            unit = "s" if "fork" not in title else "s (fork() as the guest timed it)"
            md += [f"### {title}", "", f"| size | time ({unit}) | max RSS |", "|---|---|---|",
                   *(f"| {int(x)} | {y:.4f} | {rss / 1024:.0f} MiB |" for x, y, rss in pts),
                   "", f"slope: {_slope(pts)}", ""]
    if real:
        md += ["", "## 4. Real commands against qemu-user (issue 18)", "",
               "Wall times of whole commands (shstk's Python start-up included), "
               f"{args.reps} interleaved repetitions, medians. Target: shstk-on / qemu at "
               "most 1.5x.", "", bench_real.real_table(real), ""]
    if switch:
        md += ["### RSTORSSP + SAVEPREVSSP round trip", "",
               "| engine | µs per RSTORSSP + SAVEPREVSSP | target |", "|---|---|---|",
               f"| native | {switch['native']:.2f} | <= 2 µs |",
               f"| pure Python | {switch['python']:.2f} |  |", ""]
    md += ["", f"(the whole run took {time.perf_counter() - t0:.0f} s; load average "
           f"{load0} at the start, {bench_real.load()} at the end, on a machine shared "
           "with other work)", ""]
    (BENCH / "results.md").write_text("\n".join(md))
    drew = plot(rows, start, curves, ql is not None, BENCH / "results.png", real)
    print("\n".join(md))
    log(f"wrote bench/results.md{' and bench/results.png' if drew else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
