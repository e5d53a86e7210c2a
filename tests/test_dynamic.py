"""Dynamic programs (issue 6): what users actually ship runs under `shstk run` with the
same output and exit status as natively.

- This machine's own /usr/bin: true, echo, ls -la /etc, cat, sort, grep, sed, awk,
  sha256sum, python3 and gcc --version (gcc -c of a small file is the stretch goal).
- Programs built here: a dynamic C++ program (libstdc++, exceptions through libgcc_s,
  also with shadow stacks forced on), the auxiliary vector of a PIE and a non-PIE
  program checked against what ld.so did, and the file system calls ld.so and libc use
  (openat, pread64, fstat, newfstatat, statx, access, readlink, getcwd, getdents64, fcntl,
  file-backed mmap private and shared at offsets).

Guests: tests/guest/dynamic/. The helpers at the top (dynamic builds, closures of
libc-free programs and libraries, the CET-enabled glibc) are shared by test_sysroot.py,
test_loader_policy.py and test_readiness.py.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from cetglibc import SKIP_REASON, glibc_dir
from guestbuild import BUILD_DIR, GUEST_DIR, compile_guest
from shstkrun import native, run_guest

DYN = GUEST_DIR / "dynamic"

# Marked for shadow stacks (and IBT): CET instrumentation, and the property forced on the
# output, as the demo does. Unmarked: no property note at all.
MARK = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")
UNMARK = ("-fcf-protection=none",)
# libc-free code (nolibc.h): no calls to memset/memcpy that nobody provides.
FREESTANDING = ("-O2", "-ffreestanding", "-fno-tree-loop-distribute-patterns", "-nostdlib")
SHARED = ("-shared", "-fPIC")


def emu(prog: str | Path, *args: str, options: Sequence[str] = (), **kw
        ) -> subprocess.CompletedProcess[bytes]:
    """`shstk run` that must never end in a Python traceback or an internal error."""
    kw.setdefault("timeout", 600)
    proc = run_guest(prog, *args, options=options, **kw)
    err = proc.stderr.decode(errors="replace")
    assert "Traceback" not in err and "internal error" not in err, err
    return proc


def text(data: bytes) -> str:
    return data.decode(errors="replace")


@functools.cache
def _headers_digest() -> str:
    """The headers of tests/guest/dynamic/ are not part of compile_guest's cache key."""
    h = hashlib.sha256()
    for f in sorted(DYN.glob("*.h")):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def dyn_build(source: str, *, flags: Sequence[str] = ("-O2",), name: str | None = None,
              extra_sources: Sequence[str | Path] = ()) -> Path:
    """Compile tests/guest/dynamic/SOURCE (dynamic by default); cached by content."""
    return compile_guest(DYN / source, flags=[*flags, f"-DDYN_HEADERS={_headers_digest()}"],
                         name=name, extra_sources=[Path(s) for s in extra_sources])


def shared_lib(source: str, soname: str, *, marked: bool, flags: Sequence[str] = (),
               libs: Sequence[Path] = (), nolibc: bool = True) -> Path:
    """A shared library SONAME built from tests/guest/dynamic/SOURCE (RUNPATH $ORIGIN)."""
    base = FREESTANDING if nolibc else ("-O2",)
    return dyn_build(source, flags=[*base, *SHARED, *(MARK if marked else UNMARK),
                                    f"-Wl,-soname,{soname}", "-Wl,-rpath,$ORIGIN",
                                    *(f"-Wl,-rpath-link,{lib.parent}" for lib in libs),
                                    *flags],
                     name=soname, extra_sources=libs)


def closure(dest: Path, *, exe_marked: str = "full", dyn_marked: bool = True,
            inner_marked: bool = True, rpath: str = "$ORIGIN") -> Path:
    """DEST/{ready, libdyn.so, libinner.so}: a libc-free program whose initial closure is
    exactly those three objects and the dynamic loader. exe_marked: "full" (SHSTK and
    IBT), "ibt" (IBT only) or "none"."""
    inner = shared_lib("libinner.c", "libinner.so", marked=inner_marked)
    dyn = shared_lib("libdyn.c", "libdyn.so", marked=dyn_marked, libs=[inner])
    exe_flags = {"full": MARK, "ibt": ("-fcf-protection=branch", "-Wl,-z,ibt"),
                 "none": UNMARK}[exe_marked]
    rp = [f"-Wl,-rpath,{rpath}"] if rpath else []
    exe = dyn_build("ready.c", flags=[*FREESTANDING, *exe_flags, *rp, "-Wl,--no-as-needed",
                                      f"-Wl,-rpath-link,{inner.parent}"],
                    name="ready", extra_sources=[dyn])
    dest.mkdir(parents=True, exist_ok=True)
    for f in (exe, dyn, inner):
        shutil.copy2(f, dest / f.name)
    return dest / "ready"


# --- the CET-enabled glibc (../shared/glibc-cet) ------------------------------------------

# glibc_dir(): the one tree the CET-glibc tests use (the archive unpacked once, or the tree
# `make cet-glibc` built); CET_SKIP says how to get one.
cet_glibc = glibc_dir
CET_SKIP = SKIP_REASON


def _gcc_file(name: str) -> str:
    return subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True,
                          text=True, check=True).stdout.strip()


def cet_build(source: str, *, name: str | None = None, cflags: Sequence[str] = (),
              extra_sources: Sequence[str] = ()) -> Path:
    """A dynamic program linked against the CET glibc (its README's recipe), marked IBT and
    SHSTK, run through that glibc's own ld.so (PT_INTERP and RUNPATH point into it)."""
    g = cet_glibc()
    assert g is not None, CET_SKIP
    lib = g / "lib"
    sources = [DYN / source, *(DYN / s for s in extra_sources)]
    h = hashlib.sha256()
    for part in ("cet-dynamic", str(g), *cflags, *(s.read_bytes() for s in sources),
                 _headers_digest()):
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    out = BUILD_DIR / h.hexdigest()[:16] / (name or sources[0].stem)
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        objs = [Path(tmp) / f"{i}.o" for i in range(len(sources))]
        tmp_out = Path(tmp) / out.name
        cmds = [["gcc", "-O2", "-fcf-protection=full", "-nostdinc", "-isystem",
                 str(g / "include"), "-isystem", _gcc_file("include"), f"-I{DYN}", *cflags,
                 "-c", "-o", str(obj), str(src)] for src, obj in zip(sources, objs, strict=True)]
        cmds.append(["gcc", "-nostdlib", "-nostartfiles", "-no-pie", "-o", str(tmp_out),
                     str(lib / "crt1.o"), str(lib / "crti.o"), _gcc_file("crtbegin.o"),
                     *map(str, objs), f"-L{lib}", "-lc", _gcc_file("libgcc.a"),
                     _gcc_file("crtend.o"), str(lib / "crtn.o"),
                     f"-Wl,--dynamic-linker={lib / 'ld-linux-x86-64.so.2'}",
                     f"-Wl,-rpath,{lib}", *MARK[1:]])
        for cmd in cmds:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)}\n{proc.stderr}")
        os.replace(tmp_out, out)
    return out


def require_cet():
    """cet_build, or skip the test (one line) when the CET-enabled glibc is absent."""
    if cet_glibc() is None:
        pytest.skip(CET_SKIP)
    return cet_build


# --- this machine's /usr/bin ---------------------------------------------------------------

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
         "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi",
         "chi", "psi", "omega"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Deterministic inputs: text, a passwd-like table, a binary file."""
    d = tmp_path_factory.mktemp("dyn-data")
    lines = []
    for i in range(3000):
        w = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(1 + i % 5)]
        lines.append(f"{i:05d} {' '.join(w)} {(i * 7919) % 1000}")
    (d / "words.txt").write_text("\n".join(lines) + "\n")
    (d / "table.txt").write_text("".join(
        f"user{i}:x:{(i * 37) % 500}:{i % 7}:User {WORDS[i % len(WORDS)]}:/home/u{i}:"
        f"/bin/{'bash' if i % 3 else 'sh'}\n" for i in range(400)))
    (d / "blob.bin").write_bytes(bytes((i * 131 + (i >> 8)) & 0xFF for i in range(1 << 20)))
    (d / "empty").write_bytes(b"")
    return d


def _real_python() -> str | None:
    """The real interpreter (PATH's python3 may be a pyenv shim: a bash script)."""
    for cand in ("/usr/bin/python3", shutil.which("python3")):
        if cand and os.path.exists(cand):
            real = os.path.realpath(cand)
            with open(real, "rb") as f:
                if f.read(4) == b"\x7fELF":
                    return real
    return None


def _awk() -> str:
    return os.path.realpath(shutil.which("awk") or "/usr/bin/awk")


STDIN = b"from stdin: one\ntwo\n"

# id -> (program, args (DATA is replaced by the data directory), stdin)
PROGRAMS: dict[str, tuple[str, tuple[str, ...], bytes]] = {
    "true": ("/usr/bin/true", (), b""),
    "echo": ("/usr/bin/echo", ("-e", "tab\\there", "dynamic world", "ünï"), b""),
    "ls-la-etc": ("/usr/bin/ls", ("-la", "/etc"), b""),
    "cat": ("/usr/bin/cat", ("DATA/table.txt", "-", "DATA/empty", "DATA/words.txt"), STDIN),
    "cat-missing": ("/usr/bin/cat", ("DATA/table.txt", "DATA/missing"), b""),
    "sort": ("/usr/bin/sort", ("DATA/words.txt",), b""),
    "sort-keys": ("/usr/bin/sort", ("-t:", "-k3,3n", "-k1,1r", "DATA/table.txt"), b""),
    "sort-stdin-unique": ("/usr/bin/sort", ("-u", "-r"), b"b\na\nc\na\nb\n"),
    "grep": ("/usr/bin/grep", ("-n", "-i", "-E", "ALPHA (beta|omega)", "DATA/words.txt"), b""),
    "grep-count": ("/usr/bin/grep", ("-c", "bash$", "DATA/table.txt"), b""),
    "grep-no-match": ("/usr/bin/grep", ("no such words here", "DATA/words.txt"), b""),
    "sed": ("/usr/bin/sed", ("-n", "-e", "s/\\(gamma\\) \\(delta\\)/\\2+\\1/gp",
                             "DATA/words.txt"), b""),
    "sed-tac": ("/usr/bin/sed", ("1!G;h;$!d", "DATA/table.txt"), b""),
    "awk": ("AWK", ("-F:", "{s += $3; n[$7]++} END {print s, NR; for (k in n) "
                           "print k, n[k] | \"sort\"}", "DATA/table.txt"), b""),
    "awk-printf": ("AWK", ("{printf \"%-8s|%5.2f|%x\\n\", $2, $NF / 7, $NF}",
                           "DATA/words.txt"), b""),
    "sha256sum": ("/usr/bin/sha256sum", ("DATA/blob.bin", "DATA/words.txt", "DATA/empty"),
                  b""),
}


def _expand(args: Sequence[str], data: Path) -> list[str]:
    return [a.replace("DATA", str(data)) for a in args]


def compare(prog: str, args: Sequence[str], *, stdin: bytes = b"", options: Sequence[str] = (),
            engine: str | None = None, cwd: Path | None = None, timeout: float = 600) -> None:
    """Natively and under `shstk run`: the same stdout, stderr and exit status."""
    nat = subprocess.run([prog, *args], input=stdin, capture_output=True, timeout=timeout,
                         cwd=cwd)
    got = emu(prog, *args, options=options, input=stdin, engine=engine, cwd=cwd,
              timeout=timeout)
    assert got.returncode == nat.returncode, (
        f"exit status {got.returncode}, natively {nat.returncode}; stderr under shstk run:\n"
        f"{text(got.stderr)}")
    assert text(got.stdout) == text(nat.stdout)
    assert text(got.stderr) == text(nat.stderr)


@pytest.mark.parametrize("case", sorted(PROGRAMS))
def test_usr_bin_program(case, data):
    prog, args, stdin = PROGRAMS[case]
    if prog == "AWK":
        prog = _awk()
    if not os.path.exists(prog):
        pytest.skip(f"{prog} is not installed")
    compare(prog, _expand(args, data), stdin=stdin)


@pytest.mark.parametrize("case", ["ls-la-etc", "sed-tac"])
def test_usr_bin_program_python_engine(case, data):
    """The pure-Python shadow-stack engine runs them the same way."""
    prog, args, stdin = PROGRAMS[case]
    compare(prog, _expand(args, data), stdin=stdin, engine="python")


@pytest.mark.slow
def test_python3():
    py = _real_python()
    if py is None:
        pytest.skip("no real python3 interpreter (ELF) found")
    compare(py, ["-c", "print(sum(range(10**5)))"])


@pytest.mark.slow
def test_python3_imports_and_files(tmp_path):
    """python3 importing extension modules (dlopen of lib-dynload/*.so) and walking a
    directory: more of the dynamic loader and the file system calls."""
    py = _real_python()
    if py is None:
        pytest.skip("no real python3 interpreter (ELF) found")
    for i in range(5):
        (tmp_path / f"f{i}.txt").write_text("x" * (i * 100))
    script = ("import json, hashlib, os, sys, math, struct, zlib\n"
              "d = sys.argv[1]\n"
              "sizes = {n: os.stat(os.path.join(d, n)).st_size for n in sorted(os.listdir(d))}\n"
              "print(json.dumps(sizes, sort_keys=True))\n"
              "print(hashlib.sha256(b'abc' * 1000).hexdigest())\n"
              "print(zlib.crc32(struct.pack('<3d', math.pi, math.e, 1.5)))\n")
    compare(py, ["-c", script, str(tmp_path)])


@pytest.mark.slow
def test_gcc_version():
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    nat = native(gcc, "--version")
    got = emu(gcc, "--version")
    assert got.returncode == nat.returncode == 0
    assert text(got.stdout).splitlines()[0] == text(nat.stdout).splitlines()[0]
    assert got.stdout == nat.stdout


SMALL_C = """\
#include <stddef.h>
struct point { int x, y; };
static int helper(int v) { return v * 3 + 1; }
int add(int a, int b) { return helper(a) + b; }
size_t length(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
int table[16] = {1, 2, 3};
const char *greeting = "hello";
struct point origin;
"""


def _symbols(obj: Path) -> list[str]:
    out = subprocess.run(["nm", "--defined-only", str(obj)], capture_output=True, text=True,
                         check=True).stdout
    return sorted(" ".join(line.split()[1:]) for line in out.splitlines())


@pytest.mark.slow
def test_gcc_compiles_a_small_file(tmp_path):
    """`gcc -c` under shstk run --rw: cc1 and as run too; the object has the same symbols
    as a native compile (and, gcc being deterministic, the same bytes)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc")
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    (work / "small.c").write_text(SMALL_C)
    subprocess.run([gcc, "-O2", "-c", "small.c", "-o", "native.o"], cwd=work, check=True)
    got = emu(gcc, "-O2", "-c", "small.c", "-o", "emulated.o", cwd=work,
              options=["--rw", str(work), "--env", f"TMPDIR={work / 'tmp'}"])
    assert got.returncode == 0, text(got.stderr)
    assert _symbols(work / "emulated.o") == _symbols(work / "native.o")
    assert (work / "emulated.o").read_bytes() == (work / "native.o").read_bytes()
    assert list((work / "tmp").iterdir()) == [], "gcc left temporary files behind"


# --- programs built here -------------------------------------------------------------------


def test_sysinfo():
    """What sort(1) sizes its buffer with: struct sysinfo's fields in their places and
    mem_unit set (with mem_unit 0 sort thinks the machine has no memory and spills to a
    temporary file, which fails on the read-only file system)."""
    prog = dyn_build("sysinfo.c", flags=["-O2"], name="sysinfo")
    nat = native(prog)
    got = emu(prog)
    assert nat.returncode == 0 and "mem_unit: 1" in text(nat.stdout)
    assert (got.returncode, text(got.stdout)) == (0, text(nat.stdout))


@pytest.fixture(scope="module")
def cxx():
    return {
        "plain": dyn_build("cxx.cc", flags=["-O2"], name="cxx"),
        "marked": dyn_build("cxx.cc", flags=["-O2", *MARK], name="cxx-marked"),
    }


def test_cxx_program(cxx):
    """libstdc++ (containers, iostreams, virtual calls) and exceptions through libgcc_s."""
    nat = native(cxx["plain"])
    assert nat.returncode == 0 and b"caught again: inner" in nat.stdout
    got = emu(cxx["plain"])
    assert (got.returncode, got.stdout, got.stderr) == (nat.returncode, nat.stdout, nat.stderr)


@pytest.mark.parametrize("engine", ["native", "python"])
def test_cxx_exceptions_with_shadow_stacks_on(cxx, engine):
    """Forced on (libstdc++ and libc are not marked): every throw unwinds through
    libgcc_s's _Unwind_RaiseException, which pops the shadow stack with INCSSP; the output
    is still the native one."""
    nat = native(cxx["marked"])
    got = emu(cxx["marked"], options=["--shstk", "on", "-v"], engine=engine)
    assert "shadow stack enabled" in text(got.stderr), text(got.stderr)
    assert (got.returncode, got.stdout) == (nat.returncode, nat.stdout), text(got.stderr)


def _auxv_lines(out: bytes) -> list[str]:
    return [line for line in text(out).splitlines() if not line.startswith("AT_EXECFN")]


@pytest.mark.parametrize("pie", [True, False], ids=["pie", "no-pie"])
def test_auxv_of_a_dynamic_program(pie):
    """AT_PHDR/AT_PHNUM/AT_PHENT describe the executable, AT_ENTRY is its _start (not
    ld.so's), AT_BASE is where ld.so was mapped, and the rest match the native run."""
    prog = dyn_build("auxv.c", flags=["-O2", "-fpie" if pie else "-fno-pie",
                                      "-pie" if pie else "-no-pie"],
                     name="auxv-pie" if pie else "auxv")
    nat = native(prog)
    got = emu(prog)
    assert got.returncode == nat.returncode == 0, text(got.stderr)
    want = _auxv_lines(nat.stdout)
    assert f"PIE: {'yes' if pie else 'no'}" in want
    assert all(not line.endswith(": no") for line in want if not line.startswith("PIE")), want
    assert _auxv_lines(got.stdout) == want


def test_auxv_execfn_is_the_name_given_to_execve(tmp_path):
    prog = dyn_build("auxv.c", flags=["-O2"], name="auxv-pie")
    shutil.copy2(prog, tmp_path / "auxv")
    nat = subprocess.run(["./auxv"], cwd=tmp_path, capture_output=True)
    got = emu("./auxv", cwd=tmp_path)
    assert "AT_EXECFN is argv[0]: yes" in text(nat.stdout)
    assert "AT_EXECFN is argv[0]: yes" in text(got.stdout)


@pytest.fixture
def fsdir(tmp_path) -> Path:
    d = tmp_path / "fs"
    (d / "sub").mkdir(parents=True)
    (d / "data.bin").write_bytes(bytes((i * 7 + (i >> 9)) & 0xFF for i in range(10000)))
    (d / "link").symlink_to("data.bin")
    return d


@pytest.mark.parametrize("engine", ["native", "python"])
def test_file_syscalls(fsdir, engine):
    """The file system calls of ld.so and libc, and file-backed mmap at offsets."""
    prog = dyn_build("filesys.c", flags=["-O2"], name="filesys")
    nat = native(prog, str(fsdir))
    assert nat.returncode == 0, text(nat.stderr)
    assert "MAP_SHARED sees a later pwrite: SECONDversion" in text(nat.stdout)
    got = emu(prog, str(fsdir), options=["--rw", str(fsdir)], engine=engine)
    assert (got.returncode, text(got.stdout)) == (0, text(nat.stdout)), text(got.stderr)


def test_dynamic_loading_as_ld_so_does_it():
    """--strace of a dynamic program: ld.so reads /etc/ld.so.cache, opens libc.so.6,
    reads its headers with read/pread64 and maps its segments from the file at their
    offsets (MAP_FIXED over one reservation), then unmaps the cache."""
    proc = emu("/usr/bin/true", options=["--strace"])
    assert proc.returncode == 0
    trace = text(proc.stderr)
    cache = re.search(r'openat\(AT_FDCWD, "/etc/ld\.so\.cache", O_RDONLY\|O_CLOEXEC.*= (\d+)',
                      trace)
    libc = re.search(r'openat\(AT_FDCWD, "[^"]*/libc\.so\.6", O_RDONLY\|O_CLOEXEC.*= (\d+)',
                     trace)
    assert cache and libc, trace
    fd = libc.group(1)
    assert re.search(rf"pread64\({fd}, .*, 784, 64\) = 784", trace), trace
    maps = re.findall(rf"mmap\((0x[0-9a-f]+), \d+, (PROT_[A-Z_|]+), "
                      rf"MAP_PRIVATE\|MAP_FIXED\|MAP_DENYWRITE, {fd}, (0x[0-9a-f]+)\)", trace)
    assert any("PROT_EXEC" in prot and int(off, 16) > 0 for _a, prot, off in maps), trace
    assert re.search(r"munmap\(0x[0-9a-f]+, \d+\)\s+= 0", trace), trace
