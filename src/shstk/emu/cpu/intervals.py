"""Address ranges that never overlap, in address order: an address space's VMAs (the
role of Linux's maple tree) and an engine's shadow-stack regions.

A plain sorted list costs O(n) per insertion: with 30,000 thread stacks mapped top-down,
each new stack goes near the front of the list and moves every entry above it. Here the
ranges live in buckets of at most 2 * LOAD entries, with the first start of every bucket
in a separate list, so an insertion or removal moves O(LOAD + n / LOAD) entries and a
lookup is two bisections. Iteration is in address order, as `for v in mm.vmas` expects.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

LOAD = 256  # a bucket splits at twice this


class Range(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


T = TypeVar("T", bound=Range)


class Intervals(Generic[T]):
    """Ranges ordered by start; they never overlap."""

    __slots__ = ("_buckets", "_len", "_mins", "_starts")

    def __init__(self) -> None:
        self._buckets: list[list[T]] = []
        self._starts: list[list[int]] = []  # each bucket's starts, for bisection
        self._mins: list[int] = []  # each bucket's first start
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[T]:
        for bucket in self._buckets:
            yield from bucket

    # --- positions: (bucket, index) ---------------------------------------------------
    def _at_or_before(self, addr: int) -> tuple[int, int]:
        """Position of the last range starting at or below `addr`; (-1, -1) if none."""
        b = bisect_right(self._mins, addr) - 1
        if b < 0:
            return -1, -1
        return b, bisect_right(self._starts[b], addr) - 1

    def _forward(self, b: int, i: int) -> Iterator[T]:
        """The ranges from position (b, i) upwards."""
        while b < len(self._buckets):
            bucket = self._buckets[b]
            while i < len(bucket):
                yield bucket[i]
                i += 1
            b, i = b + 1, 0

    def _backward(self, b: int, i: int) -> Iterator[T]:
        """The ranges from position (b, i) downwards."""
        while b >= 0:
            bucket = self._buckets[b]
            while i >= 0:
                yield bucket[i]
                i -= 1
            b -= 1
            if b >= 0:
                i = len(self._buckets[b]) - 1

    # --- queries ------------------------------------------------------------------------
    def containing(self, addr: int) -> T | None:
        """The range that contains `addr`, or None."""
        b, i = self._at_or_before(addr)
        if b < 0:
            return None
        v = self._buckets[b][i]
        return v if addr < v.end else None

    def starting_at(self, start: int) -> T | None:
        """The range that starts exactly at `start`, or None."""
        r = self.containing(start)
        return r if r is not None and r.start == start else None

    def from_(self, addr: int) -> Iterator[T]:
        """Upwards from the range that starts at or below `addr` (else from the first)."""
        b, i = self._at_or_before(addr)
        return self._forward(max(b, 0), max(i, 0))

    def down_from(self, addr: int) -> Iterator[T]:
        """Downwards from the last range that starts at or below `addr`."""
        b, i = self._at_or_before(addr)
        return self._backward(b, i)

    def below(self, limit: int | None = None) -> Iterator[T]:
        """Downwards over the ranges that start below `limit` (all of them for None)."""
        if limit is None:
            b = len(self._buckets) - 1
            return self._backward(b, len(self._buckets[b]) - 1 if b >= 0 else -1)
        return self.down_from(limit - 1)

    # --- changes ------------------------------------------------------------------------
    def insert(self, v: T) -> None:
        if not self._buckets:
            self._buckets.append([v])
            self._starts.append([v.start])
            self._mins.append(v.start)
            self._len = 1
            return
        b = max(bisect_right(self._mins, v.start) - 1, 0)
        starts = self._starts[b]
        i = bisect_left(starts, v.start)
        starts.insert(i, v.start)
        self._buckets[b].insert(i, v)
        self._mins[b] = starts[0]
        self._len += 1
        if len(starts) > 2 * LOAD:
            self._split(b)

    def _split(self, b: int) -> None:
        bucket, starts = self._buckets[b], self._starts[b]
        self._buckets[b:b + 1] = [bucket[:LOAD], bucket[LOAD:]]
        self._starts[b:b + 1] = [starts[:LOAD], starts[LOAD:]]
        self._mins[b:b + 1] = [starts[0], starts[LOAD]]

    def remove(self, v: T) -> None:
        b, i = self._at_or_before(v.start)
        if b < 0 or self._buckets[b][i] is not v:
            raise ValueError(f"no range at {v.start:#x} in the list")
        del self._buckets[b][i]
        del self._starts[b][i]
        self._len -= 1
        if self._starts[b]:
            self._mins[b] = self._starts[b][0]
        else:
            del self._buckets[b], self._starts[b], self._mins[b]
