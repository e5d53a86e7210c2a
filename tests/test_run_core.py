"""Behaviour of the emulator core behind `shstk run` (issue 3): the syscall trace against
native strace, reproducible runs, unimplemented syscalls, bad guest pointers, deaths by
signal, run limits, environment/cwd/--rw, /proc, the address space, CPUID, auxv, and bad
input to shstk itself.

Guest programs live in tests/guest/corpus/core/. Where Linux's answer is known, the test
states it literally and, when it can, checks that the native run gives it too.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from shstkrun import native, run_guest, shstk

STATIC = ("-static", "-O2")


@pytest.fixture(scope="module")
def core(build):
    def make(name: str, flags=STATIC) -> Path:
        return build(f"corpus/core/{name}.c", flags=flags, name=name)
    return make


@pytest.fixture(scope="module")
def corpus(build):
    def make(name: str, flags=STATIC) -> Path:
        return build(f"corpus/{name}.c", flags=flags, name=name)
    return make


def emu(prog: Path | str, *args: str, options=(), **kw) -> subprocess.CompletedProcess[bytes]:
    """`shstk run` that must never show a Python traceback."""
    proc = run_guest(prog, *args, options=options, **kw)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    assert b"internal error" not in proc.stderr, proc.stderr.decode()
    return proc


def lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def _status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


# --- the syscall trace -------------------------------------------------------------------

_CALL = re.compile(r"^(?:\d+\s+)?([a-z_][a-z0-9_]*)\(.*\)\s+=\s+(?:\S+)(?:\s+(E[A-Z0-9]+))?")


def _calls(trace: str) -> list[tuple[str, str | None]]:
    """(name, errno or None) per completed call, up to and including exit_group."""
    out = []
    for line in trace.splitlines():
        m = _CALL.match(line)
        if m is None:
            continue
        out.append((m.group(1), m.group(2)))
        if m.group(1) == "exit_group":
            break
    return out


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize(("program", "stdout_kind"), [
    ("hello", "pipe"), ("hello", "devnull"), ("fileread", "pipe"), ("dirlist", "pipe")])
def test_strace_sequence_matches_native(program, stdout_kind, corpus, tmp_path):
    prog = corpus(program)
    args: list[str] = []
    if program == "fileread":
        (tmp_path / "f.txt").write_text("".join(f"line {i}\n" for i in range(300)))
        args = [str(tmp_path / "f.txt")]
    elif program == "dirlist":
        for n in ("b", "a", "c"):
            (tmp_path / n).write_text(n)
        args = [str(tmp_path)]
    out = subprocess.PIPE if stdout_kind == "pipe" else subprocess.DEVNULL
    trace_file = tmp_path / "native.strace"
    nat = subprocess.run(["strace", "-f", "-e", "trace=all", "-o", str(trace_file), str(prog),
                          *args], stdout=out, stderr=subprocess.PIPE, timeout=60)
    assert nat.returncode == 0, nat.stderr.decode()
    want = _calls(trace_file.read_text())
    assert want[0] == ("execve", None)
    got = subprocess.run([sys.executable, "-m", "shstk", "run", "--strace", str(prog), *args],
                         stdout=out, stderr=subprocess.PIPE, timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    trace = got.stderr.decode()
    assert "Traceback" not in trace
    calls = _calls(trace)
    if calls[:1] != [("execve", None)]:  # printing the first execve is optional
        calls.insert(0, ("execve", None))
    assert calls == want
    assert trace.rstrip().splitlines()[-1] == "+++ exited with 0 +++"
    if program == "hello":
        # the start-up sequence of glibc 2.36 (UNICORN-NOTES.md), with the values strace
        # prints for it
        assert [n for n, _ in want[1:5]] == ["brk", "brk", "arch_prctl", "set_tid_address"]
        # strings longer than 32 bytes are cut with "..." as strace does
        assert f'readlink("/proc/self/exe", "{str(prog)[:32]}"..., 4096) = {len(str(prog))}' \
            in trace
        assert 'write(1, "Hello, world!\\n", 14)' in trace
        assert "exit_group(0)" in trace


# --- determinism -------------------------------------------------------------------------

def test_same_output_and_trace_on_two_runs(core):
    prog = core("nondet")
    opts = ("--virtual-time", "--seed", "1", "--strace")
    first = emu(prog, options=opts)
    second = emu(prog, options=opts)
    assert first.returncode == second.returncode == 0
    out = lines(first.stdout)
    assert len(out) == 9 and out[2].startswith("getrandom=") and out[6] == "pid=1000", out
    assert first.stdout == second.stdout
    assert first.stderr == second.stderr
    assert "getrandom(" in first.stderr.decode() and "nanosleep" in first.stderr.decode()


def test_seed_changes_randomness_not_time(core):
    prog = core("nondet")
    one = lines(emu(prog, options=("--virtual-time", "--seed", "1")).stdout)
    two = lines(emu(prog, options=("--virtual-time", "--seed", "2")).stdout)
    assert one[:2] == two[:2]  # clocks follow the instruction count, not the seed
    assert one[2] != two[2] and one[3] != two[3]  # getrandom, AT_RANDOM
    assert one[5:7] == two[5:7]  # addresses, pid


def test_virtual_time_sleeps_without_waiting(core):
    start = time.monotonic()
    proc = emu(core("sleep"), "30", options=("--virtual-time",))
    assert proc.stdout == b"nanosleep -> 0 slept 30 s\n"
    assert proc.returncode == 0
    assert time.monotonic() - start < 20


# --- unimplemented system calls -----------------------------------------------------------

def test_unimplemented_syscall_is_named_once_and_returns_enosys(core):
    proc = emu(core("unknown_syscall"))
    assert proc.returncode == 0
    assert lines(proc.stdout) == [
        "io_setup -> -1 errno=ENOSYS",
        "syscall 600 -> -1 errno=ENOSYS",
        "syscall 1000 -> -1 errno=ENOSYS",
        "io_setup again -> -1 errno=ENOSYS",
        "still running: getpid>0=1",
    ]
    err = lines(proc.stderr)
    assert len(err) == 3, err  # one line per number, not per call
    assert all(line.startswith("shstk: ") and "ENOSYS" in line for line in err), err
    assert "io_setup" in err[0] and "206" in err[0]
    assert "600" in err[1] and "1000" in err[2]


def test_unimplemented_syscall_in_strace(core):
    trace = emu(core("unknown_syscall"), options=("--strace",)).stderr.decode()
    assert re.search(r"^io_setup\(.*\) += -1 ENOSYS", trace, re.M), trace
    assert re.search(r"^syscall_0x258\(.*\) += -1 ENOSYS", trace, re.M), trace


# --- bad guest pointers -------------------------------------------------------------------

EFAULT_EXPECTED = """\
write(1, 1, 10)              -> -1 EFAULT
write(1, NULL, 10)           -> -1 EFAULT
open((char*)1)               -> -1 EFAULT
stat("/", 1)                 -> -1 EFAULT
newfstatat(bad path)         -> -1 EFAULT
clock_gettime(REALTIME, 1)   -> -1 EFAULT
gettimeofday(1)              -> -1 EFAULT
uname(1)                     -> -1 EFAULT
getrandom(1, 8)              -> -1 EFAULT
pipe(1)                      -> -1 EFAULT
nanosleep(1)                 -> -1 EFAULT
readlink(/proc/self/exe, 1)  -> -1 EFAULT
getcwd(1, 100)               -> -1 EFAULT
writev(1, {1,5})             -> -1 EFAULT
writev(1, iov=1)             -> -1 EFAULT
read(fd, read-only page)     -> -1 EFAULT
file offset after EFAULT     -> 0
read(fd, unmapped)           -> -1 EFAULT
write(1, PROT_NONE page)     -> -1 EFAULT
getrandom(read-only page)    -> -1 EFAULT
read-only page untouched: 1
read(pipe, read-only page)   -> -1 EFAULT
read(pipe) after EFAULT      -> 3
"""


def test_bad_pointers_give_efault(core):
    prog = core("efault")
    assert native(prog).stdout.decode() == EFAULT_EXPECTED  # Linux's answers
    proc = emu(prog)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == EFAULT_EXPECTED
    assert proc.stderr == b""


# --- deaths by signal ---------------------------------------------------------------------

@pytest.mark.parametrize(("how", "sig", "code", "addr"), [
    ("null", "SIGSEGV", "SEGV_MAPERR", "0x10"),
    ("wild", "SIGSEGV", "SEGV_MAPERR", "0x7f0000001000"),
    ("rodata", "SIGSEGV", "SEGV_ACCERR", None),
    ("jump0", "SIGSEGV", "SEGV_MAPERR", None),
    ("stack", "SIGSEGV", "SEGV_MAPERR", None),
    ("ud2", "SIGILL", "ILL_ILLOPN", None),
    ("divzero", "SIGFPE", "FPE_INTDIV", None),
    ("bus", "SIGBUS", "BUS_ADRERR", None),
])
def test_fatal_signal_status_and_report(how, sig, code, addr, core, tmp_path):
    prog = core("crash")
    args = [how]
    if how == "bus":  # a 100-byte file mapped for two pages; the second page is past EOF
        (tmp_path / "short").write_bytes(b"x" * 100)
        args.append(str(tmp_path / "short"))
    status = 128 + getattr(signal, sig)
    nat = native(prog, *args)
    assert _status(nat.returncode) == status
    proc = emu(prog, *args)
    assert proc.stdout == nat.stdout == f"crash: {how}\n".encode()
    assert proc.returncode == status, proc.stderr.decode()
    report = proc.stderr.decode()
    first = report.splitlines()[0]
    assert f"killed by {sig} ({code})" in first, report
    if addr:
        assert f"accessing {addr}" in first, report
    assert len(report.splitlines()) < 40


def test_kill_by_sigterm_status(core):
    proc = emu(core("crash"), "kill")
    assert proc.stdout == b"crash: kill\n"
    assert proc.returncode == 128 + signal.SIGTERM


# --- run limits ---------------------------------------------------------------------------

def test_max_insns_stops_a_runaway_guest(core):
    start = time.monotonic()
    proc = emu(core("crash"), "loop", options=("--max-insns", "2000000"))
    assert proc.returncode == 124
    assert proc.stdout == b"crash: loop\n"
    err = proc.stderr.decode()
    assert err.startswith("shstk: stopped after ") and "--max-insns 2000000" in err, err
    assert len(err.splitlines()) == 1
    assert time.monotonic() - start < 60


def test_timeout_stops_a_runaway_guest(core):
    start = time.monotonic()
    proc = emu(core("crash"), "loop", options=("--timeout", "1.5"))
    elapsed = time.monotonic() - start
    assert proc.returncode == 124
    assert proc.stdout == b"crash: loop\n"
    err = proc.stderr.decode()
    assert err.startswith("shstk: timeout") and "1.5" in err, err
    assert 1.5 <= elapsed < 30


def test_program_that_fits_the_limit_is_not_stopped(corpus):
    proc = emu(corpus("hello"), options=("--max-insns", "10000000", "--timeout", "60"))
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"Hello, world!\n", b"")


# --- environment, cwd, files --------------------------------------------------------------

def test_environment_and_cwd_are_the_commands_own(core, tmp_path):
    prog = core("env_cwd")
    names = ("CORE_FOO", "CORE_BAR", "CORE_NEW", "CORE_EQ", "CORE_KEEP")
    host_env = {"CORE_FOO": "host", "CORE_BAR": "gone", "CORE_KEEP": "kept value"}
    plain = emu(prog, *names, env=host_env, cwd=tmp_path)
    cwd = os.path.realpath(tmp_path)
    assert lines(plain.stdout) == [f"cwd={cwd}", "CORE_FOO=host", "CORE_BAR=gone",
                                   "CORE_NEW=(unset)", "CORE_EQ=(unset)", "CORE_KEEP=kept value"]
    changed = emu(prog, *names, env=host_env, cwd=tmp_path,
                  options=("--env", "CORE_NEW=1", "--env", "CORE_FOO=over", "--unset",
                           "CORE_BAR", "--env", "CORE_EQ=a=b"))
    assert lines(changed.stdout) == [f"cwd={cwd}", "CORE_FOO=over", "CORE_BAR=(unset)",
                                     "CORE_NEW=1", "CORE_EQ=a=b", "CORE_KEEP=kept value"]


RW_DENIED = """\
open(O_CREAT) -> EROFS
mkdir -> EROFS
rename -> EROFS
open(existing, O_RDONLY) -> ok
open(existing, O_RDWR) -> EROFS
open(existing, O_WRONLY|O_APPEND) -> EROFS
unlink(existing) -> EROFS
truncate(existing) -> EROFS
symlink -> EROFS
"""
RW_ALLOWED = """\
open(O_CREAT) -> ok
write -> ok
mkdir -> ok
rename -> ok
open(existing, O_RDONLY) -> ok
open(existing, O_RDWR) -> ok
open(existing, O_WRONLY|O_APPEND) -> ok
unlink(existing) -> ok
truncate(existing) -> ENOENT
symlink -> EEXIST
"""


def _rw_dir(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "existing.txt").write_text("host data\n")
    return d


def test_host_files_are_read_only_by_default(core, tmp_path):
    """Writes outside --rw fail with EROFS, as on a read-only mount (the answers are those
    of a `mount --bind -o ro` directory on Linux 6.x), and the host sees no change."""
    d = _rw_dir(tmp_path, "ro")
    other = tmp_path / "elsewhere"
    other.mkdir()
    for options in ((), ("--rw", str(other))):
        proc = emu(core("rw"), str(d), options=options)
        assert proc.returncode == 0
        assert proc.stdout.decode() == RW_DENIED
        assert sorted(p.name for p in d.iterdir()) == ["existing.txt"]
        assert (d / "existing.txt").read_text() == "host data\n"


def test_rw_allows_writes_below_the_directory(core, tmp_path):
    top = tmp_path / "top"
    top.mkdir()
    d = _rw_dir(top, "nested")
    proc = emu(core("rw"), str(d), options=("--rw", str(top)))
    assert proc.returncode == 0
    assert proc.stdout.decode() == RW_ALLOWED
    assert native(core("rw"), str(_rw_dir(tmp_path, "native"))).stdout.decode() == RW_ALLOWED
    assert sorted(p.name for p in d.iterdir()) == ["renamed.txt", "subdir"]
    assert (d / "renamed.txt").read_text() == "written by guest\n"
    assert (d / "subdir").is_dir()


def test_sysroot_is_the_guests_root(core, tmp_path):
    """--sysroot DIR: the guest sees DIR as /, cannot leave it with .. or symlinks, and
    starts in / unless the command's cwd is inside DIR."""
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    (root / "data").mkdir()
    shutil.copy(core("probe"), root / "bin" / "probe")
    (root / "data" / "hello.txt").write_text("hi from sysroot\n")
    (root / "data" / "abs-escape").symlink_to("/etc/passwd")
    (root / "data" / "rel-escape").symlink_to("../../../../../../../etc/passwd")
    (root / "data" / "abs-inside").symlink_to("/data/hello.txt")
    assert Path("/etc/passwd").exists()
    paths = ("/data/hello.txt", "/etc/passwd", "/../../etc/passwd", "/data/abs-escape",
             "/data/rel-escape", "/data/abs-inside", "hello.txt")
    proc = emu("/bin/probe", *paths, options=("--sysroot", str(root)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert lines(proc.stdout) == [
        "/data/hello.txt: 16 bytes: hi from sysroot",
        "/etc/passwd: ENOENT",
        "/../../etc/passwd: ENOENT",
        "/data/abs-escape: ENOENT",
        "/data/rel-escape: ENOENT",
        "/data/abs-inside: 16 bytes: hi from sysroot",
        "hello.txt: ENOENT",
        "cwd=/ exe=/bin/probe",
    ]
    inside = emu("probe", "hello.txt", "../data/abs-inside", cwd=root / "data",
                 options=("--sysroot", str(root), "--env", "PATH=/usr/bin:/bin"))
    assert lines(inside.stdout) == [
        "hello.txt: 16 bytes: hi from sysroot",
        "../data/abs-inside: 16 bytes: hi from sysroot",
        "cwd=/data exe=/bin/probe",
    ]
    # writes are refused inside the sysroot too, unless --rw names the host directory
    shutil.copy(core("rw"), root / "bin" / "rw")
    (root / "data" / "existing.txt").write_text("x\n")
    ro = emu("/bin/rw", "/data", options=("--sysroot", str(root)))
    assert lines(ro.stdout)[0] == "open(O_CREAT) -> EROFS"
    rw = emu("/bin/rw", "/data", options=("--sysroot", str(root), "--rw", str(root / "data")))
    assert lines(rw.stdout)[:2] == ["open(O_CREAT) -> ok", "write -> ok"]
    assert (root / "data" / "renamed.txt").read_text() == "written by guest\n"


# --- /proc --------------------------------------------------------------------------------

PROCFS_EXPECTED = """\
exe matches argv[0]: 1
maps: program mappings>=2: 1, one executable: 1, [stack]: 1, [heap]: 1
cmdline args: [first arg] [] [x]
status: Name=procfs Pid==getpid: 1 Threads=1 VmRSS>0: 1
smaps: has Rss: 1 has Size: 1
auxv: ends with AT_NULL: 1, all entries match getauxval: 1
cpuinfo: processor line: 1, vendor_id: 1, flags: 1
"""


def test_synthetic_proc(core):
    prog = core("procfs")
    args = ("first arg", "", "x")
    assert native(prog, *args).stdout.decode() == PROCFS_EXPECTED
    proc = emu(prog, *args)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == PROCFS_EXPECTED


def test_cpuinfo_reports_shadow_stacks(build, tmp_path):
    """/proc/cpuinfo of the emulated machine says user shadow stacks are available."""
    src = tmp_path / "cat.c"
    src.write_text('#include <stdio.h>\nint main(int c, char **v) { FILE *f = fopen(v[1], "r");'
                   ' int ch; if (!f) return 1; while ((ch = fgetc(f)) != EOF) putchar(ch);'
                   ' return 0; }\n')
    cat = build(src, name="cat")
    text = emu(cat, "/proc/cpuinfo").stdout.decode()
    flags = next(line for line in text.splitlines() if line.startswith("flags"))
    assert "user_shstk" in flags.split(), flags  # what Linux 6.6+ shows with CET
    maps = emu(cat, "/proc/self/maps").stdout.decode()
    assert any(line.endswith("[stack]") for line in maps.splitlines()), maps
    assert str(cat) in maps


def test_4gib_mapping_costs_little_host_memory(core, corpus):
    prog = core("bigmap")
    proc = emu(prog)
    assert lines(proc.stdout) == ["mapped 4 GiB, touched 17 pages, sum=18",
                                  "VmRSS grew by < 8 MiB: 1", "munmap -> 0"]
    # the host side: the shstk process running the 4 GiB program peaks (wait4's ru_maxrss,
    # in KiB) about where the one running hello does
    big_out, big = _peak_rss_kib(prog)
    assert big_out.startswith(b"mapped 4 GiB")
    hello_out, small = _peak_rss_kib(corpus("hello"))
    assert hello_out == b"Hello, world!\n"
    assert big < small + 64 * 1024, (big, small)


def _peak_rss_kib(prog: Path) -> tuple[bytes, int]:
    """Run `shstk run PROG`; its stdout and the peak RSS of that one process."""
    with subprocess.Popen([sys.executable, "-m", "shstk", "run", str(prog)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as p:
        out = p.stdout.read() if p.stdout else b""
        _pid, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    assert p.returncode == 0
    return out, usage.ru_maxrss


# --- the address space --------------------------------------------------------------------

MM_EXPECTED = """\
mmap len 0                               -> MAP_FAILED EINVAL
mmap len 2^62                            -> MAP_FAILED ENOMEM
mmap len -4096                           -> MAP_FAILED ENOMEM
mmap neither SHARED nor PRIVATE          -> MAP_FAILED EINVAL
mmap unaligned offset                    -> MAP_FAILED EINVAL
mmap bad fd                              -> MAP_FAILED EBADF
mmap MAP_FIXED unaligned                 -> MAP_FAILED EINVAL
mmap MAP_FIXED at 0                      -> ok
mmap MAP_FIXED_NOREPLACE overlap         -> MAP_FAILED EEXIST
mmap MAP_FIXED over existing             -> ok
MAP_FIXED_NOREPLACE free spot exact: 1
hint on a taken spot moves: 1
MAP_32BIT below 2 GiB: 1
MAP_ABOVE4G at/above 4 GiB: 1
top-down: below the stack 1, second below first 1
munmap len 0                             -> -1 EINVAL
munmap unaligned                         -> -1 EINVAL
munmap unmapped range                    -> 0
mprotect unaligned                       -> -1 EINVAL
mprotect bad prot                        -> -1 EINVAL
mprotect len 0                           -> 0
mprotect unmapped                        -> -1 ENOMEM
mprotect over a hole                     -> -1 ENOMEM
after it: before the hole writable 0 0, after the hole writable 1
madvise unaligned                        -> -1 EINVAL
madvise bad advice                       -> -1 EINVAL
madvise unmapped                         -> -1 ENOMEM
madvise DONTNEED                         -> 0
DONTNEED zeroed: 1, neighbours kept: 1
mremap old_len 0 private -> MAP_FAILED EINVAL
mremap unaligned -> MAP_FAILED EINVAL
mremap grow in place blocked -> MAP_FAILED ENOMEM
mremap grow in place (neighbour mapped) -> MAP_FAILED
mremap grow into a 1-page hole by 2 -> MAP_FAILED
mremap grow into the hole -> same place 1, data 0x42
mremap MAYMOVE grow -> moved 1, data 0x55, old gone: 1
mremap shrink -> same 1
mremap FIXED -> at target 1, data 0x55
mremap FIXED without MAYMOVE -> EINVAL
brk grow 1 MiB                           -> 0
brk shrink                               -> 0
sbrk(0) back to start: 1
brk below start returns current: 1
"""


def _linux_at_least(major: int, minor: int) -> bool:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return m is not None and (int(m.group(1)), int(m.group(2))) >= (major, minor)


def test_mm_syscalls_and_errno(core):
    """mmap/munmap/mprotect/madvise/mremap/brk results as Linux gives them. (Mapping page 0
    works because the tests run as root, as natively: the emulator's mmap_min_addr is the
    host's.)"""
    prog = core("mm_errno")
    if os.geteuid() == 0 and _linux_at_least(6, 6):
        assert native(prog).stdout.decode() == MM_EXPECTED
    proc = emu(prog)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = MM_EXPECTED
    if os.geteuid() != 0:
        expected = expected.replace("mmap MAP_FIXED at 0                      -> ok",
                                    "mmap MAP_FIXED at 0                      -> MAP_FAILED EPERM")
    assert proc.stdout.decode() == expected


# --- the CPU and the kernel's view of it --------------------------------------------------

def test_cpuid_reports_cet(core):
    proc = emu(core("cpuid"))
    assert lines(proc.stdout) == ["max leaf >= 7: 1", "leaf 1 SSE2: 1",
                                  "leaf 7 ECX bit 7 (CET_SS): 1",
                                  "leaf 7 EDX bit 20 (CET_IBT): 1"]


AUXV_NAMES = ("AT_PHDR", "AT_PHNUM", "AT_PHENT", "AT_PAGESZ", "AT_ENTRY", "AT_RANDOM",
              "AT_HWCAP", "AT_HWCAP2", "AT_EXECFN", "AT_PLATFORM", "AT_UID", "AT_EUID",
              "AT_GID", "AT_EGID", "AT_SECURE", "AT_CLKTCK", "AT_FLAGS")


@pytest.mark.parametrize("flags", [STATIC, ("-static-pie", "-O2")], ids=["static", "static-pie"])
def test_auxv_entries(flags, core):
    prog = core("auxv", flags=flags)
    want = [f"{n:<12} present=1 ok=1" for n in AUXV_NAMES] + [
        "AT_BASE present=1 (0 for a static non-PIE program)",
        "AT_RANDOM 16 bytes readable, not all zero: 1"]
    assert lines(native(prog).stdout) == want
    proc = emu(prog)
    assert lines(proc.stdout) == want


def test_identity_and_system_facts_match_native(core):
    prog = core("sysinfo")
    nat = native(prog)
    proc = emu(prog)
    assert proc.returncode == nat.returncode == 0
    assert proc.stdout.decode() == nat.stdout.decode()


def test_uname_release_is_linux_6(core):
    out = lines(emu(core("sysinfo"), "release").stdout)
    assert out[0] == "uname -> 0 sysname=Linux machine=x86_64"
    assert re.fullmatch(r"release=6\.\d+\S*", out[1]), out[1]


# --- bad input to shstk itself ------------------------------------------------------------

def _m32_program(tmp_path: Path) -> Path | None:
    src = tmp_path / "exit32.c"
    src.write_text('void _start(void) { __asm__ volatile("movl $1, %eax; xorl %ebx, %ebx; '
                   'int $0x80"); }\n')
    out = tmp_path / "exit32"
    r = subprocess.run(["gcc", "-m32", "-nostdlib", "-static", "-ffreestanding", "-o", str(out),
                        str(src)], capture_output=True)
    return out if r.returncode == 0 else None


def _bad_program(kind: str, tmp_path: Path, hello: Path) -> tuple[list[str], str]:
    """(shstk run arguments, a word the error must contain)."""
    p = tmp_path / kind
    if kind == "not-elf":
        p.write_bytes(b"\x00garbage that is not an ELF file\n" * 4)
        p.chmod(0o755)
        return [str(p)], "not an ELF"
    if kind == "elf32":
        prog = _m32_program(tmp_path)
        if prog is None:
            pytest.skip("gcc -m32 cannot build here")
        return [str(prog)], "32-bit"
    if kind == "truncated":
        p.write_bytes(hello.read_bytes()[:64])
        p.chmod(0o755)
        return [str(p)], str(p)
    if kind == "other-machine":
        data = bytearray(hello.read_bytes())
        data[18:20] = (183).to_bytes(2, "little")  # EM_AARCH64
        p.write_bytes(bytes(data))
        p.chmod(0o755)
        return [str(p)], "machine"
    if kind == "not-executable":
        shutil.copy(hello, p)
        p.chmod(0o644)
        return [str(p)], "Permission denied"
    if kind == "missing":
        return [str(tmp_path / "does-not-exist")], "No such file"
    if kind == "not-in-path":
        return ["no-such-program-shstk-test"], "not found"
    if kind == "directory":
        return [str(tmp_path)], str(tmp_path)
    options = {
        "max-insns-0": (["--max-insns", "0"], "--max-insns"),
        "max-insns-negative": (["--max-insns", "-5"], "--max-insns"),
        "timeout-0": (["--timeout", "0"], "--timeout"),
        "sysroot-missing": (["--sysroot", "/nonexistent-sysroot"], "--sysroot"),
        "rw-missing": (["--rw", "/nonexistent-rw"], "--rw"),
        "env-without-value": (["--env", "NOEQUALS"], "--env"),
        "kernel-unknown": (["--kernel", "bogus"], "bogus"),
    }
    opts, word = options[kind]
    return [*opts, str(hello)], word


@pytest.mark.parametrize("kind", [
    "not-elf", "elf32", "truncated", "other-machine", "not-executable", "missing",
    "not-in-path", "directory", "max-insns-0", "max-insns-negative", "timeout-0",
    "sysroot-missing", "rw-missing", "env-without-value", "kernel-unknown"])
def test_bad_input_is_one_error_line(kind, corpus, tmp_path):
    args, word = _bad_program(kind, tmp_path, corpus("hello"))
    proc = shstk("run", *args)
    err = proc.stderr.decode()
    # as a shell: 127 for a program that does not exist, 126 for one that cannot run;
    # 2 for options that make no sense
    want = {"missing": 127, "not-in-path": 127, "not-elf": 126, "elf32": 126,
            "truncated": 126, "other-machine": 126, "not-executable": 126,
            "directory": 126}.get(kind, 2)
    assert proc.returncode == want, err
    assert proc.stdout == b""
    assert len(err.splitlines()) == 1 and err.startswith("shstk: error: "), err
    assert word in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [["--max-insns", "abc"], ["--engine", "bogus"],
                                  ["--shstk", "sometimes"]])
def test_malformed_options_are_usage_errors(args, corpus):
    proc = shstk("run", *args, str(corpus("hello")))
    err = proc.stderr.decode()
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert err.splitlines()[-1].startswith("shstk run: error: argument "), err
    assert "Traceback" not in err


def test_exit_removes_the_private_dev_shm_and_loses_no_output(core):
    # `shstk` leaves without the interpreter's teardown (cli.entry): what must happen at
    # exit still does. A shared-memory object left by the guest lives in the run's
    # private /dev/shm directory, which must be gone once shstk has exited.
    name = f"shstk-exit-test-{os.getpid()}-{time.monotonic_ns()}"
    r = run_guest(core("shm_exit"), f"/{name}")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (b"x" * 63 + b"\n") * 4096
    bases = ("/dev/shm", tempfile.gettempdir())  # where vfs.py makes the directory
    assert [p for base in bases for p in Path(base).glob(f"shstk-shm-*/shm/{name}")] == []
