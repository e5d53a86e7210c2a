"""The scheduler's queues with O(1) operations (membership, removal included).

`RunQueue` behaves as the `deque` it replaces (FIFO, `append`/`appendleft`/`popleft`,
`in`, `remove`, truth, `len`, iteration in order), but `in` and `remove` no longer scan:
every queued task has one live entry, recorded with a ticket; `remove` forgets the ticket
and `popleft` skips entries whose ticket is stale. `SleepSet` is the sleepers list as an
insertion-ordered dict. Order is exactly that of the old structures, so scheduling does
not change; only the cost per operation does (issue 18: 30,000 live threads).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class RunQueue(Generic[T]):
    def __init__(self) -> None:
        self._q: deque[tuple[T, int]] = deque()
        self._live: dict[T, int] = {}  # task -> ticket of its live entry
        self._next = 0

    def _ticket(self, t: T) -> int:
        self._next += 1
        self._live[t] = self._next
        return self._next

    # A task is queued once (every caller in the kernel checks `in` first); queueing a
    # queued task again is ignored rather than creating a second entry.
    def append(self, t: T) -> None:
        if t not in self._live:
            self._q.append((t, self._ticket(t)))

    def appendleft(self, t: T) -> None:
        if t not in self._live:
            self._q.appendleft((t, self._ticket(t)))

    def _drop_stale(self) -> None:
        q, live = self._q, self._live
        while q:
            t, ticket = q[0]
            if live.get(t) == ticket:
                return
            q.popleft()

    def popleft(self) -> T:
        self._drop_stale()
        if not self._q:
            raise IndexError("pop from an empty run queue")
        t, _ticket = self._q.popleft()
        del self._live[t]
        return t

    def remove(self, t: T) -> None:
        if self._live.pop(t, None) is None:
            raise ValueError("task not queued")
        if len(self._q) > 2 * len(self._live) + 64:  # keep stale entries bounded
            self._q = deque(e for e in self._q if self._live.get(e[0]) == e[1])

    def clear(self) -> None:
        self._q.clear()
        self._live.clear()

    def __contains__(self, t: object) -> bool:
        return t in self._live

    def __len__(self) -> int:
        return len(self._live)

    def __bool__(self) -> bool:
        return bool(self._live)

    def __iter__(self) -> Iterator[T]:
        live = self._live
        return iter([t for t, ticket in self._q if live.get(t) == ticket])


class SleepSet(Generic[T]):
    """The sleeping tasks, in the order they went to sleep."""

    def __init__(self) -> None:
        self._d: dict[T, None] = {}

    def append(self, t: T) -> None:
        self._d[t] = None

    def remove(self, t: T) -> None:
        del self._d[t]

    def discard(self, t: T) -> None:
        self._d.pop(t, None)

    def __contains__(self, t: object) -> bool:
        return t in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __bool__(self) -> bool:
        return bool(self._d)

    def __iter__(self) -> Iterator[T]:
        return iter(self._d)
