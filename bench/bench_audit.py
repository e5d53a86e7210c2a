"""Benchmark: `shstk audit DIR` against a plain loop of `readelf -n` plus `ldd`.

Both sides answer the closure-level question (the property note of every program and
of every library it loads):

* baseline: a bash loop running `readelf -n` and `ldd` on every file of the tree,
  then `readelf -n` once on every distinct library the ldd outputs name;
* shstk: `python -m shstk audit -q DIR` (interpreter start-up included), on all cores
  and with `-j 1`.

The contenders run interleaved (their order alternates), after one warm-up round so the
page cache is equally warm; medians of the repetitions are compared.

    python bench/bench_audit.py [DIR] [--reps N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BASELINE = r"""
# $1: file with NUL-separated paths.
all=$(mktemp)
while IFS= read -r -d '' f; do
    readelf -n "$f" >/dev/null 2>&1
    ldd "$f" >>"$all" 2>/dev/null
done <"$1"
awk '$2 == "=>" && $3 ~ /^\// {print $3}' "$all" | sort -u | while IFS= read -r lib; do
    readelf -n "$lib" >/dev/null 2>&1
done
rm -f "$all"
"""


def files_of(directory: str) -> list[str]:
    """Regular files of the tree, each inode once (what `shstk audit` looks at)."""
    seen: dict[tuple[int, int], str] = {}
    for dirpath, _dirs, names in os.walk(directory):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.path.isfile(path):
                seen.setdefault((st.st_dev, st.st_ino), path)
    return sorted(seen.values())


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def run(directory: str, reps: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files"
        listing.write_bytes(b"".join(os.fsencode(f) + b"\0" for f in files_of(directory)))
        script = Path(tmp) / "baseline.sh"
        script.write_text(BASELINE)
        contenders = {
            "readelf -n + ldd loop": ["bash", str(script), str(listing)],
            "shstk audit": [sys.executable, "-m", "shstk", "audit", "-q", directory],
            "shstk audit -j 1": [sys.executable, "-m", "shstk", "audit", "-q", "-j", "1",
                                 directory],
        }
        for cmd in contenders.values():  # warm-up: page cache, pyc files
            timed(cmd)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        order = list(contenders)
        for rep in range(reps):
            for name in order if rep % 2 == 0 else reversed(order):
                times[name].append(timed(contenders[name]))
    return times


def report(directory: str, times: dict[str, list[float]]) -> str:
    nfiles = len(files_of(directory))
    base = statistics.median(times["readelf -n + ldd loop"])
    lines = [f"audit benchmark: {directory} ({nfiles} files), {os.cpu_count()} cores,"
             f" {len(next(iter(times.values())))} interleaved repetitions",
             "", "| contender | median | min | max | speed-up |", "|---|---|---|---|---|"]
    for name, values in times.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.3f} s | {min(values):.3f} s | {max(values):.3f} s"
                     f" | {base / median:.1f}x |")
    shstk = statistics.median(times["shstk audit"])
    lines += ["", f"ratio: shstk audit is {base / shstk:.1f}x faster than the readelf + ldd"
                  " loop (medians)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", default="/usr/bin")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    missing = [tool for tool in ("bash", "readelf", "ldd") if shutil.which(tool) is None]
    if missing:
        print(f"bench_audit: needs {', '.join(missing)}", file=sys.stderr)
        return 2
    os.chdir(ROOT)
    print(report(args.directory, run(args.directory, args.reps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
