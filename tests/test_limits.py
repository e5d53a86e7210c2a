"""Limits as on Linux, never a host memory error: fork/clone past --max-tasks or
RLIMIT_NPROC fail with EAGAIN, mappings past --memory-limit (or larger than the host's RAM
+ swap, as Linux's overcommit heuristic) fail with ENOMEM, and a process costs host
address space in proportion to what it maps (no fixed 256 GiB reservation each)."""

from __future__ import annotations

import os

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
