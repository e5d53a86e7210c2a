"""Threads (issue 5, "Threads"; SPEC.md §3.1, §4.5, §6, §7, §10).

- Linux-identical behaviour without shadow stacks (line by line against a native run):
  futex WAIT/WAKE with timeouts, bitsets and the private flag; gettid, set_tid_address,
  CLONE_CHILD_CLEARTID wake on exit, set/get_robust_list and a robust mutex whose owner
  exits; exit vs exit_group; the scheduler lets a spinning thread and a sched_yield()
  loop make progress.
- Determinism: with --virtual-time an interleaving of three threads is the same run after
  run.
- Shadow stacks (§6, §7): a CLONE_VM thread gets a new shadow stack of the RLIMIT_STACK
  default (legacy clone; 4 GiB for infinity) or PAGE_ALIGN(stack_size) (clone3, any
  published size; glibc's pthread_create values of §6), SSP = its top, `ss` in smaps,
  features and locks inherited (/proc/PID/task/TID/status), and it is unmapped when the
  thread exits (before CLONE_CHILD_CLEARTID wakes the joiner).
- Scale (native engine only): 64 threads recursing 20000 deep, and 1000 live threads each
  touching its shadow stack in bounded host memory.

Guest: tests/guest/proc/threads.c.
"""

from __future__ import annotations

import re
import time

import pytest
from shstkrun import ENGINES
from test_processes import assert_parts, build_proc, compare_native, max_rss_kb, run_proc, shstk_cmd


@pytest.fixture(scope="module")
def threads_prog(build):
    return build_proc(build, "threads")


@pytest.mark.parametrize("group", ["futex", "tid", "robust", "exit", "sched", "yield"])
def test_like_linux(threads_prog, group):
    compare_native(threads_prog, group)


@pytest.mark.parametrize("engine", ENGINES)
def test_deterministic_interleaving(threads_prog, engine):
    runs = [run_proc(threads_prog, "order", engine=engine, options=["--virtual-time"])
            for _ in range(2)]
    outs = [out for _proc, out, _err in runs]
    assert outs[0].startswith("order ") and len(outs[0]) > 150, outs[0]
    assert outs[0] == outs[1]
    assert len(set(outs[0].split()[1])) == 3  # all three threads appear


SS_GROUPS = {
    "clone-thread": ["clone-thread-rlimit-size", "clone-thread-4g", "clone-thread-small",
                     "clone-thread-disable-own"],
    "clone3-thread": ["clone3-thread-stack-size"],
    "pthread": ["pthread-shadow-stack-size"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(SS_GROUPS))
def test_thread_shadow_stacks(threads_prog, group, engine):
    proc, out, err = run_proc(threads_prog, group, engine=engine)
    assert_parts(proc, out, err, SS_GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_in_a_thread_kills_the_process(threads_prog, engine):
    proc, out, err = run_proc(threads_prog, "cp-thread", engine=engine)
    assert "thread about to return through a corrupted shadow stack" in out
    assert "survived" not in out, out
    assert proc.returncode == 139, f"exit {proc.returncode}\n{out}\n{err}"
    assert "#CP near ret" in err, err
    # the report names the thread that faulted, not only the process
    assert re.search(r"\[pid (\d+), thread (?!\1\])\d+\]", err), err


def test_64_threads_deep_recursion(threads_prog):
    t0 = time.monotonic()
    proc, out, err = run_proc(threads_prog, "many", timeout=600)
    wall = time.monotonic() - t0
    print(f"64 threads x 20000-deep recursion: wall {wall:.2f} s")
    assert_parts(proc, out, err, ["many-threads-deep-recursion"])
    assert wall < 300


def test_1000_threads_bounded_memory(threads_prog):
    """1000 threads alive at once, each with an 8 MiB (default) shadow stack it touched:
    8 GiB of shadow stacks reserved, a page each used. Host memory must stay bounded."""
    t0 = time.monotonic()
    proc, rss = max_rss_kb(shstk_cmd(threads_prog, "thousand"), timeout=900)
    wall = time.monotonic() - t0
    out = proc.stdout.decode(errors="replace")
    print(f"1000 threads: max RSS {rss / 1024:.1f} MiB, wall {wall:.2f} s")
    assert "ok thousand-threads" in out.splitlines(), out + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0
    assert rss < 300 * 1024, f"max RSS {rss} KiB"
