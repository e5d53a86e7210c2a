"""Limits as on Linux, never a host memory error: fork/clone past --max-tasks or
RLIMIT_NPROC fail with EAGAIN, mappings past --memory-limit (or larger than the host's RAM
+ swap, as Linux's overcommit heuristic) fail with ENOMEM, and a process costs host
address space in proportion to what it maps (no fixed 256 GiB reservation each)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from shstkrun import native, run_guest


def _run(prog, *args: str, options=()) -> str:
    got = run_guest(prog, *args, options=options, timeout=120)
    assert got.returncode == 0, got.stderr.decode()[-2000:]
    assert b"internal error" not in got.stderr
    return got.stdout.decode()


def test_huge_mappings_like_linux(build) -> None:
    prog = build("fuzz/big_maps.c")
    want = native(prog)
    assert want.returncode == 0
    assert _run(prog) == want.stdout.decode()


def test_max_tasks_gives_eagain(build) -> None:
    prog = build("fuzz/fork_many.c")
    # the parent is one of the 20 tasks
    assert _run(prog, "100", options=["--max-tasks", "20"]) == "fail 19 11\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="becomes user 65534 natively")
def test_rlimit_nproc_like_linux(build) -> None:
    prog = build("fuzz/fork_many.c")
    want = native(prog, "100", "10")
    assert want.returncode == 0
    assert _run(prog, "100", "10") == want.stdout.decode() == "fail 9 11\n"


def test_many_processes_fit(build) -> None:
    """Each process used to reserve 256 GiB of host address space: a fork loop died with a
    host memory error after about 500. 600 at once now (1,000 in `make bench`)."""
    prog = build("fuzz/fork_many.c")
    assert _run(prog, "600") == "ok 600\n"


def test_memory_limit_gives_enomem(build) -> None:
    prog = build("fuzz/mem_limit.c")
    assert _run(prog, "64", options=["--memory-limit", "64M"]).splitlines() == [
        "mmap over the limit: Cannot allocate memory",
        "the same with MAP_NORESERVE: ok",
        "brk over the limit: Cannot allocate memory",
        "1 MiB maps: Cannot allocate memory, below the limit",
        "fork with all of it: Cannot allocate memory",
    ]


def test_limit_options_are_checked() -> None:
    for opt in (["--max-tasks", "0"], ["--memory-limit", "lots"]):
        got = run_guest("/bin/true", options=opt)
        assert got.returncode == 2, got.stderr


def test_pipe_size_like_linux(build) -> None:
    prog = build("fuzz/pipe_size.c")
    want = native(prog)
    assert want.returncode == 0
    assert _run(prog) == want.stdout.decode()


def _peak_rss_mib(cmd: list[str]) -> tuple[float, str]:
    code = ("import resource, subprocess, sys; "
            "p = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "p.stdout.decode().strip())")
    rss, *out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True,
                               text=True, check=True).stdout.split()
    return int(rss) / 1024, " ".join(out)


def test_one_gib_write_costs_a_chunk(build) -> None:
    """One 1 GiB write() to /dev/null used to cost 2.1 GB of host memory."""
    prog = build("fuzz/stall.c")
    rss, out = _peak_rss_mib([sys.executable, "-m", "shstk", "run", str(prog), "bigwrite"])
    assert out.endswith("1073741824"), out
    assert rss < 300, f"{rss:.0f} MiB of host memory for a 1 GiB write"


MODES = ("spin", "sleep", "wait", "pipe", "write", "zero")


@pytest.mark.parametrize("mode", MODES)
def test_timeout_stops_the_guest_anywhere(build, mode) -> None:
    prog = build("fuzz/stall.c")
    start = time.monotonic()
    got = run_guest(prog, mode, options=["--timeout", "1"], timeout=60)
    took = time.monotonic() - start
    assert got.returncode == 124, got.stderr.decode()
    assert b"timeout" in got.stderr
    assert took < 15, f"--timeout 1 took {took:.1f} s"


@pytest.mark.parametrize("mode", MODES)
def test_ctrl_c_stops_the_guest_anywhere(build, mode) -> None:
    prog = build("fuzz/stall.c")
    p = subprocess.Popen([sys.executable, "-m", "shstk", "run", str(prog), mode],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err.decode()
    assert b"interrupted" in err


def test_timeout_stops_a_busy_loader() -> None:
    """A loader kept busy (here: made to sleep) still ends at --timeout, with 124."""
    code = ("import sys, time; from shstk.emu.kernel import loader; "
            "loader.execve = lambda *a, **k: time.sleep(60); "
            "from shstk.cli import main; sys.exit(main(sys.argv[1:]))")
    start = time.monotonic()
    got = subprocess.run([sys.executable, "-c", code, "run", "--timeout", "1", "/bin/true"],
                         capture_output=True, timeout=60)
    assert got.returncode == 124, got.stderr.decode()
    assert got.stderr.decode().strip() == "shstk: timeout: the guest ran longer than 1.0 s"
    assert time.monotonic() - start < 20


def test_bulk_copies_like_linux(build, tmp_path) -> None:
    """Reads, writes, sendfile and copy_file_range of more than one chunk."""
    prog = build("fuzz/bulk_copy.c")
    (tmp_path / "n").mkdir()
    (tmp_path / "e").mkdir()
    want = subprocess.run([str(prog)], capture_output=True, cwd=tmp_path / "n", timeout=60)
    assert want.returncode == 0
    got = run_guest(prog, options=["--rw", str(tmp_path / "e")], cwd=tmp_path / "e",
                    timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


def test_ctrl_c_stops_a_busy_loader() -> None:
    code = ("import sys, time; from shstk.emu.kernel import loader; "
            "loader.execve = lambda *a, **k: (print('loading', flush=True), time.sleep(60)); "
            "from shstk.cli import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.Popen([sys.executable, "-c", code, "run", "/bin/true"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"loading\n"
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err.decode()
    assert err.decode().strip() == "shstk: interrupted"
