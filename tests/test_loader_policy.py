"""The loader policy for dynamic programs (issue 6, SPEC.md §15.1).

At start-up `--shstk auto` enables shadow stacks only when the executable and every
object of its initial closure carry SHSTK (the dynamic loader exempt), exactly as
`shstk audit` decides, and `-v` says why. Objects mapped later (dlopen) are checked as a
CET-enabled glibc's `_dl_cet_open_check` would: with shadow stacks on, an unmarked object
is the point where glibc would fail the dlopen, or, permissive and single-threaded,
shadow stacks are disabled. `--glibc-tunables` is read as glibc 2.39+ reads
GLIBC_TUNABLES and passed on to the guest.

Debian's libc.so.6 is not marked, so the ready closures here are libc-free programs
(tests/guest/dynamic/ready.c, libdyn.c, libinner.c); the dlopen program
(dlopen_main.c) is built against Debian's glibc (which never checks) and against the
CET-enabled glibc of ../shared/glibc-cet, which makes a fully marked closure with libc
possible and whose own dlopen check can be compared with the emulator's prediction.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from shstkrun import ENGINES, shstk
from test_dynamic import MARK, closure, dyn_build, emu, require_cet, shared_lib, text

ON_LOCKED = ["ARCH_SHSTK_STATUS: 1", "RDSSP: shadow stack", "x86_Thread_features:\tshstk ",
             "x86_Thread_features_locked:\tshstk wrss "]
ON_UNLOCKED = ["ARCH_SHSTK_STATUS: 1", "RDSSP: shadow stack",
               "x86_Thread_features:\tshstk ", "x86_Thread_features_locked:\t"]
OFF = ["ARCH_SHSTK_STATUS: 0", "RDSSP: 0", "x86_Thread_features:\t",
       "x86_Thread_features_locked:\t"]
STATE = {"on-locked": ON_LOCKED, "on-unlocked": ON_UNLOCKED, "off": OFF}

# name -> closure() arguments
LAYOUTS = {
    "ready": {},
    "blocked-inner": {"inner_marked": False},
    "blocked-dyn": {"dyn_marked": False},
    "exe-unmarked": {"exe_marked": "none"},
    "exe-ibt-only": {"exe_marked": "ibt"},
}


@pytest.fixture(scope="module")
def progs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("policy")
    return {name: closure(base / name, **kw) for name, kw in LAYOUTS.items()}


def run_ready(prog: Path, *options: str, args: tuple[str, ...] = (), engine: str | None = None
              ) -> tuple[list[str], str]:
    proc = emu(prog, *args, options=["-v", *options], engine=engine)
    err = text(proc.stderr)
    out = text(proc.stdout).splitlines()
    assert proc.returncode == 0, err
    assert out[:2] == ["library: libdyn", "sum of squares: 385"], out
    return out[2:], err


def decision(err: str) -> str:
    """The -v line of the start-up decision."""
    lines = [line for line in err.splitlines()
             if line.startswith(("shstk: shadow stack enabled", "shstk: shadow stack left off",
                                 "shstk: shadow stack could not"))]
    assert len(lines) == 1, err
    return lines[0]


def audit(path: str | Path, *options: str) -> dict:
    proc = shstk("audit", "--json", *options, str(path))
    assert proc.returncode in (0, 1), text(proc.stderr)
    return json.loads(proc.stdout)["programs"][0]


# --- start-up: auto decides as `shstk audit` does -------------------------------------------

AUTO = {
    "ready": ("on-locked", "the executable and every library are marked SHSTK"),
    "blocked-inner": ("off", "not marked SHSTK: libinner.so"),
    "blocked-dyn": ("off", "not marked SHSTK: libdyn.so"),
    "exe-unmarked": ("off", "executable not marked"),
    "exe-ibt-only": ("off", "executable marked IBT only"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_auto_decides_as_audit_does(progs, layout):
    state, why = AUTO[layout]
    lines, err = run_ready(progs[layout])
    assert lines == STATE[state]
    line = decision(err)
    assert why in line, line
    verdict = audit(progs[layout])
    assert verdict["ready"] == (state != "off")
    assert verdict["reason"] in line, (verdict["reason"], line)
    for blocker in verdict["blockers"]:
        assert blocker["name"] in line and blocker["path"] in line, line


@pytest.mark.parametrize("engine", ENGINES)
def test_ready_closure_both_engines(progs, engine):
    """Every call and return across the three objects is checked (the library calls
    back into the executable through a function pointer) and the program finishes."""
    lines, err = run_ready(progs["ready"], engine=engine)
    assert lines == ON_LOCKED
    assert "shadow stack enabled, locked" in err


def test_this_machines_programs_are_blocked_by_libc():
    """Every dynamic program here links Debian's unmarked libc.so.6 (and is itself
    unmarked): left off, as `shstk audit` says."""
    proc = emu("/usr/bin/true", options=["-v"])
    line = decision(text(proc.stderr))
    assert line.startswith("shstk: shadow stack left off"), line
    assert audit("/usr/bin/true")["reason"] in line


def test_marked_program_blocked_by_libc_names_it(tmp_path):
    """A marked program linked with Debian's libc: the -v line names libc.so.6 and where
    it was found."""
    prog = dyn_build("sigact.c", flags=["-O2", *MARK], name="sigact-marked")
    proc = emu(prog, options=["-v"])
    assert proc.returncode == 0
    line = decision(text(proc.stderr))
    assert "left off: not marked SHSTK: libc.so.6" in line, line
    assert re.search(r"libc\.so\.6 \(/\S*/libc\.so\.6\)", line), line


# --- --shstk on|off|permissive ------------------------------------------------------------

SHSTK_OPTION = {
    # (option, layout): state
    ("on", "ready"): "on-locked",
    ("on", "blocked-inner"): "on-locked",
    ("on", "exe-unmarked"): "on-locked",
    ("off", "ready"): "off",
    ("off", "blocked-inner"): "off",
    ("permissive", "ready"): "on-unlocked",
    ("permissive", "blocked-inner"): "off",
    ("auto", "ready"): "on-locked",
    ("auto", "blocked-inner"): "off",
}


@pytest.mark.parametrize(("option", "layout"), sorted(SHSTK_OPTION), ids="-".join)
def test_shstk_option(progs, option, layout):
    lines, err = run_ready(progs[layout], "--shstk", option)
    assert lines == STATE[SHSTK_OPTION[(option, layout)]]
    if option == "off":
        assert "shadow stack enabled" not in err
    else:
        decision(err)


# --- --glibc-tunables -------------------------------------------------------------------------

TUNABLES = [
    # (tunables, layout, state, words of the -v line)
    ("glibc.cpu.hwcaps=SHSTK", "ready", "on-locked", "enabled, locked"),
    ("glibc.cpu.hwcaps=SHSTK", "blocked-inner", "off", "libinner.so"),
    # glibc 2.39+: without hwcaps=SHSTK the feature is inactive, whatever x86_shstk says
    ("glibc.cpu.x86_shstk=on", "ready", "off", None),
    ("glibc.cpu.x86_shstk=permissive", "ready", "off", None),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=on", "blocked-inner", "on-locked",
     "x86_shstk=on keeps the executable's SHSTK"),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=on", "exe-unmarked", "off", None),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive", "ready", "on-unlocked",
     "not locked"),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive", "blocked-dyn", "off",
     "libdyn.so"),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=off", "ready", "off", None),
    # as users spell them: other tunables around, several hwcaps, the other order
    ("glibc.malloc.check=3:glibc.cpu.hwcaps=-AVX2,SHSTK:glibc.cpu.x86_shstk=permissive",
     "ready", "on-unlocked", "not locked"),
    ("glibc.cpu.x86_shstk=permissive:glibc.cpu.hwcaps=SHSTK", "ready", "on-unlocked",
     "not locked"),
    ("glibc.cpu.hwcaps=SHSTK,-SHSTK", "ready", "off", None),
    # an unknown value is ignored (the control stays elf_property)
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=yes", "ready", "on-locked", "locked"),
    ("glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=yes", "blocked-inner", "off", "libinner.so"),
]


@pytest.mark.parametrize(("tunables", "layout", "state", "words"), TUNABLES,
                         ids=[f"{t}-{layout}" for t, layout, _s, _w in TUNABLES])
def test_glibc_tunables(progs, tunables, layout, state, words):
    lines, err = run_ready(progs[layout], "--glibc-tunables", tunables, args=("env",))
    assert lines == [*STATE[state], f"environment: GLIBC_TUNABLES={tunables}"]
    if words is not None:
        assert words in decision(err), err
    elif state == "off":
        assert "shadow stack enabled" not in err


def test_shstk_option_wins_over_tunables(progs):
    lines, _err = run_ready(progs["ready"], "--shstk", "off", "--glibc-tunables",
                            "glibc.cpu.hwcaps=SHSTK", args=("env",))
    assert lines == [*OFF, "environment: GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK"]
    lines, _err = run_ready(progs["blocked-inner"], "--shstk", "on", "--glibc-tunables",
                            "glibc.cpu.x86_shstk=off", args=("env",))
    assert lines == [*ON_LOCKED, "environment: GLIBC_TUNABLES=glibc.cpu.x86_shstk=off"]


def test_tunables_reach_a_libc_program():
    """GLIBC_TUNABLES is the guest's environment variable, as glibc itself sees it."""
    t = "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive"
    proc = emu("/usr/bin/printenv", "GLIBC_TUNABLES", options=["--glibc-tunables", t])
    assert (proc.returncode, text(proc.stdout)) == (0, t + "\n")


@pytest.mark.parametrize("variable", ["LD_LIBRARY_PATH", "LD_PRELOAD"])
def test_auto_decides_on_what_ld_so_loads(progs, tmp_path, variable):
    """LD_LIBRARY_PATH comes before DT_RUNPATH: with an unmarked libinner.so there, ld.so
    loads that one (as `shstk audit --ld-library-path` says); an LD_PRELOAD object is part
    of the initial closure. Either way a CET-enabled glibc keeps shadow stacks off."""
    unmarked = closure(tmp_path / "unmarked", inner_marked=False).parent
    if variable == "LD_LIBRARY_PATH":
        value = str(unmarked)
        assert audit(progs["ready"], "--ld-library-path", value)["ready"] is False
    else:
        value = str(unmarked / "libinner.so")
    proc = emu(progs["ready"], options=["-v", "--env", f"{variable}={value}"])
    err = text(proc.stderr)
    assert proc.returncode == 0, err
    assert "left off" in decision(err) and "libinner.so" in decision(err), err
    assert "dlopen of" not in err, err
    assert text(proc.stdout).splitlines()[2:] == OFF


# --- dlopen with Debian's glibc (which never checks) -------------------------------------------

FAIL_EVENT = re.compile(r'^shstk: dlopen of (\S+): not marked SHSTK; a CET-enabled glibc would '
                        r'fail this dlopen here( \(the process is multi-threaded\))?: '
                        r'"\1: rebuild shared object with SHSTK support enabled"$', re.M)
DISABLE_EVENT = re.compile(r"^shstk: dlopen of (\S+): not marked SHSTK; "
                           r"glibc\.cpu\.x86_shstk=permissive and single-threaded, so shadow "
                           r"stacks were disabled \(ARCH_SHSTK_DISABLE\)$", re.M)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory) -> dict[str, Path]:
    marked = shared_lib("plugin.c", "libmarked.so", marked=True, flags=["-DPLUGIN_VALUE=7"])
    plain = shared_lib("plugin.c", "libplain.so", marked=False, flags=["-DPLUGIN_VALUE=9"])
    # a marked library whose dependency is not: glibc checks the whole new search list
    dep = closure(tmp_path_factory.mktemp("plugdep"), inner_marked=False).parent
    return {"marked": marked, "plain": plain, "dep": dep / "libdyn.so",
            "dep-inner": dep / "libinner.so"}


@pytest.fixture(scope="module")
def dlo():
    return dyn_build("dlopen_main.c", flags=["-O2", "-pthread", *MARK], name="dlopen_main")


def run_dlopen(prog: Path, *args: str | Path, options=(), engine=None, status=0):
    proc = emu(prog, *map(str, args), options=list(options), engine=engine)
    err = text(proc.stderr)
    assert proc.returncode == status, err
    return text(proc.stdout).splitlines(), err


def test_dlopen_unmarked_under_shstk_on(dlo, plugins):
    """--shstk on, then dlopen of a marked and of an unmarked library: one event, for the
    unmarked one, on stderr; the program itself goes on (Debian's glibc does not check)."""
    out, err = run_dlopen(dlo, plugins["marked"], plugins["plain"], options=["--shstk", "on"])
    assert out == ["status at start: 1", "dlopen libmarked.so: plugin_value() = 7",
                   "status after libmarked.so: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 1", "done"]
    events = FAIL_EVENT.findall(err)
    assert len(events) == 1, err
    assert events[0][0].endswith("/libplain.so") and events[0][1] == ""


def test_dlopen_event_names_the_unmarked_dependency(dlo, plugins):
    """A marked library whose dependency is unmarked: the dependency is the one named."""
    out, err = run_dlopen(dlo, "+" + str(plugins["dep"]), options=["--shstk", "on"])
    assert out[1] == "dlopen libdyn.so: loaded"
    events = FAIL_EVENT.findall(err)
    assert [Path(e[0]).name for e in events] == ["libinner.so"], err


def test_dlopen_of_an_initial_object_is_not_checked_again(dlo):
    """libc.so.6 is already loaded (and was judged at start): no event."""
    out, err = run_dlopen(dlo, "+libc.so.6", options=["--shstk", "on"])
    assert out[1] == "dlopen libc.so.6: loaded"
    assert "dlopen of" not in err, err


def test_dlopen_while_multithreaded(dlo, plugins):
    out, err = run_dlopen(dlo, "--thread", plugins["plain"], options=["--shstk", "on"])
    assert out[-1] == "done"
    events = FAIL_EVENT.findall(err)
    assert len(events) == 1 and events[0][1] == " (the process is multi-threaded)", err


@pytest.mark.parametrize("option", ["auto", "off", "permissive"])
def test_no_dlopen_event_with_shadow_stacks_off(dlo, plugins, option):
    """Debian's libc keeps them off at start (auto/permissive), or off is asked for: a
    dlopen has nothing to check."""
    out, err = run_dlopen(dlo, plugins["plain"], options=["--shstk", option])
    assert out == ["status at start: 0", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 0", "done"]
    assert "dlopen of" not in err, err


def test_dlopen_events_are_in_the_summary_once(dlo, plugins):
    """Without -v the event is printed once, in the run's summary after the output."""
    out, err = run_dlopen(dlo, plugins["plain"], options=["--shstk", "on"])
    assert out[-1] == "done"
    assert len(FAIL_EVENT.findall(err)) == 1
    assert err.rstrip().splitlines()[-1].startswith("shstk: dlopen of"), err


# --- dlopen with the CET-enabled glibc ---------------------------------------------------------


@pytest.fixture(scope="module")
def cet_dlo():
    return require_cet()("dlopen_main.c", name="dlopen_main-cet")


def test_cet_closure_is_ready(cet_dlo):
    """Program + CET libc.so.6 (+ its ld.so, exempt): a closure with libc that auto
    enables, as `shstk audit` says."""
    assert audit(cet_dlo)["ready"] is True
    out, err = run_dlopen(cet_dlo, options=["-v"])
    assert "shadow stack enabled, locked" in decision(err)
    assert out == ["status at start: 1", "done"]


@pytest.mark.parametrize("engine", ENGINES)
def test_permissive_dlopen_disables(cet_dlo, plugins, engine):
    """--shstk permissive, no GLIBC_TUNABLES (glibc itself stays inactive, the emulator's
    policy acts): a marked dlopen changes nothing; an unmarked one, single-threaded,
    disables shadow stacks as glibc would with ARCH_SHSTK_DISABLE; the program reads
    ARCH_SHSTK_STATUS == 0 afterwards."""
    out, err = run_dlopen(cet_dlo, plugins["marked"], plugins["plain"],
                          options=["--shstk", "permissive", "-v"], engine=engine)
    assert "enabled: every object is marked; not locked" in decision(err), err
    assert out == ["status at start: 1", "dlopen libmarked.so: plugin_value() = 7",
                   "status after libmarked.so: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 0", "done"]
    events = DISABLE_EVENT.findall(err)
    assert events and all(e.endswith("/libplain.so") for e in events), err
    assert not FAIL_EVENT.search(err)


def test_permissive_dlopen_multithreaded_keeps_them(cet_dlo, plugins):
    out, err = run_dlopen(cet_dlo, "--thread", plugins["plain"], options=["--shstk", "permissive"])
    assert out == ["status at start: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 1", "done"]
    events = FAIL_EVENT.findall(err)
    assert len(events) == 1 and events[0][1] == " (the process is multi-threaded)", err
    assert not DISABLE_EVENT.search(err)


def test_auto_dlopen_unmarked_is_the_failure_point(cet_dlo, plugins):
    """Locked (auto): an unmarked dlopen is where glibc would fail; glibc is inactive
    here, so the program goes on with shadow stacks still on."""
    out, err = run_dlopen(cet_dlo, plugins["plain"])
    assert out == ["status at start: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 1", "done"]
    assert len(FAIL_EVENT.findall(err)) == 1, err


def test_permissive_dlopen_after_a_thread_was_joined(cet_dlo, plugins):
    out, err = run_dlopen(cet_dlo, "--joined", plugins["plain"],
                          options=["--shstk", "permissive"])
    assert not DISABLE_EVENT.search(err), err
    assert len(FAIL_EVENT.findall(err)) == 1, err
    assert out[-2:] == ["status after libplain.so: 1", "done"]


# The CET glibc itself active (GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK): its own
# _dl_cet_open_check runs under the emulator, and the emulator's events must agree.

def test_real_glibc_fails_the_dlopen_the_event_predicts(cet_dlo, plugins):
    out, err = run_dlopen(cet_dlo, plugins["marked"], plugins["plain"], status=1,
                          options=["--glibc-tunables", "glibc.cpu.hwcaps=SHSTK"])
    assert out == ["status at start: 1", "dlopen libmarked.so: plugin_value() = 7",
                   "status after libmarked.so: 1",
                   "dlopen libplain.so: failed: rebuild shared object with SHSTK support "
                   "enabled", "status after libplain.so: 1", "done"]
    events = FAIL_EVENT.findall(err)
    assert len(events) == 1 and events[0][0].endswith("/libplain.so"), err


def test_real_glibc_permissive_disables_as_the_event_says(cet_dlo, plugins):
    out, err = run_dlopen(cet_dlo, plugins["plain"], options=[
        "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive"])
    assert out == ["status at start: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 0", "done"]
    assert DISABLE_EVENT.search(err), err


def test_real_glibc_multithreaded_permissive_fails(cet_dlo, plugins):
    out, err = run_dlopen(cet_dlo, "--thread", plugins["plain"], status=1, options=[
        "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive"])
    assert out[1:] == ["dlopen libplain.so: failed: rebuild shared object with SHSTK support "
                       "enabled", "status after libplain.so: 1", "done"]
    assert FAIL_EVENT.findall(err)[0][1] == " (the process is multi-threaded)", err


def test_real_glibc_x86_shstk_on_loads_unmarked_objects(cet_dlo, plugins):
    """glibc.cpu.x86_shstk=on: glibc's dl_check_legacy_object clears the legacy SHSTK bit
    for cet_always_on, so the dlopen succeeds and shadow stacks stay on."""
    out, _err = run_dlopen(cet_dlo, plugins["plain"], options=[
        "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=on"])
    assert out == ["status at start: 1", "dlopen libplain.so: plugin_value() = 9",
                   "status after libplain.so: 1", "done"]


def test_real_glibc_start_with_a_preloaded_unmarked_object(cet_dlo, plugins):
    """The CET glibc active: an unmarked LD_PRELOAD object makes glibc's start-up check
    drop SHSTK, so it never calls ARCH_SHSTK_ENABLE: shadow stacks off from the start."""
    out, err = run_dlopen(cet_dlo, options=["--glibc-tunables", "glibc.cpu.hwcaps=SHSTK",
                                            "--env", f"LD_PRELOAD={plugins['plain']}"])
    assert out == ["status at start: 0", "done"], err


def test_x86_shstk_on_event_agrees_with_real_glibc(cet_dlo, plugins):
    _out, err = run_dlopen(cet_dlo, plugins["plain"], options=[
        "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=on"])
    assert not FAIL_EVENT.search(err), err


def test_real_glibc_permissive_after_a_joined_thread(cet_dlo, plugins):
    out, _err = run_dlopen(cet_dlo, "--joined", plugins["plain"], status=1, options=[
        "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK:glibc.cpu.x86_shstk=permissive"])
    assert out[1:] == ["dlopen libplain.so: failed: rebuild shared object with SHSTK support "
                       "enabled", "status after libplain.so: 1", "done"]
