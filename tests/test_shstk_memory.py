"""Shadow-stack memory (SPEC.md §11.2, §11.5) and guard gaps (§3.4): normal stores fault
with SEGV_ACCERR at the address, normal reads work, shadow-stack accesses to anything but
a writable shadow stack fault (SEGV_ACCERR, or SEGV_MAPERR when unmapped), mprotect,
MADV_DONTNEED, munmap, INCSSP's reads, and the one-page start gap in both directions
(selftest test_guard_gap_other_gaps and test_guard_gap_new_mappings_gaps, strictly).

Guest: tests/guest/shstk/memory.c, one run per group and engine.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES, run_guest
from test_shstk_cpu import assert_parts, build_shstk, run_group

GROUPS = {
    "store": ["store-map-shadow-stack", "store-thread-shadow-stack"],
    "wrss": ["wrss-non-shadow-memory"],
    "mprotect": ["mprotect-read-only", "mprotect-writable-again", "mprotect-part",
                 "mprotect-rstorssp-prot-none", "mprotect-exec-allowed"],
    "madvise": ["madvise-dontneed-zeroes"],
    "munmap": ["munmap-partial"],
    "incssp-guard": ["incssp-guard-reads"],
    "guard-gap": ["guard-gap-hint", "guard-gap-explicit-address", "guard-gap-other-mappings",
                  "guard-gap-placement"],
}


@pytest.fixture(scope="module")
def memory_prog(build):
    return build_shstk(build, "memory")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_memory_group(memory_prog, group, engine):
    proc, out, err = run_group(memory_prog, group, engine)
    assert_parts(proc, out, err, GROUPS[group])


@pytest.mark.parametrize("handler", [False, True], ids=["default", "handler"])
@pytest.mark.parametrize("engine", ENGINES)
def test_shadow_stack_overflow_is_fatal(memory_prog, engine, handler):
    """CALLs past the bottom of a one-page shadow stack fault in its guard gap; with a
    SIGSEGV handler installed the signal cannot be delivered (no room for its shadow-stack
    frame, SPEC §8.1) and SIGSEGV kills the process anyway: exit status 139."""
    args = ["overflow", "handler"] if handler else ["overflow"]
    proc = run_guest(memory_prog, *args, options=["--shstk", "off"], engine=engine,
                     timeout=120)
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 139, f"{out}\n{proc.stderr.decode(errors='replace')}"
    assert out.startswith("shadow stack 0x") and "FAIL" not in out
