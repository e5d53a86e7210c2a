"""AddressSpace in-process, on a fake CPU (tests/fakeengine.py): no Unicorn, no guest.

The kernel reaches the CPU only through `shstk.emu.cpu.interface.Engine`; these tests
hold mm to that and check what it tells the CPU (page-table entries, shadow-stack
regions, code invalidation) alongside what the guest would see.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Iterator

import pytest
from fakeengine import FakeEngine

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.cpu.cpu import Cpu
from shstk.emu.cpu.interface import (
    ENGINE_METHODS,
    ENGINE_PROPERTIES,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    Engine,
)
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import (
    PAGE,
    VM_ACCOUNT,
    VM_SHADOW_STACK,
    VM_WRITE,
    AddressSpace,
)
from shstk.emu.kernel.physmem import PhysMemory

RW = M.PROT_READ | M.PROT_WRITE
BASE = 0x10000000


def _release(mm: AddressSpace) -> None:
    """What release_mm does once the machine has stopped."""
    mm.engine_live = False
    for v in list(mm.vmas):
        mm._remove(v)
    mm.pm.close()


@pytest.fixture
def mm() -> Iterator[AddressSpace]:
    space = AddressSpace(FakeEngine())
    yield space
    _release(space)


def fake(mm: AddressSpace) -> FakeEngine:
    assert isinstance(mm.cpu, FakeEngine)
    return mm.cpu


def spans(mm: AddressSpace) -> list[tuple[int, int, int]]:
    return [(v.start, v.end, v.flags & (VM_WRITE | VM_SHADOW_STACK)) for v in mm.vmas]


def page_table(mm: AddressSpace) -> list[tuple[int, int, int]]:
    return sorted((start, end, perms) for start, (end, _p, perms, _h)
                  in fake(mm).page_table.items())


def errno_of(fn: object, *args: object, **kw: object) -> int:
    with pytest.raises(KernelError) as exc:
        fn(*args, **kw)  # type: ignore[operator]  # a bound AddressSpace method
    return exc.value.errno


# --- the interface ----------------------------------------------------------------------

def _interface_members() -> set[str]:
    return {name for name in vars(Engine) if not name.startswith("_")} | \
        set(getattr(Engine, "__annotations__", {}))


def test_the_declared_member_lists_are_the_protocol() -> None:
    assert _interface_members() == set(ENGINE_METHODS) | set(ENGINE_PROPERTIES)


def _static_check(cpu: Cpu) -> list[Engine]:
    """For mypy: both implementations are assignable to the interface."""
    fake_engine: Engine = FakeEngine()
    return [cpu, fake_engine]


class _Client:
    def syscall(self, cpu: object) -> None: ...
    def unmapped_access(self, cpu: object, addr: int, write: bool) -> bool:
        return False


@pytest.mark.parametrize("kind", ["fake", "native", "python"])
def test_engines_implement_the_interface(kind: str) -> None:
    if kind == "fake":
        engine: Engine = FakeEngine()
    else:
        from shstk.emu.cpu.engine import native_library

        if kind == "native" and native_library() is None:
            pytest.skip("native fast path not built")
        engine = Cpu(_Client(), engine=kind)  # type: ignore[arg-type]  # a stub client
    try:
        assert isinstance(engine, Engine)
        for name in ENGINE_METHODS:
            assert callable(getattr(engine, name)), name
            want = inspect.signature(getattr(Engine, name)).parameters
            got = inspect.signature(getattr(engine, name)).parameters
            assert list(got) == [p for p in want if p != "self"], name
        for name in ENGINE_PROPERTIES:
            assert hasattr(engine, name), name
        engine.set_reg("rax", -1)
        assert engine.reg("rax") == (1 << 64) - 1
        engine.ssp = 0x7000
        engine.cet = 1
        state = engine.save_thread()
        assert state[:2] == (0x7000, 1)
        engine.load_thread((0x8000, 0, 0, 0, 0, 0))
        assert (engine.ssp, engine.cet) == (0x8000, 0)
        ctx = engine.save_context()
        engine.rip = 0x1234
        engine.restore_context(ctx)
        assert engine.rip == 0
        assert engine.cpuid(7)[2] & (1 << 7)  # CET_SS
        assert isinstance(engine.insns, int) and engine.engine_name == kind
    finally:
        engine.close()


# --- mapping ----------------------------------------------------------------------------

def test_map_read_write(mm):
    v = mm.map_anonymous(BASE, 2 * PAGE, RW)
    assert mm.find(BASE + PAGE) is v and mm.find(BASE + 2 * PAGE) is None
    assert mm.read(BASE, 16) == bytes(16)
    mm.write(BASE + PAGE - 4, b"across a page")
    assert mm.read(BASE + PAGE - 4, 13) == b"across a page"
    mm.write_u64(BASE + 8, 0x1122334455667788)
    assert mm.read_u32(BASE + 12) == 0x11223344
    assert page_table(mm) == [(BASE, BASE + 2 * PAGE, PROT_READ | PROT_WRITE)]
    # the CPU sees the same host memory the kernel wrote
    host = fake(mm).translate(BASE + 8, "w")
    assert host == v.host + 8


def test_mprotect_splits_and_keeps_the_data(mm):
    mm.map_anonymous(BASE, 3 * PAGE, RW)
    mm.write(BASE, b"a" * PAGE + b"b" * PAGE + b"c" * PAGE)
    mm.protect(BASE + PAGE, BASE + 2 * PAGE, M.PROT_READ)
    assert spans(mm) == [(BASE, BASE + PAGE, VM_WRITE), (BASE + PAGE, BASE + 2 * PAGE, 0),
                         (BASE + 2 * PAGE, BASE + 3 * PAGE, VM_WRITE)]
    assert page_table(mm) == [(BASE, BASE + PAGE, PROT_READ | PROT_WRITE),
                              (BASE + PAGE, BASE + 2 * PAGE, PROT_READ),
                              (BASE + 2 * PAGE, BASE + 3 * PAGE, PROT_READ | PROT_WRITE)]
    assert mm.read(BASE + PAGE - 1, PAGE + 2) == b"a" + b"b" * PAGE + b"c"
    assert errno_of(mm.write, BASE + PAGE, b"x") == E.EFAULT
    assert fake(mm).translate(BASE + PAGE, "w") is None
    assert fake(mm).tlb_flushes >= 1


def test_mprotect_of_exec_code_invalidates_it(mm):
    mm.map_anonymous(BASE, 2 * PAGE, M.PROT_READ | M.PROT_EXEC)
    assert fake(mm).translate(BASE, "x") is not None
    mm.protect(BASE, BASE + PAGE, M.PROT_READ)
    assert (BASE, BASE + PAGE) in fake(mm).invalidated
    assert fake(mm).translate(BASE, "x") is None
    assert page_table(mm)[1][2] == PROT_READ | PROT_EXEC


def test_map_fixed_over_the_middle_splits_and_replaces(mm):
    mm.map_anonymous(BASE, 4 * PAGE, RW)
    mm.write(BASE, b"\x11" * 4 * PAGE)
    # what do_mmap does for MAP_FIXED: the placement is the hint, the range is cleared
    where = mm.get_unmapped_area(BASE + PAGE, 2 * PAGE, M.MAP_FIXED)
    assert where == BASE + PAGE
    mm.unmap(where, where + 2 * PAGE)
    new = mm.map_anonymous(where, 2 * PAGE, M.PROT_READ)
    assert [(v.start, v.end) for v in mm.vmas] == [
        (BASE, BASE + PAGE), (BASE + PAGE, BASE + 3 * PAGE), (BASE + 3 * PAGE, BASE + 4 * PAGE)]
    assert mm.find(BASE + PAGE) is new
    assert mm.read(BASE + PAGE - 1, 2 * PAGE + 2) == b"\x11" + bytes(2 * PAGE) + b"\x11"
    assert len(fake(mm).page_table) == 3


def test_unmapped_memory_is_efault(mm):
    mm.map_anonymous(BASE, PAGE, RW)
    assert errno_of(mm.read, BASE + PAGE, 1) == E.EFAULT
    assert errno_of(mm.read, BASE + PAGE - 4, 8) == E.EFAULT  # runs off the end
    assert errno_of(mm.write, BASE - 1, b"xy") == E.EFAULT
    assert errno_of(mm.read_cstring, BASE + 2 * PAGE) == E.EFAULT
    mm.unmap(BASE, BASE + PAGE)
    assert errno_of(mm.read, BASE, 1) == E.EFAULT
    assert fake(mm).page_table == {}
    assert mm.read_code(BASE, 16) == b""  # the decoder never faults


def test_placement_is_top_down_below_mmap_base(mm):
    a = mm.get_unmapped_area(0, 4 * PAGE, 0)
    assert a + 4 * PAGE == mm.mmap_base
    mm.map_anonymous(a, 4 * PAGE, RW)
    b = mm.get_unmapped_area(0, PAGE, 0)
    assert b + PAGE == a
    assert mm.get_unmapped_area(0, PAGE, M.MAP_32BIT) == 0x40000000
    assert errno_of(mm.get_unmapped_area, BASE + 1, PAGE, M.MAP_FIXED) == E.EINVAL


# --- shadow stacks ------------------------------------------------------------------------

def test_shadow_stack_vma_is_not_writable_by_ordinary_stores(mm):
    ss = BASE + 16 * PAGE
    v = mm.map_anonymous(ss, 2 * PAGE, RW, extra_flags=VM_SHADOW_STACK | VM_ACCOUNT)
    eng = fake(mm)
    # the CPU's shadow-stack accesses go through the region, ordinary stores fault
    assert eng.regions[ss].end == ss + 2 * PAGE and eng.regions[ss].writable
    assert eng.regions[ss].host == v.host
    assert eng.translate(ss, "r") is not None and eng.translate(ss, "w") is None
    assert errno_of(mm.write_u64, ss, 1) == E.EFAULT
    assert mm.writable_prefix(ss - 8, 16) == 0
    mm.write(ss + 8, (0xDEAD).to_bytes(8, "little"), force=True)  # as ptrace's POKE does
    assert mm.read_u64(ss + 8) == 0xDEAD  # readable, as a Write=0/Dirty=1 page is
    assert mm.shadow_stacks() == [v]
    mm.unmap(ss, ss + 2 * PAGE)
    assert eng.regions == {} and mm.shadow_stacks() == []


def test_shadow_stack_split_updates_the_regions(mm):
    ss = BASE + 16 * PAGE
    mm.map_anonymous(ss, 3 * PAGE, RW, extra_flags=VM_SHADOW_STACK)
    mm.unmap(ss + PAGE, ss + 2 * PAGE)
    assert sorted((r.start, r.end) for r in fake(mm).regions.values()) == [
        (ss, ss + PAGE), (ss + 2 * PAGE, ss + 3 * PAGE)]


# --- fork ---------------------------------------------------------------------------------

def test_fork_copies_private_memory():
    parent = AddressSpace(FakeEngine())
    child = AddressSpace(FakeEngine())
    try:
        parent.map_anonymous(BASE, 2 * PAGE, RW)
        parent.write(BASE + 100, b"parent data")
        parent.map_anonymous(BASE + 8 * PAGE, PAGE, RW, extra_flags=VM_SHADOW_STACK)
        parent.copy_into(child)
        assert spans(child) == spans(parent)
        assert child.read(BASE + 100, 11) == b"parent data"
        child.write(BASE + 100, b"child")
        assert parent.read(BASE + 100, 11) == b"parent data"
        assert list(fake(child).regions) == [BASE + 8 * PAGE]
    finally:
        _release(child)
        _release(parent)


# --- the memory limit's account -----------------------------------------------------------

def test_committed_memory_follows_every_change(mm):
    """mm.committed (what --memory-limit counts, kept per insert/remove so a mmap does not
    walk every VMA of every process) equals the sum over the VMAs after each change."""
    from shstk.emu.kernel.vma import VM_NORESERVE, accounted

    def recount() -> int:
        return sum(v.size for v in mm.vmas if accounted(v))

    steps = [
        lambda: mm.map_anonymous(BASE, 8 * PAGE, RW),
        lambda: mm.protect(BASE + PAGE, BASE + 3 * PAGE, M.PROT_READ),  # split: less
        lambda: mm.protect(BASE + 2 * PAGE, BASE + 3 * PAGE, RW),
        lambda: mm.map_anonymous(BASE + 16 * PAGE, 4 * PAGE, M.PROT_READ),  # not counted
        lambda: mm.map_anonymous(BASE + 32 * PAGE, 4 * PAGE, RW, extra_flags=VM_NORESERVE),
        lambda: mm.unmap(BASE + 4 * PAGE, BASE + 18 * PAGE),  # across three VMAs
        lambda: mm.set_flags(BASE, BASE + PAGE, 0, VM_WRITE),
    ]
    for i, step in enumerate(steps):
        step()
        assert mm.committed == recount(), f"after step {i}"
    assert mm.committed == 2 * PAGE  # BASE+2P..+3P and +3P..+4P are what stays counted


@pytest.mark.parametrize("seed", range(3))
def test_physical_memory_first_fit_and_coalescing(seed: int) -> None:
    """Physical blocks against a plain model of the free list: the same first-fit
    address for every allocation, and everything coalesced back into whole chunks."""
    rng = random.Random(seed)
    pm = PhysMemory(FakeEngine())
    model: dict[int, list[list[int]]] = {}  # chunk phys -> sorted [start, end] free ranges
    taken: list[tuple[int, int]] = []
    try:
        for _ in range(3000):
            if taken and rng.random() < 0.45:
                phys, size = taken.pop(rng.randrange(len(taken)))
                pm.free(phys, size)
                ranges = next(r for c, r in model.items()
                              if c <= phys < c + next(ch.size for ch in pm.chunks if ch.phys == c))
                ranges.append([phys, phys + size])
                ranges.sort()
                merged: list[list[int]] = []
                for lo, hi in ranges:
                    if merged and merged[-1][1] == lo:
                        merged[-1][1] = hi
                    else:
                        merged.append([lo, hi])
                ranges[:] = merged
                continue
            size = rng.choice((1, 2, 3, 8, 17)) * PAGE
            phys, _host = pm.alloc(size)
            for ch in pm.chunks:
                model.setdefault(ch.phys, [[ch.phys, ch.phys + ch.size]])
            expect = None
            for ch in pm.chunks:
                fit = next((r for r in model[ch.phys] if r[1] - r[0] >= size), None)
                if fit is not None:
                    expect = fit[0]
                    fit[0] += size
                    if fit[0] == fit[1]:
                        model[ch.phys].remove(fit)
                    break
            assert phys == expect
            taken.append((phys, size))
            for ch in pm.chunks:
                assert [[r.start, r.end] for r in ch.free] == model[ch.phys]
        for phys, size in taken:
            pm.free(phys, size)
        assert all([(r.start, r.end) for r in ch.free] == [(ch.phys, ch.phys + ch.size)]
                   for ch in pm.chunks)
    finally:
        pm.close()


@pytest.mark.parametrize("length", [0, 1, 255, 256, 257, 300, 4095, 4096, 4097, 5000])
@pytest.mark.parametrize("start", [0, PAGE - 300, PAGE - 1, 3 * PAGE - 100])
def test_read_cstring_across_areas(mm, length, start):
    # two areas side by side (different protections, so two VMAs), the string anywhere
    # in them: what copy_from_user of a path gives (ENAMETOOLONG when no NUL is found in
    # limit + 1 bytes, EFAULT when the memory ends first)
    mm.map_anonymous(BASE, PAGE, RW)
    mm.map_anonymous(BASE + PAGE, 2 * PAGE, M.PROT_READ)
    assert len(mm.vmas) == 2
    text = bytes(b"abcdefghij"[i % 10] for i in range(length))
    room = 3 * PAGE - start
    data = (text + b"\0")[:room]
    mm.write(BASE + start, data, force=True)
    limit = 4096
    if len(text) < room and len(text) <= limit:
        assert mm.read_cstring(BASE + start, limit) == text
    elif len(text) > limit and start + limit + 1 <= 3 * PAGE:
        assert errno_of(mm.read_cstring, BASE + start, limit) == E.ENAMETOOLONG
    else:
        assert errno_of(mm.read_cstring, BASE + start, limit) == E.EFAULT
