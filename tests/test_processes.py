"""Processes with shadow stacks (issue 5, "Processes"; SPEC.md §4.5, §6, §11.3, §11.4,
§15.2, §16 test 4): fork and clone without CLONE_VM (COW shadow-stack pages, the child
keeps the parent's SSP, lazy copy of a 4 GiB reservation), vfork (Debian's glibc vfork
dies of #CP in the parent; a raw inline vfork works), execve (features, locks and shadow
stacks reset; the --shstk policy applies to the new image), wait4/waitid status encoding,
getppid, process groups, pipes and dup2, SIGCHLD, and /proc/self/mem (gup).

Guest: tests/guest/proc/procs.c. Groups without shadow stacks are compared line by line
with a native run of the same program; shadow-stack groups print "ok PART" and run under
both engines.

This module also holds the helpers the other tests of tests/guest/proc/ use
(test_threads, test_signals, test_ptrace, test_clone3).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import subprocess
import time
from pathlib import Path

import pytest
from shstkrun import ENGINES, native, run_guest

PROC_DIR = Path(__file__).resolve().parent / "guest" / "proc"
BASE_FLAGS = ("-static", "-O2", "-fcf-protection=none")
MARK = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")


# --- helpers shared by the tests of tests/guest/proc/ ---------------------------------------

def build_proc(build, name: str, flags=BASE_FLAGS, out_name: str | None = None) -> Path:
    """tests/guest/proc/<name>.c (with pthreads); extra.h is part of the cache key."""
    extra = hashlib.sha256((PROC_DIR / "extra.h").read_bytes()).hexdigest()[:12]
    return build(PROC_DIR / f"{name}.c", flags=(*flags, f"-DPROC_EXTRA_H_{extra}", "-pthread"),
                 name=out_name or name)


def run_proc(prog: Path, *args: str, engine: str = "native", options=(), shstk: str = "off",
             timeout: float = 240):
    """`shstk run --shstk off OPTIONS PROG ARGS`: (process, stdout text, stderr text)."""
    opts = ["--shstk", shstk, *options] if shstk else list(options)
    proc = run_guest(prog, *args, options=opts, engine=engine, timeout=timeout)
    return proc, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def assert_parts(proc, out: str, err: str, parts: list[str], status: int = 0) -> None:
    """Every part printed "ok PART", no "FAIL"/"not ok" line, and the exit status."""
    lines = out.splitlines()
    failed = [line for line in lines if line.startswith(("FAIL", "not ok"))]
    missing = [p for p in parts if f"ok {p}" not in lines]
    assert not failed and not missing and proc.returncode == status, (
        f"exit status {proc.returncode} (want {status}); failed checks:\n" + "\n".join(failed)
        + (f"\nparts not reached: {missing}" if missing else "")
        + f"\n--- stdout\n{out}\n--- stderr\n{err[-4000:]}")


def compare_native(prog: Path, *args: str, engine: str = "native", options=(),
                   timeout: float = 240) -> list[str]:
    """Run natively and under shstk; the stdout lines must be identical. Returns them."""
    nat = native(prog, *args, timeout=60)
    assert nat.returncode == 0, f"native run failed ({nat.returncode}):\n{nat.stdout!r}"
    proc, out, err = run_proc(prog, *args, engine=engine, options=options, timeout=timeout)
    want = nat.stdout.decode(errors="replace").splitlines()
    got = out.splitlines()
    diff = "\n".join(difflib.unified_diff(want, got, "native", "shstk run", lineterm=""))
    assert got == want and proc.returncode == 0, (
        f"exit status {proc.returncode}\n{diff}\n--- stderr\n{err[-3000:]}")
    return got


# --- the program ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def procs(build):
    return build_proc(build, "procs")


@pytest.fixture(scope="module")
def procs_marked(build):
    return build_proc(build, "procs", flags=("-static", "-O2", *MARK), out_name="procs-marked")


# Groups compared with a native run (no shadow stacks involved).
NATIVE_GROUPS = ["wait", "pgrp", "pipes", "sigchld"]


@pytest.mark.parametrize("group", NATIVE_GROUPS)
def test_like_linux(procs, group):
    compare_native(procs, group)


SS_GROUPS = {
    "fork": ["fork-child-keeps-ssp", "fork-cow-shadow-stack", "fork-child-returns",
             "fork-parent-after"],
    "clone-novm": ["clone-novm-child-keeps-ssp"],
    "vfork-raw": ["vfork-raw-exit", "vfork-raw-exec", "vfork-raw-call"],
    "exec": ["exec-reset"],
    "gup": ["gup-read-wrss", "gup-write-wrss", "gup-read-store", "gup-write-store",
            "gup-fork", "gup-contents", "gup-readonly-normal"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(SS_GROUPS))
def test_shadow_stack_group(procs, group, engine):
    proc, out, err = run_proc(procs, group, engine=engine)
    assert_parts(proc, out, err, SS_GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
def test_glibc_vfork_parent_dies_of_cp(procs, engine):
    """SPEC §15.2, last bullet: Debian's glibc vfork() returns with a plain RET in both;
    the child's call to _exit() overwrites the parent's return slot on the shared shadow
    stack, so the parent dies of #CP (near ret) when its own vfork() returns."""
    proc, out, err = run_proc(procs, "vfork-glibc", engine=engine)
    assert "calling vfork" in out
    assert "parent survived vfork" not in out, out
    assert proc.returncode == 139, f"exit {proc.returncode}\n{out}\n{err}"
    assert "#CP" in err, err


@pytest.mark.parametrize("engine", ENGINES)
def test_exec_policy_applies_to_new_image(procs, procs_marked, engine):
    """§4.5 + §15.1: exec resets everything, then the loader policy of the *new* image
    decides: a marked image under auto starts with SHSTK enabled and locked (new shadow
    stack), an unmarked one starts with it off."""
    on = 'after-exec status 0x1 locked "shstk wrss" ssp-set 1 ss-vmas 1'
    off = 'after-exec status 0 locked "" ssp-set 0 ss-vmas 0'
    cases = [
        # (program, exec target, --shstk, expected line after the exec)
        (procs, procs_marked, "auto", on),  # enabled itself (+WRSS, locked) -> marked image
        (procs_marked, procs, "auto", off),  # loader-enabled and locked -> unmarked image
        (procs, procs, "on", on),  # `on` applies to the exec'd unmarked image
        (procs_marked, procs_marked, "off", off),  # `off` never enables, marked or not
    ]
    for prog, target, policy, want in cases:
        proc, out, err = run_proc(prog, "exec-into", str(target), engine=engine, shstk=policy)
        assert want in out.splitlines(), f"{prog.name} -> {target.name} --shstk {policy}:\n" \
            + out + err
        assert proc.returncode == 0, out + err


def max_rss_kb(cmd: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    """Run cmd under /usr/bin/time -f %M; returns (process, max RSS in KiB)."""
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".rss") as f:
        proc = subprocess.run(["/usr/bin/time", "-o", f.name, "-f", "%M", *cmd],
                              capture_output=True, timeout=timeout)
        text = Path(f.name).read_text().strip().splitlines()
    return proc, int(text[-1])


def shstk_cmd(prog: Path, *args: str, options=()) -> list[str]:
    import sys

    return [sys.executable, "-m", "shstk", "run", "--shstk", "off", *options, str(prog), *args]


@pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="needs /usr/bin/time")
def test_fork_of_4gib_shadow_stack_is_lazy(procs):
    """§11.3 + issue: RLIMIT_STACK = infinity gives a 4 GiB shadow stack (§3.1); forking
    such a process 20 times must not copy it (bounded time and host memory)."""
    t0 = time.monotonic()
    proc, rss = max_rss_kb(shstk_cmd(procs, "fork-4g"), timeout=300)
    wall = time.monotonic() - t0
    out = proc.stdout.decode(errors="replace")
    print(f"fork-4g: wall {wall:.2f} s, max RSS {rss / 1024:.1f} MiB")
    assert "ok fork-4g" in out.splitlines(), out + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0
    assert rss < 300 * 1024, f"max RSS {rss} KiB"
    assert wall < 120


def test_wait_status_numbers(procs):
    """A few exact encodings, independent of the native comparison."""
    _proc, out, _err = run_proc(procs, "wait")
    assert re.search(r"^exit 3: exited 3 \(raw 0x300\)$", out, re.M), out
    assert re.search(r"^SIGKILL: signaled 9 core 0 \(raw 0x9\)$", out, re.M), out
