"""The violation report for a real return-address overwrite (tests/guest/shstk/smash.c):
vuln() overflows a buffer over its own return address with the address of win().

Without shadow stacks (natively on this CET-less host, or `shstk run --shstk off`) the
RET goes to win(), which exits 42. Under the default policy the marked program runs with
shadow stacks on: the RET raises #CP(near ret), the process dies of SIGSEGV (exit status
139), and the report names the faulting function (vuln), the return address on the stack
(win) and what the shadow stack expected (the return address into main); `--report json`
gives the same as a JSON document (field names: src/shstk/run/report.py).
"""

from __future__ import annotations

import json
import struct

import pytest
from elftools.elf.elffile import ELFFile
from shstkrun import ENGINES, native, run_guest
from test_shstk_cpu import build_shstk

FLAGS = ("-static", "-O0", "-fno-stack-protector", "-fcf-protection=full", "-Wl,-z,shstk",
         "-Wl,-z,ibt")


class Image:
    """Symbols and code bytes of the static, non-PIE test program."""

    def __init__(self, path):
        with open(path, "rb") as f:
            elf = ELFFile(f)
            self.syms = {s.name: (s["st_value"], s["st_size"])
                         for s in elf.get_section_by_name(".symtab").iter_symbols()
                         if s["st_info"]["type"] == "STT_FUNC"}
            self.segments = [(seg["p_vaddr"], seg.data()) for seg in elf.iter_segments()
                             if seg["p_type"] == "PT_LOAD"]

    def addr(self, name):
        return self.syms[name][0]

    def contains(self, name, addr):
        start, size = self.syms[name]
        return start <= addr < start + size

    def read(self, addr, n):
        for vaddr, data in self.segments:
            if vaddr <= addr and addr + n <= vaddr + len(data):
                return data[addr - vaddr:addr - vaddr + n]
        raise KeyError(hex(addr))

    def is_call_to(self, ret_addr, target):
        """Is the instruction just before ret_addr a `call rel32` to target?"""
        code = self.read(ret_addr - 5, 5)
        return code[0] == 0xE8 and ret_addr + struct.unpack("<i", code[1:])[0] == target


@pytest.fixture(scope="module")
def smash(build):
    return build_shstk(build, "smash", flags=FLAGS)


@pytest.fixture(scope="module")
def image(smash):
    return Image(smash)


def test_native_reaches_win(smash):
    proc = native(smash)
    assert proc.returncode == 42, proc
    assert b"win: control flow hijacked" in proc.stdout


@pytest.mark.parametrize("engine", ENGINES)
def test_shstk_off_reaches_win(smash, engine):
    proc = run_guest(smash, options=["--shstk", "off"], engine=engine, timeout=120)
    assert proc.returncode == 42, proc.stderr.decode(errors="replace")
    assert b"win: control flow hijacked" in proc.stdout
    assert b"#CP" not in proc.stderr


@pytest.mark.parametrize("policy", [None, "auto", "permissive", "on"])
@pytest.mark.parametrize("engine", ENGINES)
def test_text_report(smash, image, engine, policy):
    options = ["--shstk", policy] if policy else []
    proc = run_guest(smash, options=options, engine=engine, timeout=120)
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 139, f"{out}\n{err}"
    assert out == "main: calling vuln\n"
    assert "#CP near ret" in err
    assert "SIGSEGV (SEGV_CPERR)" in err
    lines = err.splitlines()
    at = next(line for line in lines if line.strip().startswith("at 0x"))
    assert "vuln+0x" in at and at.rstrip().endswith("ret"), at
    rip = int(at.split()[1], 16)
    assert image.contains("vuln", rip) and image.read(rip, 1) == b"\xc3"
    actual = next(line for line in lines if "return address on the stack" in line)
    assert int(actual.split(":", 1)[1].split()[0], 16) == image.addr("win")
    assert " win " in actual + " "
    expected = next(line for line in lines if "shadow stack expected" in line)
    exp = int(expected.split(":", 1)[1].split()[0], 16)
    assert "main+0x" in expected
    assert image.contains("main", exp) and image.is_call_to(exp, image.addr("vuln"))


@pytest.mark.parametrize("engine", ENGINES)
def test_json_report(smash, image, engine, tmp_path):
    proc = run_guest(smash, options=["--report", "json"], engine=engine, timeout=120)
    assert proc.returncode == 139
    data = json.loads(proc.stderr)
    check_json(data, image)
    # the same into a file; then nothing on stderr
    out = tmp_path / "report.json"
    proc = run_guest(smash, options=["--report", "json", "--report-file", str(out)],
                     engine=engine, timeout=120)
    assert proc.returncode == 139
    assert b"#CP" not in proc.stderr and b"{" not in proc.stderr
    check_json(json.loads(out.read_text()), image)


def check_json(data, image):
    win, vuln = image.addr("win"), image.addr("vuln")
    assert data["signal"] == "SIGSEGV"
    assert data["si_code"] == "SEGV_CPERR"
    assert data["si_addr"] == 0
    assert data["instruction"] == "ret"
    assert image.contains("vuln", data["rip"])
    assert data["rip_symbol"].startswith("vuln+")
    assert data["shadow_stack_enabled"] is True
    v = data["violation"]
    assert v["kind"] == "near ret"
    assert v["error_code"] == 1
    assert v["return_address"] == win
    assert v["return_symbol"].startswith("win")
    assert image.contains("main", v["expected"])
    assert image.is_call_to(v["expected"], vuln)
    assert v["expected_symbol"].startswith("main+")
    assert v["why"]
    top = data["shadow_stack"][0]
    assert top["address"] == data["ssp"] and top["value"] == v["expected"]
    assert data["stack_return_addresses"][0]["value"] == win
    assert data["registers"]["rip"] == data["rip"]


@pytest.fixture(scope="module")
def memory_prog(build):
    return build_shstk(build, "memory")


def _overflow_base(out: str) -> int:
    first = out.splitlines()[0]  # "shadow stack BASE-TOP"
    return int(first.split()[2].split("-")[0], 16)


@pytest.mark.parametrize("engine", ENGINES)
def test_report_shadow_stack_overflow(memory_prog, engine):
    """A CALL pushing into the guard gap below a full shadow stack: the report says
    "shadow-stack access fault", SEGV_MAPERR at base-8, in the function that called."""
    proc = run_guest(memory_prog, "overflow", options=["--shstk", "off"], engine=engine,
                     timeout=120)
    out, err = proc.stdout.decode(), proc.stderr.decode(errors="replace")
    assert proc.returncode == 139, err
    base = _overflow_base(out)
    first = err.splitlines()[0]
    assert "shadow-stack access fault" in first and "SEGV_MAPERR" in first, err
    assert f"at address {base - 8:#x}" in first, err
    assert "deep+" in err.splitlines()[1] and "call" in err.splitlines()[1], err
    proc = run_guest(memory_prog, "overflow", options=["--shstk", "off", "--report", "json"],
                     engine=engine, timeout=120)
    data = json.loads(proc.stderr)
    assert data["violation"]["kind"] == "shadow-stack access fault"
    assert data["violation"]["address"] == base - 8
    assert data["si_code"] == "SEGV_MAPERR" and data["si_addr"] == base - 8
    assert data["rip_symbol"].startswith("deep+")


@pytest.mark.parametrize("engine", ENGINES)
def test_report_when_the_handler_cannot_run(memory_prog, engine):
    """The same overflow with a SIGSEGV handler installed: still exit 139 (SPEC §8.1), and
    the user still deserves the report of the fault that started it."""
    proc = run_guest(memory_prog, "overflow", "handler", options=["--shstk", "off"],
                     engine=engine, timeout=120)
    assert proc.returncode == 139
    assert b"shadow-stack access fault" in proc.stderr
