"""Readiness (issue 6): is a program that is *marked* ready really ready?

`shstk run --shstk on PROG` turns shadow stacks on whatever the markings say. A program
marked SHSTK that switches stacks without the shadow stack must end in the violation
report, pointing into the offending library function:

- a coroutine library (libcoro.so, marked) built on Debian's swapcontext, which switches
  the stack but not the shadow stack: #CP at the RET of swapcontext in libc.so.6, where
  the shadow stack expected coro_resume in libcoro.so;
- a toy JIT whose generated code (an anonymous RWX page) rewrites its own return
  address: #CP at that RET, the address on the stack is landed() and the expected one is
  in main.

The same coroutine code linked against the CET-enabled glibc, with that glibc's SHSTK
feature active (GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK), runs with shadow stacks on and
gives the native output: the check is of the program, not of the emulator.

The report and --strace name the library and symbol of every code address.

Guests: tests/guest/dynamic/{libcoro.c, coro.h, coro_main.c, jit.c, sigact.c}.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from shstkrun import ENGINES, native
from test_dynamic import DYN, MARK, dyn_build, emu, require_cet, shared_lib, text

CORO_OUTPUT = "ping 0\npong 0\nping 1\npong 1\nping 2\npong 2\nboth finished\n"
NAMED = re.compile(r"^(?:[A-Za-z_][\w.@]*(?:\+0x[0-9a-f]+)? )?\((/[^)]+?)(?:\+0x[0-9a-f]+)?\)$")


@pytest.fixture(scope="module")
def coro() -> Path:
    lib = shared_lib("libcoro.c", "libcoro.so", marked=True, nolibc=False)
    return dyn_build("coro_main.c", flags=["-O2", *MARK, f"-I{DYN}", f"-Wl,-rpath,{lib.parent}"],
                     name="coro", extra_sources=[lib])


@pytest.fixture(scope="module")
def jit() -> Path:
    return dyn_build("jit.c", flags=["-O2", *MARK], name="jit")


def cp_report(proc) -> dict:
    """The JSON report (--report json) of a #CP near-ret."""
    err = text(proc.stderr)
    assert proc.returncode == 139, err
    data = json.loads(err[err.index("{"):])
    assert data["signal"] == "SIGSEGV" and data["si_code"] == "SEGV_CPERR", data
    assert data["violation"]["kind"] == "near ret", data
    assert data["instruction"] == "ret"
    assert data["shadow_stack_enabled"] is True
    return data


# --- the coroutine library on Debian's swapcontext ------------------------------------------------


def test_coroutines_run_natively_and_with_shadow_stacks_off(coro):
    """Marked, but libc.so.6 is not: auto leaves shadow stacks off and the output is the
    native one."""
    nat = native(coro)
    assert (nat.returncode, text(nat.stdout)) == (0, CORO_OUTPUT)
    got = emu(coro, options=["-v"])
    assert (got.returncode, text(got.stdout)) == (0, CORO_OUTPUT), text(got.stderr)
    assert "shadow stack left off: not marked SHSTK: libc.so.6" in text(got.stderr)


@pytest.mark.parametrize("engine", ENGINES)
def test_coroutines_under_shstk_on_point_into_swapcontext(coro, engine):
    proc = emu(coro, options=["--shstk", "on"], engine=engine)
    err = text(proc.stderr)
    assert proc.returncode == 139, err
    assert proc.stdout == b""
    lines = err.splitlines()
    assert lines[0] == (f"shstk: shadow-stack violation (#CP near ret) in {coro} [pid 1000]: "
                        "SIGSEGV (SEGV_CPERR)"), err
    assert re.fullmatch(r"  at 0x[0-9a-f]+  swapcontext\+0x[0-9a-f]+ \(/\S+/libc\.so\.6\): ret",
                        lines[1]), lines[1]
    assert re.fullmatch(r"  return address on the stack: +0x[0-9a-f]{16}  trampoline "
                        r"\(/\S+/libcoro\.so\)", lines[2]), lines[2]
    assert re.fullmatch(r"  shadow stack expected: +0x[0-9a-f]{16}  coro_resume\+0x[0-9a-f]+ "
                        r"\(/\S+/libcoro\.so\)", lines[3]), lines[3]
    assert "why: RET found a return address" in err


def test_coroutine_report_json_names_every_address(coro):
    data = cp_report(emu(coro, options=["--shstk", "on", "--report", "json"]))
    assert data["rip_symbol"].startswith("swapcontext+")
    assert data["rip_symbol"].endswith("/libc.so.6)")
    v = data["violation"]
    assert v["return_symbol"].startswith("trampoline (") and "libcoro.so" in v["return_symbol"]
    assert v["expected_symbol"].startswith("coro_resume+") and "libcoro.so" in v["expected_symbol"]
    shadow = data["shadow_stack"]
    assert shadow[0]["value"] == v["expected"]
    assert [e["symbol"].split("+")[0].split(" ")[0] for e in shadow][:2] == ["coro_resume",
                                                                            "main"]
    for entry in shadow + data["stack_return_addresses"]:
        assert NAMED.match(entry["symbol"]), entry


def test_coroutines_with_a_cet_enabled_glibc():
    """The same coroutine code against glibc --enable-cet: with GLIBC_TUNABLES=
    glibc.cpu.hwcaps=SHSTK its makecontext allocates shadow stacks (map_shadow_stack)
    and swapcontext switches them (RSTORSSP/SAVEPREVSSP): native output, shadow stacks on.
    Without the tunable glibc leaves its SHSTK feature inactive, so `--shstk on` meets a
    swapcontext that does not switch shadow stacks: the same #CP as Debian's."""
    prog = require_cet()("coro_main.c", name="coro-cet", extra_sources=["libcoro.c"])
    nat = native(prog)
    assert (nat.returncode, text(nat.stdout)) == (0, CORO_OUTPUT)
    good = emu(prog, options=["-v", "--glibc-tunables", "glibc.cpu.hwcaps=SHSTK",
                              "--strace"])
    err = text(good.stderr)
    assert (good.returncode, text(good.stdout)) == (0, CORO_OUTPUT), err
    assert "shadow stack enabled, locked" in err
    assert re.search(r"map_shadow_stack\(.*\)\s+= 0x[0-9a-f]+", err), err
    bad = emu(prog, options=["--shstk", "on", "--report", "json"])
    data = cp_report(bad)
    assert data["rip_symbol"].startswith("__swapcontext+") or \
        data["rip_symbol"].startswith("swapcontext+"), data["rip_symbol"]


# --- the toy JIT --------------------------------------------------------------------------------


def test_jit_natively_and_with_shadow_stacks_off(jit):
    nat = native(jit)
    want = "jit: 19 bytes of code, ret at +18\nlanded() reached through the rewritten return " \
           "address\n"
    assert (nat.returncode, text(nat.stdout)) == (0, want)
    got = emu(jit)
    assert (got.returncode, text(got.stdout)) == (0, want), text(got.stderr)


@pytest.mark.parametrize("engine", ENGINES)
def test_jit_under_shstk_on(jit, engine):
    """#CP at the generated RET (an address in the anonymous page, not a symbol of any
    file); the address on the stack is landed(), the shadow stack expected main."""
    proc = emu(jit, options=["--shstk", "on", "--report", "json"], engine=engine)
    err = text(proc.stderr)
    page = int(re.search(r"jit: code at 0x([0-9a-f]+)", err).group(1), 16)
    data = cp_report(proc)
    assert text(proc.stdout) == "jit: 19 bytes of code, ret at +18\n"
    assert data["rip"] == page + 18
    assert str(jit) not in data["rip_symbol"] and ".so" not in data["rip_symbol"]
    v = data["violation"]
    assert v["return_symbol"] == f"landed ({jit})"
    assert re.fullmatch(rf"main\+0x[0-9a-f]+ \({re.escape(str(jit))}\)", v["expected_symbol"])
    assert data["shadow_stack"][0]["value"] == v["expected"]


def test_jit_text_report_shows_the_address(jit):
    proc = emu(jit, options=["--shstk", "on"])
    err = text(proc.stderr)
    assert proc.returncode == 139, err
    page = int(re.search(r"jit: code at 0x([0-9a-f]+)", err).group(1), 16)
    assert re.search(rf"^  at {page + 18:#x}  .*: ret$", err, re.M), err
    assert re.search(rf"^  return address on the stack: +0x[0-9a-f]{{16}}  landed \({jit}\)$",
                     err, re.M), err


# --- --strace names code addresses --------------------------------------------------------------


def _file_offset(path: str, vaddr: int) -> int:
    with open(path, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= vaddr < \
                    seg["p_vaddr"] + seg["p_filesz"]:
                return vaddr - seg["p_vaddr"] + seg["p_offset"]
    raise AssertionError(f"{vaddr:#x} is not in a PT_LOAD segment of {path}")


# mov $15, %rax (rt_sigreturn); syscall
RESTORE_RT = bytes.fromhex("48c7c00f0000000f05")


def test_strace_names_handler_and_restorer():
    """rt_sigaction of a dynamic program: sa_handler is named as the program's function,
    sa_restorer as libc.so.6's __restore_rt (Debian's libc.so.6 has no symbol there: its
    offset, which must hold the rt_sigreturn trampoline)."""
    prog = dyn_build("sigact.c", flags=["-O2"], name="sigact")
    proc = emu(prog, options=["--strace"])
    err = text(proc.stderr)
    assert (proc.returncode, text(proc.stdout)) == (0, "handler saw signal 10\n"), err
    m = re.search(r"rt_sigaction\(SIGUSR1, \{sa_handler=0x[0-9a-f]+ <(?P<handler>[^>]*)>, "
                  r"sa_mask=\[\], sa_flags=SA_RESTORER, sa_restorer=0x[0-9a-f]+ "
                  r"<(?P<restorer>[^>]*)>\}, NULL, 8\) = 0", err)
    assert m, err
    assert m["handler"] == f"dyn_usr1_handler ({prog})"
    r = re.fullmatch(r"(?:(?P<sym>\S+) )?\((?P<lib>/\S+/libc\.so\.6)(?:\+0x(?P<off>[0-9a-f]+))?\)",
                     m["restorer"])
    assert r, m["restorer"]
    if r["sym"]:
        assert r["sym"] == "__restore_rt"
    else:
        off = _file_offset(r["lib"], int(r["off"], 16))
        with open(r["lib"], "rb") as f:
            f.seek(off)
            assert f.read(len(RESTORE_RT)) == RESTORE_RT
    assert re.search(r"--- SIGUSR1 \{si_signo=SIGUSR1, si_code=SI_TKILL, si_pid=\d+\} ---", err)
    assert "rt_sigreturn(" in err


def test_strace_names_where_the_violation_happened(coro):
    proc = emu(coro, options=["--shstk", "on", "--strace"])
    err = text(proc.stderr)
    assert proc.returncode == 139
    assert re.search(r"^--- SIGSEGV \{si_signo=SIGSEGV, si_code=SEGV_CPERR, si_addr=NULL\} --- "
                     r"at 0x[0-9a-f]+ <swapcontext\+0x[0-9a-f]+ \(/\S+/libc\.so\.6\)>$",
                     err, re.M), err
    assert "+++ killed by SIGSEGV +++" in err
