"""The real client: a glibc built with --enable-cet runs under shstk as on a CET machine.

Programs are linked against ../shared/glibc-cet (glibc 2.41, see tests/cetglibc.py),
static and dynamic, and run with `--shstk off` so that glibc itself decides (SPEC.md
§15.1): GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK activates the feature, glibc enables shadow
stacks with an inline ARCH_SHSTK_ENABLE, reads STATUS and locks; without the tunable
(or with x86_shstk=off) it leaves them off; permissive skips the lock.
"""

from __future__ import annotations

import re
import subprocess

import pytest
from cetglibc import SKIP_REASON, compile_cet, glibc_dir, shared_library
from shstkrun import native, run_guest, shstk

pytestmark = pytest.mark.skipif(glibc_dir() is None, reason=SKIP_REASON)

HWCAPS = "glibc.cpu.hwcaps=SHSTK"
MODES = ("static", "dynamic")


def cet_run(prog, *args, tunables: str | None = HWCAPS, options=(), **kw):
    opts = ["--shstk", "off", *options]
    if tunables is not None:
        opts += ["--glibc-tunables", tunables]
    return run_guest(prog, *args, options=opts, **kw)


def out(proc) -> str:
    return proc.stdout.decode()


# --- start-up (SPEC.md §15.1) ------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_startup_enables_and_locks(mode):
    p = cet_run(compile_cet("cetglibc/startup.c", mode=mode))
    assert p.returncode == 0, p.stderr
    text = out(p)
    assert "status 1\n" in text
    assert "x86_Thread_features:\tshstk \n" in text
    # glibc locks with ARCH_SHSTK_LOCK(-1): every bit, so both words print
    assert "x86_Thread_features_locked:\tshstk wrss \n" in text
    assert "ssp nonzero" in text and "depth 500" in text
    assert "disable EPERM" in text


@pytest.mark.parametrize("mode", MODES)
def test_startup_strace_shows_glibc_calls(mode):
    p = cet_run(compile_cet("cetglibc/startup.c", mode=mode), options=["--strace"])
    trace = p.stderr.decode()
    calls = re.findall(r"arch_prctl\((ARCH_SHSTK_\w+), (\w+)", trace)
    assert calls[:3] == [("ARCH_SHSTK_ENABLE", "0x1"), ("ARCH_SHSTK_STATUS", calls[1][1]),
                         ("ARCH_SHSTK_LOCK", "0xffffffffffffffff")], trace


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tunables", [None, "glibc.cpu.x86_shstk=on",
                                      "glibc.cpu.hwcaps=-SHSTK"])
def test_startup_leaves_shadow_stacks_off(mode, tunables):
    p = cet_run(compile_cet("cetglibc/startup.c", mode=mode), tunables=tunables)
    assert p.returncode == 0, p.stderr
    text = out(p)
    assert "status 0\n" in text
    assert "x86_Thread_features:\t\n" in text
    assert "ssp zero" in text
    assert "disable ok" in text


def test_x86_shstk_off_dynamic():
    p = cet_run(compile_cet("cetglibc/startup.c", mode="dynamic"),
                tunables=f"{HWCAPS}:glibc.cpu.x86_shstk=off")
    assert p.returncode == 0, p.stderr
    assert "status 0\n" in out(p) and "ssp zero" in out(p)


def test_x86_shstk_off_is_ignored_by_static_startup():
    """glibc's static start-up (sysdeps/x86_64/libc-start.h, get_cet_feature) looks at
    the CPU feature and the executable's property only, never at the x86_shstk control:
    with hwcaps=SHSTK a static program gets shadow stacks even with x86_shstk=off."""
    p = cet_run(compile_cet("cetglibc/startup.c", mode="static"),
                tunables=f"{HWCAPS}:glibc.cpu.x86_shstk=off")
    assert p.returncode == 0, p.stderr
    assert "status 1\n" in out(p)


@pytest.mark.parametrize("mode", MODES)
def test_startup_on(mode):
    p = cet_run(compile_cet("cetglibc/startup.c", mode=mode),
                tunables=f"{HWCAPS}:glibc.cpu.x86_shstk=on")
    assert p.returncode == 0, p.stderr
    assert "status 1\n" in out(p) and "disable EPERM" in out(p)


@pytest.mark.parametrize("mode", MODES)
def test_startup_permissive_skips_the_lock(mode):
    prog = compile_cet("cetglibc/startup.c", mode=mode)
    p = cet_run(prog, tunables=f"{HWCAPS}:glibc.cpu.x86_shstk=permissive",
                options=["--strace"])
    assert p.returncode == 0, p.stderr
    text = out(p)
    assert "status 1\n" in text
    assert "x86_Thread_features_locked:\t\n" in text
    assert "disable ok" in text  # not locked: the program may turn them off
    assert "ARCH_SHSTK_LOCK" not in p.stderr.decode()


# --- what must work with shadow stacks locked on -----------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_setjmp_longjmp(mode):
    p = cet_run(compile_cet("cetglibc/jumps.c", mode=mode))
    assert p.returncode == 0, p.stderr
    text = out(p)
    assert "longjmp across 200+ frames x50: ok" in text
    assert "longjmp out of a handler: 10" in text
    assert "sigsetjmp with a SIGSEGV handler: 20 faults recovered" in text
    assert "ssp back where it was: yes" in text
    assert "status 1" in text


@pytest.mark.parametrize("mode", MODES)
def test_ucontext_ping_pong(mode):
    p = cet_run(compile_cet("cetglibc/contexts.c", mode=mode))
    assert p.returncode == 0, p.stderr
    text = out(p)
    # makecontext allocated one shadow stack per context with map_shadow_stack
    assert "shadow stacks before 1 after makecontext 4" in text
    assert "order: 0 1 2 0 1 2 0 1 2 0 1 2\n" in text
    assert "back in main, status 1" in text


@pytest.mark.parametrize("mode", MODES)
def test_threads_get_shadow_stacks_sized_from_clone3(mode):
    p = cet_run(compile_cet("cetglibc/threads.c", mode=mode, ldflags=["-lpthread"]
                            if mode == "dynamic" else []), options=["--strace"])
    assert p.returncode == 0, p.stderr
    sizes = [int(x, 16) for x in re.findall(r"clone3\(\{[^}]*stack_size=(0x[0-9a-f]+)",
                                           p.stderr.decode())]
    shadow = [int(x) for x in re.findall(r"shadow stack (\d+) bytes, depth 2000", out(p))]
    assert len(sizes) == 3 and len(shadow) == 3, out(p)
    # SPEC.md §6: PAGE_ALIGN(clone_args.stack_size)
    assert shadow == [(s + 0xFFF) & ~0xFFF for s in sizes]
    assert "shadow stacks left: 1" in out(p)  # each thread's was unmapped when it exited


@pytest.mark.parametrize("mode", MODES)
def test_vfork_exec(mode):
    child = compile_cet("cetglibc/child.c", mode="static")
    p = cet_run(compile_cet("cetglibc/vforkexec.c", mode=mode), str(child))
    assert p.returncode == 0, p.stderr
    assert out(p).count("exited 3") == 3 and "parent status 1" in out(p)


def test_cxx_exceptions_through_many_frames():
    p = cet_run(compile_cet("cetglibc/cxx.cc", mode="static-c++"))
    assert p.returncode == 0, p.stderr
    assert "caught 30, vector 999, ssp back yes, status 1" in out(p)


@pytest.mark.parametrize("mode", MODES)
def test_qsort_atexit_printf_floats_match_native(mode):
    prog = compile_cet("cetglibc/misc.c", mode=mode)
    want = native(prog).stdout.decode().replace("status 0", "status 1")
    p = cet_run(prog)
    assert p.returncode == 0, p.stderr
    assert out(p) == want


# --- dlopen of an unmarked object (SPEC.md §15.1, _dl_cet_open_check) --------------------

@pytest.fixture(scope="module")
def libs():
    return {"unmarked": shared_library("cetglibc/libanswer.c", "libanswer.so", marked=False),
            "marked": shared_library("cetglibc/libanswer.c", "libanswer.so", marked=True)}


def test_dlopen_unmarked_fails_with_glibc_message(libs):
    prog = compile_cet("cetglibc/dlopen.c", mode="dynamic")
    p = cet_run(prog, str(libs["unmarked"]))
    assert p.returncode == 1, p.stderr
    assert f"dlopen failed: {libs['unmarked']}: rebuild shared object with SHSTK support " \
        "enabled" in out(p)


def test_dlopen_unmarked_permissive_disables_shadow_stacks(libs):
    prog = compile_cet("cetglibc/dlopen.c", mode="dynamic")
    p = cet_run(prog, str(libs["unmarked"]),
                tunables=f"{HWCAPS}:glibc.cpu.x86_shstk=permissive", options=["--strace"])
    assert p.returncode == 0, p.stderr
    assert "before: status 1" in out(p)
    assert "dlopen ok: answer 42, status 0" in out(p)
    assert "arch_prctl(ARCH_SHSTK_DISABLE, 0x1) = 0" in re.sub(r" +", " ", p.stderr.decode())


def test_dlopen_marked_keeps_shadow_stacks(libs):
    prog = compile_cet("cetglibc/dlopen.c", mode="dynamic")
    p = cet_run(prog, str(libs["marked"]))
    assert p.returncode == 0, p.stderr
    assert "dlopen ok: answer 42, status 1" in out(p)


# --- programs that are really broken under shadow stacks ---------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("prog", ["broken_switch", "broken_rewrite"])
def test_broken_programs_die_with_the_report(mode, prog):
    p = cet_run(compile_cet(f"cetglibc/{prog}.c", mode=mode))
    assert p.returncode == 139, (out(p), p.stderr)
    err = p.stderr.decode()
    assert "#CP near ret" in err and "SEGV_CPERR" in err
    assert "status 1" in out(p)
    # natively (no CET hardware) the same programs run on
    assert native(compile_cet(f"cetglibc/{prog}.c", mode=mode)).returncode in (0, 5)


def test_broken_report_names_the_code(tmp_path):
    prog = compile_cet("cetglibc/broken_rewrite.c", mode="dynamic")
    p = cet_run(prog, options=["--report", "json", "--report-file", str(tmp_path / "r.json")])
    assert p.returncode == 139
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["violation"]["kind"] == "near ret"
    assert report["violation"]["return_symbol"].startswith("landing")
    assert report["violation"]["expected_symbol"].startswith("main")
    assert report["rip_symbol"].startswith("rewrite")


# --- audit ---------------------------------------------------------------------------------

def test_audit_says_ready():
    prog = compile_cet("cetglibc/startup.c", mode="dynamic")
    p = shstk("audit", prog)
    assert p.returncode == 0, p.stdout.decode()
    assert "shadow stack WOULD be enabled" in p.stdout.decode()


def test_static_binary_is_marked_by_glibc_itself():
    prog = compile_cet("cetglibc/startup.c", mode="static")
    notes = subprocess.run(["readelf", "-n", str(prog)], capture_output=True, text=True).stdout
    assert "IBT, SHSTK" in notes
