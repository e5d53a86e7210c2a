"""Intervals (the ordered VMAs and shadow-stack regions) against a plain sorted list.

Every query mm and the gap search use (containing, from_, down_from, below) is checked
after each of thousands of seeded insertions and removals, across bucket splits and
bucket deletions, so the bucketed layout can never answer differently from the
O(n)-per-insertion list it replaced.
"""

from __future__ import annotations

import random
from bisect import bisect_right

import pytest

from shstk.emu.cpu import intervals
from shstk.emu.cpu.intervals import Intervals
from shstk.emu.kernel.vma import Vma

PAGE = 0x1000


class _Model:
    def __init__(self) -> None:
        self.vmas: list[Vma] = []

    def starts(self) -> list[int]:
        return [v.start for v in self.vmas]

    def at_or_before(self, addr: int) -> int:
        return bisect_right(self.starts(), addr) - 1


def _vma(start: int, pages: int) -> Vma:
    v = Vma.__new__(Vma)  # only start and end matter to the container
    v.start, v.end = start, start + pages * PAGE
    return v


def _check(lst: Intervals[Vma], model: _Model, rng: random.Random) -> None:
    assert list(lst) == model.vmas
    assert len(lst) == len(model.vmas)
    for _ in range(8):
        addr = rng.randrange(0, 4000) * PAGE + rng.choice((0, 1, PAGE - 1))
        i = model.at_or_before(addr)
        inside = model.vmas[i] if i >= 0 and addr < model.vmas[i].end else None
        assert lst.containing(addr) is inside
        assert list(lst.from_(addr)) == model.vmas[max(i, 0):]
        assert list(lst.down_from(addr)) == model.vmas[:i + 1][::-1]
        below = [v for v in model.vmas if v.start < addr][::-1]
        assert list(lst.below(addr)) == below
    assert list(lst.below()) == model.vmas[::-1]


@pytest.mark.parametrize("seed", range(4))
def test_matches_a_sorted_list(monkeypatch, seed: int) -> None:
    monkeypatch.setattr(intervals, "LOAD", 4)  # many buckets, splits and empty buckets
    rng = random.Random(seed)
    lst, model = Intervals(), _Model()
    _check(lst, model, rng)
    for _ in range(1500):
        if model.vmas and rng.random() < 0.4:
            v = rng.choice(model.vmas)
            lst.remove(v)
            model.vmas.remove(v)
        else:
            start = rng.randrange(0, 4000) * PAGE
            i = model.at_or_before(start)
            if i >= 0 and start < model.vmas[i].end:
                continue  # VMAs never overlap
            nxt = model.vmas[i + 1].start if i + 1 < len(model.vmas) else 4001 * PAGE
            v = _vma(start, rng.randrange(1, max(2, min(8, (nxt - start) // PAGE + 1))))
            lst.insert(v)
            model.vmas.insert(i + 1, v)
        _check(lst, model, rng)


def test_removing_a_vma_that_is_not_there_is_an_error() -> None:
    lst = Intervals()
    lst.insert(_vma(0x10000, 1))
    with pytest.raises(ValueError):
        lst.remove(_vma(0x10000, 1))
    with pytest.raises(ValueError):
        Intervals().remove(_vma(0, 1))
