"""A seeded ELF mutation fuzzer for `shstk run`: mutants of a small static program, a
dynamic one and a shared object (loaded through dlopen by a dynamic guest).

Most mutants go through a guest's execve() or dlopen() (tests/guest/fuzz/elf_driver.c),
one `shstk run` for many files; a few go straight to `shstk run`. Never an internal
error (exit 125, "internal error" or a traceback); an invalid program gets ENOEXEC
inside the guest, and one line with exit 126 from `shstk run`.

FUZZ_SEED and ELF_MUTANTS choose the seed and the number of mutants per kind.
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest
from shstkrun import run_guest

SEED = int(os.environ.get("FUZZ_SEED", "14"))
PER_KIND = int(os.environ.get("ELF_MUTANTS", "80"))

# Values that break size and offset arithmetic.
HOSTILE = (0, 1, 0x7F, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 47,
           (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 0x1000, 0xFFF, 0x200000)
PHDR_FIELDS = (  # (offset in the program header, size)
    (0, 4), (4, 4), (8, 8), (16, 8), (24, 8), (32, 8), (40, 8), (48, 8))
EHDR_FIELDS = ((16, 2), (18, 2), (24, 8), (32, 8), (40, 8), (52, 2), (54, 2), (56, 2),
               (58, 2), (60, 2), (62, 2))


def _put(data: bytearray, off: int, size: int, value: int) -> None:
    if off >= 0 and off + size <= len(data):
        data[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def mutate(orig: bytes, rng: random.Random) -> bytes:
    data = bytearray(orig)
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for _ in range(rng.choice((1, 1, 2, 3))):
        how = rng.randrange(6)
        if how == 0:  # an ELF header field
            off, size = rng.choice(EHDR_FIELDS)
            _put(data, off, size, rng.choice(HOSTILE) if rng.random() < .7 else
                 rng.getrandbits(8 * size))
        elif how in (1, 2):  # a program header field
            i = rng.randrange(phnum)
            off, size = rng.choice(PHDR_FIELDS)
            base = phoff + i * phentsize + off
            value = rng.choice(HOSTILE) if rng.random() < .6 else rng.getrandbits(8 * size)
            if rng.random() < .3:  # near the original value
                old = int.from_bytes(data[base:base + size], "little")
                value = old + rng.choice((-0x1000, -1, 1, 0x1000, 0x100000))
            _put(data, base, size, value)
        elif how == 3:  # a program header's type
            i = rng.randrange(phnum)
            _put(data, phoff + i * phentsize, 4,
                 rng.choice((1, 2, 3, 4, 6, 7, 0x6474E550, 0x6474E551, 0x6474E552,
                             0x6474E553)))
        elif how == 4:  # bytes anywhere in the first pages (headers, notes, interp)
            for _ in range(rng.randrange(1, 8)):
                data[rng.randrange(min(len(data), 0x1000))] = rng.getrandbits(8)
        else:  # a truncated file
            del data[rng.randrange(64, len(data)):]
    return bytes(data)


def _mutants(src: Path, out_dir: Path, kind: str, rng: random.Random, n: int) -> list[Path]:
    orig = src.read_bytes()
    out_dir.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        p = out_dir / f"{kind}-{i}"
        p.write_bytes(mutate(orig, rng))
        p.chmod(0o755)
        paths.append(p)
    return paths


def _internal_error(proc) -> bool:
    err = proc.stderr.decode(errors="replace")
    return proc.returncode == 125 or "internal error" in err or "Traceback" in err


@pytest.fixture(scope="module")
def guests(build):
    return {
        "static": build("fuzz/hello.c", flags=("-static", "-O2")),
        "dynamic": build("fuzz/hello.c", flags=("-O2",), name="hello-dyn"),
        "shared": build("fuzz/hello_lib.c", flags=("-O2", "-shared", "-fPIC"),
                        name="libhello.so"),
        "driver": build("fuzz/elf_driver.c", flags=("-O2",)),
    }


@pytest.mark.parametrize("kind", ["static", "dynamic", "shared"])
def test_mutants_through_the_guest(guests, tmp_path, kind) -> None:
    rng = random.Random(f"{SEED}-{kind}")
    files = _mutants(guests[kind], tmp_path / "m", kind, rng, PER_KIND)
    log = tmp_path / "log"
    mode = "dlopen" if kind == "shared" else "exec"
    proc = run_guest(guests["driver"], str(log), mode, *map(str, files),
                     options=["--timeout", "240"], timeout=300)
    if _internal_error(proc):
        last = log.read_text().splitlines()[-1].split()[-1] if log.exists() else "?"
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-2:]
        raise AssertionError(f"internal error on {kind} mutant {last} "
                             f"[FUZZ_SEED={SEED}]\n" + "\n".join(tail))
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    counts = dict(line.split() for line in proc.stdout.decode().splitlines())
    if kind != "shared":
        assert int(counts["enoexec"]) > 0, counts  # some mutants are refused, as Linux


def test_mutants_straight_to_shstk_run(guests, tmp_path) -> None:
    """`shstk run` on an invalid program: one line and exit 126, as a shell."""
    rng = random.Random(f"{SEED}-direct")
    files = (_mutants(guests["static"], tmp_path / "m", "static", rng, 6) +
             _mutants(guests["dynamic"], tmp_path / "m", "dynamic", rng, 6))
    refused = 0
    for f in files:
        proc = run_guest(f, options=["--timeout", "20"], timeout=120)
        assert not _internal_error(proc), (f, proc.stderr.decode()[-500:])
        if proc.returncode == 126:
            refused += 1
            lines = proc.stderr.decode().strip().splitlines()
            assert len(lines) == 1, lines
    assert refused > 0
