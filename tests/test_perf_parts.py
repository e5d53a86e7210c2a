"""Issue 18's pieces that behaviour tests do not see directly: the O(1) run queue keeps
the deque's order, capstone's C library is used without its Python package (and a run
does not import the package), the RSTORSSP/SAVEPREVSSP native path gives the Python
engine's results, the operand constants match capstone's."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

import pytest

from shstk.emu.cpu import cslib, operands
from shstk.emu.kernel.runq import RunQueue, SleepSet

ROOT = Path(__file__).resolve().parent.parent
MARKED = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")


def test_run_queue_behaves_as_the_deque_it_replaces() -> None:
    rng = random.Random(18)
    tasks = [object() for _ in range(40)]
    ref: deque[object] = deque()
    q: RunQueue[object] = RunQueue()
    for _ in range(20000):
        t = rng.choice(tasks)
        op = rng.randrange(5)
        if op == 0 and t not in ref:  # the kernel checks `in` before queueing
            ref.append(t)
            q.append(t)
        elif op == 1 and t not in ref:
            ref.appendleft(t)
            q.appendleft(t)
        elif op == 2 and ref:
            assert q.popleft() is ref.popleft()
        elif op == 3 and t in ref:
            ref.remove(t)
            q.remove(t)
        assert (t in q) == (t in ref)
        assert len(q) == len(ref) and bool(q) == bool(ref)
    assert list(q) == list(ref)
    with pytest.raises(ValueError):
        q.remove(object())


def test_sleep_set_keeps_order() -> None:
    s: SleepSet[int] = SleepSet()
    for i in (5, 3, 9, 1):
        s.append(i)
    s.remove(3)
    s.append(3)
    assert list(s) == [5, 9, 1, 3] and 9 in s and 4 not in s and len(s) == 4


def test_operand_kinds_are_capstones() -> None:
    from capstone import x86_const

    assert (operands._X86_OP_REG, operands._X86_OP_MEM) == (x86_const.X86_OP_REG,
                                                            x86_const.X86_OP_MEM)


def test_capstone_c_library_without_the_package() -> None:
    import capstone

    if capstone.cs_version()[0] != 5:
        pytest.skip("cslib knows capstone 5's cs_insn layout")
    cs = cslib.open_x86_64()
    assert cs is not None  # layout checked by decoding `ret 8`
    cs.close()


def test_a_static_run_does_not_import_capstone(build) -> None:
    hello = build(ROOT / "bench" / "guests" / "hello.c", flags=("-static", "-O2"))
    code = textwrap.dedent("""
        import sys
        from shstk.cli import main
        status = main(["run", sys.argv[1]])
        print("capstone" in sys.modules, status)
    """)
    out = subprocess.run([sys.executable, "-c", code, str(hello)], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "False 0", out.stdout + out.stderr


@pytest.mark.parametrize("n", ["1", "300"])
def test_shadow_stack_switches_same_under_both_engines(build, n: str) -> None:
    """RSTORSSP + SAVEPREVSSP pairs (the native hook takes the second and later runs of
    each site): output and exit status as with the pure-Python engine."""
    prog = build(ROOT / "bench" / "guests" / "switches.c", flags=("-static", "-O2", *MARKED))
    results = []
    for engine in ("native", "python"):
        proc = subprocess.run([sys.executable, "-m", "shstk", "run", "--shstk", "off",
                               str(prog), n], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, SHSTK_ENGINE=engine))
        results.append((proc.returncode, proc.stdout))
    assert results[0] == results[1] == (0, f"{n}\n")


_BAD_SECOND_TOKEN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "shstk_guest.h"
#define SIZE 0x10000
int main(int argc, char **argv) {
    if (ss_enable()) { printf("no shadow stacks\n"); return 1; }
    uint64_t *ss = (uint64_t *)ss_map(0, SIZE, SHADOW_STACK_SET_TOKEN);
    uint64_t other = (uint64_t)ss + SIZE - 8;
    for (int i = 0; i < 3; i++) {
        /* the third pass restores from a slot that holds no token: #CP (SEGV_CPERR) at
         * a site the native hook took on the second pass */
        uint64_t here = ss_get_ssp();
        ss_pivot((void *)(i < 2 ? other : (uint64_t)ss + 64));
        other = ss_get_ssp() - 8;
        ss_pivot((void *)(here - 8));
        printf("pass %d\n", i);
        fflush(stdout);
    }
    return 0;
}
"""


def test_native_switch_faults_as_python_does(build, tmp_path: Path) -> None:
    src = tmp_path / "badtoken.c"
    src.write_text(_BAD_SECOND_TOKEN)
    prog = build(src, flags=("-static", "-O2", *MARKED))
    results = []
    for engine in ("native", "python"):
        proc = subprocess.run([sys.executable, "-m", "shstk", "run", "--shstk", "off",
                               str(prog)], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, SHSTK_ENGINE=engine))
        results.append((proc.returncode, proc.stdout))
    assert results[0] == results[1]
    assert results[0] == (139, "pass 0\npass 1\n"), results


def test_sleep_set_looks_only_at_what_may_have_woken() -> None:
    """A pick looks at the polled sleepers, the kicked ones and the expired deadlines, in
    the order they went to sleep; 10,000 sleepers on a futex cost nothing until kicked."""
    s: SleepSet[int] = SleepSet()
    for i in range(10_000):
        s.append(i, polled=False)
    s.append(-1)  # a pipe reader: polled
    s.append(-2, polled=False, deadline=500)  # nanosleep
    assert s.due(now=100) == [-1]
    s.kick(7)
    s.kick(3)
    s.kick(123_456)  # not asleep: ignored
    assert s.due(now=100) == [3, 7, -1]
    assert s.due(now=100) == [-1]  # a kick is consumed
    assert s.next_deadline() == 500
    assert s.due(now=500) == [-1, -2]
    assert s.next_deadline() is None
    s.rearm(5, polled=False, deadline=900)  # went back to sleep with a timeout
    s.remove(5)  # woken by other means: its timer is stale
    assert s.next_deadline() is None and s.due(now=1000) == [-1]
    s.kick(9)
    s.discard(9)
    assert s.due(now=1000) == [-1] and 9 not in s and len(s) == 10_000


def test_native_page_table_stays_sorted_under_edits_at_both_ends() -> None:
    """The native VMA table and shadow-stack regions open room on the shorter side (new
    thread stacks go in near the low end) and empty an entry deleted in the middle (glibc
    keeps exited threads' stacks mapped), compacting at half empty: whatever the order of
    edits, they hold exactly what a sorted model holds, in address order, and every
    lookup finds what the model finds."""
    import ctypes

    from shstk.emu.cpu.interface import Region
    from shstk.emu.cpu.native import NativeEngine, native_library
    from shstk.emu.cpu.ssbase import TlbEntry

    lib = native_library()
    if lib is None:
        pytest.skip("the native fast path is not built")
    eng = NativeEngine(lib)
    lib.ss_tlb_fill.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                ctypes.POINTER(TlbEntry), ctypes.c_void_p]
    rng = random.Random(18)
    model: dict[int, tuple[int, int, int, int]] = {}
    regions: dict[int, int] = {}

    def live(first: int, n: int, words_each: int) -> list[tuple[int, ...]]:
        words = (ctypes.c_uint64 * (words_each * n)).from_address(first) if n else []
        rows = [tuple(words[words_each * i:words_each * i + words_each]) for i in range(n)]
        return [r for r in rows if r[1] != r[0]]  # emptied entries hold no address

    emptied = []

    def check() -> None:
        emptied.append(eng._c.dead_vmas)
        assert live(eng._c.vmas, eng._c.nvmas, 5) == [(s, *model[s]) for s in sorted(model)]
        assert [r[:2] for r in live(eng._c.regions, eng._c.nregions, 4)] == \
            [(s, regions[s]) for s in sorted(regions)]
        for _ in range(50):
            addr = 0x10000 + rng.randrange(9000) * 0x800
            entry = TlbEntry()
            found = lib.ss_tlb_fill(None, addr, 16, ctypes.byref(entry), eng._ptr) or \
                eng._c.mmu_present
            inside = [s for s in model if s <= addr < model[s][0]]
            assert bool(found) == bool(inside), hex(addr)

    page = 0x1000
    slots = list(range(4000))
    for step in range(8000):
        if step % 7 == 0:
            slot = rng.choice(slots)
        elif step % 3:
            slot = rng.choice(slots[:40])
        else:
            slot = rng.choice(slots[-40:])
        start = 0x10000 + slot * page
        if start in model and (rng.random() < 0.6 or step > 6000):
            eng.vma_del(start)
            del model[start]
            if start in regions:
                eng.remove_region(start)
                del regions[start]
        elif step <= 6000:
            # a new VMA, of 1 to 4 pages, anywhere it overlaps none: over the places of
            # deleted ones too, at other starts and sizes (those entries must go)
            end = start + rng.randint(1, 4) * page
            if start in model:
                end = model[start][0]  # a new version of the same VMA
            elif any(s < end and start < e[0] for s, e in model.items()):
                continue
            model[start] = (end, step, step & 7, step * 16)
            eng.vma_set(start, *model[start])
            if step % 2:
                regions[start] = end
                eng.add_region(Region(start, end, 0x1000, True))
        if step % 500 == 0 or step > 7990:
            check()
    assert max(emptied) > 0  # deletions in the middle happened (and were emptied)
    for start in sorted(model, reverse=True):
        eng.vma_del(start)
    for start in sorted(regions):
        eng.remove_region(start)
    model.clear()
    regions.clear()
    check()
    eng.vma_set(0x10000, 0x11000, 0, 0, 0)  # reusable after emptying
    model[0x10000] = (0x11000, 0, 0, 0)
    check()
    eng.close()


def test_wide_registers_through_the_fast_path_match_the_binding() -> None:
    """dump_regs/load_regs move XMM and x87 registers through FastRegs' 16-byte pair;
    what they read and write is what Unicorn's binding reads and writes."""
    from unicorn import UC_ARCH_X86, UC_MODE_64, Uc

    from shstk.emu.cpu.fastregs import FastRegs
    from shstk.emu.cpu.regs import FP, XMM

    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    fast = FastRegs(uc._uch, ())
    rng = random.Random(18)
    for reg in XMM:
        v = rng.getrandbits(128)
        fast.write_wide(reg, v & (2**64 - 1), v >> 64)
        assert uc.reg_read(reg) == v
        w = rng.getrandbits(128)
        uc.reg_write(reg, w)
        lo, hi = fast.read_wide(reg)
        assert lo | hi << 64 == w
    for reg in FP:
        mantissa, exponent = rng.getrandbits(64), rng.getrandbits(16)
        fast.write_wide(reg, mantissa, exponent)
        assert uc.reg_read(reg) == (mantissa, exponent)
        uc.reg_write(reg, (mantissa ^ 1, exponent ^ 1))
        lo, hi = fast.read_wide(reg)
        assert (lo, hi & 0xFFFF) == (mantissa ^ 1, exponent ^ 1)
