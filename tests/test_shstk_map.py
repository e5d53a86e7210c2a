"""map_shadow_stack (syscall 453, SPEC.md §5): every check in its order (EOPNOTSUPP,
EINVAL for flags, ENOSPC, ERANGE, EOVERFLOW, the mmap errors, EINVAL for an unaligned
token size with nothing left behind), the token `(addr+size)|1` at `addr+size-8`, the
placement above 4 GiB (§3.2), and the call without shadow stacks enabled.

Guest: tests/guest/shstk/map.c, one run per group and engine.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES
from test_shstk_cpu import assert_parts, build_shstk, run_group

GROUPS = {
    "errors": ["errors-flags-einval", "errors-flags-32bit", "errors-token-enospc",
               "errors-erange", "errors-eoverflow", "errors-mmap"],
    "token": [*(f"token-size-{s:#x}" for s in (0x2000, 0x1008, 8, 16, 0x1000, 0x3ff8,
                                                0x200000)),
              "token-below-top",
              *(f"token-unaligned-size-{s:#x}" for s in (0x1004, 0x1001, 9, 12, 0x1ffc,
                                                          0x2001))],
    "placement": ["placement-shstk-off", "placement-explicit", "placement-many",
                  "placement-shstk-on", "placement-not-freed-by-disable",
                  "placement-disable-while-pivoted", "placement-vmstk"],
}

PROFILE_GROUPS = {
    "nousershstk": ["nousershstk-eopnotsupp"],  # §5 step 1
    "no-shstk": ["no-shstk-enosys"],  # §5 step 1: kernel without the Kconfig
}


@pytest.fixture(scope="module")
def map_prog(build):
    return build_shstk(build, "map")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_map_group(map_prog, group, engine):
    proc, out, err = run_group(map_prog, group, engine)
    assert_parts(proc, out, err, GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("profile", sorted(PROFILE_GROUPS))
def test_map_kernel_profile(map_prog, profile, engine):
    proc, out, err = run_group(map_prog, profile, engine, "--kernel", profile)
    assert_parts(proc, out, err, PROFILE_GROUPS[profile])
