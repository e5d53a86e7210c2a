"""The scheduler's queues with O(1) operations (membership, removal included).

`RunQueue` behaves as the `deque` it replaces (FIFO, `append`/`appendleft`/`popleft`,
`in`, `remove`, truth, `len`, iteration in order), but `in` and `remove` no longer scan:
every queued task has one live entry, recorded with a ticket; `remove` forgets the ticket
and `popleft` skips entries whose ticket is stale. `SleepSet` is the sleepers list as an
insertion-ordered dict. Order is exactly that of the old structures, so scheduling does
not change; only the cost per operation does (issue 18: 30,000 live threads).
"""

from __future__ import annotations

import heapq
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
    """The sleeping tasks, in the order they went to sleep, and which of them the
    scheduler must look at: a sleep that another event ends explicitly (a futex wake, a
    signal: `kick`) or a deadline (`timers`) is not looked at until then, so a pick costs
    the number of sleepers that may have woken, not the number of sleepers (issue 18:
    30,000 threads asleep on one barrier). Sleeps whose condition nobody announces
    (`polled`: pipes, sockets, wait4, ...) are looked at on every pick, as before."""

    def __init__(self) -> None:
        self._d: dict[T, int] = {}  # sleeper -> its place in the sleep order
        self._polled: dict[T, None] = {}
        self._kicked: dict[T, None] = {}
        self._timers: list[tuple[int, int, T]] = []  # heap of (deadline, arm ticket, task)
        self._armed: dict[T, int] = {}  # sleeper -> ticket of its live timer entry
        self._next = 0

    def append(self, t: T, *, polled: bool = True, deadline: int | None = None) -> None:
        """`t` goes to sleep (or, already asleep, now sleeps for another reason: it keeps
        its place in the order)."""
        if t not in self._d:
            self._next += 1
            self._d[t] = self._next
        self.rearm(t, polled=polled, deadline=deadline)

    def rearm(self, t: T, *, polled: bool, deadline: int | None) -> None:
        if polled:
            self._polled[t] = None
        else:
            self._polled.pop(t, None)
        self._kicked.pop(t, None)
        self._armed.pop(t, None)
        if deadline is not None:
            self._next += 1
            self._armed[t] = self._next
            heapq.heappush(self._timers, (deadline, self._next, t))

    def kick(self, t: T) -> None:
        """Something happened that may end `t`'s sleep: look at it at the next pick."""
        if t in self._d:
            self._kicked[t] = None

    def remove(self, t: T) -> None:
        del self._d[t]
        self._forget(t)

    def discard(self, t: T) -> None:
        if self._d.pop(t, None) is not None:
            self._forget(t)

    def _forget(self, t: T) -> None:
        self._polled.pop(t, None)
        self._kicked.pop(t, None)
        self._armed.pop(t, None)  # its heap entry goes stale
        if len(self._timers) > 2 * len(self._armed) + 64:  # keep stale entries bounded
            self._timers = [e for e in self._timers if self._armed.get(e[2]) == e[1]]
            heapq.heapify(self._timers)

    def _drop_stale_timers(self) -> None:
        timers, armed = self._timers, self._armed
        while timers and armed.get(timers[0][2]) != timers[0][1]:
            heapq.heappop(timers)

    def next_deadline(self) -> int | None:
        self._drop_stale_timers()
        return self._timers[0][0] if self._timers else None

    def due(self, now: int) -> list[T]:
        """The sleepers to look at now, in the order they went to sleep: the polled ones,
        the kicked ones and those whose deadline has come. Kicks and timers are consumed."""
        out = dict(self._polled)
        out.update(self._kicked)
        self._kicked.clear()
        timers, armed = self._timers, self._armed
        while True:
            self._drop_stale_timers()
            if not timers or timers[0][0] > now:
                break
            _deadline, _ticket, t = heapq.heappop(timers)
            del armed[t]
            out[t] = None
        if len(out) < 2:
            return list(out)
        order = self._d
        return sorted(out, key=lambda t: order[t])

    def polled(self) -> Iterator[T]:
        return iter(self._polled)

    def __contains__(self, t: object) -> bool:
        return t in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __bool__(self) -> bool:
        return bool(self._d)

    def __iter__(self) -> Iterator[T]:
        return iter(self._d)
