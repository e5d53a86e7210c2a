"""The behaviours the kernel's shadow-stack selftest (SPEC.md §16) relies on beyond the
shadow stack itself, each shown by one of our own programs in tests/guest/selftest/:

- ia32.c: `int $0x80` from 64-bit code enters the ia32 table (its numbers, EBX.. argument
  registers, 32-bit structures, ENOSYS elsewhere); a handler installed with the compat
  sigaction gets an ia32 frame, and the return to 32-bit code with SSP above 4 GiB is #GP:
  SIGSEGV, SI_KERNEL, trapno 13.
- uffd.c: userfaultfd in MISSING mode; loads, stores and WRSS on a registered page with
  no page yet sleep until another thread answers the message (COPY, ZEROPAGE); EEXIST,
  DONTNEED makes the page missing again, UNREGISTER, a fork child is not registered.
- uprobe.c: the uprobe PMU (its /sys nodes, and nothing else of the host's /sys), a
  uprobe and a uretprobe counting calls of a function run with shadow stacks on (the
  return hijack rewrites the shadow-stack slot too), the `[uprobes]` page, the uretprobe
  system call outside the trampoline is SIGILL, other PMUs are ENOENT.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shstkrun import ENGINES, run_guest

GUEST = Path(__file__).parent / "guest" / "selftest"


def _build(build, name: str, *flags: str) -> Path:
    return build(GUEST / f"{name}.c", flags=("-O2", "-no-pie", *flags), name=f"selftest-{name}")


def _run(prog: Path, engine: str, *options: str):
    proc = run_guest(prog, options=["--shstk", "off", *options], engine=engine, timeout=120)
    return proc, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("engine", ENGINES)
def test_ia32_entry_and_compat_return(build, engine):
    prog = _build(build, "ia32", "-static")
    proc, out, err = _run(prog, engine)
    lines = out.splitlines()
    assert "hello from int80" in lines, out + err
    for part in ("write", "getpid", "enosys", "brk", "mmap2", "sigprocmask", "sigaction32",
                 "compat-gp"):
        assert any(line.startswith(f"ok {part}") for line in lines), out + err
    assert not [line for line in lines if line.startswith("FAIL")], out + err
    assert proc.returncode == 0, out + err


def test_ia32_handler_that_would_run_ends_the_run(build):
    """Without shadow stacks the ia32 handler's 32-bit code would really run: the
    emulator says so in one line and ends (status 124), never running it wrongly."""
    prog = _build(build, "ia32", "-static")
    proc = run_guest(prog, "noshstk", options=["--shstk", "off"], timeout=120)
    out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    assert "32-bit code would have to run" in err, out + err
    assert "FAIL" not in out, out + err
    assert proc.returncode == 124, out + err


def _assert_ok(proc, out: str, err: str, parts: list[str]) -> None:
    lines = out.splitlines()
    for part in parts:
        assert any(line.startswith(f"ok {part}") for line in lines), (part, out + err)
    assert not [line for line in lines if line.startswith("FAIL")], out + err
    assert proc.returncode == 0, out + err


@pytest.mark.parametrize("engine", ENGINES)
def test_userfaultfd_missing_mode(build, engine):
    prog = _build(build, "uffd", "-static", "-pthread")
    proc, out, err = _run(prog, engine)
    _assert_ok(proc, out, err, ["read-before-api", "api", "nothing-pending",
                                "register-unaligned", "load", "present", "store",
                                "unregister", "fork-child-unregistered", "wrss"])


@pytest.mark.parametrize("engine", ENGINES)
def test_uprobe_pmu_and_uretprobe_with_shadow_stack(build, engine):
    prog = _build(build, "uprobe")  # dynamic, as the selftest is built
    proc, out, err = _run(prog, engine)
    _assert_ok(proc, out, err, ["sysfs", "sysfs-only-ours", "no-hardware-pmu", "open",
                                "returns", "counts", "uprobes-page", "closed",
                                "uretprobe-elsewhere-sigill"])
