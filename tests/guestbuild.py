"""Compile guest programs for the tests, cached by content and flags.

Guests are C/C++ sources (inline asm where needed) built with this machine's gcc into
`build/guests/<hash>/`. The cache survives between sessions; a clean checkout (CI) builds
everything. Safe under pytest-xdist: each build goes to a temporary name, then an atomic
rename.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUEST_DIR = Path(__file__).resolve().parent / "guest"
BUILD_DIR = ROOT / "build" / "guests"

# Common include for guests: raw syscalls and shadow-stack helpers.
INCLUDE_DIR = GUEST_DIR / "include"


def _digest(parts: Sequence[str | bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def compile_guest(
    source: str | Path,
    *,
    flags: Sequence[str] = ("-static", "-O2"),
    name: str | None = None,
    compiler: str | None = None,
    extra_sources: Sequence[str | Path] = (),
) -> Path:
    """Build `source` (a path, or a file name under tests/guest/) and return the binary."""
    src = Path(source)
    if not src.is_absolute() and not src.exists():
        src = GUEST_DIR / src
    sources = [src, *(Path(s) if Path(s).is_absolute() else GUEST_DIR / s for s in extra_sources)]
    if compiler is None:
        compiler = "g++" if src.suffix in (".cc", ".cpp") else "gcc"
    include_files = sorted(INCLUDE_DIR.glob("*.h")) if INCLUDE_DIR.is_dir() else []
    key = _digest([compiler, *flags, *(s.read_bytes() for s in sources),
                   *(f.read_bytes() for f in include_files)])
    out_dir = BUILD_DIR / key
    out = out_dir / (name or src.stem)
    if out.exists():
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp_out = Path(tmp) / out.name
        cmd = [compiler, *flags, f"-I{INCLUDE_DIR}", "-o", str(tmp_out), *map(str, sources)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"compiling {src.name} failed:\n{' '.join(cmd)}\n{proc.stderr}")
        os.replace(tmp_out, out)
    return out


def have(tool: str) -> bool:
    return shutil.which(tool) is not None
