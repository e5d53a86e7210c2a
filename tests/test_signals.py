"""Signals (issue 5, "Signals"; SPEC.md §8, §11.6, §16 case 3).

- Linux-identical behaviour without shadow stacks, checked line by line against a native
  run of the same program: siginfo of kill/tgkill/sigqueue/raise, rt_sigaction errors
  and SA_RESTORER, SA_NODEFER, SA_RESETHAND, sa_mask, rt_sigprocmask and pending sets,
  sigaltstack/SA_ONSTACK, rt_sigsuspend, pause, alarm and ITIMER_REAL (virtual time),
  SA_RESTART vs EINTR, default actions (terminate, core, ignore, stop/continue), fault
  frames (trapno, err, cr2, si_code, fpstate) and handlers that edit the context, and
  per-thread pending/blocked sets.
- Shadow stacks (§8): the frame `[SSP] = restorer, [SSP+8] = oldSSP|1<<63`, SSP restored
  by rt_sigreturn, nesting, fault signals, the same shadow stack on an alternate stack,
  a handler during deep recursion and timer signals, a thread's handler on the thread's
  shadow stack, #CP (trapno 21, err 1) repaired by the handler with WRSS and the RET
  retried (§16 case 3), and rt_sigreturn's validation: a token without bit 63, unaligned,
  or above TASK_SIZE_MAX kills with SIGSEGV; the VMA check differs between `mainline`
  (always, EINVAL) and `--kernel 6.6` (only for a page-aligned SSP, EFAULT).

Guest: tests/guest/proc/signals.c.
"""

from __future__ import annotations

import pytest
from shstkrun import ENGINES
from test_processes import assert_parts, build_proc, compare_native, run_proc


@pytest.fixture(scope="module")
def signals_prog(build):
    return build_proc(build, "signals")


NATIVE_GROUPS = {
    "info": [],
    "flags": [],
    "resethand": [],
    "mask": [],
    "altstack": [],
    "suspend": [],
    "suspend-later": [],
    "alarm": ["--virtual-time"],
    "restart": [],
    "default": [],
    "frame": [],
    "threads": [],
}


@pytest.mark.parametrize("group", sorted(NATIVE_GROUPS))
def test_like_linux(signals_prog, group):
    compare_native(signals_prog, group, options=NATIVE_GROUPS[group])


SS_GROUPS = {
    "ss-frame": ["ss-frame-delivery", "ss-frame-nested", "ss-frame-fault"],
    "ss-altstack": ["ss-altstack"],
    "ss-deep": ["ss-deep-handler-at-bottom", "ss-deep-timer"],
    "ss-cp": ["ss-cp-repaired"],
    "ss-thread": ["ss-thread-handler"],
    "ss-forge": ["ss-forge-other-slot-accepted"],
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("group", sorted(SS_GROUPS))
def test_shadow_stack_signals(signals_prog, group, engine):
    proc, out, err = run_proc(signals_prog, group, engine=engine, options=["--virtual-time"])
    assert_parts(proc, out, err, SS_GROUPS[group])


@pytest.mark.parametrize("engine", ENGINES)
def test_shadow_stack_frame_on_6_6(signals_prog, engine):
    """The 6.6 profile differs only in rt_sigreturn's VMA check: frames are the same."""
    proc, out, err = run_proc(signals_prog, "ss-frame", engine=engine,
                              options=["--kernel", "6.6"])
    assert_parts(proc, out, err, SS_GROUPS["ss-frame"])


# (group, kernel profile) -> survives? (False: killed by SIGSEGV, exit status 139)
FATAL = {
    ("ss-bad-nobit", "mainline"): False,
    ("ss-bad-nobit", "6.6"): False,
    ("ss-bad-unaligned", "mainline"): False,
    ("ss-bad-unaligned", "6.6"): False,
    ("ss-bad-high", "mainline"): False,
    ("ss-bad-high", "6.6"): False,
    ("ss-no-restorer", "mainline"): False,
    # the sigframe cannot be pushed (shadow stack full): SIGSEGV even with a handler
    ("ss-push-fault", "mainline"): False,
    # SSP in ordinary memory (not page-aligned) holding a valid-looking token: mainline
    # looks up the VMA for every SSP (EINVAL); 6.6 only for a page-aligned one.
    ("ss-bad-vma", "mainline"): False,
    ("ss-bad-vma", "6.6"): True,
    # page-aligned: both check the VMA (6.6 with EFAULT)
    ("ss-bad-vma-page", "mainline"): False,
    ("ss-bad-vma-page", "6.6"): False,
}


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", sorted(FATAL), ids=lambda c: f"{c[0]}-{c[1]}")
def test_sigreturn_validation(signals_prog, case, engine):
    group, kernel = case
    proc, out, err = run_proc(signals_prog, group, engine=engine, options=["--kernel", kernel])
    assert "about to" in out, out + err
    if FATAL[case]:
        assert "survived rt_sigreturn; SSP restored 1" in out, out + err
        assert proc.returncode == 0, out + err
    else:
        assert "survived" not in out, out + err
        assert proc.returncode == 139, f"exit {proc.returncode}\n{out}\n{err}"


def test_bad_vma_dies_at_the_second_sigreturn(signals_prog):
    """The first rt_sigreturn (token in the shadow stack, naming ordinary memory) is
    accepted -- nothing checks the target's VMA -- and the second one, whose SSP is in
    ordinary memory, is the one mainline refuses."""
    proc, _out, err = run_proc(signals_prog, "ss-bad-vma", options=["--strace"])
    assert proc.returncode == 139
    lines = [line for line in err.splitlines() if "rt_sigreturn" in line]
    assert len(lines) == 2, err[-3000:]
    assert "--- SIGSEGV {si_signo=SIGSEGV, si_code=SI_KERNEL" in err
