"""The loader policy of `shstk run --shstk auto|on|off|permissive` (SPEC.md §15.1, played
by the emulator for a static program): what the program finds at the start of main.

A marked program (-fcf-protection=full -Wl,-z,shstk -Wl,-z,ibt) starts with shadow stacks
enabled and locked under auto (glibc locks all bits: the locked line shows `shstk wrss `),
an unmarked one with them off; `on` enables (and locks) regardless, `off` never enables,
`permissive` enables a marked program without the lock. Then the program tries
ENABLE(WRSS) and DISABLE(SHSTK): EPERM while locked, allowed under permissive. main
returns normally in every case (through the shadow stack when it is on).

Guest: tests/guest/shstk/policy.c.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from guestbuild import have
from shstkrun import ENGINES, run_guest
from test_shstk_cpu import build_shstk

MARK = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")

ON_LOCKED = ["status 0 0x1", "ssp 1", 'features "\\tshstk \\n"',
             'locked "\\tshstk wrss \\n"', "wrss -1 0x1", "disable -1 0x1", "calls 20"]
ON_UNLOCKED = ["status 0 0x1", "ssp 1", 'features "\\tshstk \\n"', 'locked "\\t\\n"',
               "wrss 0 0x3", "disable 0 0", "calls 20"]
OFF = ["status 0 0", "ssp 0", 'features "\\t\\n"', 'locked "\\t\\n"', "wrss -1 0",
       "disable 0 0", "calls 20"]

CASES = {
    ("auto", True): ON_LOCKED,
    ("auto", False): OFF,
    ("on", True): ON_LOCKED,
    ("on", False): ON_LOCKED,
    ("off", True): OFF,
    ("off", False): OFF,
    ("permissive", True): ON_UNLOCKED,
    ("permissive", False): OFF,
}


@pytest.fixture(scope="module")
def programs(build):
    return {
        True: build_shstk(build, "policy", flags=("-static", "-O2", *MARK)),
        False: build_shstk(build, "policy", flags=("-static", "-O2", "-fcf-protection=none")),
    }


def run_policy(prog, engine, *options):
    proc = run_guest(prog, "wrss", "disable", options=list(options), engine=engine,
                     timeout=120)
    return proc, proc.stdout.decode(errors="replace").splitlines()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("policy,marked", sorted(CASES), ids=lambda v: str(v))
def test_policy(programs, policy, marked, engine):
    proc, lines = run_policy(programs[marked], engine, "--shstk", policy)
    assert lines == CASES[(policy, marked)], proc.stderr.decode(errors="replace")
    assert proc.returncode == 0


def test_default_policy_is_auto(programs):
    _proc, lines = run_policy(programs[True], "native")
    assert lines == ON_LOCKED
    _proc, lines = run_policy(programs[False], "native")
    assert lines == OFF


@pytest.mark.parametrize("engine", ENGINES)
def test_marked_program_under_nousershstk_runs_without(programs, engine):
    """The loader's ENABLE fails with EOPNOTSUPP: the program runs with shadow stacks off;
    STATUS and LOCK still work on this kernel, so only WRSS/DISABLE say EOPNOTSUPP."""
    proc, lines = run_policy(programs[True], engine, "--kernel", "nousershstk")
    assert lines == ["status 0 0", "ssp 0", 'features "\\t\\n"', 'locked "\\t\\n"',
                     "wrss -95 0", "disable -95 0", "calls 20"]
    assert proc.returncode == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_marked_program_under_no_shstk_kernel(programs, engine):
    """Without the Kconfig every ARCH_SHSTK_* option is EINVAL and /proc has no lines."""
    proc, lines = run_policy(programs[True], engine, "--kernel", "no-shstk")
    assert lines == ["status -22 0xbad", "ssp 0", 'features "(absent)"', 'locked "(absent)"',
                     "wrss -22 0xbad", "disable -22 0xbad", "calls 20"]
    assert proc.returncode == 0


@pytest.mark.skipif(not have("readelf"), reason="needs readelf")
def test_marks_are_what_the_test_assumes(programs):
    def notes(prog):
        return subprocess.run(["readelf", "-n", str(prog)], capture_output=True,
                              text=True).stdout

    assert re.search(r"x86 feature: .*SHSTK", notes(programs[True]))
    assert "SHSTK" not in notes(programs[False])
