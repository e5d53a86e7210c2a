"""Side-by-side measurement for bench/: interleaved repetitions, medians, ratios.

Every contender runs in a fresh process; a repetition runs every contender once, in
turn, so slow drifts of the machine (other load, thermal) hit all of them alike.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUESTS = Path(__file__).resolve().parent / "guests"
BUILD = ROOT / "build" / "bench"
PYTHON = sys.executable


def build(source: str, flags: Sequence[str] = ("-static", "-O2"), name: str | None = None,
          extra: Sequence[str] = ()) -> Path:
    """Compile bench/guests/SOURCE (cached by content and flags)."""
    src = GUESTS / source
    compiler = "g++" if src.suffix in (".cc", ".cpp") else "gcc"
    key = hashlib.sha256(src.read_bytes() + " ".join([compiler, *flags, *extra]).encode())
    out = BUILD / key.hexdigest()[:12] / (name or src.stem)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([compiler, *flags, "-o", str(tmp), str(src), *extra], check=True)
        os.replace(tmp, out)
    return out


def emulated_seconds(prog: Path, args: Sequence[str], engine: str, *,
                     options: Sequence[str] = ()) -> float:
    """Seconds spent in the emulator's kernel.run() for one run (fresh process)."""
    code = (
        "import sys,time,os\n"
        # capstone's Python binding is imported lazily, by the first block with a CET
        # instruction: import it here so that its import is not charged to kernel.run()
        "import capstone\n"
        "from shstk.run.runner import RunOptions, run\n"
        "import shstk.emu.kernel.kernel as K\n"
        "orig = K.Kernel.run\n"
        "spent = []\n"
        "def timed(self):\n"
        "    t = time.perf_counter(); r = orig(self); spent.append(time.perf_counter() - t)\n"
        "    return r\n"
        "K.Kernel.run = timed\n"
        "opts = RunOptions(program=sys.argv[1], args=sys.argv[2:], shstk='on')\n"
        "res = run(opts)\n"
        "os.write(2, ('%.6f\\n' % spent[0]).encode())\n"
        "sys.exit(res.exit_status)\n"
    )
    env = dict(os.environ, SHSTK_ENGINE=engine)
    proc = subprocess.run([PYTHON, "-c", code, str(prog), *args], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{prog.name} under {engine} exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-300:]}")
    return float(proc.stderr.strip().splitlines()[-1])


def wall_seconds(cmd: Sequence[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, env=env)
    return time.perf_counter() - t0


@dataclass
class Series:
    name: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleave(contenders: dict[str, Callable[[], float]], reps: int) -> dict[str, Series]:
    """Run every contender once per repetition, in turn; keep every sample."""
    series = {name: Series(name) for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            series[name].samples.append(fn())
    return series


def fmt_s(x: float) -> str:
    if x < 0.01:
        return f"{x * 1000:.1f} ms"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"
