"""clone3 (issue 5; SPEC.md §12, §6, §7): every published struct size, E2BIG for a larger
struct with a non-zero tail, and the two proposals that never reached mainline under
their kernel profiles:

- `--kernel clone3-shadow-stack-size` (v4 series): `shadow_stack_size` after `cgroup`
  (CLONE_ARGS_SIZE_VER3 = 96); EINVAL for a size below 8, above RLIMIT_STACK, or without
  SHSTK; a non-zero size makes a new shadow stack of PAGE_ALIGN(size), SSP at its top,
  whatever the clone flags (CLONE_VM, CLONE_VM|CLONE_VFORK, fork-like), freed at exit.
- `--kernel clone3-shstk-token` (v23 series): `shstk_token`; EINVAL unaligned, EINVAL
  without SHSTK (before the VMA check), EFAULT when not a writable shadow stack, EINVAL
  when the token does not match; SSP = token + 8 for any flags, the token is consumed in
  the child's mm, the stack is never freed by the kernel.
- `mainline`: the 12th u64 is unknown, so E2BIG when it is non-zero.

Guest: tests/guest/proc/clone3.c, raw clone3 calls with our own struct; children exit
with a raw exit system call.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES
from test_processes import assert_parts, build_proc, compare_native, run_proc


@pytest.fixture(scope="module")
def clone3_prog(build):
    return build_proc(build, "clone3")


def test_struct_sizes_like_linux(clone3_prog):
    """64, 80, 88 (and larger with a zero tail, up to a page) work; E2BIG/EINVAL as Linux."""
    lines = compare_native(clone3_prog, "sizes")
    for size in (64, 80, 88):
        assert f"size {size}: child exited 3 (raw 0x300)" in lines
    assert "size 104, non-zero tail: -7" in lines


CASES = {
    # (kernel profile, group): parts
    ("mainline", "mainline"): ["mainline-unknown-field"],
    ("clone3-shadow-stack-size", "size"): ["size-validation", "size-clone-vm", "size-fork"],
    ("clone3-shadow-stack-size", "size-noshstk"): ["size-parent-without-shstk"],
    ("clone3-shstk-token", "token"): ["token-fork", "token-errors", "token-clone-vm",
                                      "token-vfork"],
    ("clone3-shstk-token", "token-noshstk"): ["token-parent-without-shstk"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(CASES), ids=lambda c: f"{c[0]}-{c[1]}")
def test_profile(clone3_prog, case, engine):
    kernel, group = case
    proc, out, err = run_proc(clone3_prog, group, engine=engine, options=["--kernel", kernel])
    assert_parts(proc, out, err, CASES[case])
