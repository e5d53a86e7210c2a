"""The native fast path decodes blocks itself (capstone's C library through cs_disasm_iter);
decode.py is the reference the pure-Python engine uses. They must agree on every block:
its size, instruction count, last instruction, CALL/RET kind and RET imm16.

The check runs real programs in-process under the native engine and, when each process
exits, re-decodes every cached block with decode.py from the same memory.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from shstk.emu.cpu.decode import Decoder
from shstk.emu.cpu.engine import NativeEngine, _SsBlock, native_library
from shstk.run.runner import RunOptions, run

pytestmark = pytest.mark.skipif(native_library() is None, reason="native fast path not built")


def _cached_blocks(engine: NativeEngine) -> list[_SsBlock]:
    c = engine._c
    table = (_SsBlock * (c.cache_mask + 1)).from_address(c.cache)
    return [b for b in table if b.addr]


def _check_every_block(monkeypatch: pytest.MonkeyPatch, program: str, *args: str
                       ) -> tuple[int, int]:
    import shstk.emu.kernel.kernel as K

    decoder = Decoder()
    checked: list[int] = []
    natively: list[int] = []
    wrong: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    exit_process = K.Kernel.exit_process

    def check(self: K.Kernel, proc: object, status: int) -> None:
        engine = proc.cpu.engine  # type: ignore[attr-defined]
        assert isinstance(engine, NativeEngine)
        natively.append(engine.native_decodes)
        for b in _cached_blocks(engine):
            info = decoder.block(proc.mm.read_code(b.addr, b.size), b.addr)  # type: ignore[attr-defined]
            got = (b.addr, b.size, b.kind, b.last, b.ret_imm, b.ninsns)
            want = (info.addr, info.size, info.kind, info.last, info.ret_imm, info.ninsns)
            checked.append(b.addr)
            if got != want:
                wrong.append((got, want))
        exit_process(self, proc, status)

    monkeypatch.setattr(K.Kernel, "exit_process", check)
    result = run(RunOptions(program=program, args=list(args), engine="native"))
    assert result.exit_status == 0
    assert not wrong, wrong[:5]
    return len(checked), sum(natively)


def test_python3_startup_blocks_agree(monkeypatch):
    python3 = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else \
        shutil.which("python3") or pytest.skip("no python3")
    checked, natively = _check_every_block(monkeypatch, python3, "-c", "pass")
    assert checked > 10000 and natively > 10000, (checked, natively)


def test_cxx_exceptions_blocks_agree(monkeypatch, tmp_path):
    """C++ unwinding: RET imm16-free epilogues, indirect calls, RDSSP/INCSSP blocks (those
    are decoded by Python, which hooks the CET instructions)."""
    src = tmp_path / "throw.cc"
    src.write_text(
        "#include <cstdio>\n#include <stdexcept>\n"
        "__attribute__((noinline)) int f(int n) { if (!n) throw std::runtime_error(\"x\");"
        " return f(n - 1) + 1; }\n"
        "int main() { int c = 0; for (int i = 0; i < 50; i++) {"
        " try { f(i % 7); } catch (const std::exception &) { c++; } }"
        " std::printf(\"%d\\n\", c); return c == 50 ? 0 : 1; }\n")
    exe = tmp_path / "throw"
    subprocess.run(["g++", "-O2", "-static", "-fcf-protection=full", "-Wl,-z,shstk",
                    "-o", str(exe), str(src)], check=True)
    checked, natively = _check_every_block(monkeypatch, str(exe))
    assert checked > 500 and natively > 0
