"""The kernel selftest tools/testing/selftests/x86/test_shadow_stack.c, ported as
tests/guest/shstk/test_shadow_stack.c from SPEC.md §16, run under both engines.

The prologue (enable, disable, re-enable, WRSS, SSP non-zero) must pass, then tests 1-11
print their own lines in order; exit status 0 means every test passed.

Every test must print its [OK] line: a [SKIP] (userfaultfd or uprobes unavailable) is a
failure here, as "done" for the selftest is 11 of 11. The C port differs from the
kernel's file only in extra [INFO] lines and checks (see its header).
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES, run_guest
from test_shstk_cpu import build_shstk

# (selftest case, the line it prints when it passes here), in the order they run
EXPECTED = [
    ("1-pivot", "[OK]\tShadow stack pivot"),
    ("2-faults", "[OK]\tShadow stack faults"),
    ("3-violation", "[OK]\tShadow stack violation test"),
    ("4-gup", "[OK]\tShadow gup test"),
    ("5-mprotect", "[OK]\tmprotect() test"),
    ("6-userfaultfd", "[OK]\tUserfaultfd test"),
    ("7-guard-gap-other", "[OK]\tGuard gap test, other mapping's gaps"),
    ("8-guard-gap-placement", "[OK]\tGuard gap test, placement mapping's gaps"),
    ("9-ptrace", "[OK]\tPtrace test"),
    ("10-32bit", "[OK]\t32 bit test"),
    ("11-uretprobe", "[OK]\tUretprobe test"),
]

_runs: dict[str, tuple[int, list[str], str]] = {}


@pytest.fixture(scope="module")
def selftest(build):
    prog = build_shstk(build, "test_shadow_stack", flags=("-static", "-O2", "-pthread"))

    def run(engine: str) -> tuple[int, list[str], str]:
        if engine not in _runs:
            proc = run_guest(prog, options=["--shstk", "off"], engine=engine, timeout=300)
            _runs[engine] = (proc.returncode, proc.stdout.decode(errors="replace").splitlines(),
                             proc.stderr.decode(errors="replace"))
        return _runs[engine]

    return run


def _explain(rc: int, lines: list[str], err: str) -> str:
    return f"exit status {rc}\n--- stdout\n" + "\n".join(lines) + f"\n--- stderr\n{err}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case,line", EXPECTED, ids=[c for c, _ in EXPECTED])
def test_selftest_case(selftest, case, line, engine):
    rc, lines, err = selftest(engine)
    assert line in lines, _explain(rc, lines, err)


@pytest.mark.parametrize("engine", ENGINES)
def test_selftest_passes(selftest, engine):
    """The whole run: no [FAIL], the result lines exactly in the selftest's order, exit 0."""
    rc, lines, err = selftest(engine)
    results = [line for line in lines if line.startswith(("[OK]", "[SKIP]", "[FAIL]"))]
    assert results == [line for _, line in EXPECTED], _explain(rc, lines, err)
    assert rc == 0, _explain(rc, lines, err)


@pytest.mark.parametrize("engine", ENGINES)
def test_selftest_32bit_is_a_gp(selftest, engine):
    """Test 10: the return to the ia32 handler (installed with the compat sigaction)
    with SSP above 4 GiB is #GP, i.e. SIGSEGV with si_code SI_KERNEL and trapno 13."""
    rc, lines, err = selftest(engine)
    assert "[INFO]\tSIGSEGV with si_code 128, trapno 13" in lines, _explain(rc, lines, err)


@pytest.mark.parametrize("engine", ENGINES)
def test_selftest_prologue_under_nousershstk(build, engine):
    """Without kernel support the selftest skips at its first step and returns 1."""
    prog = build_shstk(build, "test_shadow_stack", flags=("-static", "-O2", "-pthread"))
    proc = run_guest(prog, options=["--shstk", "off", "--kernel", "nousershstk"],
                     engine=engine, timeout=120)
    assert proc.stdout.decode().splitlines() == ["[SKIP]\tCould not enable Shadow stack"]
    assert proc.returncode == 1
