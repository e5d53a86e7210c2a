"""ptrace, the part the shadow-stack ABI uses (issue 5; SPEC.md §9, §4 step 3, §16 case 9):
PTRACE_TRACEME, stop on a signal, WIFSTOPPED, PEEK/POKE, CONT (with and without the
signal), DETACH (compared with a native run); GET/SETREGSET NT_X86_SHSTK with the errno of
§9 (EINVAL for a length that is not a multiple of 8, clamping to 8, EINVAL for 0, for an
unaligned or a too-high SSP, ENODEV for a tracee without shadow stacks, no VMA check);
PTRACE_ARCH_PRCTL STATUS (written to the tracer), LOCK, UNLOCK, and EINVAL for
ENABLE/DISABLE; POKEDATA into the tracee's shadow stack; and the selftest's test_ptrace
(after SETREGSET SSP+8 and DETACH, the tracee's next RET raises #CP).

Guest: tests/guest/proc/ptrace.c.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES
from test_processes import assert_parts, build_proc, compare_native, run_proc


@pytest.fixture(scope="module")
def ptrace_prog(build):
    return build_proc(build, "ptrace")


def test_basic_like_linux(ptrace_prog):
    lines = compare_native(ptrace_prog, "basic")
    assert "first stop: stopped 10 (raw 0xa7f)" in lines


GROUPS = {
    "selftest": ["selftest-ptrace"],
    "regset": ["regset-get", "regset-set", "ptrace-arch-prctl", "ptrace-poke-shadow-stack",
               "regset-enodev"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_shadow_stack_ptrace(ptrace_prog, group, engine):
    proc, out, err = run_proc(ptrace_prog, group, engine=engine)
    assert_parts(proc, out, err, GROUPS[group])
