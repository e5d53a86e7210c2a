"""The CET CPU model (SPEC.md §14, §11.6): CALL/RET, the #CP near-ret fault as a signal
(si_code SEGV_CPERR, si_addr 0, REG_TRAPNO 21, REG_ERR 1) repaired by a handler and
retried, and every shadow-stack instruction from user mode.

Guest: tests/guest/shstk/cpu.c, one run per group and engine; the program checks the
details itself and prints "ok <part>" per part and "FAIL file:line: ..." per failed check.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from shstkrun import ENGINES, run_guest

SHSTK_DIR = Path(__file__).resolve().parent / "guest" / "shstk"


def build_shstk(build, name: str, flags=("-static", "-O2", "-fcf-protection=none")) -> Path:
    """tests/guest/shstk/<name>.c; extra.h (outside the shared include dir) is in the key."""
    extra = hashlib.sha256((SHSTK_DIR / "extra.h").read_bytes()).hexdigest()[:12]
    return build(SHSTK_DIR / f"{name}.c", flags=(*flags, f"-DSS_EXTRA_H_{extra}"), name=name)


def run_group(prog: Path, group: str, engine: str, *options: str):
    proc = run_guest(prog, group, options=["--shstk", "off", *options], engine=engine,
                     timeout=240)
    return proc, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def assert_parts(proc, out: str, err: str, parts: list[str]) -> None:
    lines = out.splitlines()
    failed = [line for line in lines if line.startswith(("FAIL", "not ok"))]
    missing = [p for p in parts if f"ok {p}" not in lines]
    assert not failed and not missing and proc.returncode == 0, (
        f"exit status {proc.returncode}; failed checks:\n" + "\n".join(failed)
        + (f"\nparts not reached: {missing}" if missing else "")
        + f"\n--- stdout\n{out}\n--- stderr\n{err}")


GROUPS = {
    "off": ["off-rdssp-nop", "off-incssp-sigill", "off-rstorssp-sigill",
            "off-saveprevssp-sigill", "off-wrss-sigill", "off-wruss-sigsegv",
            "off-setssbsy-clrssbsy-sigill", "off-endbr64-nop"],
    "callret": ["callret-push-pop"],
    "violation": ["violation-near-ret-repaired", "violation-ret-imm16",
                  "violation-ret-imm16-match", "violation-disable"],
    "incssp": ["incssp-pops"],
    "rstorssp": ["rstorssp-pivot", "rstorssp-bad-token-cp4", "rstorssp-unaligned-gp",
                 "rstorssp-non-shadow-memory", "rstorssp-alignment-hole-cf", "rstorssp-done"],
    "saveprevssp": ["saveprevssp-no-token-gp"],
    "wrss": ["wrss-needs-wrss-enabled", "wrss-writes", "wrss-then-fault-rip",
             "wrss-unaligned-gp", "wrss-normal-memory-segv", "wrss-supervisor-insns",
             "wrss-done"],
    "enable-return": ["enable-return-faults"],
    "ctl": ["ctl-prefixed-ret", "ctl-indirect-call", "ctl-push-ret", "ctl-call-unmapped",
            "ctl-fault-after-call-and-ret"],
    "smc": ["smc-call-ret-bookkeeping"],
    "async": ["async-signals-between-blocks"],
}


@pytest.fixture(scope="module")
def cpu_prog(build):
    return build_shstk(build, "cpu")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(GROUPS))
def test_cpu_group(cpu_prog, group, engine):
    proc, out, err = run_group(cpu_prog, group, engine)
    assert_parts(proc, out, err, GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
def test_cp_without_handler_kills_with_sigsegv(cpu_prog, engine):
    """#CP(near ret) with SIGSEGV at its default action: killed by SIGSEGV (128+11)."""
    proc, out, err = run_group(cpu_prog, "fatal", engine)
    assert "about to return through a corrupted shadow stack" in out
    assert "survived" not in out
    assert proc.returncode == 139, f"exit {proc.returncode}\n{out}\n{err}"
    assert "#CP near ret" in err
    assert "victim" in err

